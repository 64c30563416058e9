//! Bad input gets an error reply, never a crash or a hang; a second
//! instance on the same data dir is refused; SIGTERM stops cleanly.

use std::time::Duration;

use vigie_escalator::FaultKind;
use vigie_tests::{Daemon, Escalator};
use vigie_wire::escalator::{DbRef, Fault, Reply, Request, RequestBody, Response};
use vigie_wire::limits::{MAX_FRAME, MAX_KEY, MAX_VALUE};

/// A raw DEALER that sends arbitrary frames.
struct Raw {
    _ctx: zmq::Context,
    sock: zmq::Socket,
}

impl Raw {
    fn connect(ep: &str) -> anyhow::Result<Self> {
        let ctx = zmq::Context::new();
        let sock = ctx.socket(zmq::DEALER)?;
        sock.set_rcvtimeo(5_000)?;
        sock.set_linger(0)?;
        sock.connect(ep)?;
        Ok(Self { _ctx: ctx, sock })
    }

    fn ask(&self, frame: &[u8]) -> anyhow::Result<Reply> {
        self.sock.send(frame, 0)?;
        let bytes = self.sock.recv_bytes(0)?;
        Ok(vigie_wire::decode(&bytes)?)
    }

    fn fault(&self, frame: &[u8]) -> anyhow::Result<(u64, Fault)> {
        let r = self.ask(frame)?;
        match r.body {
            Err(f) => Ok((r.id, f)),
            Ok(ok) => anyhow::bail!("expected an error reply, got {ok:?}"),
        }
    }
}

fn req(id: u64, body: RequestBody) -> Vec<u8> {
    vigie_wire::encode(&Request { id, body }).expect("encode")
}

#[test]
fn bad_input_gets_error_replies_and_the_server_keeps_serving() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let esc = Escalator::start(dir.path(), &[])?;
    esc.client()?.create("ok")?;
    let raw = Raw::connect(&esc.endpoint)?;
    let db = DbRef::root("ok");

    let (id, f) = raw.fault(b"\x00garbage that is not an envelope")?;
    assert_eq!((id, f.kind), (0, FaultKind::Malformed));

    let good = req(
        5,
        RequestBody::Get {
            db: db.clone(),
            key: b"k".to_vec(),
        },
    );
    let (_, f) = raw.fault(&good[..good.len() - 2])?;
    assert_eq!(f.kind, FaultKind::Malformed, "truncated");

    let mut wrong_version = good.clone();
    wrong_version[3] ^= 0x7f;
    let (_, f) = raw.fault(&wrong_version)?;
    assert_eq!(f.kind, FaultKind::Malformed, "wrong version");

    // A well-formed envelope with a command this server does not know: the
    // reply still carries the request id.
    #[derive(serde::Serialize)]
    enum Future {
        Teleport { to: String },
    }
    #[derive(serde::Serialize)]
    struct FutureRequest {
        id: u64,
        body: Future,
    }
    let unknown = vigie_wire::encode(&FutureRequest {
        id: 77,
        body: Future::Teleport { to: "x".into() },
    })?;
    let (id, f) = raw.fault(&unknown)?;
    assert_eq!((id, f.kind), (77, FaultKind::BadRequest));

    let (id, f) = raw.fault(&req(
        8,
        RequestBody::Get {
            db: DbRef::root("nope"),
            key: vec![],
        },
    ))?;
    assert_eq!((id, f.kind), (8, FaultKind::UnknownDatabase));

    let (_, f) = raw.fault(&req(
        9,
        RequestBody::Create {
            name: "../escape".into(),
            exist_ok: true,
        },
    ))?;
    assert_eq!(f.kind, FaultKind::InvalidName);

    let big_key = vec![b'k'; MAX_KEY + 1];
    let put = RequestBody::Put {
        db: db.clone(),
        key: big_key,
        value: vec![],
        durable: true,
    };
    assert_eq!(
        raw.fault(&req(10, put))?.1.kind,
        FaultKind::TooLarge,
        "oversized key"
    );

    let big_value = vec![b'v'; MAX_VALUE + 1];
    let put = RequestBody::Put {
        db: db.clone(),
        key: b"k".to_vec(),
        value: big_value,
        durable: true,
    };
    assert_eq!(
        raw.fault(&req(11, put))?.1.kind,
        FaultKind::TooLarge,
        "oversized value"
    );

    // A batch with one bad op writes nothing at all.
    let ops = vec![
        vigie_escalator::BatchOp::Put {
            key: b"first".to_vec(),
            value: b"1".to_vec(),
        },
        vigie_escalator::BatchOp::Put {
            key: vec![0; MAX_KEY + 1],
            value: vec![],
        },
    ];
    let batch = RequestBody::Batch {
        db: db.clone(),
        ops,
        durable: true,
    };
    assert_eq!(raw.fault(&req(12, batch))?.1.kind, FaultKind::TooLarge);
    let first = raw.ask(&req(
        13,
        RequestBody::Get {
            db: db.clone(),
            key: b"first".to_vec(),
        },
    ))?;
    assert_eq!(first.body, Ok(Response::Value(None)), "no partial batch");

    // Three frames instead of one: dropped without a reply; the next
    // request on the same socket is answered.
    raw.sock.send_multipart([&b"a"[..], b"b", b"c"], 0)?;
    let pong = raw.ask(&req(14, RequestBody::Ping))?;
    assert_eq!((pong.id, pong.body), (14, Ok(Response::Pong)));

    // A frame over the limit: libzmq cuts that peer off; others carry on.
    let huge = Raw::connect(&esc.endpoint)?;
    huge.sock.set_rcvtimeo(500)?;
    huge.sock.send(vec![0u8; MAX_FRAME + 1024], 0)?;
    assert!(
        huge.sock.recv_bytes(0).is_err(),
        "no reply to an oversized frame"
    );

    let client = esc.client()?;
    client.ping()?;
    assert_eq!(client.connect_db("ok")?.get(b"first")?, None);
    assert!(client.stats()?.errors >= 9);
    assert!(
        esc.daemon.events.count("escalator_stopped") == 0,
        "still running"
    );
    Ok(())
}

