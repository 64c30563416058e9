//! Provisioning one server, start to end: probe its SSH port, see its
//! host keys and decide against the pin (pinning the first seen through
//! the referee), connect trusting only that key, check sudo, put the
//! addresses pools gave it on its interface, copy the
//! binary, install and make the agent's key on the server, start the
//! agent (it knocks, pending), enrol (the last and only step that
//! registers anything; a refused one stops the agent again). A failure
//! before enrolment is recorded as the server's `failed` reason; nothing
//! is registered for it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tracing::{info, warn};
use vigie_client::calls::catalog::{Enrol, HostKeySeen, ProvisionFailed, ServerAddresses};
use vigie_client::{ApiClient, ClientError};
use vigie_wire::catalog::ServerRecord;
use vigie_wire::tower::Caller;

use crate::addresses;
use crate::agent_bin::AgentBinary;
use crate::error::ProvisionError;
use crate::hostkey::{decide, Decision};
use crate::networks::Networks;
use crate::remote::{self, Binary, Layout, KEY_MARK};
use crate::ssh::{host_keys, Ssh, Target};

/// What every job shares.
#[derive(Debug, Clone)]
pub struct Context {
    pub api: String,
    pub orders: String,
    /// Tenants' SSH key pairs (`DATA/provisioner`): a server is reached
    /// with its tenant's key only (`vigie_referee::ssh_keys`).
    pub keys_dir: PathBuf,
    /// The networks servers may be in (the setup's).
    pub networks: Networks,
    /// Where per-server known_hosts files go.
    pub known_hosts_dir: PathBuf,
    pub connect_timeout: Duration,
    /// The binary copied to servers (the running one, stripped once).
    pub agent: AgentBinary,
    pub layout: Layout,
    /// The majordomo as the servers reach it; `None`: not configured.
    pub tower: Option<String>,
    /// The tower's Curve25519 public key (Z85).
    pub tower_key: String,
}

/// The name a provisioner's calls are audited under.
pub const OPERATOR: &str = "provisioner";

/// How long one script or copy may take.
const STEP_LIMIT: Duration = Duration::from_secs(300);

/// A catalog call: the server as the tower has it now.
fn catalog<C>(client: &mut ApiClient, call: C) -> Result<Vec<ServerRecord>, ProvisionError>
where
    C: vigie_client::Call<Answer = Vec<ServerRecord>>,
{
    Ok(client.ask(call)?)
}

/// Provisions `server`; records the outcome with the referee. Returns
/// whether it became a host.
pub fn provision(ctx: &Context, server: &ServerRecord) -> Result<bool, ProvisionError> {
    let name = &server.spec.name;
    let started = Instant::now();
    info!(event = "provision_started", server = %name, tenant = %server.tenant);
    let mut client = ApiClient::direct(
        &ctx.api,
        &ctx.orders,
        Caller::internal(&server.tenant, OPERATOR),
    )?;
    client.set_timeout(Duration::from_secs(10));
    match attempt(ctx, server, &mut client) {
        Ok(()) => {
            info!(
                event = "provision_finished",
                server = %name,
                outcome = "host",
                took_ms = started.elapsed().as_millis() as u64
            );
            Ok(true)
        }
        Err(e) if matches!(&e, ProvisionError::Referee(c) if !matches!(c, ClientError::Refused(_))) =>
        {
            // The referee did not answer: the server stays `provisioning`
            // and is tried again (a retry reuses the key on the server).
            warn!(event = "provision_interrupted", server = %name, error = %e);
            Err(e)
        }
        Err(e) => {
            let reason = e.to_string();
            info!(
                event = "provision_finished",
                server = %name,
                outcome = "failed",
                reason = %reason,
                took_ms = started.elapsed().as_millis() as u64
            );
            catalog(
                &mut client,
                ProvisionFailed {
                    name: name.clone(),
                    reason,
                },
            )?;
            Ok(false)
        }
    }
}

