//! Why a command failed, as a script tells it: one exit code per cause
//! (64 usage, 69 unavailable, 75 temporary, 77 forbidden, 79 not found,
//! 80 conflict), the same code and word in `--json`'s error object; a
//! tower that is down said within a second, naming where its address came
//! from; the connection options before or after the subcommand.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use vigie_majordomo::keys::{write_new, KeyPair};
use vigie_majordomo::operator::OperatorConfig;
use vigie_tests::{vigie_bin, Launcher, Setup};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `--json` error object printed on stdout: (code, kind).
fn json_error(o: &Output) -> anyhow::Result<(i64, String)> {
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| anyhow::anyhow!("not one JSON object: {line:?}: {e}"))?;
    let code = v["error"]["code"].as_i64().unwrap_or(-1);
    let kind = v["error"]["kind"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    Ok((code, kind))
}

/// An operator's CLI with no config file anywhere, a fresh key, and the
/// address of a port nothing listens on.
struct Offline {
    dir: tempfile::TempDir,
    tower: String,
    tower_key: String,
    identity: PathBuf,
}

impl Offline {
    fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        // Bound then closed: the port refuses connections.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let identity = dir.path().join("op.key");
        write_new(&identity)?;
        Ok(Self {
            tower: format!("tcp://127.0.0.1:{port}"),
            tower_key: KeyPair::generate().public_z85(),
            identity,
            dir,
        })
    }

    fn id(&self) -> &str {
        self.identity.to_str().unwrap_or_default()
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<(Output, Duration)> {
        let started = Instant::now();
        let out = Command::new(vigie_bin())
            .args(args)
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .env_remove("VIGIE_CONFIG")
            .output()?;
        Ok((out, started.elapsed()))
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

#[test]
fn a_tower_that_is_down_is_said_within_a_second_naming_tower() -> anyhow::Result<()> {
    let o = Offline::new()?;
    let conn = [
        "--tower",
        &o.tower,
        "--tower-key",
        &o.tower_key,
        "--identity",
        o.id(),
    ];
    // A change waits three times as long as a read: refused, both are quick.
    let change = o.dir.path().join("c.yml");
    std::fs::write(&change, "title: t\nsteps:\n  - run: \"true\"\n")?;
    let submit = ["submit", path(&change), "--target", "*"];
    for verb in [&["hosts"][..], &submit[..]] {
        let (out, took) = o.run(&[verb, &conn[..]].concat())?;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(69), "{verb:?}: {err}");
        assert!(took < Duration::from_secs(1), "{verb:?} took {took:?}");
        assert!(err.contains(&o.tower) && err.contains("--tower"), "{err}");
        assert!(!err.contains("config"), "no config file was used: {err}");
    }
    let (out, _) = o.run(&[&["servers", "list", "--json"][..], &conn[..]].concat())?;
    assert_eq!(out.status.code(), Some(69));
    assert_eq!(json_error(&out)?, (69, "unavailable".to_owned()));

    // A config file gives the key and identity, --tower the address: the
    // message blames --tower, not the file.
    let file = o.dir.path().join("xdg/vigie/config.yml");
    std::fs::create_dir_all(o.dir.path().join("xdg/vigie"))?;
    OperatorConfig {
        tower: "tcp://192.0.2.1:7110".into(),
        tower_key: o.tower_key.clone(),
        identity: o.identity.clone(),
    }
    .write(&file)?;
    let (out, took) = o.run(&["hosts", "--tower", &o.tower])?;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(69), "{err}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(err.contains("--tower"), "{err}");
    assert!(
        !err.contains(path(&file)),
        "the file gave no address: {err}"
    );
    Ok(())
}

#[test]
fn connection_options_go_before_or_after_the_subcommand() -> anyhow::Result<()> {
    let o = Offline::new()?;
    let key = o.tower_key.as_str();
    let before = [
        "--tower",
        &o.tower,
        "--tower-key",
        key,
        "--identity",
        o.id(),
        "servers",
        "list",
    ];
    let after = [
        "servers",
        "list",
        "--tower",
        &o.tower,
        "--tower-key",
        key,
        "--identity",
        o.id(),
    ];
    let mixed = [
        "--tower",
        &o.tower,
        "servers",
        "--tower-key",
        key,
        "list",
        "--identity",
        o.id(),
    ];
    for args in [&before[..], &after[..], &mixed[..]] {
        let (out, _) = o.run(args)?;
        // Accepted: the tower was tried (and is down), not a usage error.
        assert_eq!(out.status.code(), Some(69), "{args:?}: {}", stderr(&out));
    }
    // --config before the subcommand: the file is named as the address's source.
    let file = o.dir.path().join("ops.yml");
    OperatorConfig {
        tower: o.tower.clone(),
        tower_key: o.tower_key.clone(),
        identity: o.identity.clone(),
    }
    .write(&file)?;
    let (out, took) = o.run(&["--config", path(&file), "hosts"])?;
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(stderr(&out).contains(path(&file)), "{}", stderr(&out));
    assert!(took < Duration::from_secs(1), "{took:?}");
    // Before a command that does not talk to the tower: refused, not ignored.
    let (out, _) = o.run(&["--tower", &o.tower, "completions", "bash"])?;
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    Ok(())
}

#[test]
fn a_bad_command_line_is_64_in_json_too() -> anyhow::Result<()> {
    let o = Offline::new()?;
    let (out, _) = o.run(&["hosts", "--no-such-flag", "--json"])?;
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert_eq!(json_error(&out)?, (64, "usage".to_owned()));
    // No tower anywhere: the settings are missing, a usage error.
    let (out, _) = o.run(&["--json", "hosts"])?;
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert_eq!(json_error(&out)?, (64, "usage".to_owned()));
    Ok(())
}

#[test]
fn a_tower_that_never_answers_is_a_temporary_failure() -> anyhow::Result<()> {
    let o = Offline::new()?;
    // Connections are taken by the kernel, and nothing ever speaks.
    let mute = TcpListener::bind("127.0.0.1:0")?;
    let tower = format!("tcp://{}", mute.local_addr()?);
    let args = [
        "hosts",
        "--tower",
        &tower,
        "--tower-key",
        &o.tower_key,
        "--identity",
        o.id(),
        "--timeout",
        "1s",
        "--json",
    ];
    let (out, took) = o.run(&args)?;
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert_eq!(json_error(&out)?, (75, "temporary".to_owned()));
    assert!(took < Duration::from_secs(5), "--timeout 1s: {took:?}");
    Ok(())
}

/// Runs `args` as text and as `--json`: the same code, in the object too.
fn refused_with(t: &Launcher, args: &[&str], code: i32, kind: &str) -> anyhow::Result<()> {
    let out = t.cli(args)?;
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
    let out = t.cli(&[args, &["--json"][..]].concat())?;
    assert_eq!(out.status.code(), Some(code), "{args:?} --json");
    assert_eq!(json_error(&out)?, (i64::from(code), kind.to_owned()));
    Ok(())
}

#[test]
fn each_refusal_exits_with_its_own_code() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("codes").host("web-1", &[]))?;
    refused_with(&t, &["cancel", "c-nope"], 79, "not_found")?;

    let bob = t.dir.path().join("bob.key");
    let pair = write_new(&bob)?;
    let add = |key: &str| {
        t.cli(&[
            "operators",
            "add",
            "bob",
            "--key",
            key,
            "--grant",
            "hosts.read",
        ])
    };
    let added = add(&pair.public_z85())?;
    assert!(added.status.success(), "{}", stderr(&added));
    // bob exists: adding him again (with a fresh key) is a conflict.
    let again = KeyPair::generate().public_z85();
    refused_with(
        &t,
        &[
            "operators",
            "add",
            "bob",
            "--key",
            &again,
            "--grant",
            "hosts.read",
        ],
        80,
        "conflict",
    )?;
    // bob reads hosts, and may not add one.
    refused_with(
        &t,
        &["hosts", "add", "web-9", "--identity", path(&bob)],
        77,
        "forbidden",
    )?;
    // A key the tower does not know is refused at the door: forbidden too.
    let stranger = t.dir.path().join("stranger.key");
    write_new(&stranger)?;
    refused_with(
        &t,
        &["hosts", "--identity", path(&stranger)],
        77,
        "forbidden",
    )?;
    Ok(())
}
