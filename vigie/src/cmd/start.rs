//! `vigie start --setup tower.yml`: the launcher.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vigie_launcher::{LaunchOptions, Outcome};
use vigie_majordomo::operator::OperatorConfig;

use super::conn::normalised;
use crate::runtime::{shutdown_flag, EXIT_CONFIG};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The setup file (YAML: name, data_dir, endpoints, hosts, rules).
    #[arg(long, value_name = "FILE")]
    setup: PathBuf,
}

pub fn run(a: Args, json: bool) -> anyhow::Result<ExitCode> {
    let setup = match vigie_launcher::setup::load(&a.setup) {
        Ok(s) => s,
        Err(e) => {
            super::out::esay!("vigie start: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let data = setup.data_dir.clone();
    if let Err(e) = vigie_launcher::prepare_data_dir(&setup) {
        super::out::esay!("vigie start: data_dir: {e}");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    // One launcher per data dir: held until this process ends.
    let _lock = match vigie_escalator::lock_dir(&data, "launcher.lock") {
        Ok(l) => l,
        Err(e) => {
            super::out::esay!("vigie start: refusing to start: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let keys = vigie_launcher::ensure_tower_keys(&data)?;
    if keys.created {
        super::out::esay!(
            "vigie start: created the tower's keys in {} (public key {})",
            normalised(&data.join("keys")).display(),
            keys.public_z85
        );
    }
    let admin = vigie_launcher::ensure_admin(&data, &keys, &setup.endpoints.majordomo)?;
    if admin.created {
        super::out::esay!(
            "vigie start: created the admin operator's key {} and its CLI config {}",
            normalised(&admin.config.identity).display(),
            normalised(&admin.config_path).display()
        );
    }
    // The local CLI works like any operator's: through the majordomo, with
    // the admin's key, found in the user's config unless one is there.
    if let Some(user) = super::conn::user_config_path() {
        say_user_config(&user, &admin.config, &admin.config_path);
    }
    let opts = LaunchOptions {
        exe: std::env::current_exe()?,
        json,
        quiet: false,
        observer: None,
    };
    match vigie_launcher::run(setup, opts, shutdown_flag()?) {
        Ok(Outcome::Clean) => Ok(ExitCode::SUCCESS),
        Ok(Outcome::Unclean) => Ok(ExitCode::FAILURE),
        Err(e) => {
            super::out::esay!("vigie start: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Writes the admin's CLI config into the user's config dir when none is
/// there; keeps one that is there, and says so when it points at another
/// tower (an older tower's on the same machine), since every command
/// would then fail its handshake.
fn say_user_config(user: &Path, admin: &OperatorConfig, admin_path: &Path) {
    let ours = normalised(admin_path);
    if !user.exists() {
        match admin.write(user) {
            Ok(()) => super::out::esay!("vigie start: wrote {} for the CLI", user.display()),
            Err(e) => super::out::esay!("vigie start: could not write the CLI config: {e}"),
        }
        return;
    }
    match OperatorConfig::load(user) {
        Ok(c) if c.tower_key == admin.tower_key && c.tower == admin.tower => {}
        Ok(c) => super::out::esay!(
            "vigie start: keeping the CLI config {}: it points at another tower ({} with key {}), not this one ({} with key {}); use `--config {}` or copy that file over it",
            user.display(),
            c.tower,
            c.tower_key,
            admin.tower,
            admin.tower_key,
            ours.display()
        ),
        Err(e) => super::out::esay!(
            "vigie start: keeping the CLI config {}, which does not load ({e}); this tower's is {}",
            user.display(),
            ours.display()
        ),
    }
}
