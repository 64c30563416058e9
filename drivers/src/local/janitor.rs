//! What a dead plug's steps left running dies with it. A process killed
//! outright (SIGKILL, or its launcher's death) cannot clean up after
//! itself, so at its first command the driver starts a janitor: a small
//! shell in a process group of its own, not its child, whose standard
//! input is a pipe only this process writes to. When this process is gone, however it
//! went, the pipe reads end-of-file, and the janitor kills every step
//! cgroup this process made and every process carrying a step mark it
//! made (see `reap`: marks start with its pid), then exits.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use super::procfs::STEP_MARK_ENV;

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

/// Starts the janitor in the background of a shell that exits at once:
/// it is not this process's child (whose children, as a subreaper, are
/// its steps' and nothing else). A background job's standard input is
/// `/dev/null` (even with `<&0`): the pipe goes through fd 3.
const DETACH: &str = r#"exec 3<&0; /bin/sh -c "$0" "$@" 0<&3 3<&- >/dev/null 2>&1 & exit 0"#;

/// Starts this process's janitor, once; later calls do nothing. `cgroups`
/// is where this process makes step cgroups, if it does. Without one (it
/// cannot start), step processes still die when their command ends and
/// at the next plug's recovery, not with this process.
pub(crate) fn ensure_started(cgroups: Option<&Path>) {
    JANITOR.get_or_init(|| Mutex::new(start(cgroups)));
}

fn start(cgroups: Option<&Path>) -> Option<ChildStdin> {
    let spawned = Command::new("/bin/sh")
        .arg("-c")
        .arg(DETACH)
        .arg(SCRIPT)
        .arg(STEP_MARK_ENV)
        .arg(std::process::id().to_string())
        .arg(cgroups.unwrap_or(Path::new("")))
        .env_remove(STEP_MARK_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Out of our group: whoever kills our group must not kill it.
        .process_group(0)
        .spawn();
    match spawned {
        Ok(mut child) => {
            let stdin = child.stdin.take();
            // The shell that started it in the background, not the janitor.
            if let Err(e) = child.wait() {
                tracing::warn!(event = "janitor_failed", error = %e);
            }
            tracing::debug!(event = "janitor_started");
            stdin
        }
        Err(e) => {
            tracing::warn!(event = "janitor_failed", error = %e);
            None
        }
    }
}
