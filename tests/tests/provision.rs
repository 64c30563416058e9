//! From a supplier's CSV to running hosts, over real SSH: a tower on one
//! machine (network namespace) and five servers on others, each running
//! its own real OpenSSH server (Debian's `sshd`, own host key, own config,
//! the tower's provisioning key authorised for root). All namespaces share
//! one filesystem, so each sshd runs in a private mount namespace where
//! the machine's own directory is bind-mounted over the install path the
//! provisioner is set to: every server installs the agent, makes its key
//! and keeps its state at the same path, seeing only its own files — as
//! on real machines, with the provisioner's real paths logic.
//!
//! Servers: srv-0 has no pinned key (the first seen is pinned and
//! recorded), srv-1 pins its full key, srv-2 its SHA256 fingerprint, srv-3
//! pins a wrong key (refused: failed, nothing registered), srv-4's sshd is
//! not running at first (failed, unreachable) and is provisioned again
//! once it runs. Skipped, saying so, where namespaces cannot be made.

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::Context;
use vigie_tests::netns::{unavailable, Machines};
use vigie_tests::{Launcher, Setup};

const WAIT: Duration = Duration::from_secs(120);
const PORT: u16 = 7120;
/// The tower's address as every server reaches it (on the tower's
/// loopback, routed through each server's link).
const TOWER_IP: &str = "198.51.100.1";
const SERVERS: usize = 5;

/// One simulated server: its namespace, its directory, its sshd.
struct Server {
    name: String,
    ns: String,
    ip: String,
    dir: PathBuf,
    host_key: String,
    sshd: Option<Child>,
}

/// Everything the servers run, stopped on drop (also when the test fails):
/// the agents the provisioner started (by their pid files), then sshd.
struct Servers(Vec<Server>);

impl Drop for Servers {
    fn drop(&mut self) {
        for s in &mut self.0 {
            if let Ok(pid) = std::fs::read_to_string(s.dir.join("agent.pid")) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            if let Some(mut c) = s.sshd.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Starts `s`'s sshd and waits for its readiness notification (sshd's
/// sd_notify `READY=1` on a socket of ours: it listens from then on).
fn start_sshd(s: &mut Server, mount: &Path, authorized: &Path) -> anyhow::Result<()> {
    let config = s.dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port 22\nListenAddress 0.0.0.0\nHostKey {}\nPidFile none\n\
             PermitRootLogin prohibit-password\nAuthorizedKeysFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             UsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\n",
            s.dir.join("ssh_host_ed25519_key").display(),
            authorized.display()
        ),
    )?;
    let notify = s.dir.join("notify.sock");
    let _ = std::fs::remove_file(&notify);
    let sock = UnixDatagram::bind(&notify)?;
    sock.set_read_timeout(Some(WAIT))?;
    let child = Command::new("ip")
        .args(["netns", "exec", &s.ns])
        .args(["unshare", "--mount", "--propagation", "private"])
        .args([
            "sh",
            "-c",
            r#"mount --bind "$1" "$2" && exec /usr/sbin/sshd -D -e -f "$3""#,
            "sh",
        ])
        .arg(&s.dir)
        .arg(mount)
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.dir.join("sshd.log"))?)
        .spawn()?;
    s.sshd = Some(child);
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).with_context(|| {
        format!(
            "{}: sshd not ready: {}",
            s.name,
            std::fs::read_to_string(s.dir.join("sshd.log")).unwrap_or_default()
        )
    })?;
    anyhow::ensure!(
        buf[..n].starts_with(b"READY=1"),
        "sshd said {:?}",
        &buf[..n]
    );
    Ok(())
}

