//! `vigie start --setup tower.yml`: the launcher.

use std::path::PathBuf;
use std::process::ExitCode;

use vigie_launcher::{LaunchOptions, Outcome};

use crate::runtime::{shutdown_flag, EXIT_CONFIG};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The setup file.
    #[arg(long)]
    setup: PathBuf,
}

pub fn run(a: Args, json: bool) -> anyhow::Result<ExitCode> {
    let setup = match vigie_launcher::setup::load(&a.setup) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigie start: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let data = setup.data_dir.clone();
    if let Err(e) = vigie_launcher::prepare_data_dir(&setup) {
        eprintln!("vigie start: data_dir: {e}");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    // One launcher per data dir: held until this process ends.
    let _lock = match vigie_escalator::lock_dir(&data, "launcher.lock") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("vigie start: refusing to start: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let keys = vigie_launcher::ensure_tower_keys(&data)?;
    if keys.created {
        eprintln!(
            "vigie start: created the tower's keys in {} (public key {})",
            data.join("keys").display(),
            keys.public_z85
        );
    }
    let admin = vigie_launcher::ensure_admin(&data, &keys, &setup.endpoints.majordomo)?;
    if admin.created {
        eprintln!(
            "vigie start: created the admin operator's key {} and its CLI config {}",
            admin.config.identity.display(),
            admin.config_path.display()
        );
    }
    // The local CLI works like any operator's: through the majordomo, with
    // the admin's key, found in the user's config unless one is there.
    if let Some(user) = super::conn::user_config_path().filter(|p| !p.exists()) {
        match admin.config.write(&user) {
            Ok(()) => eprintln!("vigie start: wrote {} for the CLI", user.display()),
            Err(e) => eprintln!("vigie start: could not write the CLI config: {e}"),
        }
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
            eprintln!("vigie start: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
