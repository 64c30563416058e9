//! The tower is private to its user: the internal sockets are socket files
//! in the 0700 data dir that another local user cannot connect to, and
//! what the tower keeps at rest is readable by its user only.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use vigie_tests::{Launcher, Setup};

/// The internal endpoints of a tower.
const INTERNAL: [&str; 5] = ["escalator", "api", "events", "orders", "lifecycle"];
/// The unprivileged user the hostile process runs as (`nobody`).
const NOBODY: u32 = 65534;
/// Tells `hostile_connect_helper` which endpoints to try.
const TARGETS_ENV: &str = "VIGIE_TEST_HOSTILE_TARGETS";

/// Connects to an endpoint with a plain socket: the outcome's error kind,
/// or `connected`.
fn connect(ep: &str) -> String {
    let r = if let Some(path) = ep.strip_prefix("ipc://") {
        std::os::unix::net::UnixStream::connect(path).map(drop)
    } else if let Some(addr) = ep.strip_prefix("tcp://") {
        std::net::TcpStream::connect(addr).map(drop)
    } else {
        return "unsupported".into();
    };
    match r {
        Ok(()) => "connected".into(),
        Err(e) => format!("{:?}", e.kind()),
    }
}

/// Not a test of its own: what `another_local_user_cannot_reach_...` runs
/// as `nobody`, by running this test binary again. Without its variable
/// it does nothing.
#[test]
fn hostile_connect_helper() {
    let Ok(targets) = std::env::var(TARGETS_ENV) else {
        return;
    };
    for ep in targets.lines() {
        println!("HOSTILE {ep} {}", connect(ep));
    }
}

#[test]
fn another_local_user_cannot_reach_the_internal_sockets() -> anyhow::Result<()> {
    anyhow::ensure!(
        nix::unistd::geteuid().is_root(),
        "this test runs as root (it starts a process as another user)"
    );
    let tower = Launcher::start(Setup::new("hostile").host("web-1", &[]))?;
    // The test's temp dir is 0700 itself: open it, so that only what the
    // tower does for itself stands between the other user and its sockets.
    std::fs::set_permissions(tower.dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let eps: Vec<String> = INTERNAL.iter().map(|n| tower.endpoint(n)).collect();
    for ep in &eps {
        // The tower's own user reaches every one: the paths are right.
        assert_eq!(connect(ep), "connected", "{ep}");
    }
    let out = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "hostile_connect_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(TARGETS_ENV, eps.join("\n"))
        .uid(NOBODY)
        .gid(NOBODY)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for ep in &eps {
        // Not even a connection: no subscribing to orders, no calls on the
        // API as a forged caller, no self-registered host.
        let line = format!("HOSTILE {ep} PermissionDenied");
        assert!(stdout.contains(&line), "expected {line:?} in:\n{stdout}");
    }
    // The tower keeps serving its own.
    assert!(tower.cli(&["hosts"])?.status.success());
    Ok(())
}

#[test]
fn a_default_tower_has_its_internal_sockets_in_a_private_run_dir() -> anyhow::Result<()> {
    let tower = Launcher::start(Setup::new("sockets").host("web-1", &[]))?;
    let run = tower.data_dir().join("run");
    for dir in [tower.data_dir(), run.clone()] {
        let mode = std::fs::metadata(&dir)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    for n in INTERNAL {
        let path = run.join(format!("{n}.sock"));
        let meta = std::fs::metadata(&path)?;
        assert!(meta.file_type().is_socket(), "{}", path.display());
        assert_eq!(tower.endpoint(n), format!("ipc://{}", path.display()));
    }
    let ready = tower
        .events()
        .wait("tower_ready", std::time::Duration::ZERO)?;
    assert_eq!(ready.str("api"), Some(tower.endpoint("api").as_str()));
    assert!(!Path::new(&run).join("majordomo.sock").exists());
    Ok(())
}
