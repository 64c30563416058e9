//! What a dead plug's steps left running dies with it. A process killed
//! outright (SIGKILL, or its launcher's death) cannot clean up after
//! itself, so at its first command the driver starts a janitor: a small
//! shell in a process group of its own whose standard input is a pipe
//! only this process writes to. When this process is gone, however it
//! went, the pipe reads end-of-file, and the janitor kills every step
//! cgroup this process made and every process carrying a step mark it
//! made (see `reap`: marks start with its pid), then exits.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use super::reap::STEP_MARK_ENV;

/// Waits for end-of-file, then kills the step cgroups under `$2` (if
/// given) and the carriers of marks that start with `$1-`, until two
/// scans in a row find none (a process caught mid-exec shows no
/// environment for an instant), at most 200 rounds; then removes the
/// cgroups.
const SCRIPT: &str = r#"
read -r _
empty=0
i=0
while [ $i -lt 200 ] && [ $empty -lt 2 ]; do
  i=$((i + 1))
  if [ -n "$2" ]; then
    for d in "$2/vigie-step-$1-"*; do [ -d "$d" ] && echo 1 >"$d/cgroup.kill"; done 2>/dev/null
  fi
  pids=$(grep -slzx "$0=$1-.*" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3)
  if [ -z "$pids" ]; then
    empty=$((empty + 1))
  else
    empty=0
    kill -9 $pids 2>/dev/null
  fi
  sleep 0.02
done
if [ -n "$2" ]; then
  for d in "$2/vigie-step-$1-"*; do rmdir "$d"; done 2>/dev/null
fi
"#;

/// The write end of the janitor's pipe, held until this process ends.
static JANITOR: OnceLock<Mutex<Option<ChildStdin>>> = OnceLock::new();

/// Starts this process's janitor, once; later calls do nothing. Without
/// one (it cannot start), step processes still die when their command
/// ends and at the next plug's recovery, not with this process.
pub(crate) fn ensure_started() {
    JANITOR.get_or_init(|| Mutex::new(start()));
}

fn start() -> Option<ChildStdin> {
    let spawned = Command::new("/bin/sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg(STEP_MARK_ENV)
        .arg(std::process::id().to_string())
        .arg(super::reap::cgroup_parent().unwrap_or(Path::new("")))
        .env_remove(STEP_MARK_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Out of our group: whoever kills our group must not kill it.
        .process_group(0)
        .spawn();
    match spawned {
        Ok(mut child) => {
            tracing::debug!(event = "janitor_started", pid = child.id());
            // The child is never waited for: it outlives us by design.
            child.stdin.take()
        }
        Err(e) => {
            tracing::warn!(event = "janitor_failed", error = %e);
            None
        }
    }
}
