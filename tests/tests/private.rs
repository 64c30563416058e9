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

/// Every entry under `dir` whose mode lets anyone but its user in: dirs
/// must be 0700 or narrower, files 0600 or narrower (public keys too: they
/// are only read by the tower's user), sockets reachable by their user only.
fn too_open(dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        let mode = meta.permissions().mode() & 0o7777;
        let t = meta.file_type();
        // A socket needs its user's write bit to be connected to; a
        // program the tower ships (the agent binary) its exec bit.
        let allowed = if t.is_dir() || t.is_socket() || (t.is_file() && mode & 0o100 != 0) {
            0o700
        } else {
            0o600
        };
        if mode & !allowed != 0 {
            out.push(format!("{} {mode:o}", path.display()));
        }
        if t.is_dir() {
            too_open(&path, out)?;
        }
    }
    Ok(())
}

/// This process's umask, read without changing it.
fn own_umask() -> anyhow::Result<u32> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .ok_or_else(|| anyhow::anyhow!("no Umask in /proc/self/status"))?;
    Ok(u32::from_str_radix(line.trim(), 8)?)
}

#[test]
fn data_at_rest_is_readable_by_the_towers_user_only() -> anyhow::Result<()> {
    use vigie_wire::tower::{ApiCall, ChangeState};
    let mut tower = Launcher::start(Setup::new("rest").host("web-1", &[]))?;
    let spec = vigie_changes::parse_change(
        "t.yml",
        "title: t\nsteps:\n  - file: /etc/secret.conf\n    content: \"password=hunter2\\n\"\n  - run: mkdir -p var/cache\n",
    )?;
    let c = tower.api()?.changes(ApiCall::Submit {
        spec,
        target: "web-1".into(),
    })?;
    let done = tower.wait_final(&[c[0].id.clone()], std::time::Duration::from_secs(30))?;
    assert_eq!(done[0].state, ChangeState::Succeeded);
    let data = tower.data_dir();
    let mut open = Vec::new();
    assert_eq!(
        std::fs::metadata(&data)?.permissions().mode() & 0o777,
        0o700
    );
    too_open(&data, &mut open)?;
    assert!(open.is_empty(), "readable by others:\n{}", open.join("\n"));
    // Only the tower's own files turned private: the plug's commands run
    // under the umask the tower was started with (the test's).
    let cache = tower.root("web-1").join("var/cache");
    assert_eq!(
        std::fs::metadata(cache)?.permissions().mode() & 0o777,
        0o777 & !own_umask()?
    );

    // A data dir opened by hand is narrowed again at the next start, and
    // said so.
    tower.quit()?;
    for d in [data.clone(), data.join("escalator")] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
    }
    tower.restart()?;
    let tightened: Vec<String> = tower
        .events()
        .snapshot()
        .iter()
        .filter(|e| e.name == "data_dir_tightened")
        .filter_map(|e| e.str("path").map(str::to_owned))
        .collect();
    assert_eq!(
        tightened,
        [
            data.display().to_string(),
            data.join("escalator").display().to_string()
        ]
    );
    let mut open = Vec::new();
    too_open(&data, &mut open)?;
    assert!(open.is_empty(), "readable by others:\n{}", open.join("\n"));
    Ok(())
}
