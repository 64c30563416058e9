//! What every daemon entry point shares: exit codes, tracing, signals.

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
        .with_writer(std::io::stderr);
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
