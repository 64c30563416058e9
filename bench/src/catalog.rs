//! `vigie bench catalog`: onboarding figures against a real tower started
//! by the launcher — agent keys enrolled one by one (does the cost per key
//! stay flat as the registry grows?) in lock step or by several clients at
//! once (as the provisioner's parallel jobs do), a supplier CSV of N rows checked and
//! imported as one session (time, the tower's memory), and addresses
//! allocated one call at a time.

use std::time::Instant;

use vigie_client::ApiClient;
use vigie_wire::catalog::{CatalogCall, Owner, PoolSpec};
use vigie_wire::tower::{ApiCall, Caller};

use crate::agents::{rss_kib, BenchTower};

/// Enrols `keys` keys with `clients` clients at once, each its own
/// connection; returns the time taken.
fn enrol_concurrently(
    tower: &BenchTower,
    keys: usize,
    clients: usize,
) -> anyhow::Result<std::time::Duration> {
    let t = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (api, orders) = (tower.ep("api"), tower.ep("orders"));
                s.spawn(move || -> anyhow::Result<()> {
                    let caller = Caller::internal(vigie_wire::ids::TOWER_TENANT, "bench");
                    let mut api = ApiClient::direct(&api, &orders, caller)?;
                    api.set_timeout(std::time::Duration::from_secs(120));
                    for i in (c..keys).step_by(clients) {
                        let public = vigie_majordomo::keys::KeyPair::generate().public_z85();
                        api.call(ApiCall::KeyAdd {
                            host: format!("sim-{}", i + 1),
                            public,
                        })?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("an enrolling client panicked"))??;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(t.elapsed())
}

pub fn run(keys: usize, clients: usize, rows: usize, allocations: usize) -> anyhow::Result<()> {
    let tower = BenchTower::start()?;
    let caller = Caller::internal(vigie_wire::ids::TOWER_TENANT, "bench");
    let mut api = ApiClient::direct(&tower.ep("api"), &tower.ep("orders"), caller)?;
    api.set_timeout(std::time::Duration::from_secs(120));
    println!(
        "# vigie bench catalog --keys {keys} --clients {clients} --rows {rows} --allocations {allocations}"
    );
    if clients > 1 {
        let e = enrol_concurrently(&tower, keys, clients)?;
        println!(
            "enrolled {keys} agent keys with {clients} clients at once in {e:.2?} ({:.0} µs each)",
            e.as_micros() as f64 / keys.max(1) as f64
        );
    } else {
        enrol(&mut api, keys)?;
    }
    import(&tower, &mut api, rows)?;
    allocate(&mut api, rows, allocations)?;
    tower.stop()
}

/// Enrolment in lock step: one KeyAdd per agent, each its own stored
/// turn; the cost per key said at 1,000, 3,000, 10,000 and the end.
fn enrol(api: &mut ApiClient, keys: usize) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut lap = Instant::now();
    let mut marks = vec![1_000, 3_000, 10_000, keys];
    marks.retain(|m| *m <= keys);
    marks.dedup();
    let mut last = 0;
    for i in 1..=keys {
        let public = vigie_majordomo::keys::KeyPair::generate().public_z85();
        api.call(ApiCall::KeyAdd {
            host: format!("sim-{i}"),
            public,
        })?;
        if marks.contains(&i) {
            println!(
                "enrolled {i} agent keys in {:.2?} (keys {}..{i}: {:.0} µs each)",
                t.elapsed(),
                last + 1,
                lap.elapsed().as_micros() as f64 / (i - last) as f64
            );
            last = i;
            lap = Instant::now();
        }
    }
    Ok(())
}

/// A CSV of `rows` servers: the CLI's check of the file, then the
/// tower's (one call), and the memory it added.
fn import(tower: &BenchTower, api: &mut ApiClient, rows: usize) -> anyhow::Result<()> {
    let rss = |name: &str| tower.pids.get(name).map_or(0, |p| rss_kib(*p));
    let mut csv =
        String::from("name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "srv-{i},10.{}.{}.{},22,debian,ovh,4,8,80,role=web;rack=r{}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255,
            i % 40
        ));
    }
    let (referee0, escalator0) = (rss("referee"), rss("escalator"));
    let t = Instant::now();
    let parsed = vigie_catalog::servers::parse_servers("bench.csv", csv.as_bytes(), |_| {})?;
    let parse = t.elapsed();
    let call = ApiCall::Catalog(CatalogCall::Import {
        file: "bench.csv".into(),
        digest: vigie_catalog::servers::digest(csv.as_bytes()),
        rows: parsed,
        dry_run: false,
    });
    let t = Instant::now();
    api.call(call)?;
    let stored = t.elapsed();
    println!(
        "import of {rows} rows ({} KiB): checked by the CLI in {parse:.2?}, checked and stored by the tower in {stored:.2?}, {:.2?} in all",
        csv.len() / 1024,
        parse + stored
    );
    println!(
        "memory the import added: referee +{} KiB, escalator +{} KiB",
        rss("referee").saturating_sub(referee0),
        rss("escalator").saturating_sub(escalator0)
    );
    Ok(())
}

/// Single-address allocations, one call each, each its own stored turn.
fn allocate(api: &mut ApiClient, rows: usize, allocations: usize) -> anyhow::Result<()> {
    api.call(ApiCall::Catalog(CatalogCall::PoolAdd {
        spec: PoolSpec {
            name: "bench".into(),
            cidr: "10.200.0.0/16".parse()?,
            gateway: Some("10.200.0.1".parse()?),
            reserved: vec![],
        },
    }))?;
    let owner = Owner::Server(if rows > 0 {
        "srv-0".into()
    } else {
        "none".into()
    });
    let t = Instant::now();
    for _ in 0..allocations {
        api.call(ApiCall::Catalog(CatalogCall::Allocate {
            pool: "bench".into(),
            owner: owner.clone(),
            count: 1,
        }))?;
    }
    let e = t.elapsed();
    println!(
        "{allocations} allocations one by one: {e:.2?} ({:.0} µs each)",
        e.as_micros() as f64 / allocations.max(1) as f64
    );
    Ok(())
}
