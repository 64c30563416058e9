//! What every daemon entry point shares: exit codes, tracing, signals,
//! the umask.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tracing_subscriber::EnvFilter;

/// A bad command line or configuration (sysexits' EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;
/// A required service is missing, e.g. libzmq without CURVE (EX_UNAVAILABLE).
pub const EXIT_UNAVAILABLE: u8 = 69;

/// Logs go to stderr: human-readable, or one JSON object per event with the
/// event's fields at the top level (`--log-json`). `VIGIE_LOG` overrides the
/// level filter (`RUST_LOG` syntax).
pub fn init_tracing(json: bool, verbose: u8, quiet: bool) {
    let default = match verbose {
        0 if quiet => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("VIGIE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: a file or a pipe
        // (journald, CI logs, `2>err.txt`) gets plain text; NO_COLOR wins.
        .with_ansi(colour_on_stderr());
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    } else {
        builder.with_target(false).init();
    }
}

/// Whether stderr is a terminal that wants colour (`NO_COLOR` unset).
pub fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Vigie's front door needs CurveZMQ; a libzmq without it must stop us now,
/// not fail at the first handshake.
pub fn check_curve() -> Result<(), String> {
    match zmq::has("curve") {
        Some(true) => Ok(()),
        _ => Err(format!(
            "the linked libzmq {:?} has no CURVE support; install the system's libzmq built \
             with libsodium (Debian: apt-get install libzmq3-dev) and rebuild",
            zmq::version()
        )),
    }
}

/// A flag set by SIGTERM or SIGINT: daemons poll it between loop turns.
pub fn shutdown_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(flag)
}

/// When started by a launcher, die with it: ask the kernel for SIGKILL when
/// the parent dies, then check the parent did not die before we asked.
pub fn die_with_parent() {
    let Some(parent) = std::env::var(vigie_launcher::PARENT_PID_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return;
    };
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        eprintln!("vigie: cannot ask for a parent-death signal: {e}");
    }
    if nix::unistd::getppid().as_raw() != parent {
        eprintln!("vigie: the launcher (pid {parent}) is gone; exiting");
        std::process::exit(1);
    }
}

/// Every file the tower makes for itself is its user's only.
const PRIVATE_UMASK: u32 = 0o077;
/// The umask `vigie` was first started with, handed down to the launcher's
/// children so that a plug works on its host under the operator's umask.
pub const HOST_UMASK_ENV: &str = "VIGIE_HOST_UMASK";

/// The umask host work runs under: the one handed down by a launcher, else
/// the one this process was started with.
fn host_umask(handed_down: Option<&str>, inherited: u32) -> u32 {
    handed_down
        .and_then(|v| u32::from_str_radix(v, 8).ok())
        .filter(|m| *m <= 0o777)
        .unwrap_or(inherited)
}

/// Sets the process umask. Data at rest (LevelDB files, keys, sockets,
/// journals) holds file contents and secrets in clear: every daemon makes
/// its files under umask 077. A process that works on a host (`works_on_host`:
/// plug, agent) keeps the operator's umask instead — its commands and the
/// directories it creates in the host root must not turn private — and
/// makes its own state with explicit modes. Call before any thread starts.
pub fn set_umask(works_on_host: bool) {
    use nix::sys::stat::{umask, Mode};
    let inherited = umask(Mode::from_bits_truncate(PRIVATE_UMASK)).bits();
    let handed_down = std::env::var(HOST_UMASK_ENV).ok();
    let host = host_umask(handed_down.as_deref(), inherited);
    if handed_down.is_none() {
        std::env::set_var(HOST_UMASK_ENV, format!("{host:o}"));
    }
    if works_on_host {
        umask(Mode::from_bits_truncate(host));
    }
}

/// The daemons raise their descriptor limit to the hard one and say how
/// many agents that allows (the majordomo holds one descriptor per agent).
/// Plugs and agents keep theirs: the commands they run inherit it, and
/// some still use `select()`, which breaks above 1,024.
pub fn raise_fd_limit(command: &crate::cmd::Command) {
    use crate::cmd::Command;
    use vigie_launcher::fdlimit::raise_and_say;
    match command {
        Command::Majordomo(_) => {
            raise_and_say("majordomo", Some(1));
        }
        Command::Start(_) => {
            raise_and_say("launcher", None);
        }
        Command::Referee(_) => {
            raise_and_say("referee", None);
        }
        Command::Escalator(_) => {
            raise_and_say("escalator", None);
        }
        // The simulator says its own, with the agents per process.
        Command::Bench(_) => {
            vigie_launcher::fdlimit::raise();
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_work_keeps_the_umask_the_tower_was_started_with() {
        assert_eq!(host_umask(None, 0o022), 0o022);
        assert_eq!(host_umask(Some("27"), 0o077), 0o027);
        assert_eq!(host_umask(Some("nonsense"), 0o022), 0o022);
        assert_eq!(host_umask(Some("7777"), 0o022), 0o022);
    }
}
