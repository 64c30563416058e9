//! The queues: every change not final in its host's FIFO by the
//! sequence the referee assigned, the programs those changes run (one
//! copy per submission, counted by its changes), which hosts have a
//! queue, the next sequence, and the most recent final changes. This
//! module is their only writer, so their invariants ([`Queues::check`])
//! are kept in one place; a change's record may be changed through
//! [`Queues::change_mut`] in its state and acceptance, never in its
//! host, sequence or program.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use vigie_wire::change::ChangeSpec;
use vigie_wire::tower::{ChangeId, ChangeView, HostId};

use crate::core::model::{queue_key, ChangeRecord, NEXT_SEQ_KEY};
use crate::core::turn::Turn;

/// How many finished changes `status` lists from memory.
pub const RECENT: usize = 1_000;

/// A submission's program, shared by its changes.
#[derive(Debug)]
pub struct Program {
    pub spec: Arc<ChangeSpec>,
    /// How many changes not final run it.
    pub users: usize,
    /// Its encoded size: what an order for it weighs.
    pub bytes: usize,
}

#[derive(Debug)]
pub struct Queues {
    /// Per host with changes not final, those by sequence: the head is
    /// in flight or next. A host without any has no entry, so the keys
    /// are the busy hosts, the only ones a tick must look at.
    per_host: BTreeMap<HostId, BTreeMap<u64, ChangeId>>,
    changes: HashMap<ChangeId, ChangeRecord>,
    /// Programs of the changes not final, by spec id.
    specs: HashMap<String, Program>,
    next_seq: u64,
    recent: VecDeque<ChangeView>,
}

impl Queues {
    /// Empty queues after a start that read `next_seq` and the `recent`
    /// final changes (oldest first).
    pub fn new(next_seq: u64, recent: Vec<ChangeView>) -> Self {
        Self {
            per_host: BTreeMap::new(),
            changes: HashMap::new(),
            specs: HashMap::new(),
            next_seq,
            recent: recent.into(),
        }
    }