fn step(server: &str, step: &'static str) {
    info!(event = "provision_step", server, step);
}

/// The checks before any connection (the setup's networks, the
/// tenant's key), then the server's host key decided against its pin
/// (the first seen pinned through the referee): an `Ssh` that trusts
/// that key only.
fn connect(
    ctx: &Context,
    server: &ServerRecord,
    client: &mut ApiClient,
) -> Result<Ssh, ProvisionError> {
    let s = &server.spec;
    let name = s.name.as_str();
    let address = s.address.to_canonical();
    if !ctx.networks.allows(address) {
        return Err(ProvisionError::OutsideNetworks {
            address: address.to_string(),
        });
    }
    // The server's tenant's key, never another's: a server accepting one
    // tenant's key is never provisioned by another tenant.
    let identity = vigie_referee::ssh_keys::ensure(&ctx.keys_dir, &server.tenant)
        .map_err(|e| ProvisionError::Config(format!("no SSH key for provisioning: {e}")))?
        .secret;
    let target = Target {
        name: name.to_owned(),
        address: address.to_string(),
        port: s.ssh_port,
        user: s.ssh_user.clone(),
    };
    step(name, "host_key");
    let seen = host_keys(&target, ctx.connect_timeout)?;
    let key = match decide(s.host_key.as_deref(), &seen) {
        Decision::Pinned(k) => k,
        Decision::FirstSeen(k) => {
            // Recorded (audited) before we trust it: from now on it is the pin.
            catalog(
                client,
                HostKeySeen {
                    name: name.to_owned(),
                    key: k.line(),
                },
            )?;
            k
        }
        Decision::Mismatch { expected, seen } => {
            return Err(ProvisionError::HostKeyMismatch { expected, seen })
        }
        Decision::NoKey => return Err(crate::ssh::unreachable(&target, "no host key offered")),
    };
    let known_hosts = ctx.known_hosts_dir.join(name);
    std::fs::create_dir_all(&ctx.known_hosts_dir)
        .map_err(|e| ProvisionError::io(&ctx.known_hosts_dir, e))?;
    std::fs::write(&known_hosts, format!("{name} {}\n", key.line()))
        .map_err(|e| ProvisionError::io(&known_hosts, e))?;
    Ok(Ssh {
        target,
        identity,
        known_hosts,
        connect_timeout: ctx.connect_timeout,
    })
}

/// Sends the agent's binary unless the server has it already (the same
/// SHA-256 in this host's install dir): the path it was copied to, or
/// `None` when the installed one is kept.
fn ship(
    ctx: &Context,
    ssh: &Ssh,
    name: &str,
    home: &str,
    sudo: bool,
) -> Result<Option<String>, ProvisionError> {
    let have = ssh.script(
        "installed",
        &remote::installed(&ctx.layout, name),
        sudo,
        STEP_LIMIT,
    )?;
    if remote::read_installed(&have.stdout) == Some(ctx.agent.sha256.as_str()) {
        info!(event = "agent_binary_kept", server = %name, sha256 = %ctx.agent.sha256);
        return Ok(None);
    }
    // Named for this provisioner and this copy: two towers (or two tests)
    // provisioning one user's servers at once never install or remove each
    // other's upload.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let upload = format!(
        "{}/.vigie-upload-{name}-{}-{nonce}",
        home.trim_end_matches('/'),
        std::process::id()
    );
    let started = Instant::now();
    ssh.copy(&ctx.agent.path, &upload, STEP_LIMIT)?;
    info!(
        event = "agent_binary_copied",
        server = %name,
        bytes = ctx.agent.bytes,
        took_ms = started.elapsed().as_millis() as u64
    );
    Ok(Some(upload))
}

