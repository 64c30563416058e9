//! The plug's logic, independent of sockets: orders in, events out through
//! a sink, the journal written before anything is sent or touched.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_drivers::Driver;
use vigie_wire::change::{Action, ChangeSpec, StepResult};
use vigie_wire::tower::{ChangeId, HostId, Labels, Order, Outcome, PlugEvent, Report, ReportKind};

use crate::error::PlugError;

mod compact;
use crate::journal::{Journal, JournalRecord};
#[cfg(test)]
pub(crate) use compact::COMPACT_EVERY;

/// Where a plug's events go (a PUSH socket, or a test's vector).
pub type Sink<'a> = &'a mut dyn FnMut(PlugEvent);

/// How long unacknowledged reports wait before they are sent again.
const RESEND_AFTER: Duration = Duration::from_secs(1);
/// How often a plug that cannot write its journal tries again.
pub const RETRY_JOURNAL_AFTER: Duration = Duration::from_millis(500);

pub struct Plug {
    /// Opens the secrets sealed for this host (`None`: it gets none).
    opener: Option<crate::opener::Opener>,
    host: HostId,
    labels: Labels,
    driver: Box<dyn Driver>,
    journal: Box<dyn Journal>,
    stash: PathBuf,
    /// Whether to create a stash directory per step (drivers that touch
    /// nothing, like the fleet's noop driver, need none).
    make_stash: bool,
    next_seq: u64,
    outbox: VecDeque<Report>,
    /// Every change this plug accepted since the journal's last
    /// compaction (and those of an old journal it could not fold): an
    /// order for one is a replay.
    seen: HashSet<ChangeId>,
    /// The compaction's fold: an order of the referee's sequence up to
    /// this one is a replay (`compact.rs`).
    seen_below: u64,
    /// The sequence of each change in `seen` accepted with one.
    seqs: HashMap<ChangeId, u64>,
    /// Changes ended since the journal's last compaction.
    ended: usize,
    busy: Option<ChangeId>,
    last_resend: Option<Instant>,
    /// This journal's incarnation (set by `recover`).
    incarnation: u64,
    /// The highest acknowledgement journaled.
    acked: u64,
    /// Why the plug refuses orders: its journal or stash could not be
    /// written. Cleared by `retry_journal` once a write succeeds.
    refusing: Option<String>,
    last_retry: Option<Instant>,
    /// A step's, an undo's or a change's result whose journal write
    /// failed: it happened on the host, so it is journaled first when the
    /// journal works again, and the recovery reports it as it was — rather
    /// than treat the step as cut mid-way (undone as never finished, a
    /// failed command undone, an undo run twice).
    unjournaled: Option<JournalRecord>,
    /// Set when the plug is asked to stop (SIGTERM): the step in flight
    /// finishes, no other starts.
    stop: Arc<AtomicBool>,
    /// Where the steps' whole output goes (the driver writes it there;
    /// the plug says which step it belongs to).
    logs: Option<Arc<crate::logs::LogStore>>,
}

/// Why the plug says it refuses orders while it stops.
pub const STOPPING: &str = "the plug is stopping";

/// Why a change is rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// A step failed.
    Failed,
    /// A crash (or a journal failure) cut it: rolled back at recovery.
    Interrupted,
    /// The plug was asked to stop between two steps.
    Stopped,
}

/// A change id names directories of the stash: letters, digits, `-`, `_`.
fn safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether a step's stash keeps a host file's previous state, not only
/// the mark of a command's processes. Such a step, failed, is part of its
/// rollback: it may have half-happened and its undo restores exactly what
/// was there; a failed command is not undone — its undo command is
/// written for a command that succeeded.
fn keeps_host_state(action: &Action) -> bool {
    matches!(
        action,
        Action::File { .. } | Action::Remove { .. } | Action::SecretFile { .. }
    )
}

/// What the journal says about one change.
#[derive(Default)]
struct Progress {
    spec: Option<ChangeSpec>,
    started: BTreeSet<u32>,
    failed: BTreeSet<u32>,
    undone: BTreeSet<u32>,
    finished: bool,
}

impl Progress {
    /// What a journaled report says of its change.
    fn note(&mut self, kind: &ReportKind) {
        match kind {
            ReportKind::StepStarted { step } => {
                self.started.insert(*step);
            }
            ReportKind::StepFinished { step, result } if !result.ok => {
                self.failed.insert(*step);
            }
            ReportKind::UndoFinished { step, .. } => {
                self.undone.insert(*step);
            }
            ReportKind::Finished { .. } => self.finished = true,
            _ => {}
        }
    }
}

