//! What the deploy tests share: the shop example's repository, stopping
//! what a deploy left running, and reading an environment's record from
//! the referee.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use vigie_deployer::EnvRecord;
use vigie_wire::deploy::{DeployAnswer, DeployCall};
use vigie_wire::tower::{ApiAnswer, ApiCall};

use crate::launcher::Launcher;

/// Stops what the deploys left running in these host roots (supervisors,
/// apps, nginx) when the test ends, pass or fail: they are detached on
/// purpose, so they outlive the tower.
pub struct Leftovers(pub Vec<PathBuf>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for root in &self.0 {
            let script = format!(
                "for p in {r}/srv/services/auto-*/*/replica-*/app.pid; do [ -f \"$p\" ] && kill -KILL -$(cat \"$p\"); done; \
                 for p in {r}/srv/services/auto-*/*/replica-*/supervisor.pid; do [ -f \"$p\" ] && kill -KILL $(cat \"$p\"); done; \
                 [ -f {r}/srv/services/auto-proxy/run/nginx.pid ] && kill -TERM $(cat {r}/srv/services/auto-proxy/run/nginx.pid); true",
                r = root.display()
            );
            let _ = Command::new("sh").arg("-c").arg(script).status();
        }
    }
}

/// The deployer's record of `app/environment`, read from the referee (the
/// test's bookkeeping; the CLI's JSON contract is checked on its own).
pub fn record(tower: &Launcher, app: &str, environment: &str) -> anyhow::Result<EnvRecord> {
    match tower.api()?.call(ApiCall::Deploy(DeployCall::List))? {
        ApiAnswer::Deploy(DeployAnswer::Deployments(all)) => {
            let found = all
                .iter()
                .find(|d| d.app == app && d.environment == environment)
                .with_context(|| format!("{app}/{environment} is in the inventory"))?;
            Ok(EnvRecord::from_json(&found.record)?)
        }
        other => anyhow::bail!("unexpected answer: {other:?}"),
    }
}

/// Makes the shop example's git repository and environment files in
/// `dir` (`examples/shop/make-repo.sh`), with `vars` in its environment
/// (`PG_ADMIN_URL`, `REDIS_URL`); returns the repository's path.
pub fn shop_repo(dir: &Path, vars: &[(&str, &str)]) -> anyhow::Result<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop/make-repo.sh");
    let made = Command::new(script)
        .arg(dir)
        .envs(vars.iter().copied())
        .output()?;
    anyhow::ensure!(
        made.status.success(),
        "make-repo: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    Ok(String::from_utf8_lossy(&made.stdout).trim().to_string())
}
