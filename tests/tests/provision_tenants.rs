//! Tenants are walls, for provisioning too: two tenants, `acme` and
//! `bravo`, on one tower, and real OpenSSH servers (see
//! `vigie_tests::sshd`). Each tenant asks the tower for its own SSH key
//! (made at its first use, private in the tower's data dir); acme's
//! servers accept acme's key only.
//!
//! - srv-0 is acme's, provisioned: bravo imports its address (accepted)
//!   but its provisioning is refused, naming neither acme nor its server;
//!   acme's agent keeps running and its host online, and the install dir
//!   says whose agent it holds. Once acme's host is removed and the
//!   machine lets bravo's key in, bravo's install still refuses to touch
//!   a-0's agent dir.
//! - srv-1 accepts acme's key only: bravo's provisioning of it fails,
//!   its key refused (one key per tenant).
//!
//! A server outside the setup's `provisioner.networks` is refused before
//! any connection (its host key never seen).
//!
//! And without SSH: `::ffff:` spellings of an address already imported
//! are duplicates, and `servers.admin` without `hosts.admin` provisions
//! nothing. Skipped, saying so, where namespaces cannot be made.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::Context;
use vigie_client::ApiClient;
use vigie_tests::front::grants;
use vigie_tests::sshd::{unavailable, SshMachines};
use vigie_tests::{Launcher, Setup};
use vigie_wire::tower::{ApiCall, Caller};

const WAIT: Duration = Duration::from_secs(120);
const PORT: u16 = 7121;
const HEAD: &str = "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels\n";

use vigie_tests::stdout_ok as ok;