fn ok(out: Output) -> anyhow::Result<String> {
    anyhow::ensure!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

fn fingerprint(pubfile: &Path) -> anyhow::Result<String> {
    let out = run(Command::new("ssh-keygen").arg("-lf").arg(pubfile))?;
    Ok(out
        .split_whitespace()
        .nth(1)
        .context("ssh-keygen -l output")?
        .to_owned())
}

#[test]
fn a_suppliers_servers_become_hosts_over_ssh_and_a_wrong_host_key_is_refused() -> anyhow::Result<()>
{
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: {why}");
        return Ok(());
    }
    for tool in ["/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keyscan"] {
        if !Path::new(tool).exists() {
            eprintln!("SKIPPED: {tool} missing (scripts/deps installs OpenSSH)");
            return Ok(());
        }
    }
    std::fs::create_dir_all("/run/sshd")?; // sshd's privilege separation dir
    let dir = tempfile::tempdir()?;
    let mount = dir.path().join("mnt");
    std::fs::create_dir_all(&mount)?;
    let mut m = Machines::new();
    let tower_ns = m.add("tower")?;
    m.ip_in(
        &tower_ns,
        &["addr", "add", &format!("{TOWER_IP}/32"), "dev", "lo"],
    )?;
    let mut servers = Servers(Vec::new());
    for i in 0..SERVERS {
        let name = format!("srv-{i}");
        let ns = m.add(&format!("s{i}"))?;
        let (t, a) = (4 * i + 1, 4 * i + 2);
        m.link(
            &tower_ns,
            &format!("192.0.2.{t}/30"),
            &ns,
            &format!("192.0.2.{a}/30"),
            &format!("p{i}"),
        )?;
        m.ip_in(
            &ns,
            &["route", "add", "default", "via", &format!("192.0.2.{t}")],
        )?;
        let sdir = dir.path().join(&name);
        std::fs::create_dir_all(&sdir)?;
        let key = sdir.join("ssh_host_ed25519_key");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key))?;
        let host_key = std::fs::read_to_string(sdir.join("ssh_host_ed25519_key.pub"))?
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        servers.0.push(Server {
            name,
            ns,
            ip: format!("192.0.2.{a}"),
            dir: sdir,
            host_key,
            sshd: None,
        });
    }
    let setup = Setup::new("provision")
        .majordomo(&format!("tcp://0.0.0.0:{PORT}"))
        .provision("parallel", "4")
        .provision("tower", &format!("tcp://{TOWER_IP}:{PORT}"))
        .provision("install_dir", &mount.display().to_string())
        .provision("agent_root", &mount.join("root").display().to_string())
        .provision("service", "detached")
        .provision("connect_timeout", "3s");
    let tower = Launcher::start_in_netns(setup, &tower_ns)?;

    // The operator gives the tower's provisioning key to the supplier.
    let data = tower.data_dir().display().to_string();
    let ssh_key = ok(tower.cli(&["servers", "ssh-key", "--data-dir", &data])?)?;
    assert!(ssh_key.starts_with("ssh-ed25519 "), "{ssh_key}");
    let authorized = dir.path().join("authorized_keys");
    std::fs::write(&authorized, &ssh_key)?;
    for s in servers.0.iter_mut().take(4) {
        start_sshd(s, &mount, &authorized)?;
    }

    let pins = [
        String::new(),
        servers.0[1].host_key.clone(),
        fingerprint(&servers.0[2].dir.join("ssh_host_ed25519_key.pub"))?,
        // srv-3 announced srv-0's key: not the one it offers.
        servers.0[0].host_key.clone(),
        String::new(),
    ];
    let mut csv = String::from(
        "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels,host_key\n",
    );
    for (s, pin) in servers.0.iter().zip(&pins) {
        csv.push_str(&format!(
            "{},{},22,root,netns,1,1,10,role=web;rack=r{},{pin}\n",
            s.name,
            s.ip,
            s.name.trim_start_matches("srv-")
        ));
    }
    let csv_file = dir.path().join("servers.csv");
    std::fs::write(&csv_file, csv)?;
    ok(tower.cli(&["servers", "import", &csv_file.display().to_string()])?)?;
    let init = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/init.yml");
    let init = init.display().to_string();
    let names: Vec<String> = servers.0.iter().map(|s| s.name.clone()).collect();
    let mut args = vec!["servers", "provision", "--init", &init];
    args.extend(names.iter().map(String::as_str));
    let asked = ok(tower.cli(&args)?)?;
    assert!(asked.contains("5 server(s) to provision"), "{asked}");

    // Asking again while they are provisioning is refused, whole.
    let again = tower.cli(&["servers", "provision", "srv-0"])?;
    assert!(!again.status.success(), "already provisioning");

    let events = tower.events();
    let outcome = |name: &str| -> anyhow::Result<vigie_tests::Event> {
        let n = name.to_owned();
        events.wait_n(&format!("{name} enrolled or failed"), 1, WAIT, move |e| {
            (e.name == "server_enrolled" || e.name == "provision_failed")
                && e.str("server") == Some(&n)
        })
    };
    for s in &servers.0[..3] {
        let e = outcome(&s.name)?;
        assert_eq!(e.name, "server_enrolled", "{}: {e:?}", s.name);
    }
    let mismatch = outcome("srv-3")?;
    assert_eq!(mismatch.name, "provision_failed");
    let reason = mismatch.str("reason").unwrap_or_default().to_owned();
    let expected = fingerprint(&servers.0[0].dir.join("ssh_host_ed25519_key.pub"))?;
    let seen = fingerprint(&servers.0[3].dir.join("ssh_host_ed25519_key.pub"))?;
    assert!(
        reason.contains("host key mismatch")
            && reason.contains(&expected)
            && reason.contains(&seen),
        "the reason names both fingerprints: {reason}"
    );
    let unreachable = outcome("srv-4")?;
    assert_eq!(unreachable.name, "provision_failed");
    assert!(
        unreachable
            .str("reason")
            .is_some_and(|r| r.contains("unreachable")),
        "{unreachable:?}"
    );

    // The three are hosts, online through their agents, and their first
    // change — the init — succeeded in their own roots.
    let finished = |name: &str| -> anyhow::Result<()> {
        let n = name.to_owned();
        let e = events.wait_n(
            &format!("init change of {name} finished"),
            1,
            WAIT,
            move |e| e.name == "change_finished" && e.str("host") == Some(&n),
        )?;
        assert_eq!(e.str("state"), Some("succeeded"), "{name}: {e:?}");
        Ok(())
    };
    for s in &servers.0[..3] {
        let n = s.name.clone();
        events.wait_n(&format!("host_online {n}"), 1, WAIT, |e| {
            e.name == "host_online" && e.str("host") == Some(&n)
        })?;
        finished(&s.name)?;
        assert!(s.dir.join("root/etc/vigie-managed").is_file(), "{}", s.name);
        assert!(
            s.dir.join("agent.key.pub").is_file(),
            "the key was made there"
        );
    }
    let show = |name: &str| -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_str(&ok(
            tower.cli(&["servers", "show", name, "--json"])?
        )?)?)
    };
    // The key first seen on srv-0 is now its pin, audited.
    let srv0 = show("srv-0")?;
    assert_eq!(srv0["state"], "Host");
    assert_eq!(srv0["spec"]["host_key"], servers.0[0].host_key.as_str());
    let audit = ok(tower.cli(&["audit", "--host", "srv-0", "--json"])?)?;
    assert!(audit.contains("host_key_pinned"), "{audit}");
    assert!(audit.contains("server_enrolled"), "{audit}");
    // Hosts carry the catalog's labels; nothing was registered for srv-3.
    let hosts = ok(tower.cli(&["hosts", "--json"])?)?;
    let hosts: Vec<serde_json::Value> = hosts
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let ids: Vec<&str> = hosts.iter().filter_map(|h| h["id"].as_str()).collect();
    assert!(ids.contains(&"srv-0") && !ids.contains(&"srv-3") && !ids.contains(&"srv-4"));
    let h0 = hosts.iter().find(|h| h["id"] == "srv-0").context("srv-0")?;
    assert_eq!(h0["labels"]["rack"], "r0", "{h0}");
    let keys = match tower.api()?.call(vigie_wire::tower::ApiCall::Keys)? {
        vigie_wire::tower::ApiAnswer::Keys(k) => k,
        other => anyhow::bail!("{other:?}"),
    };
    assert!(keys.iter().all(|k| k.host != "srv-3" && k.host != "srv-4"));
    assert_eq!(
        keys.iter().filter(|k| k.host.starts_with("srv-")).count(),
        3
    );
    let srv3 = show("srv-3")?;
    assert!(
        srv3["state"]["Failed"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("mismatch")),
        "{srv3}"
    );
    let listed = ok(tower.cli(&["servers", "list"])?)?;
    assert!(listed.contains("failed (host key mismatch"), "{listed}");

    // srv-4 runs its sshd now: provisioned again (the init kept), it works.
    start_sshd(&mut servers.0[4], &mount, &authorized)?;
    ok(tower.cli(&["servers", "provision", "srv-4"])?)?;
    let e = outcome("srv-4")?;
    let e = if e.name == "provision_failed" {
        // The first failure's event; wait for the second outcome.
        events.wait_n("srv-4 enrolled", 1, WAIT, |e| {
            e.name == "server_enrolled" && e.str("server") == Some("srv-4")
        })?
    } else {
        e
    };
    assert_eq!(e.name, "server_enrolled");
    finished("srv-4")?;
    assert!(servers.0[4].dir.join("root/etc/vigie-managed").is_file());
    let mut states = BTreeMap::new();
    for s in &servers.0 {
        let v = show(&s.name)?;
        states.insert(s.name.clone(), v["state"].to_string());
    }
    assert_eq!(states["srv-4"], "\"Host\"", "{states:?}");
    drop(servers);
    drop(tower);
    Ok(())
}
