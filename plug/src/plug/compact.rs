//! The journal's compaction: every so many changes, once the plug is idle,
//! the journal is rewritten as what a recovery needs — its incarnation,
//! a `Seen` record folding every change accepted so far (the highest
//! referee sequence among them, plus the ids of any accepted without
//! one), where reports go on, the acknowledgement, and the reports not
//! acknowledged yet. An order of a folded change is still a replay,
//! refused, after the rewrite and after a restart: the referee hands a
//! host its changes in sequence order (`Order::seq`, its FIFO), so an
//! order at or below the highest sequence already run can only be one
//! seen before. The journal stays about the size of what is in flight.

use super::Plug;
use crate::journal::JournalRecord;

/// Changes ended between two compactions.
pub const COMPACT_EVERY: usize = 256;

impl Plug {
    /// Compacts the journal when enough changes ended since the last time
    /// and nothing runs; a failure leaves the journal as it was (or
    /// stalls the plug, when the new file could not be opened).
    pub(super) fn maybe_compact(&mut self) {
        if self.ended < COMPACT_EVERY
            || self.busy.is_some()
            || self.refusing.is_some()
            || self.unjournaled.is_some()
        {
            return;
        }
        if let Err(e) = self.compact() {
            tracing::warn!(event = "journal_compaction_failed", host = %self.host, error = %e);
            if e.is_storage() {
                self.stall(&e);
            }
        }
    }

    /// A `Seen` record replayed: the changes it folded are replays.
    pub(super) fn fold_seen(&mut self, below: u64, changes: Vec<String>, next_seq: u64) {
        self.seen_below = self.seen_below.max(below);
        self.seen.extend(changes);
        self.next_seq = self.next_seq.max(next_seq);
    }

    fn compact(&mut self) -> Result<(), crate::PlugError> {
        let mut below = self.seen_below;
        let mut unnumbered: Vec<_> = Vec::new();
        for id in &self.seen {
            match self.seqs.get(id) {
                Some(seq) => below = below.max(*seq),
                None => unnumbered.push(id.clone()),
            }
        }
        unnumbered.sort();
        let mut records = Vec::new();
        if self.incarnation != 0 {
            records.push(JournalRecord::Incarnation {
                id: self.incarnation,
            });
        }
        records.push(JournalRecord::Seen {
            below,
            changes: unnumbered.clone(),
            next_seq: self.next_seq,
        });
        records.push(JournalRecord::Acked { upto: self.acked });
        records.extend(self.outbox.iter().cloned().map(JournalRecord::Report));
        if !self.journal.rewrite(&records)? {
            return Ok(());
        }
        tracing::info!(
            event = "journal_compacted",
            host = %self.host,
            folded = self.seen.len(),
            below,
            records = records.len()
        );
        self.seen = unnumbered.into_iter().collect();
        self.seqs.clear();
        self.seen_below = below;
        self.ended = 0;
        Ok(())
    }
}