fn refused(out: Output) -> anyhow::Result<String> {
    anyhow::ensure!(
        !out.status.success(),
        "expected a refusal: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(String::from_utf8(out.stderr)?)
}

/// Adds operator `ops` to `tenant` with `verbs` (through the referee,
/// as the tower); returns its secret key file, for the CLI's
/// `--identity`.
fn operator(
    tower: &Launcher,
    dir: &Path,
    tenant: &str,
    name: &str,
    verbs: &[&str],
) -> anyhow::Result<PathBuf> {
    let file = dir.join(format!("{tenant}-{name}.key"));
    let keys = vigie_majordomo::keys::write_new(&file)?;
    let mut api = ApiClient::direct(
        &tower.endpoint("api"),
        &tower.endpoint("orders"),
        Caller::internal(tenant, "tester"),
    )?;
    api.set_timeout(Duration::from_secs(30));
    api.call(ApiCall::OperatorAdd {
        name: name.into(),
        public: keys.public_z85(),
        grants: grants(verbs)?,
    })?;
    Ok(file)
}

/// `vigie ARGS --identity KEY` on the tower's machine.
fn cli_as(tower: &Launcher, key: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let key = key.display().to_string();
    let mut all = args.to_vec();
    all.extend(["--identity", &key]);
    tower.cli(&all)
}

/// Writes a CSV of `rows` (name, address) and imports it as `key`.
fn import(
    tower: &Launcher,
    key: &Path,
    dir: &Path,
    rows: &[(&str, &str)],
) -> anyhow::Result<Output> {
    let mut csv = HEAD.to_owned();
    for (name, address) in rows {
        csv.push_str(&format!("{name},{address},22,root,netns,1,1,10,role=web\n"));
    }
    let file = dir.join(format!("{}.csv", rows[0].0));
    std::fs::write(&file, csv)?;
    cli_as(
        tower,
        key,
        &["servers", "import", &file.display().to_string()],
    )
}

const VERBS: [&str; 6] = [
    "servers.admin",
    "servers.read",
    "hosts.admin",
    "hosts.read",
    "changes.submit",
    "changes.read",
];

#[test]
fn a_tenant_never_provisions_nor_stops_another_tenants_server() -> anyhow::Result<()> {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: {why}");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let mut net = SshMachines::new(d, 2)?;
    let setup = net.setup("tenants", PORT, 2);
    let tower = Launcher::start_in_netns(setup, &net.tower_ns.clone())?;
    let acme = operator(&tower, d, "acme", "ops", &VERBS)?;
    let bravo = operator(&tower, d, "bravo", "ops", &VERBS)?;

    // Each tenant asks the tower for its key: two keys, their secret
    // halves 0600 in the tower's data dir.
    let a_key = ok(cli_as(&tower, &acme, &["servers", "ssh-key"])?)?;
    let b_key = ok(cli_as(&tower, &bravo, &["servers", "ssh-key"])?)?;
    assert!(a_key.starts_with("ssh-ed25519 "), "{a_key}");
    assert!(b_key.starts_with("ssh-ed25519 "), "{b_key}");
    assert_ne!(a_key, b_key, "one key per tenant");
    for t in ["acme", "bravo"] {
        let secret = tower
            .data_dir()
            .join(format!("provisioner/tenants/{t}/id_ed25519"));
        let mode = std::fs::metadata(&secret)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", secret.display());
    }
    // acme's supplier installs acme's key on its machines.
    for i in 0..2 {
        net.authorize_on(i, &a_key)?;
        net.start_sshd(i)?;
    }
    let (ip0, ip1) = (net.servers[0].ip.clone(), net.servers[1].ip.clone());
    ok(import(&tower, &acme, d, &[("a-0", &ip0)])?)?;
    let init = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/init.yml");
    let init = init.display().to_string();
    ok(cli_as(
        &tower,
        &acme,
        &["servers", "provision", "--init", &init, "a-0"],
    )?)?;
    let events = tower.events();
    let outcome = |name: &str| outcome(&tower, name);
    assert_eq!(outcome("a-0")?.name, "server_enrolled");
    events.wait_n("host_online a-0", 1, WAIT, |e| {
        e.name == "host_online" && e.str("host") == Some("a-0")
    })?;

    // The detached agent's log is its own user's only.
    let log = net.servers[0].dir.join("agent.log");
    let mode = std::fs::metadata(&log)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", log.display());
    let owner = std::fs::read_to_string(net.servers[0].dir.join("owner"))?;
    assert_eq!(
        owner.trim(),
        "a-0",
        "the install dir says whose agent it holds"
    );

    // bravo imports acme's machine (accepted: it cannot know) and a
    // machine that accepts acme's key only.
    ok(import(&tower, &bravo, d, &[("b-0", &ip0), ("b-1", &ip1)])?)?;
    let agent_pid: i32 = std::fs::read_to_string(net.servers[0].dir.join("agent.pid"))?
        .trim()
        .parse()?;
    let taken = refused(cli_as(&tower, &bravo, &["servers", "provision", "b-0"])?)?;
    assert!(taken.contains("another server's"), "{taken}");
    for secret in ["acme", "a-0"] {
        assert!(!taken.contains(secret), "{secret} is not said: {taken}");
    }
    // Its IPv4-mapped spelling is the same machine: a duplicate in bravo.
    let mapped = format!("::ffff:{ip1}");
    let dup = refused(import(&tower, &bravo, d, &[("b-2", &mapped)])?)?;
    assert!(dup.contains("already server \"b-1\"'s"), "{dup}");

    // srv-1 accepts acme's key only: bravo's own key is refused there.
    ok(cli_as(&tower, &bravo, &["servers", "provision", "b-1"])?)?;
    let e = outcome("b-1")?;
    assert_eq!(e.name, "provision_failed", "{e:?}");
    let reason = e.str("reason").unwrap_or_default();
    assert!(reason.contains("refused this tenant's key"), "{reason}");

    // acme's agent was never touched: the same process runs, its host is
    // online, nothing was registered for bravo.
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(agent_pid), None);
    assert!(alive.is_ok(), "acme's agent {agent_pid} still runs");
    let hosts = ok(cli_as(&tower, &acme, &["hosts", "--json"])?)?;
    let a0: serde_json::Value = hosts
        .lines()
        .map(serde_json::from_str::<serde_json::Value>)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|h| h["id"] == "a-0")
        .context("a-0 listed")?;
    assert_eq!(a0["online"], true, "{a0}");
    let theirs = ok(cli_as(&tower, &bravo, &["hosts", "--json"])?)?;
    assert!(theirs.trim().is_empty(), "bravo has no host: {theirs}");

    // acme removes its host (the claim ends) and its supplier lets
    // bravo's key in too: bravo's provisioning now reaches the machine,
    // whose install dir still holds a-0's agent — the install refuses
    // to stop, reuse or overwrite it, and says not whose it is.
    ok(cli_as(
        &tower,
        &acme,
        &["hosts", "remove", "a-0", "--force"],
    )?)?;
    net.authorize_on(0, &format!("{a_key}\n{b_key}"))?;
    ok(cli_as(&tower, &bravo, &["servers", "provision", "b-0"])?)?;
    let e = outcome("b-0")?;
    assert_eq!(e.name, "provision_failed", "{e:?}");
    let reason = e.str("reason").unwrap_or_default();
    assert!(
        reason.contains("holds the agent of another host"),
        "{reason}"
    );
    assert!(!reason.contains("a-0"), "{reason}");
    let owner = std::fs::read_to_string(net.servers[0].dir.join("owner"))?;
    assert_eq!(owner.trim(), "a-0", "not overwritten");
    drop(tower);
    drop(net);
    Ok(())
}