/// Everything up to and including enrolment and the agent's start.
/// What the server says of itself before anything is copied, checked:
/// its answers, and whether commands need sudo.
fn preflight(ssh: &Ssh, user: &str) -> Result<(remote::Preflight, bool), ProvisionError> {
    let pre = ssh.script("preflight", &remote::preflight(), false, STEP_LIMIT)?;
    let pre = remote::read_preflight(&pre.stdout).ok_or_else(|| ProvisionError::Install {
        step: "preflight",
        detail: "the server's shell printed no answer".into(),
    })?;
    let sudo = pre.sudo(user)?;
    if pre.arch != std::env::consts::ARCH {
        return Err(ProvisionError::Install {
            step: "preflight",
            detail: format!(
                "the server is {}, this tower's binary is {}",
                pre.arch,
                std::env::consts::ARCH
            ),
        });
    }
    Ok((pre, sudo))
}

/// The addresses pools gave the server, put on it before anything is
/// installed (`addresses`): a server is set up with the address it
/// will be served at.
fn put_addresses(
    ssh: &Ssh,
    name: &str,
    client: &mut ApiClient,
    sudo: bool,
) -> Result<(), ProvisionError> {
    let given = client.ask(ServerAddresses {
        name: name.to_owned(),
    })?;
    if given.is_empty() {
        return Ok(());
    }
    step(name, "addresses");
    let script = addresses::configure(&ssh.target.address, &given);
    let out = ssh.script("addresses", &script, sudo, STEP_LIMIT)?;
    for c in addresses::read(&out.stdout) {
        info!(
            event = "address_configured",
            server = %name,
            address = %c.address,
            outcome = %c.outcome,
            interface = c.interface.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// The agent's public key, as the install script printed it.
fn agent_key(stdout: &str) -> Result<String, ProvisionError> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(KEY_MARK))
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ProvisionError::Install {
            step: "install",
            detail: "the agent's public key was not printed".into(),
        })
}

fn attempt(
    ctx: &Context,
    server: &ServerRecord,
    client: &mut ApiClient,
) -> Result<(), ProvisionError> {
    let s = &server.spec;
    let name = s.name.as_str();
    let Some(tower) = &ctx.tower else {
        return Err(ProvisionError::Config(
            "the setup does not say how servers reach the tower: set provisioner.tower \
             (e.g. tcp://198.51.100.1:7110)"
                .into(),
        ));
    };
    let ssh = connect(ctx, server, client)?;
    step(name, "preflight");
    let (pre, sudo) = preflight(&ssh, &s.ssh_user)?;
    put_addresses(&ssh, name, client, sudo)?;
    step(name, "copy");
    let upload = ship(ctx, &ssh, name, &pre.home, sudo)?;
    let binary = match &upload {
        Some(u) => Binary::Uploaded(u),
        None => Binary::Kept {
            sha256: &ctx.agent.sha256,
        },
    };
    step(name, "install");
    let out = ssh.script(
        "install",
        &remote::install(
            &ctx.layout,
            &binary,
            name,
            tower,
            &ctx.tower_key,
            server.fresh_key,
        ),
        sudo,
        STEP_LIMIT,
    )?;
    let public = agent_key(&out.stdout)?;
    // The agent starts before the enrolment: it knocks, pending, until
    // enrolled. So a crash, a stop or a lost answer after `Enrol` leaves a
    // host whose agent already runs (it comes online), and a failure to
    // start is the attempt's, with nothing registered.
    step(name, "start");
    ssh.script(
        "start",
        &remote::start(&ctx.layout, name, tower),
        sudo,
        STEP_LIMIT,
    )?;
    step(name, "enrol");
    let enrolled = catalog(
        client,
        Enrol {
            name: name.to_owned(),
            public,
        },
    );
    if let Err(ProvisionError::Referee(ClientError::Refused(_))) = &enrolled {
        // Refused (nothing registered): the agent started for it goes.
        let stop = remote::stop(&ctx.layout, name);
        if let Err(e) = ssh.script("stop", &stop, sudo, STEP_LIMIT) {
            warn!(event = "agent_stop_failed", server = %name, error = %e);
        }
    }
    enrolled.map(drop)
}
