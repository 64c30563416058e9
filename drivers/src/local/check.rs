//! The Check step: a command or HTTP probe, tried up to `retries + 1`
//! times, `interval_ms` apart, each attempt bounded by `timeout_ms`.

use std::path::Path;
use std::time::Duration;

use vigie_wire::change::{Probe, StepResult};

use super::reap::StepMark;
use super::run::{run, Invocation};
use crate::DriverError;

pub(crate) struct Schedule {
    pub retries: u32,
    pub interval: Duration,
    pub timeout: Duration,
}

/// Refuses, before anything runs, a probe that can never succeed.
pub(crate) fn validate(probe: &Probe) -> Result<(), DriverError> {
    match probe {
        Probe::Command(vigie_wire::change::Command::Argv(argv)) if argv.is_empty() => {
            Err(DriverError::BadStep("empty probe command".into()))
        }
        Probe::Http { url, .. } if !url.starts_with("http://") => Err(DriverError::BadStep(
            format!("probe URL {url}: only plain http:// is supported"),
        )),
        _ => Ok(()),
    }
}

pub(crate) fn check(
    root: &Path,
    probe: &Probe,
    schedule: &Schedule,
    mark: &StepMark,
) -> StepResult {
    if let Err(e) = validate(probe) {
        return StepResult::failed(e.to_string());
    }
    let attempts = schedule.retries.saturating_add(1);
    let mut last = StepResult::default();
    for attempt in 1..=attempts {
        last = once(root, probe, schedule.timeout, mark);
        if last.ok {
            last.summary = format!("healthy after {}: {}", plural(attempt), last.summary);
            return last;
        }
        tracing::debug!(event = "probe_failed", attempt, summary = %last.summary);
        if attempt < attempts {
            // The product's behaviour: give the service time to come up.
            std::thread::sleep(schedule.interval);
        }
    }
    last.summary = format!("unhealthy after {}: {}", plural(attempts), last.summary);
    last
}

fn plural(attempts: u32) -> String {
    if attempts == 1 {
        "1 attempt".into()
    } else {
        format!("{attempts} attempts")
    }
}

fn once(root: &Path, probe: &Probe, timeout: Duration, mark: &StepMark) -> StepResult {
    match probe {
        Probe::Command(command) => run(&Invocation {
            command,
            env: &[],
            cwd: root,
            pwd: root,
            root,
            timeout,
            mark,
            output: None,
        }),
        Probe::Http { url, status } => http_get(url, *status, timeout),
    }
}

fn http_get(url: &str, expected: u16, timeout: Duration) -> StepResult {
    // Redirects are not followed: the probe checks the status it was told.
    let agent = ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(0)
        .build();
    let status = match agent.get(url).call() {
        Ok(response) => response.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(ureq::Error::Transport(e)) => return StepResult::failed(format!("GET {url}: {e}")),
    };
    if status == expected {
        StepResult::ok(format!("GET {url} answered {status}"))
    } else {
        StepResult::failed(format!("GET {url} answered {status}, expected {expected}"))
    }
}
