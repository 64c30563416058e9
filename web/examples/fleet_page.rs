//! How long the fleet page of 10,000 hosts takes to render (the whole
//! page: frame, filter form, one row per host with its labels), against
//! the reference of the same run: the API's JSON of the same hosts
//! (`serde_json`). `cargo run --release -p vigie-web --example fleet_page`.

use std::time::{Duration, Instant};

use vigie_json::HostJson;
use vigie_wire::tower::HostView;

const HOSTS: usize = 10_000;
const ROUNDS: u32 = 20;

fn hosts() -> Vec<HostJson> {
    (0..HOSTS)
        .map(|i| {
            let labels = [
                ("role", if i % 3 == 0 { "db" } else { "web" }),
                ("dc", "par-1"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            HostJson::from(&HostView {
                id: format!("host-{i:05}"),
                tenant: "default".into(),
                labels,
                reported: Default::default(),
                online: i % 10 != 0,
                queued: (i % 4) as u32,
                in_flight: (i % 7 == 0).then(|| format!("c{i}")),
                held: false,
                refusing: None,
                plug_down: None,
            })
        })
        .collect()
}

/// The best of `ROUNDS` runs of `f`, and the size it made.
fn best(mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut size = 0;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        size = f();
        best = best.min(t.elapsed());
    }
    (best, size)
}

fn main() {
    let hosts = hosts();
    // Every host with its memory and disk charts, as from fresh samples.
    let usage: std::collections::BTreeMap<String, vigie_web::pages::fleet::Usage> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let u = vigie_web::pages::fleet::Usage {
                memory: ((i as u64 % 16) << 30, 16 << 30),
                disk: ((i as u64 % 100) << 30, 100 << 30),
            };
            (h.id.clone(), u)
        })
        .collect();
    let (page, page_bytes) = best(|| {
        let body = vigie_web::pages::fleet::body(&hosts, "", None, &usage);
        vigie_web::pages::layout::page("Fleet", None, body)
            .into_string()
            .len()
    });
    let (json, json_bytes) = best(|| serde_json::to_string(&hosts).map_or(0, |s| s.len()));
    println!(
        "fleet page, {HOSTS} hosts: {:.1} ms ({page_bytes} bytes)",
        page.as_secs_f64() * 1e3
    );
    println!(
        "reference, the API's JSON of the same hosts: {:.1} ms ({json_bytes} bytes)",
        json.as_secs_f64() * 1e3
    );
    println!(
        "ratio page / JSON: {:.2}",
        page.as_secs_f64() / json.as_secs_f64()
    );
}