impl Plug {
    pub fn new(
        host: &str,
        labels: Labels,
        driver: Box<dyn Driver>,
        journal: Box<dyn Journal>,
        stash: &Path,
    ) -> Self {
        Self {
            host: host.to_owned(),
            labels,
            driver,
            journal,
            stash: stash.to_path_buf(),
            make_stash: true,
            next_seq: 1,
            outbox: VecDeque::new(),
            seen: HashSet::new(),
            seen_below: 0,
            seqs: HashMap::new(),
            ended: 0,
            busy: None,
            last_resend: None,
            incarnation: 0,
            acked: 0,
            refusing: None,
            last_retry: None,
            unjournaled: None,
            stop: Arc::new(AtomicBool::new(false)),
            logs: None,
            opener: None,
        }
    }

    /// The key this host's secrets are sealed for (`opener.rs`).
    pub fn with_opener(mut self, opener: crate::opener::Opener) -> Self {
        self.opener = Some(opener);
        self
    }

    /// Files the output the driver copies to `logs` under each step (the
    /// driver must have been given the same store as its output sink).
    pub fn with_logs(mut self, logs: Arc<crate::logs::LogStore>) -> Self {
        self.logs = Some(logs);
        self
    }

    fn begin_step(&self, change: &str, step: u32, phase: &'static str) {
        if let Some(l) = &self.logs {
            l.begin_step(change, step, phase);
        }
    }

    fn end_step(&self) {
        if let Some(l) = &self.logs {
            l.end_step();
        }
    }