/// The first `server_enrolled` or `provision_failed` of server `name`.
fn outcome(tower: &Launcher, name: &str) -> anyhow::Result<vigie_tests::Event> {
    let n = name.to_owned();
    tower
        .events()
        .wait_n(&format!("{name} enrolled or failed"), 1, WAIT, move |e| {
            (e.name == "server_enrolled" || e.name == "provision_failed")
                && e.str("server") == Some(&n)
        })
}

#[test]
fn an_address_outside_the_setups_networks_is_never_connected_to() -> anyhow::Result<()> {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: {why}");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let mut net = SshMachines::new(d, 1)?;
    // srv-0 (192.0.2.2) runs an SSH server that accepts acme's key, but
    // is not in the networks this tower provisions.
    let setup = net
        .setup("networks", PORT, 1)
        .provision("networks", "[198.18.0.0/15, 2001:db8::/32]");
    let tower = Launcher::start_in_netns(setup, &net.tower_ns.clone())?;
    let acme = operator(&tower, d, "acme", "ops", &VERBS)?;
    let key = ok(cli_as(&tower, &acme, &["servers", "ssh-key"])?)?;
    net.authorize_on(0, &key)?;
    net.start_sshd(0)?;
    let ip = net.servers[0].ip.clone();
    ok(import(&tower, &acme, d, &[("a-0", &ip)])?)?;
    ok(cli_as(&tower, &acme, &["servers", "provision", "a-0"])?)?;
    let e = outcome(&tower, "a-0")?;
    assert_eq!(e.name, "provision_failed", "{e:?}");
    let reason = e.str("reason").unwrap_or_default();
    assert!(reason.contains("outside the networks"), "{reason}");
    // Refused before any connection: its host key was never seen, so
    // never pinned.
    let a0: serde_json::Value = serde_json::from_str(&ok(cli_as(
        &tower,
        &acme,
        &["servers", "show", "a-0", "--json"],
    )?)?)?;
    assert!(a0["host_key"].is_null(), "never connected: {a0}");
    drop(tower);
    drop(net);
    Ok(())
}

#[test]
fn provisioning_needs_hosts_admin_and_a_mapped_address_is_no_new_server() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let tower = Launcher::start(Setup::new("walls"))?;
    let lite = operator(
        &tower,
        d,
        "bravo",
        "importer",
        &["servers.admin", "servers.read", "changes.submit"],
    )?;
    ok(import(&tower, &lite, d, &[("b-0", "192.0.2.50")])?)?;
    let dup = refused(import(&tower, &lite, d, &[("b-1", "::FFFF:192.0.2.50")])?)?;
    assert!(dup.contains("already server \"b-0\"'s"), "{dup}");
    // servers.admin imports; registering a host and accepting its agent's
    // key is hosts.admin's.
    let no = refused(cli_as(&tower, &lite, &["servers", "provision", "b-0"])?)?;
    assert!(no.contains("hosts.admin"), "{no}");
    let listed = ok(cli_as(
        &tower,
        &lite,
        &["servers", "show", "b-0", "--json"],
    )?)?;
    let b0: serde_json::Value = serde_json::from_str(&listed)?;
    assert_eq!(b0["state"], "new", "nothing started: {b0}");
    Ok(())
}
