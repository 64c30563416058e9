//! A real plug against a fake referee (the test binds the sockets): orders
//! replayed or addressed to another host are refused, and reports come
//! numbered without gaps.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vigie_tests::Daemon;
use vigie_wire::tower::{host_topic, Order, Outcome, PlugEvent, Published, Report, ReportKind};

struct FakeReferee {
    _ctx: zmq::Context,
    pull: zmq::Socket,
    publ: zmq::Socket,
    reports: BTreeMap<u64, Report>,
}

impl FakeReferee {
    fn publish(&self, topic: &str, order: &Order) -> anyhow::Result<()> {
        let frame = vigie_wire::encode(&Published::Order(order.clone()))?;
        self.publ.send_multipart([host_topic(topic), frame], 0)?;
        Ok(())
    }

    /// Receives events for up to `wait`; keeps reports by seq.
    fn pump(&mut self, wait: Duration) -> anyhow::Result<()> {
        self.pull.set_rcvtimeo(i32::try_from(wait.as_millis())?)?;
        if let Ok(frame) = self.pull.recv_bytes(0) {
            match vigie_wire::decode(&frame)? {
                PlugEvent::Report(r) => {
                    self.reports.insert(r.seq, r);
                }
                // A new journal asks for its incarnation, as from a referee.
                PlugEvent::Heartbeat {
                    host,
                    incarnation: 0,
                    ..
                } => {
                    let give = Published::Incarnation {
                        host: host.clone(),
                        incarnation: 1,
                    };
                    let frame = vigie_wire::encode(&give)?;
                    self.publ.send_multipart([host_topic(&host), frame], 0)?;
                }
                PlugEvent::Heartbeat { .. } | PlugEvent::HostMetrics(_) | PlugEvent::Logs(_) => {}
            }
        }
        Ok(())
    }

    fn finished(&self, change: &str) -> bool {
        self.reports
            .values()
            .any(|r| r.change == change && matches!(r.kind, ReportKind::Finished { .. }))
    }

    /// Publishes `order` until the plug reports it finished. Until the
    /// subscription reaches our PUB socket, orders are lost: resending is
    /// what a referee does too.
    fn run(&mut self, order: &Order) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.finished(&order.change) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} never finished: {:?}",
                order.change,
                self.reports
            );
            if !self.reports.values().any(|r| r.change == order.change) {
                self.publish(&order.host, order)?;
            }
            self.pump(Duration::from_millis(50))?;
        }
        Ok(())
    }
}

fn order(change: &str, host: &str, token: &str) -> Order {
    let yaml = format!("title: t\nsteps:\n  - run: echo {token} >> trace\n");
    Order {
        change: change.into(),
        host: host.into(),
        seq: 1,
        spec: vigie_changes::parse_change("t.yml", &yaml).expect("spec"),
    }
}

#[test]
fn replayed_and_misaddressed_orders_are_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ctx = zmq::Context::new();
    let events = format!("ipc://{}/events.sock", dir.path().display());
    let orders = format!("ipc://{}/orders.sock", dir.path().display());
    let pull = ctx.socket(zmq::PULL)?;
    pull.bind(&events)?;
    let publ = ctx.socket(zmq::PUB)?;
    publ.bind(&orders)?;
    let mut referee = FakeReferee {
        _ctx: ctx,
        pull,
        publ,
        reports: BTreeMap::new(),
    };

    let root = dir.path().join("root");
    std::fs::create_dir_all(&root)?;
    let state = dir.path().join("state");
    let plug = Daemon::spawn(&[
        "plug",
        "--host",
        "web-1",
        "--root",
        root.to_str().expect("utf-8"),
        "--state",
        state.to_str().expect("utf-8"),
        "--events",
        &events,
        "--orders",
        &orders,
    ])?;
    plug.events.wait("plug_started", Duration::from_secs(20))?;

    let first = order("c1", "web-1", "first");
    referee.run(&first)?;
    // Replays of an order already run: refused, not run again.
    for _ in 0..3 {
        referee.publish("web-1", &first)?;
    }
    let replay =
        |e: &vigie_tests::Event| e.name == "order_refused" && e.str("reason") == Some("replay");
    plug.events
        .wait_n("order_refused (replay)", 3, Duration::from_secs(20), replay)?;

    // An order for web-10 sent on web-1's topic: refused by the plug.
    let stray = order("c9", "web-10", "stray");
    referee.publish("web-1", &stray)?;
    let misaddressed = |e: &vigie_tests::Event| {
        e.name == "order_refused" && e.str("reason") == Some("misaddressed")
    };
    plug.events.wait_n(
        "order_refused (misaddressed)",
        1,
        Duration::from_secs(20),
        misaddressed,
    )?;
    // On web-10's own topic web-1 does not even receive it.
    referee.publish("web-10", &stray)?;

    let second = order("c2", "web-1", "second");
    referee.run(&second)?;
    let trace = std::fs::read_to_string(root.join("trace"))?;
    assert_eq!(trace.lines().collect::<Vec<_>>(), ["first", "second"]);

    // Reports: numbered 1..=n without gaps, each change accepted once.
    let seqs: Vec<u64> = referee.reports.keys().copied().collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let accepted = referee
        .reports
        .values()
        .filter(|r| r.kind == ReportKind::Accepted)
        .count();
    assert_eq!(accepted, 2);
    let outcomes: Vec<Outcome> = referee
        .reports
        .values()
        .filter_map(|r| match r.kind {
            ReportKind::Finished { outcome } => Some(outcome),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes, [Outcome::Succeeded, Outcome::Succeeded]);
    assert!(!referee.reports.values().any(|r| r.change == "c9"));
    Ok(())
}