    /// The flag that asks this plug to stop (set by SIGTERM): from then on
    /// it refuses orders, finishes the step in flight, starts no other and
    /// rolls the change back (`stopped`).
    pub fn stop_on(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = flag;
        self
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// For drivers that never use their stash: skips its directories.
    pub fn without_stash_dirs(mut self) -> Self {
        self.make_stash = false;
        self
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn heartbeat(&self) -> PlugEvent {
        self.heartbeat_with(self.busy.clone())
    }

    /// A heartbeat announcing `busy`: sent by another thread while a change runs.
    pub fn heartbeat_with(&self, busy: Option<ChangeId>) -> PlugEvent {
        PlugEvent::Heartbeat {
            host: self.host.clone(),
            incarnation: self.incarnation,
            labels: self.labels.clone(),
            busy,
            refusing: self
                .refusing
                .clone()
                .or_else(|| self.stopping().then(|| STOPPING.to_owned())),
        }
    }

    /// Why the plug refuses orders, if it does.
    pub fn refusing(&self) -> Option<&str> {
        self.refusing.as_deref()
    }

    /// A write to the journal or the stash failed: from now on the plug
    /// runs nothing and refuses orders, as if it had crashed — without
    /// dying, so it keeps telling the referee why — until
    /// `retry_journal` can write again and recovers from the journal.
    fn stall(&mut self, e: &PlugError) {
        tracing::error!(event = "journal_failed", host = %self.host, busy = ?self.busy, error = %e);
        self.refusing = Some(e.to_string());
        self.last_retry = Some(Instant::now());
        // Not running anything any more; an order whose acceptance was
        // not journaled must be sent again by the referee.
        self.busy = None;
    }

    /// While refusing, every `RETRY_JOURNAL_AFTER`: writes to the journal
    /// again; once that works, forgets what is in memory and recovers
    /// from the journal as after a crash — a change cut by the failure is
    /// rolled back from what was journaled and reported as interrupted.
    /// Returns whether the plug takes orders again.
    pub fn retry_journal(&mut self, now: Instant, out: Sink) -> bool {
        if self.refusing.is_none()
            || self
                .last_retry
                .is_some_and(|t| now.duration_since(t) < RETRY_JOURNAL_AFTER)
        {
            return false;
        }
        self.last_retry = Some(now);
        // The plug's own logs never hold the space its journal needs.
        if let Some(l) = &self.logs {
            l.yield_space();
        }
        // The result that could not be journaled, else a record that
        // changes nothing on replay; written durably.
        let probe = self
            .unjournaled
            .clone()
            .unwrap_or(JournalRecord::Acked { upto: self.acked });
        if let Err(e) = self.journal.append(&probe, true) {
            self.refusing = Some(e.to_string());
            return false;
        }
        self.unjournaled = None;
        self.refusing = None;
        self.next_seq = 1;
        self.outbox.clear();
        self.seen.clear();
        self.seqs.clear();
        self.busy = None;
        self.last_resend = None;
        if let Err(e) = self.recover(out) {
            self.stall(&e);
            return false;
        }
        if self.refusing.is_some() {
            return false;
        }
        tracing::info!(event = "journal_resumed", host = %self.host);
        true
    }

    /// Replays the journal; a change left unfinished by a crash is rolled
    /// back now and reported as interrupted. Unacknowledged reports are sent
    /// again.
    pub fn recover(&mut self, out: Sink) -> Result<(), PlugError> {
        let records = self.journal.load()?;
        match self.replay(records, out) {
            Err(e) if e.is_storage() => {
                self.stall(&e);
                Ok(())
            }
            r => r,
        }
    }

    fn replay(&mut self, records: Vec<JournalRecord>, out: Sink) -> Result<(), PlugError> {
        let mut acked = 0;
        let mut changes: BTreeMap<ChangeId, Progress> = BTreeMap::new();
        let mut order: Vec<ChangeId> = Vec::new();
        // A new journal has no incarnation yet: heartbeats say 0 until the
        // referee hands one out (`on_incarnation`).
        for rec in records {
            match rec {
                JournalRecord::Incarnation { id } => self.incarnation = id,
                JournalRecord::Order { change, spec } => {
                    self.seen.insert(change.clone());
                    order.push(change.clone());
                    changes.entry(change).or_default().spec = Some(spec);
                }
                JournalRecord::OrderAt { change, seq, spec } => {
                    self.seqs.insert(change.clone(), seq);
                    self.seen.insert(change.clone());
                    order.push(change.clone());
                    changes.entry(change).or_default().spec = Some(spec);
                }
                JournalRecord::Report(r) => {
                    self.next_seq = self.next_seq.max(r.seq + 1);
                    changes.entry(r.change.clone()).or_default().note(&r.kind);
                    self.outbox.push_back(r);
                }
                JournalRecord::Seen {
                    below,
                    changes,
                    next_seq,
                } => self.fold_seen(below, changes, next_seq),
                JournalRecord::Acked { upto } => acked = acked.max(upto),
            }
        }
        self.acked = acked;
        self.outbox.retain(|r| r.seq > acked);
        for r in &self.outbox {
            out(PlugEvent::Report(r.clone()));
        }
        for change in order {
            let Some(p) = changes.remove(&change) else {
                continue;
            };
            let Some(spec) = p.spec.filter(|_| !p.finished) else {
                continue;
            };
            // Steps that may have touched the host: started and not undone
            // yet, except failed steps that a normal rollback leaves alone.
            // A step cut off mid-way is undone: undo is safe on a partly
            // applied step.
            let undo: Vec<u32> = p
                .started
                .iter()
                .filter(|s| !p.undone.contains(s))
                .filter(|s| {
                    !p.failed.contains(s)
                        || spec
                            .steps
                            .get(**s as usize)
                            .is_some_and(|st| keeps_host_state(&st.action))
                })
                .copied()
                .collect();
            tracing::warn!(event = "change_interrupted", host = %self.host, change = %change, undo = ?undo);
            self.busy = Some(change.clone());
            let failed = p.failed.iter().next().copied();
            self.roll_back(&change, &spec, &undo, failed, Cut::Interrupted, out)?;
        }
        Ok(())
    }

    /// The referee handed out an incarnation: a journal without one takes
    /// it (journaled before use); one that has one keeps it. Returns
    /// whether it was taken.
    pub fn on_incarnation(&mut self, host: &str, id: u64) -> Result<bool, PlugError> {
        if host != self.host || self.incarnation != 0 || id == 0 {
            return Ok(false);
        }
        if let Err(e) = self
            .journal
            .append(&JournalRecord::Incarnation { id }, true)
        {
            // Asked again with the next heartbeat, once it can write.
            self.stall(&e);
            return Ok(false);
        }
        self.incarnation = id;
        tracing::info!(event = "incarnation_taken", host = %self.host, incarnation = id);
        Ok(true)
    }

    fn report(&mut self, change: &str, kind: ReportKind, out: Sink) -> Result<(), PlugError> {
        let r = Report {
            host: self.host.clone(),
            incarnation: self.incarnation,
            seq: self.next_seq,
            change: change.to_owned(),
            at_ms: crate::clock::now_ms(),
            kind,
        };
        // Journaled before it is sent, and before the step it announces
        // touches the host; numbered on only once journaled.
        let rec = JournalRecord::Report(r.clone());
        if let Err(e) = self.journal.append(&rec, true) {
            if matches!(
                r.kind,
                ReportKind::StepFinished { .. }
                    | ReportKind::UndoFinished { .. }
                    | ReportKind::Finished { .. }
            ) {
                self.unjournaled = Some(rec);
            }
            return Err(e);
        }
        self.next_seq += 1;
        self.outbox.push_back(r.clone());
        out(PlugEvent::Report(r));
        // Between steps of a long change, too, what was lost is resent.
        self.tick(Instant::now(), out);
        Ok(())
    }

    /// Handles an order: refuses it if it is not for this host or was
    /// already accepted (a replay), or while the journal cannot be
    /// written; else runs the change to its end. A journal or stash write
    /// that fails on the way stops the change where it is (`stall`).
    pub fn on_order(&mut self, order: Order, out: Sink) -> Result<(), PlugError> {
        if let Some(reason) = &self.refusing {
            tracing::warn!(event = "order_refused", host = %self.host, change = %order.change, reason = "journal_unwritable", error = %reason);
            return Ok(());
        }
        if self.stopping() {
            // Not accepted: the referee sends it again after the restart.
            tracing::info!(event = "order_refused", host = %self.host, change = %order.change, reason = "stopping");
            return Ok(());
        }
        match self.run_order(order, out) {
            Err(e) if e.is_storage() => {
                self.stall(&e);
                Ok(())
            }
            Ok(()) => {
                self.maybe_compact();
                Ok(())
            }
            r => r,
        }
    }

    /// Whether to run `order`: a refused one is only logged
    /// (`order_refused`, with why).
    fn admits(&self, order: &Order) -> bool {
        if order.host != self.host {
            tracing::warn!(event = "order_refused", host = %self.host, change = %order.change, reason = "misaddressed", to = %order.host);
            return false;
        }
        if self.incarnation == 0 {
            // Reports need an incarnation; the referee does not dispatch
            // before it handed one out, so this is a stray order.
            tracing::warn!(event = "order_refused", host = %self.host, change = %order.change, reason = "no_incarnation");
            return false;
        }
        if !safe_id(&order.change) {
            tracing::warn!(event = "order_refused", host = %self.host, reason = "bad_change_id");
            return false;
        }
        if self.seen.contains(&order.change) || order.seq <= self.seen_below {
            tracing::info!(event = "order_refused", host = %self.host, change = %order.change, reason = "replay");
            return false;
        }
        true
    }

    /// Journals an accepted order (with its sequence, for the journal's
    /// compaction); from here it is a replay if sent again.
    fn accept(&mut self, change: &str, seq: u64, spec: &ChangeSpec) -> Result<(), PlugError> {
        self.seen.insert(change.to_owned());
        self.seqs.insert(change.to_owned(), seq);
        let rec = JournalRecord::OrderAt {
            change: change.to_owned(),
            seq,
            spec: spec.clone(),
        };
        self.journal.append(&rec, true)?;
        self.busy = Some(change.to_owned());
        Ok(())
    }

    fn run_order(&mut self, order: Order, out: Sink) -> Result<(), PlugError> {
        if !self.admits(&order) {
            return Ok(());
        }
        let (change, spec) = (order.change, order.spec);
        self.accept(&change, order.seq, &spec)?;
        self.report(&change, ReportKind::Accepted, out)?;
        let mut done = Vec::new();
        let mut failed = None;
        let mut stopped = false;
        for (i, step) in spec.steps.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            if self.stopping() {
                // Asked to stop between two steps: the steps done are
                // undone now, while the tower still runs, rather than left
                // half-applied until it comes back.
                tracing::warn!(event = "change_stopped", host = %self.host, change = %change, before_step = i);
                stopped = true;
                break;
            }
            let stash = self.step_stash(&change, i, &step.action)?;
            // A step's sealed secrets are opened here, for the driver only.
            let prepared =
                crate::opener::for_apply(self.opener.as_ref(), &step.action).and_then(|a| {
                    self.driver
                        .prepare(&a, &stash)
                        .map(|()| a)
                        .map_err(|e| e.to_string())
                });
            let action = match prepared {
                Ok(a) => a,
                Err(e) => {
                    // Not attempted: nothing to undo for this step.
                    let r = StepResult::failed(format!("not attempted: {e}"));
                    let kind = ReportKind::StepFinished { step: i, result: r };
                    self.report(&change, kind, out)?;
                    failed = Some(i);
                    break;
                }
            };
            self.report(&change, ReportKind::StepStarted { step: i }, out)?;
            self.begin_step(&change, i, "apply");
            let result = self.driver.apply(&action, &stash);
            drop(action);
            let result = crate::opener::redact(&step.action, result);
            self.end_step();
            let ok = result.ok;
            self.report(&change, ReportKind::StepFinished { step: i, result }, out)?;
            if !ok {
                if keeps_host_state(&step.action) {
                    done.push(i);
                }
                failed = Some(i);
                break;
            }
            done.push(i);
        }
        if stopped {
            return self.roll_back(&change, &spec, &done, None, Cut::Stopped, out);
        }
        if failed.is_none() {
            self.report(
                &change,
                ReportKind::Finished {
                    outcome: Outcome::Succeeded,
                },
                out,
            )?;
            self.end(&change);
            return Ok(());
        }
        self.roll_back(&change, &spec, &done, failed, Cut::Failed, out)
    }

    /// Undoes `steps` in reverse order, then reports the outcome.
    fn roll_back(
        &mut self,
        change: &str,
        spec: &ChangeSpec,
        steps: &[u32],
        failed_step: Option<u32>,
        why: Cut,
        out: Sink,
    ) -> Result<(), PlugError> {
        let (interrupted, stopped) = (why == Cut::Interrupted, why == Cut::Stopped);
        let mut all_ok = true;
        for &i in steps.iter().rev() {
            let Some(step) = spec.steps.get(i as usize) else {
                continue;
            };
            self.report(change, ReportKind::UndoStarted { step: i }, out)?;
            let stash = self.step_stash(change, i, &step.action)?;
            self.begin_step(change, i, "undo");
            let result = self
                .driver
                .undo(&crate::opener::for_undo(&step.action), &stash);
            self.end_step();
            all_ok &= result.ok;
            self.report(change, ReportKind::UndoFinished { step: i, result }, out)?;
        }
        let outcome = if all_ok {
            Outcome::RolledBack {
                failed_step,
                interrupted,
                stopped,
            }
        } else {
            Outcome::RollbackFailed {
                failed_step,
                interrupted,
                stopped,
            }
        };
        self.report(change, ReportKind::Finished { outcome }, out)?;
        self.end(change);
        Ok(())
    }

    fn end(&mut self, change: &str) {
        self.busy = None;
        self.ended += 1;
        // The stash is only needed until the change is final (journaled above).
        let dir = self.stash.join(change);
        if self.make_stash && dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(event = "stash_kept", path = %dir.display(), error = %e);
            }
        }
    }

    fn step_stash(&self, change: &str, step: u32, action: &Action) -> Result<PathBuf, PlugError> {
        let dir = self.stash.join(change).join(step.to_string());
        if !self.make_stash {
            return Ok(dir);
        }
        let err = |source| PlugError::Stash {
            path: dir.clone(),
            source,
        };
        // The stash holds copies of host files: private from its first
        // directory on, whatever the umask the plug runs under.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)
            .map_err(err)?;
        // A stash holding a host file's previous state must outlive a power
        // loss as its StepStarted record does: sync the new directory
        // entries up to the stash root. A command's stash holds only the
        // mark of its processes, which a power loss ends with them (the
        // mark is written unsynced): two fsyncs a step saved.
        if !keeps_host_state(action) {
            return Ok(dir);
        }
        let change_dir = self.stash.join(change);
        for d in [&change_dir, &self.stash] {
            std::fs::File::open(d)
                .and_then(|f| f.sync_all())
                .map_err(err)?;
        }
        Ok(dir)
    }

    /// The referee stored every report up to `upto`.
    pub fn on_ack(&mut self, upto: u64) -> Result<(), PlugError> {
        let before = self.outbox.len();
        while self.outbox.front().is_some_and(|r| r.seq <= upto) {
            self.outbox.pop_front();
        }
        if self.outbox.len() != before {
            // Not durable: losing it only means resending a few reports.
            if let Err(e) = self.journal.append(&JournalRecord::Acked { upto }, false) {
                self.stall(&e);
                return Ok(());
            }
            self.acked = self.acked.max(upto);
        }
        Ok(())
    }

    /// Sends unacknowledged reports again when they are overdue.
    pub fn tick(&mut self, now: Instant, out: Sink) {
        if self.outbox.is_empty() {
            self.last_resend = None;
            return;
        }
        let last = *self.last_resend.get_or_insert(now);
        if now.duration_since(last) >= RESEND_AFTER {
            self.last_resend = Some(now);
            for r in &self.outbox {
                out(PlugEvent::Report(r.clone()));
            }
        }
    }

    pub fn unacked(&self) -> usize {
        self.outbox.len()
    }
}