    /// A queued change a start read, with its program (taken from
    /// `programs` the first time one of its changes is met).
    pub fn load(
        &mut self,
        rec: ChangeRecord,
        programs: &HashMap<String, (Arc<ChangeSpec>, usize)>,
    ) -> Result<(), &'static str> {
        let entry = match self.specs.entry(rec.spec_id.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let (spec, bytes) = programs.get(&rec.spec_id).ok_or("missing")?;
                e.insert(Program {
                    spec: Arc::clone(spec),
                    users: 0,
                    bytes: *bytes,
                })
            }
        };
        entry.users += 1;
        self.insert(rec);
        Ok(())
    }

    fn insert(&mut self, rec: ChangeRecord) {
        let (host, seq, id) = (&rec.view.host, rec.view.seq, &rec.view.id);
        self.per_host
            .entry(host.clone())
            .or_default()
            .insert(seq, id.clone());
        self.changes.insert(id.clone(), rec);
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The most recent final changes, oldest first.
    pub fn recent(&self) -> &VecDeque<ChangeView> {
        &self.recent
    }

    /// A change not final.
    pub fn change(&self, id: &str) -> Option<&ChangeRecord> {
        self.changes.get(id)
    }

    /// A change not final, to change its state or acceptance (never its
    /// host, sequence or program).
    pub fn change_mut(&mut self, id: &str) -> Option<&mut ChangeRecord> {
        self.changes.get_mut(id)
    }

    /// Every change not final, in no order.
    pub fn changes(&self) -> impl Iterator<Item = &ChangeRecord> {
        self.changes.values()
    }

    /// How many changes are not final.
    pub fn pending(&self) -> usize {
        self.changes.len()
    }

    /// The program a change not final runs, by spec id.
    pub fn program(&self, spec_id: &str) -> Option<&Program> {
        self.specs.get(spec_id)
    }

    /// A change not final and its program, together (dispatching one
    /// changes the first and reads the second).
    pub fn change_and_program(&mut self, id: &str) -> Option<(&mut ChangeRecord, &Program)> {
        let rec = self.changes.get_mut(id)?;
        let program = self.specs.get(&rec.spec_id)?;
        Some((rec, program))
    }

    /// The hosts with changes not final, by id.
    pub fn busy(&self) -> impl Iterator<Item = &HostId> {
        self.per_host.keys()
    }

    /// `host`'s changes not final, by sequence.
    pub fn queue(&self, host: &str) -> impl Iterator<Item = (&u64, &ChangeId)> {
        self.per_host.get(host).into_iter().flatten()
    }

    /// The head of `host`'s queue: in flight, or next.
    pub fn head(&self, host: &str) -> Option<&ChangeId> {
        self.per_host.get(host)?.values().next()
    }

    /// How many changes `host`'s queue holds.
    pub fn len_of(&self, host: &str) -> usize {
        self.per_host.get(host).map_or(0, BTreeMap::len)
    }

    /// How many changes of `host` are ahead of sequence `seq`.
    pub fn ahead(&self, host: &str, seq: u64) -> usize {
        self.per_host
            .get(host)
            .map_or(0, |q| q.range(..seq).count())
    }

    /// A submission's program, counted already by the changes about to
    /// be queued with it.
    pub fn add_program(&mut self, spec_id: String, program: Program) {
        self.specs.insert(spec_id, program);
    }

    /// The sequence for the next change (stored by `persist_next_seq`).
    pub fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Queues a new change on its host at its sequence, with the write
    /// of its queue entry.
    pub fn enqueue(&mut self, rec: ChangeRecord, turn: &mut Turn) {
        turn.put(
            queue_key(&rec.view.host, rec.view.seq),
            rec.view.id.clone().into_bytes(),
        );
        self.insert(rec);
    }

    pub fn persist_next_seq(&self, turn: &mut Turn) {
        turn.put(NEXT_SEQ_KEY.to_vec(), self.next_seq.to_be_bytes().to_vec());
    }

    /// Removes a change that became final from its host's queue (its
    /// record stays until the turn ends: [`Queues::finish`]).
    pub fn dequeue(&mut self, host: &str, seq: u64, turn: &mut Turn) {
        if let Some(q) = self.per_host.get_mut(host) {
            q.remove(&seq);
            if q.is_empty() {
                self.per_host.remove(host);
            }
        }
        turn.delete(queue_key(host, seq));
    }

    /// A final change leaves memory for the recent ones; its program
    /// goes when no other change runs it.
    pub fn finish(&mut self, id: &str, view: ChangeView) {
        if let Some(rec) = self.changes.remove(id) {
            self.release_spec(&rec.spec_id);
        }
        self.recent.push_back(view);
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }

    /// One change fewer uses this program: forget it when none does.
    fn release_spec(&mut self, spec_id: &str) {
        if let Some(entry) = self.specs.get_mut(spec_id) {
            entry.users = entry.users.saturating_sub(1);
            if entry.users == 0 {
                self.specs.remove(spec_id);
            }
        }
    }

    /// A removed host's queue (its changes ended before).
    pub fn forget_host(&mut self, host: &str) {
        self.per_host.remove(host);
    }

    /// The invariants, as they hold between turns: each change not final
    /// is in its host's queue at its sequence and nowhere else, a host
    /// listed has a queue, each program is counted by the changes that
    /// run it, and `next_seq` is above every sequence. The referee's
    /// tests check them after every stored turn.
    #[cfg(test)]
    pub fn check(&self) -> Result<(), String> {
        let mut queued = 0;
        for (host, q) in &self.per_host {
            if q.is_empty() {
                return Err(format!("{host}: busy is not whether it has a queue"));
            }
            for (seq, id) in q {
                let rec = self
                    .changes
                    .get(id)
                    .ok_or_else(|| format!("{host} queues {id}, unknown"))?;
                if (&rec.view.host, rec.view.seq) != (host, *seq) {
                    return Err(format!("{id} is queued on {host} at {seq}, not its own"));
                }
                if *seq >= self.next_seq {
                    return Err(format!("{id} has {seq}, next_seq is {}", self.next_seq));
                }
                queued += 1;
            }
        }
        if queued != self.changes.len() {
            return Err("a change not final is in no queue".into());
        }
        self.check_programs()
    }

    #[cfg(test)]
    fn check_programs(&self) -> Result<(), String> {
        let mut users: HashMap<&str, usize> = HashMap::new();
        for rec in self.changes.values() {
            *users.entry(rec.spec_id.as_str()).or_default() += 1;
        }
        for (id, p) in &self.specs {
            if users.get(id.as_str()) != Some(&p.users) {
                return Err(format!("program {id} counts {} users", p.users));
            }
        }
        if users.keys().any(|id| !self.specs.contains_key(*id)) {
            return Err("a change runs a program not held".into());
        }
        Ok(())
    }

    /// A program's count, to plant a fault the check must see (tests).
    #[cfg(test)]
    pub fn program_mut(&mut self, spec_id: &str) -> Option<&mut Program> {
        self.specs.get_mut(spec_id)
    }

    /// Empties a host's queue behind its changes' backs (tests).
    #[cfg(test)]
    pub fn clear_queue(&mut self, host: &str) {
        self.per_host.remove(host);
    }
}
