//! What `submit --wait` and `watch` show while changes run. On a terminal
//! (text output, stderr a tty) a live line on stderr (`indicatif`): for
//! several changes the counts — done, failed, running of N — and the time
//! since the start; for one change its running step and the time since
//! that step started. Stdout gets the lines a log keeps: every step as it
//! moves, or, under a live line for several changes, each change's end.
//! `--json` prints each new view of a change as one object a line.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use vigie_wire::tower::{ChangeState, ChangeView, StepStatus};

use super::change_text::progress_lines;
use super::escape;
use super::json::ChangeJson;
use super::out::{self, Format};

/// How many of the followed changes are where.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub done: usize,
    pub failed: usize,
    pub running: usize,
    pub waiting: usize,
}

impl Counts {
    pub fn of<'a>(states: impl Iterator<Item = &'a ChangeState>, total: usize) -> Self {
        let mut c = Counts::default();
        let mut seen = 0;
        for s in states {
            seen += 1;
            match s {
                ChangeState::Succeeded => c.done += 1,
                s if s.is_final() => c.failed += 1,
                ChangeState::Queued => c.waiting += 1,
                _ => c.running += 1,
            }
        }
        c.waiting += total.saturating_sub(seen);
        c
    }

    pub fn text(&self, total: usize) -> String {
        format!(
            "{} done, {} failed, {} running, {} waiting, of {total}",
            self.done, self.failed, self.running, self.waiting
        )
    }
}

pub struct Progress {
    format: Format,
    total: usize,
    bar: Option<ProgressBar>,
    states: HashMap<String, ChangeState>,
    /// The step the live line shows, for one change: (change, step).
    step: Option<(String, usize)>,
    /// The first failed write to stdout: printing stops.
    error: Option<std::io::Error>,
}

impl Progress {
    pub fn new(format: Format, total: usize) -> Self {
        let live = format == Format::Text && std::io::stderr().is_terminal();
        let bar = live.then(|| {
            let template = if total > 1 {
                "{spinner} [{elapsed_precise}] {msg}"
            } else {
                "{spinner} {msg} [{elapsed}]"
            };
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bar = ProgressBar::new_spinner().with_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            format,
            total,
            bar,
            states: HashMap::new(),
            step: None,
            error: None,
        }
    }

    fn emit(&mut self, lines: &[String]) {
        if self.error.is_some() {
            return;
        }
        let write = || -> std::io::Result<()> {
            for l in lines {
                out::line(l)?;
            }
            Ok(())
        };
        let r = match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        };
        match r {
            Ok(()) => {}
            // `vigie watch ID | head`: the reader had what it wanted; like
            // any Unix tool, stop now rather than follow on unseen.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                if let Some(bar) = &self.bar {
                    bar.finish_and_clear();
                }
                std::process::exit(0);
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// A new view of a change (`prev`: the one before, if any).
    pub fn view(&mut self, prev: Option<&ChangeView>, v: &ChangeView) {
        self.states.insert(v.id.clone(), v.state);
        match self.format {
            Format::Json => {
                let line = out::json_line(&ChangeJson::from(v)).unwrap_or_default();
                self.emit(&[line]);
            }
            Format::Text if self.bar.is_some() && self.total > 1 => {
                let ended = v.state.is_final() && prev.is_none_or(|p| !p.state.is_final());
                if ended {
                    let mut lines = progress_lines(None, v)
                        .into_iter()
                        .filter(|l| l.contains("FAILED"))
                        .collect::<Vec<_>>();
                    lines.push(progress_lines(None, v).pop().unwrap_or_default());
                    self.emit(&lines);
                }
            }
            Format::Text => self.emit(&progress_lines(prev, v)),
        }
        self.update_line(v);
    }

    fn update_line(&mut self, v: &ChangeView) {
        let Some(bar) = &self.bar else { return };
        if self.total > 1 {
            bar.set_message(Counts::of(self.states.values(), self.total).text(self.total));
            return;
        }
        let running = v
            .steps
            .iter()
            .position(|s| matches!(s.status, StepStatus::Running | StepStatus::Undoing));
        let Some(i) = running else {
            bar.set_message(format!(
                "{} {}: {}",
                escape::field(&v.id),
                escape::field(&v.host),
                v.state.word()
            ));
            return;
        };
        let now = (v.id.clone(), i);
        if self.step.as_ref() != Some(&now) {
            bar.reset_elapsed();
            self.step = Some(now);
        }
        let s = &v.steps[i];
        let doing = if s.status == StepStatus::Undoing {
            "undoing"
        } else {
            "running"
        };
        // The live line is redrawn in place: a control in it would be obeyed.
        bar.set_message(format!(
            "{} {}: step {}/{} {} ({}) {doing}",
            escape::field(&v.id),
            escape::field(&v.host),
            i + 1,
            v.steps.len(),
            escape::field(&s.name),
            escape::field(&s.kind)
        ));
    }

    /// Clears the live line; a failed write is the caller's error.
    pub fn finish(self) -> std::io::Result<()> {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use vigie_wire::tower::ChangeState;

    use super::Counts;

    #[test]
    fn counts_split_done_failed_running_and_waiting() {
        let states = [
            ChangeState::Succeeded,
            ChangeState::RolledBack {
                failed_step: Some(0),
                interrupted: false,
                stopped: false,
            },
            ChangeState::Running { step: 1 },
            ChangeState::Dispatched,
            ChangeState::Queued,
        ];
        let c = Counts::of(states.iter(), 7);
        assert_eq!(
            c,
            Counts {
                done: 1,
                failed: 1,
                running: 2,
                waiting: 3
            }
        );
        assert_eq!(c.text(7), "1 done, 1 failed, 2 running, 3 waiting, of 7");
    }
}
