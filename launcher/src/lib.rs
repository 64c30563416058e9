//! The launcher: `vigie start --setup tower.yml`. Validates the setup file,
//! creates the data dir and the tower's keys at first start, then starts
//! and supervises escalator, referee, majordomo and one plug per local
//! host — in dependency order, each waited for until it says it is ready —
//! restarts crashed children with exponential back-off (a plug is given up
//! on after repeated fast crashes; an essential child never is while the
//! tower runs, it is retried at the back-off ceiling), and on SIGTERM stops them in reverse order, each with a
//! grace period before SIGKILL. Children die with the launcher, even when
//! it is SIGKILLed (they ask the kernel for a parent-death signal).

mod child_args;
mod datadir;
pub mod endpoints;
mod error;
mod events;
pub mod fdlimit;
pub mod ha;
mod keys;
mod restart;
pub mod setup;
mod supervisor;

pub use datadir::prepare_data_dir;
pub use error::LauncherError;
pub use keys::{admin_public_path, ensure_admin, ensure_tower_keys, AdminKeys, TowerKeys};
pub use setup::{Endpoints, HostSetup, Setup, SetupError, Supervision};
pub use supervisor::{run, LaunchOptions, Outcome};

/// Set in every child's environment: the launcher's pid. A child that sees
/// it asks for SIGKILL when its parent dies (see the `vigie` binary).
pub const PARENT_PID_ENV: &str = "VIGIE_PARENT_PID";
