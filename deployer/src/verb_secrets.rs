//! A verb's env files with the environment's current secrets (issue 19).
//! `start`, `restart`, `rollback` and a secret's rotation (`rotate`)
//! write each replica's secrets as they are now: a rollback returns code,
//! never the credential an older instance was deployed with, and a
//! rotation restarts in place what reads the secret (no fetch, same
//! instance directory).
//!
//! The value is never in the change: a `SecretFile` step names the
//! secrets (the referee seals each for the host at submission) and the
//! host's agent writes them, 0600, into a fragment beside the env file;
//! a run step then replaces the env file's secret lines with the fragment
//! — the plain part the instance was deployed with is kept, the secrets
//! being the last lines (the agent appends them) — and removes the
//! fragment. The file it replaced is kept beside it for the undo until
//! the change can no longer fail (`forget_step`). A fresh fragment path
//! is used so the driver's stash never copies a value into the tower.

use std::collections::BTreeMap;

use vigie_wire::change::{Action, Step};
use vigie_wire::secrets::SealedVar;

use crate::compile::{host_path, run, sh_quote};
use crate::inventory::EnvRecord;
use crate::names::Part;
use crate::spec::Environment;

/// The variables of `name` that are secrets (none for a service the
/// environment does not have).
fn secret_vars(env: &Environment, name: &Part) -> Vec<SealedVar> {
    env.services
        .get(name)
        .map(crate::secrets::secret_vars)
        .unwrap_or_default()
}

/// Whether service `name` reads `secret`.
pub fn reads(env: &Environment, name: &Part, secret: &str) -> bool {
    secret_vars(env, name).iter().any(|v| v.name == secret)
}

/// Whether service `name` reads any secret.
pub(crate) fn reads_any(env: &Environment, name: &Part) -> bool {
    !secret_vars(env, name).is_empty()
}

fn replica_dir(env: &Environment, name: &Part, instance: u32, r: u32) -> String {
    format!("{}/replica-{r}", env.key.instance_dir(name, instance))
}

/// The step the host's agent writes replica `r`'s current secrets with
/// (`None`: the service reads none).
pub(crate) fn fragment_step(env: &Environment, name: &Part, instance: u32, r: u32) -> Option<Step> {
    let secrets = secret_vars(env, name);
    if secrets.is_empty() {
        return None;
    }
    Some(Step {
        name: format!("current secrets of {name} #{instance} replica {r}"),
        action: Action::SecretFile {
            path: format!("{}/env.secrets", replica_dir(env, name, instance, r)),
            environment: env.key.to_string(),
            content: Vec::new(),
            secrets,
        },
    })
}

/// A filter (`sh`) printing an env file up to its first secret line.
pub(crate) fn plain_part(env: &Environment, name: &Part) -> String {
    let vars: Vec<String> = secret_vars(env, name).into_iter().map(|v| v.var).collect();
    format!(
        "awk -F= -v vars={} 'index(vars, \" \" $1 \" \") {{ exit }} {{ print }}'",
        sh_quote(&format!(" {} ", vars.join(" ")))
    )
}

/// Replica `r`'s env file rewritten with its current secrets (nothing
/// when the service reads none): the fragment written, then merged.
pub(crate) fn rewrite_steps(env: &Environment, name: &Part, instance: u32, r: u32) -> Vec<Step> {
    let Some(fragment) = fragment_step(env, name, instance, r) else {
        return Vec::new();
    };
    let d = host_path(&replica_dir(env, name, instance, r));
    let merge = run(
        format!("environment of {name} #{instance} replica {r} (current secrets)"),
        format!(
            "umask 077; d={d}; [ -f \"$d/env\" ] || {{ echo 'replica {r} of {name} #{instance} has no env file' >&2; exit 1; }}; \
             cp -p \"$d/env\" \"$d/env.was\" && \
             {{ {plain} \"$d/env\" && cat \"$d/env.secrets\"; }} >\"$d/env.new\" && \
             chmod 600 \"$d/env.new\" && mv \"$d/env.new\" \"$d/env\" && rm -f \"$d/env.secrets\"",
            plain = plain_part(env, name),
        ),
        Some(format!(
            "d={d}; [ -f \"$d/env.was\" ] && mv \"$d/env.was\" \"$d/env\"; rm -f \"$d/env.secrets\"; true"
        )),
        30_000,
    );
    vec![fragment, merge]
}

/// Forgetting the env files `rewrite_steps` kept for their undo, once
/// the change cannot fail any more.
pub(crate) fn forget_step(env: &Environment, placed: &[(Part, u32)]) -> Option<Step> {
    let dirs: Vec<String> = placed
        .iter()
        .filter(|(n, _)| reads_any(env, n))
        .map(|(n, i)| host_path(&env.key.instance_dir(n, *i)))
        .collect();
    if dirs.is_empty() {
        return None;
    }
    let script: Vec<String> = dirs
        .iter()
        .map(|d| format!("rm -f {d}/replica-*/env.was"))
        .collect();
    Some(run(
        "forget the env files replaced".into(),
        format!("{}; true", script.join("; ")),
        None,
        30_000,
    ))
}

/// After a rotation that succeeded everywhere: each component made from
/// this very spec with an older version of `secret` gets the digest of
/// the spec with the current one, so the next deploy of the same file
/// does not replace replicas that already read the new value. A
/// component made otherwise (another file, a rollback) keeps its digest:
/// the next deploy replaces it, as it should.
pub(crate) fn rotated_digests(
    env: &Environment,
    secret: &str,
    versions: &BTreeMap<String, u32>,
    next: &mut EnvRecord,
) {
    let Ok(now) = env.pin_secrets(versions) else {
        return;
    };
    let now = crate::plan::components_of(&now);
    let current = versions.get(secret).copied().unwrap_or(0);
    for older in 1..current {
        let mut was = versions.clone();
        was.insert(secret.to_owned(), older);
        let Ok(then) = env.pin_secrets(&was) else {
            continue;
        };
        for (component, digest) in crate::plan::components_of(&then) {
            let Some(fresh) = now.get(&component) else {
                continue;
            };
            if let Some(state) = next.components.get_mut(&component) {
                if state.digest == digest && *fresh != digest {
                    state.digest = fresh.clone();
                }
            }
        }
    }
}
