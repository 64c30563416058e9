//! Small charts drawn on the server as inline SVG (no script, no image
//! request): a bar for a share of a whole, and a row of bars for a few
//! values on one scale. Only numbers reach them; labels are maud text.

use maud::{html, Markup};

/// Width of a bar, in SVG units.
const W: u64 = 120;
const H: u64 = 12;

/// `part` of `whole` as a filled bar (empty for a whole of zero).
pub fn bar(part: u64, whole: u64) -> Markup {
    let filled = (part.min(whole) * W).checked_div(whole).unwrap_or(0);
    let pct = (part.min(whole) * 100).checked_div(whole).unwrap_or(0);
    let class = if pct >= 90 { "hot" } else { "ok" };
    // Short markup: a fleet page draws two per host.
    html! {
        svg.chart width=(W) height=(H) { title { (pct) "%" } rect.track width=(W) height=(H) {} rect class=(class) width=(filled) height=(H) {} }
    }
}

/// Named values on one scale (`max` fills the height), as vertical bars.
pub fn bars(values: &[(&str, u64)], max: u64) -> Markup {
    let step = 28u64;
    let h = 40u64;
    let w = step * values.len() as u64;
    let max = max.max(1);
    html! {
        svg.chart width=(w) height=(h + 12) viewBox={ "0 0 " (w) " " (h + 12) } role="img" {
            @for (i, (name, v)) in values.iter().enumerate() {
                @let bh = (*v).min(max) * h / max;
                @let x = i as u64 * step;
                rect.ok x=(x + 4) y=(h - bh) width=(step - 8) height=(bh) { title { (name) ": " (v) } }
                text x=(x + step / 2) y=(h + 11) text-anchor="middle" { (name) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bar_is_its_share_and_never_more() {
        let half = super::bar(5, 10).into_string();
        assert!(half.contains(r#"width="60""#), "{half}");
        assert!(super::bar(3, 0).into_string().contains(r#"width="0""#));
        assert!(super::bar(30, 10).into_string().contains("hot"));
    }
}
