//! Fair shares of the tower (issue 18): past its shares a tenant's import
//! is refused whole and its allocation refused, naming the setting, and
//! an allocation is audited as ranges; a knock flood from many source
//! addresses leaves room for a genuine new agent's knock; and, run by
//! hand (`#[ignore]`, see BENCHMARKS.md), a benchmark showing that one
//! tenant at its limits leaves another tenant's `vigie logs` and
//! `vigie submit --wait` within 2× of their latency on an idle tower.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigie_majordomo::keys::KeyPair;
use vigie_tests::front::{add_operator, admin, grants, tower_key};
use vigie_tests::{Launcher, Setup};
use vigie_wire::catalog::{CatalogCall, Owner, PoolSpec};
use vigie_wire::front::{FrontIn, FrontOut};
use vigie_wire::observe::{LogSource, LogsQuery};
use vigie_wire::tower::{ApiAnswer, ApiCall, PlugEvent};

const WAIT: Duration = Duration::from_secs(30);

/// A stranger knocking from `source` (an address of 127.0.0.0/8) with a
/// key of its own.
fn knock(
    ctx: &zmq::Context,
    t: &Launcher,
    port: u16,
    source: &str,
) -> anyhow::Result<(zmq::Socket, String)> {
    let k = KeyPair::generate();
    let d = ctx.socket(zmq::DEALER)?;
    d.set_curve_serverkey(&tower_key(t)?)?;
    d.set_curve_publickey(&k.public)?;
    d.set_curve_secretkey(&k.secret)?;
    d.set_linger(0)?;
    d.connect(&format!("tcp://{source}:0;127.0.0.1:{port}"))?;
    Ok((d, k.public_z85()))
}

fn pending_keys(t: &Launcher) -> anyhow::Result<Vec<String>> {
    let ApiAnswer::Keys(keys) = admin(t, None)?.call(ApiCall::Keys)? else {
        anyhow::bail!("keys answer")
    };
    Ok(keys.into_iter().map(|k| k.public).collect())
}

/// Issue 18, attack 4: 200 source addresses knocking used the whole
/// budget of the minute, and a genuine new agent's knock was dropped.
#[test]
fn a_knock_flood_from_many_sources_leaves_room_for_a_genuine_new_agent() -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let t = Launcher::start(Setup::new("knocks").majordomo(&format!("tcp://127.0.0.1:{port}")))?;
    let ctx = zmq::Context::new();
    let mut flood = Vec::new();
    // Two keys from each of 200 addresses.
    for _ in 0..2 {
        for i in 0..200u32 {
            flood.push(knock(&ctx, &t, port, &format!("127.0.1.{}", i + 1))?);
        }
    }
    t.events()
        .wait_n("keys_pending (some dropped)", 1, WAIT, |e| {
            e.name == "keys_pending" && e.u64("dropped").is_some_and(|d| d > 0)
        })?;
    // The whole budget of the minute is used: a genuine agent knocks
    // from an address of its own.
    let (_genuine, public) = knock(&ctx, &t, port, "127.0.2.1")?;
    // Each batch the door sends after it is a chance for it to be there.
    let batches = t.events().count("keys_pending");
    let mut seen = Vec::new();
    for n in 1..=10 {
        t.events()
            .wait_n("keys_pending", batches + n, WAIT, |e| {
                e.name == "keys_pending"
            })
            .map_err(|e| anyhow::anyhow!("the genuine knock was not recorded: {e}"))?;
        seen = pending_keys(&t)?;
        if seen.contains(&public) {
            break;
        }
    }
    assert!(
        seen.contains(&public),
        "the genuine knock was not recorded ({} pending keys)",
        seen.len()
    );
    let flood_keys: std::collections::BTreeSet<&String> = flood.iter().map(|(_, p)| p).collect();
    let recorded = seen.iter().filter(|p| flood_keys.contains(p)).count();
    assert!(
        recorded <= 1_100,
        "the flood took {recorded} slots: the budget and its overdraft at most"
    );
    drop(flood);
    Ok(())
}

