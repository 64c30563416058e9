//! What a host's page shows of its observation: its last metrics sample
//! as small server-drawn charts, and the tail of its steps' logs (asked
//! of the host through the tower, as `vigie logs` does). Each part that
//! is refused or unanswered says so in place; the rest of the page stands.

use maud::{html, Markup};
use vigie_client::calls::{HostMetrics, Logs};
use vigie_wire::front::OperatorRecord;
use vigie_wire::observe::{LogSource, LogsQuery};

use super::charts::{bar, bars};
use crate::app::Shared;

/// The most of a host's log one page shows.
pub const LOG_TAIL_BYTES: u32 = 16 * 1024;
/// Lines of the tail shown.
pub const LOG_TAIL_LINES: usize = 60;
/// Pages of logs read to reach the tail.
const LOG_PAGES: usize = 8;

pub async fn metrics(app: &Shared, op: &OperatorRecord, host: &str) -> Markup {
    let call = HostMetrics {
        host: Some(host.to_owned()),
    };
    let views = match app.referee.ask(op, call).await {
        Ok(v) => v,
        Err(f) => return html! { p.error { (f.message) } },
    };
    let Some((s, v)) = views.iter().find_map(|v| v.sample.as_ref().map(|s| (s, v))) else {
        return html! { p { "No sample from this host yet." } };
    };
    let gib = |b: u64| format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30));
    let mem_used = s
        .memory_total_bytes
        .saturating_sub(s.memory_available_bytes);
    let disk_used = s.disk_total_bytes.saturating_sub(s.disk_available_bytes);
    let [l1, l5, l15] = s.load_centi.map(u64::from);
    let cpus = u64::from(s.cpus.max(1)) * 100;
    html! {
        table #metrics.metrics {
            tr { th { "CPU busy since boot" } td { (bar(s.cpu_busy_ms, s.cpu_busy_ms + s.cpu_idle_ms)) } td { (s.cpus) " CPUs" } }
            tr { th { "Memory" } td { (bar(mem_used, s.memory_total_bytes)) } td { (gib(mem_used)) " of " (gib(s.memory_total_bytes)) } }
            tr { th { "Disk" } td { (bar(disk_used, s.disk_total_bytes)) } td { (gib(disk_used)) " of " (gib(s.disk_total_bytes)) } }
            tr { th { "Load (1, 5, 15 min)" } td { (bars(&[("1", l1), ("5", l5), ("15", l15)], cpus.max(l1).max(l5).max(l15))) }
                td { (format!("{:.2} {:.2} {:.2}", l1 as f64 / 100.0, l5 as f64 / 100.0, l15 as f64 / 100.0)) } }
        }
        p.hint { "Sampled " (v.age_ms / 1000) " s ago" @if v.stale { " (stale: the host stopped sending)" } "." }
    }
}

/// The last lines of the host's steps' logs.
pub async fn logs(app: &Shared, op: &OperatorRecord, host: &str, online: bool) -> Markup {
    if !online {
        return html! { p { "The host is offline: its logs are on it." } };
    }
    let mut text = String::new();
    let mut cursor = None;
    for _ in 0..LOG_PAGES {
        let query = LogsQuery {
            host: host.to_owned(),
            source: LogSource::Steps { change: None },
            since_ms: None,
            cursor,
            max_bytes: vigie_wire::observe::MAX_LOG_CHUNK,
        };
        let page = match app.referee.ask(op, Logs { query }).await {
            Ok(p) => p,
            Err(f) => return html! { p.error { (f.message) } },
        };
        text.push_str(&page.text);
        let keep = text.len().saturating_sub(LOG_TAIL_BYTES as usize);
        let cut = text.ceil_char_boundary(keep);
        text.drain(..cut);
        cursor = Some(page.cursor);
        if !page.more {
            break;
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    html! {
        @if tail.is_empty() { p { "No step has written to this host's log yet." } }
        @else { pre #logs { @for l in tail { (l) "\n" } } }
        p.hint { "The full logs: " code { "vigie logs " (host) } }
    }
}
