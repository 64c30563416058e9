//! Instances as systemd units where systemd is PID 1 (seed 000: what a
//! host runs survives the agent, the tower and a reboot). Each instance of
//! a service gets a template unit `auto-<app>-<env>-<service>-<N>@.service`
//! written in its directory; replica R runs as `…-<N>@R.service`, linked and
//! enabled by the supervisor script, stopped with SIGTERM then SIGKILL
//! after the service's grace period (`TimeoutStopSec`). Where systemd is
//! not PID 1 (containers, test machines) or the host is a root directory of
//! the local driver, the detached supervisor is used instead.

use crate::names::{EnvKey, Part};
use crate::spec::Service;

/// What keeps a host's instances running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supervisor {
    Systemd,
    Detached,
}

impl Supervisor {
    /// The choice `supervise` makes on the host: systemd when it runs the
    /// machine (`/run/systemd/system` exists) and the host is the whole
    /// machine (a local driver's root directory must not install units
    /// for the machine it runs on).
    pub fn choose(run_systemd_system: bool, host_root: &str) -> Supervisor {
        if run_systemd_system && host_root.trim_end_matches('/').is_empty() {
            Supervisor::Systemd
        } else {
            Supervisor::Detached
        }
    }
}

/// The template unit's file name for an instance of a service.
pub fn unit_template(key: &EnvKey, service: &Part, instance: u32) -> String {
    format!("{}-{service}-{instance}@.service", key.stem())
}

/// The unit text of an instance: replica `%i` reads its `.env`, runs the
/// start command in the instance's code, restarts when it crashes, and
/// stops with SIGTERM, then SIGKILL after the grace period.
pub fn unit_text(key: &EnvKey, name: &Part, instance: u32, spec: &Service) -> String {
    let dir = key.instance_dir(name, instance);
    format!(
        "# Written by the Vigie deployer; do not edit.\n\
         [Unit]\n\
         Description={key} {name} instance {instance}, replica %i (Vigie deployer)\n\
         After=network.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         WorkingDirectory={dir}/src\n\
         EnvironmentFile={dir}/replica-%i/env\n\
         ExecStart=/bin/sh {dir}/start\n\
         KillMode=control-group\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec={grace}\n\
         Restart=always\n\
         RestartSec=1\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        grace = seconds(spec.stop_grace_ms),
    )
}

/// Milliseconds as the seconds systemd and `sleep` read (`1.500`).
pub(crate) fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}