fn text(o: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The tower's audit records of `action`.
fn audited(t: &Launcher, action: &str) -> anyhow::Result<Vec<vigie_wire::tower::AuditRecord>> {
    let ApiAnswer::Audit(records) = admin(t, None)?.call(ApiCall::Audit {
        host: None,
        change: None,
        limit: 1000,
        filter: Default::default(),
    })?
    else {
        anyhow::bail!("audit answer")
    };
    Ok(records.into_iter().filter(|r| r.action == action).collect())
}

/// Issue 18, attack 4, as an operator meets it: one tenant imported
/// 220,000 servers and allocated 4,096 addresses a call (each audit
/// record ~62 kB). Past its share an import is refused whole and an
/// allocation refused, naming the setting; an allocation is audited as
/// ranges.
#[test]
fn past_its_shares_a_tenant_is_refused_whole_naming_the_setting() -> anyhow::Result<()> {
    let t = Launcher::start(
        Setup::new("quota")
            .limit("servers_per_tenant", 3)
            .limit("allocate_per_call", 256),
    )?;
    let csv = |name: &str, rows: &[&str]| -> anyhow::Result<String> {
        let p = t.dir.path().join(name);
        let mut body =
            String::from("name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels\n");
        for (i, r) in rows.iter().enumerate() {
            body.push_str(&format!("{r},10.7.0.{},22,debian,ovh,2,4,40,\n", i + 1));
        }
        std::fs::write(&p, body)?;
        Ok(p.display().to_string())
    };
    let o = t.cli(&["servers", "import", &csv("one.csv", &["s-1", "s-2"])?])?;
    assert!(o.status.success(), "{}", text(&o));
    let o = t.cli(&["servers", "import", &csv("two.csv", &["s-3", "s-4"])?])?;
    assert!(!o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("would bring tenant default to 4 servers, more than 3")
            && out.contains("limits.servers_per_tenant")
            && out.contains("nothing imported"),
        "{out}"
    );
    let o = t.cli(&["servers", "list", "--json"])?;
    assert_eq!(
        String::from_utf8(o.stdout)?.lines().count(),
        2,
        "s-3 was not stored"
    );

    let o = t.cli(&["ips", "pool", "add", "v6", "2001:db8::/64"])?;
    assert!(o.status.success(), "{}", text(&o));
    let o = t.cli(&[
        "ips",
        "allocate",
        "v6",
        "--for",
        "server:s-1",
        "--count",
        "4096",
    ])?;
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("1 to 256 per call (limits.allocate_per_call)"),
        "{}",
        text(&o)
    );
    let o = t.cli(&[
        "ips",
        "allocate",
        "v6",
        "--for",
        "server:s-1",
        "--count",
        "256",
    ])?;
    assert!(o.status.success(), "{}", text(&o));
    let allocated = audited(&t, "ips_allocated")?;
    assert_eq!(allocated.len(), 1, "the refused call was not audited");
    assert!(
        allocated[0]
            .summary
            .contains("256 address(es): 2001:db8::-2001:db8::ff"),
        "{}",
        allocated[0].summary
    );
    assert!(allocated[0].summary.len() < 200, "{}", allocated[0].summary);
    Ok(())
}

/// A peer at the front door holding `keys` (an agent's or an operator's).
fn peer(t: &Launcher, keys: &KeyPair) -> anyhow::Result<(zmq::Context, zmq::Socket)> {
    let ctx = zmq::Context::new();
    let d = ctx.socket(zmq::DEALER)?;
    d.set_curve_serverkey(&tower_key(t)?)?;
    d.set_curve_publickey(&keys.public)?;
    d.set_curve_secretkey(&keys.secret)?;
    d.set_linger(0)?;
    d.set_rcvtimeo(200)?;
    d.connect(&t.endpoint("majordomo"))?;
    Ok((ctx, d))
}

/// The load one tenant puts on the tower; stopped when dropped.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Logs calls of the tenant refused for its share.
    refused: Arc<AtomicU64>,
    /// Told of each refusal.
    refusals: std::sync::mpsc::Sender<()>,
    /// Logs calls that waited for the silent host until the timeout.
    expired: Arc<AtomicU64>,
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// An agent of `host` that beats and never answers anything.
fn silent_agent(t: &Launcher, host: &str, keys: &KeyPair, load: &mut Load) -> anyhow::Result<()> {
    let (ctx, d) = peer(t, keys)?;
    let beat = vigie_wire::encode(&FrontIn::Plug(PlugEvent::Heartbeat {
        host: host.into(),
        incarnation: 1,
        labels: Default::default(),
        busy: None,
        refusing: None,
    }))?;
    let stop = load.stop.clone();
    load.threads.push(std::thread::spawn(move || {
        let _ctx = ctx;
        let mut last = Instant::now() - Duration::from_secs(1);
        while !stop.load(Ordering::Relaxed) {
            if last.elapsed() >= Duration::from_millis(500) {
                let _ = d.send(&beat[..], 0);
                last = Instant::now();
            }
            let _ = d.recv_bytes(0);
        }
    }));
    Ok(())
}