#[test]
fn second_instance_on_the_same_data_dir_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let esc = Escalator::start(dir.path(), &[])?;
    esc.client()?.create("x")?.put(b"k", b"v")?;
    let data = esc.data.display().to_string();
    let other_ep = format!("ipc://{}/second.sock", dir.path().display());
    let mut second = Daemon::spawn(&["escalator", "--data", &data, "--bind", &other_ep])?;
    let status = second.wait_exit(Duration::from_secs(20))?;
    assert_eq!(status.code(), Some(1), "refused: {}", second.stderr());
    assert!(
        second.stderr().contains(&data),
        "the message names the data dir: {}",
        second.stderr()
    );
    assert_eq!(second.events.count("escalator_started"), 0);
    // The first one is untouched.
    assert_eq!(
        esc.client()?.connect_db("x")?.get(b"k")?,
        Some(b"v".to_vec())
    );
    Ok(())
}

#[test]
fn bad_endpoint_is_a_config_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().display().to_string();
    let mut d = Daemon::spawn(&["escalator", "--data", &data, "--bind", "bogus://nowhere"])?;
    assert_eq!(
        d.wait_exit(Duration::from_secs(20))?.code(),
        Some(64),
        "{}",
        d.stderr()
    );
    Ok(())
}

#[test]
fn sigterm_stops_cleanly_and_restart_keeps_data_and_handles() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut esc = Escalator::start(dir.path(), &[])?;
    let client = esc.client()?;
    let db = client.create("p")?.prefixed(b"sub/");
    db.put(b"a", b"1")?;
    db.clone().durable(false).put(b"b", b"2")?;
    let status = esc.daemon.terminate()?;
    assert!(
        status.success(),
        "exit status {status:?}: {}",
        esc.daemon.stderr()
    );
    esc.daemon
        .events
        .wait("escalator_stopped", Duration::from_secs(5))?;

    esc.restart()?;
    // Same client, same handle: handles are names, not server-side ids.
    assert_eq!(db.get(b"a")?, Some(b"1".to_vec()));
    assert_eq!(
        db.get(b"b")?,
        Some(b"2".to_vec()),
        "a volatile write survives a clean stop"
    );
    db.put(b"c", b"3")?;
    assert_eq!(
        esc.client()?.connect_db("p")?.get(b"sub/c")?,
        Some(b"3".to_vec())
    );
    Ok(())
}

/// The server reads the frequent requests with its own MessagePack reader;
/// a hostile frame mixed into a pipelined burst — trailing bytes, a
/// database name that is not UTF-8 — still gets the error reply the owned
/// decoder gives, and the good writes around it land.
#[test]
fn hostile_frames_in_a_pipelined_burst_are_refused_alone() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let esc = Escalator::start(dir.path(), &[])?;
    esc.client()?.create("ok")?;
    let raw = Raw::connect(&esc.endpoint)?;
    let put = |id: u64, key: &[u8]| {
        req(
            id,
            RequestBody::Put {
                db: DbRef::root("ok"),
                key: key.to_vec(),
                value: b"v".to_vec(),
                durable: false,
            },
        )
    };
    let mut trailing = put(2, b"t");
    trailing.push(0xc0);
    // "ok" as the name, its bytes turned into invalid UTF-8.
    let mut not_utf8 = put(3, b"u");
    let at = not_utf8
        .windows(2)
        .position(|w| w == b"ok")
        .expect("name in frame");
    not_utf8[at] = 0xff;
    for frame in [put(1, b"a"), trailing, not_utf8, put(4, b"b")] {
        raw.sock.send(&frame, 0)?;
    }
    // A frame that does not decode whole is answered under id 0 when not
    // even its id can be read (trailing bytes spoil that too).
    let (mut done, mut refused) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        let r: Reply = vigie_wire::decode(&raw.sock.recv_bytes(0)?)?;
        match r.body {
            Ok(Response::Done) => done.push(r.id),
            Ok(other) => anyhow::bail!("request {} answered {other:?}", r.id),
            Err(f) => refused.push((r.id, f.kind)),
        }
    }
    done.sort_unstable();
    assert_eq!(done, [1, 4]);
    assert_eq!(refused.len(), 2, "{refused:?}");
    for (id, kind) in refused {
        assert!(
            matches!(
                (id, kind),
                (0, FaultKind::Malformed) | (2 | 3, FaultKind::BadRequest)
            ),
            "{id} {kind:?}"
        );
    }
    let db = esc.client()?.connect_db("ok")?;
    assert_eq!(db.get(b"a")?, Some(b"v".to_vec()));
    assert_eq!(db.get(b"b")?, Some(b"v".to_vec()));
    assert_eq!(db.get(b"t")?, None, "a refused frame writes nothing");
    assert_eq!(db.get(b"u")?, None);
    Ok(())
}
