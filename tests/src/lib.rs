//! The Vigie test kit: describe a tower in Rust ([`Setup`], [`Rule`]), run
//! the real `vigie` binary on it ([`Launcher`], or single daemons with
//! [`Daemon`] and [`Escalator`]), wait on structured events (never on log
//! text, never by sleeping), kill and restart any process. Driver authors
//! run [`conformance`] against their driver.
//!
//! Every wait has a timeout; when it expires the test fails with the list
//! of events seen so far.

mod daemon;
pub mod deploys;
mod events;
pub mod front;
pub mod http_load;
pub mod keepalive_load;
mod launcher;
pub mod netns;
pub mod servers;
mod setup;
pub mod sshd;
pub mod steps;
pub mod tmpfs;
pub mod web;
pub mod workspace;

pub use daemon::{is_running, vigie_bin, wait_not_running, Daemon, Escalator, Witness};
pub use events::{Event, EventLog};
pub use launcher::Launcher;
pub use setup::{HostDef, Rule, Setup};
/// The driver conformance suite, for anyone writing a driver.
pub use vigie_drivers::conformance;

/// A CLI run's stdout, or an error holding everything it printed when it
/// did not succeed (for tests driving `vigie` as an operator would).
pub fn stdout_ok(out: std::process::Output) -> anyhow::Result<String> {
    anyhow::ensure!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}