fn logs_call(id: u64, host: &str) -> anyhow::Result<Vec<u8>> {
    Ok(vigie_wire::encode(&FrontIn::Call {
        id,
        call: ApiCall::Logs(LogsQuery {
            host: host.into(),
            source: LogSource::Steps { change: None },
            since_ms: None,
            cursor: None,
            max_bytes: 1024,
        }),
        tenant: None,
        watch: false,
        idem: None,
    })?)
}

/// An operator keeping 16 logs calls waiting on `host` at all times: each
/// answer is followed by a new call (after 100 ms when it was refused, as
/// a client retrying would).
fn logs_asker(t: &Launcher, keys: &KeyPair, host: &str, load: &mut Load) -> anyhow::Result<()> {
    let (ctx, d) = peer(t, keys)?;
    let (stop, refused, expired, told) = (
        load.stop.clone(),
        load.refused.clone(),
        load.expired.clone(),
        load.refusals.clone(),
    );
    let host = host.to_owned();
    for id in 0..16 {
        d.send(logs_call(id, &host)?, 0)?;
    }
    load.threads.push(std::thread::spawn(move || {
        let _ctx = ctx;
        let mut id = 16;
        while !stop.load(Ordering::Relaxed) {
            let Ok(bytes) = d.recv_bytes(0) else { continue };
            let Ok(FrontOut::Reply(reply)) = vigie_wire::decode::<FrontOut>(&bytes) else {
                continue;
            };
            match reply.body {
                Err(f) if f.message.contains("did not answer") => {
                    expired.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    refused.fetch_add(1, Ordering::Relaxed);
                    let _ = told.send(());
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            id += 1;
            if let Ok(frame) = logs_call(id, &host) {
                let _ = d.send(frame, 0);
            }
        }
    }));
    Ok(())
}

/// Tenant `acme` at its limits: the servers of its share imported, the
/// addresses of its share allocated, its share of changes queued (on
/// hosts that never take them), and its share of logs calls kept waiting
/// on a host that never answers, by 13 operators.
fn fill_acme(t: &Launcher) -> anyhow::Result<(Load, std::sync::mpsc::Receiver<()>)> {
    let (refusals, told) = std::sync::mpsc::channel();
    let mut load = Load {
        stop: Arc::new(AtomicBool::new(false)),
        threads: Vec::new(),
        refused: Arc::new(AtomicU64::new(0)),
        expired: Arc::new(AtomicU64::new(0)),
        refusals,
    };
    let mut acme = admin(t, Some("acme"))?;
    acme.set_timeout(Duration::from_secs(120));
    fill_catalog(&mut acme)?;
    // A host that never answers, online.
    let agent = KeyPair::generate();
    acme.call(ApiCall::HostAdd {
        host: "a-silent".into(),
        labels: Default::default(),
    })?;
    acme.call(ApiCall::KeyAdd {
        host: "a-silent".into(),
        public: agent.public_z85(),
    })?;
    silent_agent(t, "a-silent", &agent, &mut load)?;
    t.events().wait_n("host_online a-silent", 1, WAIT, |e| {
        e.name == "host_online" && e.str("host") == Some("a-silent")
    })?;
    // Changes: its whole share, queued on hosts that never take them.
    for i in 0..100 {
        acme.call(ApiCall::HostAdd {
            host: format!("a-{i}"),
            labels: Default::default(),
        })?;
    }
    let spec = vigie_tests::front::spec("never")?;
    while acme
        .call(ApiCall::Submit {
            spec: spec.clone(),
            target: "a-*".into(),
        })
        .is_ok()
    {}
    // Logs calls: 13 operators of 16 calls each, past the tenant's 200.
    for i in 0..13 {
        let keys = add_operator(
            t,
            t.dir.path(),
            "acme",
            &format!("reader-{i}"),
            &grants(&["logs.read", "hosts.read"])?,
        )?;
        logs_asker(t, &keys, "a-silent", &mut load)?;
    }
    Ok((load, told))
}

/// The tenant's whole share of servers (one import) and of addresses
/// (a call's worth at a time).
fn fill_catalog(acme: &mut vigie_client::ApiClient) -> anyhow::Result<()> {
    let limits = vigie_wire::limits::Shares::default();
    let mut csv =
        String::from("name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels\n");
    for i in 0..limits.servers_per_tenant {
        csv.push_str(&format!(
            "s-{i},10.{}.{}.{},22,debian,ovh,2,4,40,role=web\n",
            i / 62_500,
            (i / 250) % 250,
            i % 250 + 1
        ));
    }
    let rows = vigie_catalog::servers::parse_servers("s.csv", csv.as_bytes(), |_| {})?;
    acme.call(ApiCall::Catalog(CatalogCall::Import {
        file: "s.csv".into(),
        digest: "0".repeat(64),
        rows,
        dry_run: false,
    }))?;
    acme.call(ApiCall::Catalog(CatalogCall::PoolAdd {
        spec: PoolSpec {
            name: "v6".into(),
            cidr: "2001:db8::/64".parse()?,
            gateway: None,
            reserved: vec![],
        },
    }))?;
    for _ in 0..limits.allocated_per_tenant / u64::from(limits.allocate_per_call) {
        acme.call(ApiCall::Catalog(CatalogCall::Allocate {
            pool: "v6".into(),
            owner: Owner::Server("s-0".into()),
            count: limits.allocate_per_call,
        }))?;
    }
    Ok(())
}

struct Latency {
    logs: Vec<Duration>,
    submit: Vec<Duration>,
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

/// `vigie logs web-1` and `vigie submit --wait` (one step) on web-1, as the
/// admin of tenant `default`, `rounds` times each and for `at_least`.
fn measure(t: &Launcher, rounds: usize, at_least: Duration) -> anyhow::Result<Latency> {
    let file = t.dir.path().join("one.yml");
    std::fs::write(&file, "title: one\nsteps:\n  - run: \"true\"\n")?;
    let file = file.to_str().unwrap_or_default().to_owned();
    let mut l = Latency {
        logs: Vec::new(),
        submit: Vec::new(),
    };
    let started = Instant::now();
    while l.logs.len() < rounds || started.elapsed() < at_least {
        let at = Instant::now();
        let out = t.cli(&["logs", "web-1"])?;
        l.logs.push(at.elapsed());
        anyhow::ensure!(
            out.status.success(),
            "vigie logs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let at = Instant::now();
        let out = t.cli(&["submit", &file, "--target", "web-1", "--wait"])?;
        l.submit.push(at.elapsed());
        anyhow::ensure!(
            out.status.success(),
            "vigie submit --wait: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(l)
}

/// Issue 18: one tenant at its limits leaves another tenant's `vigie
/// logs` and `vigie submit --wait` within 2× of an idle tower. Run with
/// `cargo test --release -p vigie-tests --test shares -- --ignored
/// --nocapture` (after `cargo build --release -p vigie --bin vigie`).
#[test]
#[ignore = "a benchmark (about a minute): see BENCHMARKS.md"]
fn one_tenant_at_its_limits_leaves_another_tenant_its_latency() -> anyhow::Result<()> {
    const ROUNDS: usize = 30;
    const RUN: Duration = Duration::from_secs(15);
    let t = Launcher::start(
        Setup::new("shares")
            .host("web-1", &[])
            .limit("changes_queued_per_tenant", 2_000),
    )?;
    t.events().wait_n("host_online web-1", 1, WAIT, |e| {
        e.name == "host_online" && e.str("host") == Some("web-1")
    })?;
    measure(&t, 2, Duration::ZERO)?;
    // As long as the loaded run: the same rounds, the same wear.
    let idle = measure(&t, ROUNDS, RUN)?;
    let started = Instant::now();
    let (load, refusals) = fill_acme(&t)?;
    let filled = started.elapsed();
    // Its logs share is taken: a refusal came back.
    refusals
        .recv_timeout(WAIT)
        .map_err(|_| anyhow::anyhow!("acme never reached its logs share"))?;
    // Longer than a logs call's timeout: acme's waiting calls expire and
    // are asked again while it is measured.
    let loaded = measure(&t, ROUNDS, RUN)?;
    let report = |what: &str, idle: &[Duration], loaded: &[Duration]| {
        let (i, l) = (median(idle), median(loaded));
        println!(
            "{what}: idle median {:.1} ms (max {:.1}), acme at its limits median {:.1} ms \
             (max {:.1}): {:.2}x",
            i.as_secs_f64() * 1e3,
            idle.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1e3),
            l.as_secs_f64() * 1e3,
            loaded.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1e3),
            l.as_secs_f64() / i.as_secs_f64()
        );
        (i, l)
    };
    println!(
        "acme filled in {:.1} s; its logs calls: {} refused for its share, {} timed out",
        filled.as_secs_f64(),
        load.refused.load(Ordering::Relaxed),
        load.expired.load(Ordering::Relaxed)
    );
    println!(
        "rounds: {} idle, {} with acme at its limits",
        idle.logs.len(),
        loaded.logs.len()
    );
    let (li, ll) = report("vigie logs web-1", &idle.logs, &loaded.logs);
    let (si, sl) = report("vigie submit --wait", &idle.submit, &loaded.submit);
    drop(load);
    assert!(ll <= 2 * li, "logs: {ll:?} against {li:?} idle");
    assert!(sl <= 2 * si, "submit --wait: {sl:?} against {si:?} idle");
    Ok(())
}
