//! `vigie provisioner`: the provisioner daemon the launcher starts (makes
//! catalog servers hosts over SSH; see `vigie_provisioner`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use vigie_provisioner::{AgentBinary, Context, Layout, Networks, ProvisionerConfig, Service};

use crate::runtime::shutdown_flag;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The referee's API.
    #[arg(long, default_value = super::DEFAULT_API)]
    api: String,
    /// The referee's PUB socket (the API client's other half).
    #[arg(long, default_value = super::DEFAULT_ORDERS)]
    orders: String,
    /// The tower's data dir: each tenant's SSH key pair for provisioning
    /// is in DATA/provisioner (the tower's own tenant's made at first
    /// start, the others' at their first use), the tower's public key
    /// read from DATA/keys/tower.public.
    #[arg(long)]
    data: PathBuf,
    /// A network servers may be in (CIDR; repeat): an address outside
    /// them is refused before any connection. None: any address but
    /// loopback, link-local, multicast and the like.
    #[arg(long = "network")]
    networks: Vec<ipnet::IpNet>,
    /// Servers provisioned at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// The majordomo as the servers reach it (tcp://IP:PORT), written into
    /// each agent's start command.
    #[arg(long)]
    tower: Option<String>,
    /// Where the agent is installed on each server.
    #[arg(long, default_value = "/opt/vigie")]
    install_dir: String,
    /// The agent's host root on each server.
    #[arg(long, default_value = "/")]
    agent_root: String,
    /// How the agent is kept running: auto (systemd where it is PID 1,
    /// else detached), systemd, detached.
    #[arg(long, default_value = "auto")]
    service: Service,
    /// SSH's ConnectTimeout (and the port probe's), in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    connect_timeout_ms: u64,
    /// How often the referee is asked for servers to provision, in ms.
    #[arg(long, default_value_t = 1_000)]
    poll_ms: u64,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    // Without its key the daemon still runs: each server then fails
    // with the reason (each attempt tries to make its tenant's key), and
    // the rest of the tower is not held up.
    if let Err(e) = vigie_provisioner::sshkey::ensure(&a.data) {
        tracing::error!(event = "provisioner_no_key", error = %e);
    }
    let key_file = a.data.join("keys").join("tower.public");
    let tower_key = match std::fs::read_to_string(&key_file) {
        Ok(k) => k.trim().to_owned(),
        Err(e) => {
            super::out::esay!(
                "vigie provisioner: reading the tower's public key {}: {e}",
                key_file.display()
            );
            return Ok(ExitCode::from(crate::runtime::EXIT_CONFIG));
        }
    };
    let exe = std::env::current_exe().context("finding the running binary")?;
    // Stripped once here, not per server; what cannot be stripped goes
    // as it is (the daemon still runs: the tower is not held up).
    let agent_dir = vigie_provisioner::sshkey::dir(&a.data).join("agent");
    let agent = match vigie_provisioner::agent_bin::prepare(&exe, &agent_dir) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(event = "agent_binary_failed", error = %e);
            AgentBinary::of(&exe).context("reading the running binary")?
        }
    };
    let cfg = ProvisionerConfig {
        ctx: Context {
            api: a.api,
            orders: a.orders,
            keys_dir: vigie_provisioner::sshkey::dir(&a.data),
            networks: Networks::new(a.networks),
            known_hosts_dir: vigie_provisioner::sshkey::dir(&a.data).join("known_hosts"),
            connect_timeout: Duration::from_millis(a.connect_timeout_ms.max(1_000)),
            agent,
            layout: Layout {
                install_dir: a.install_dir,
                agent_root: a.agent_root,
                service: a.service,
            },
            tower: a.tower,
            tower_key,
        },
        parallel: a.parallel,
        poll: Duration::from_millis(a.poll_ms.max(50)),
    };
    vigie_provisioner::run(cfg, shutdown_flag()?).context("provisioner stopped on an error")?;
    Ok(ExitCode::SUCCESS)
}
