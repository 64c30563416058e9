//! What clients see of nginx reloads (issue 19, BENCHMARKS.md "Keep-alive
//! clients during rolling updates"): a keep-alive client and a
//! new-connection client through one host's nginx, first during rolling
//! updates of examples/shop (one reload per host and deploy), then, as
//! the same run's reference, during a bare `nginx -s reload` loop with
//! as many reloads. Prints one table row per phase. Run with
//! `cargo test -p vigie-tests --test deploy_keepalive -- --ignored --nocapture`.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use vigie_tests::deploys::{record, shop_repo, Leftovers};
use vigie_tests::http_load::{LoadLoop, LoadReport};
use vigie_tests::keepalive_load::{KeepAliveLoop, KeepAliveReport};
use vigie_tests::{stdout_ok, Launcher, Setup};

const LONG: Duration = Duration::from_secs(900);
const DEPLOYS: usize = 20;

fn row(what: &str, reloads: usize, took: Duration, keep: &KeepAliveReport, new: &LoadReport) {
    println!(
        "| {what} | {reloads} | {:.1} s | {} | {} | {} | {} | {} | {} |",
        took.as_secs_f64(),
        keep.served,
        keep.connections,
        keep.closed_unanswered.len(),
        keep.failures.len(),
        new.served,
        new.failures.len()
    );
}

#[test]
#[ignore = "a benchmark: prints BENCHMARKS.md's keep-alive table"]
fn keep_alive_and_new_connection_clients_during_rolling_updates_and_bare_reloads(
) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    shop_repo(work.path(), &[])?;
    let setup = Setup::new("keepalive").host("ka-1", &[("role", "web"), ("address", "127.0.0.23")]);
    let tower = Launcher::start(setup)?;
    let _leftovers = Leftovers(vec![tower.root("ka-1")]);
    // The shop without database, cache or migrations: the rollout alone.
    let file = work.path().join("ka.yml");
    let write = |rev: &str| -> anyhow::Result<()> {
        let text = std::fs::read_to_string(work.path().join(format!("environment-{rev}.yml")))?;
        let text = &text[..text.find("databases:").context("databases")?];
        std::fs::write(
            &file,
            text.replace("ports: 27100-27199", "ports: 27500-27599"),
        )?;
        Ok(())
    };
    let deploy = || {
        tower
            .cli(&["deploy", &file.display().to_string()])
            .and_then(stdout_ok)
    };
    write("v1")?;
    deploy()?;
    let r = record(&tower, "shop", "prod")?;
    let port = r.hosts["ka-1"].proxy_port.context("a proxy port")?;
    let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 23), port));
    println!("| during | nginx reloads | took | keep-alive: served | connections | closed unanswered | other failures | new connection: served | failed |");
    println!("|---|---|---|---|---|---|---|---|---|");

    let (keep, new, began) = (
        KeepAliveLoop::start(addr, LONG),
        LoadLoop::start(addr, LONG),
        Instant::now(),
    );
    for i in 0..DEPLOYS {
        write(if i % 2 == 0 { "v2" } else { "v1" })?;
        deploy()?;
    }
    let took = began.elapsed();
    let (keep, new) = (keep.stop(), new.stop());
    row(
        &format!("{DEPLOYS} rolling updates (2 replicas)"),
        DEPLOYS,
        took,
        &keep,
        &new,
    );

    // The reference: the same clients, as many bare graceful reloads,
    // spaced like the deploys' (one per deploy's duration).
    let prefix = tower.root("ka-1").join("srv/services/auto-proxy");
    let p = prefix.display();
    let every = took / DEPLOYS as u32;
    let (keep, new, began) = (
        KeepAliveLoop::start(addr, LONG),
        LoadLoop::start(addr, LONG),
        Instant::now(),
    );
    for _ in 0..DEPLOYS {
        let out = Command::new("nginx")
            .args(["-p", &format!("{p}/"), "-c", &format!("{p}/nginx.conf")])
            .args(["-e", &format!("{p}/logs/error.log"), "-s", "reload"])
            .output()?;
        anyhow::ensure!(out.status.success(), "nginx -s reload: {out:?}");
        // Pacing, not waiting for a state: the reference's reload rate.
        std::thread::sleep(every);
    }
    let took = began.elapsed();
    let (keep, new) = (keep.stop(), new.stop());
    row(
        &format!("{DEPLOYS} bare `nginx -s reload`"),
        DEPLOYS,
        took,
        &keep,
        &new,
    );
    eprintln!("keep-alive closes: {:?}", keep.closed_unanswered);
    Ok(())
}
