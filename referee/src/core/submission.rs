//! Whether a change program may be queued on a set of hosts, decided
//! without I/O and before anything is written: its shape, its size, and
//! the size of everything the submission would store in the turn (every
//! change copies the title and step names). `submit` and provisioning (a
//! server's init change, checked when asked and again before enrolment
//! writes anything) share it, so an enrolment never fails half-way.
//!
//! And whether the tenant has room for them: changes not yet final are
//! bounded per tenant and in the tower (the setup's `limits:`), so that
//! one tenant queueing without end neither grows the referee's memory
//! without bound nor takes the room of the others.

use vigie_wire::change::ChangeSpec;
use vigie_wire::limits::{Shares, MAX_VALUE};
use vigie_wire::tower::{ApiFault, ApiFaultKind, ChangeState, ChangeView, StepStatus, StepView};

use crate::core::codec::encode;
use crate::core::hosts::Hosts;
use crate::core::model::{change_id, ChangeRecord};
use crate::core::queues::Queues;
use crate::core::turn::{WORK_MAX_BYTES, WORK_MAX_WRITES};

/// Most hosts one submission may target: one turn stores them all.
pub const MAX_SUBMIT_HOSTS: usize = 5_000;

/// A submission that fits: what `submit` then stores.
pub struct Sized {
    /// Each step as a new change shows it.
    pub steps: Vec<StepView>,
    /// The program, encoded once for the whole submission.
    pub spec_bytes: Vec<u8>,
    /// A bound on one change record's size (`Turn::dirty_change`).
    pub record: usize,
}

fn invalid(msg: String) -> ApiFault {
    ApiFault::new(ApiFaultKind::Invalid, msg)
}

/// A change needs a title and a step, whatever its target.
pub fn check_shape(spec: &ChangeSpec) -> Result<(), ApiFault> {
    if spec.steps.is_empty() || spec.title.trim().is_empty() {
        return Err(invalid(
            "a change needs a title and at least one step".into(),
        ));
    }
    Ok(())
}

/// Checks `spec` queued by `operator` of `tenant` on `hosts` (ids):
/// `Invalid`, naming the size, if it cannot be stored in one turn.
pub fn check(
    spec: &ChangeSpec,
    tenant: &str,
    operator: &str,
    hosts: &[String],
) -> Result<Sized, ApiFault> {
    check_shape(spec)?;
    let steps: Vec<StepView> = spec
        .steps
        .iter()
        .map(|s| StepView {
            name: s.name.clone(),
            kind: s.action.kind().to_owned(),
            status: StepStatus::Pending,
            result: None,
            undo: None,
        })
        .collect();
    let spec_bytes = encode(spec);
    if spec_bytes.len() > MAX_VALUE {
        return Err(invalid(format!(
            "the change is {} bytes: at most {MAX_VALUE}",
            spec_bytes.len()
        )));
    }
    if hosts.len() > MAX_SUBMIT_HOSTS {
        return Err(invalid(format!(
            "{} hosts: at most {MAX_SUBMIT_HOSTS} per submission",
            hosts.len()
        )));
    }
    // The program is stored once, but every change copies its title and
    // step names into its record, its audit record and the answer: the
    // whole submission must fit the turn that takes it, one batch.
    let longest = hosts.iter().map(String::len).max().unwrap_or(0);
    let sample = ChangeRecord {
        view: ChangeView {
            id: change_id(u64::MAX),
            host: "h".repeat(longest),
            seq: u64::MAX,
            tenant: tenant.to_owned(),
            operator: operator.to_owned(),
            title: spec.title.clone(),
            state: ChangeState::Queued,
            steps: steps.clone(),
            submitted_ms: u64::MAX,
            updated_ms: u64::MAX,
            waiting: None,
        },
        accepted: false,
        spec_id: change_id(u64::MAX),
    };
    let record = sample.size_bound();
    let audit = 256 + spec.title.len() + longest + tenant.len() + operator.len();
    // The record, its audit record, the queue entry and the keys.
    let per_change = record + audit + 2 * (longest + 64);
    let total = spec_bytes.len() + hosts.len() * per_change;
    if total > WORK_MAX_BYTES || hosts.len() * 3 + 8 > WORK_MAX_WRITES {
        return Err(invalid(format!(
            "the submission would store {total} bytes ({} changes of {per_change} bytes \
             each, the title and step names being copied into every change, and a \
             program of {} bytes): at most {WORK_MAX_BYTES} — target fewer hosts or \
             shorten the title and step names",
            hosts.len(),
            spec_bytes.len()
        )));
    }
    Ok(Sized {
        steps,
        spec_bytes,
        record,
    })
}

/// Whether `adding` more changes fit `tenant`'s share of changes not
/// yet final (queued, or in flight: a host's queue holds both) and the
/// tower's. Refused whole, naming the limit, before anything is stored.
pub fn check_changes_share(
    hosts: &Hosts,
    queues: &Queues,
    l: &Shares,
    tenant: &str,
    adding: usize,
) -> Result<(), ApiFault> {
    let (mut all, mut theirs) = (0u64, 0u64);
    // Only hosts with a queue hold changes not final.
    for h in queues.busy().filter_map(|id| hosts.get(id)) {
        let n = queues.len_of(&h.rec.id) as u64;
        all += n;
        if h.rec.tenant == tenant {
            theirs += n;
        }
    }
    let adding = adding as u64;
    let refuse = |held: u64, most: u64, whose: String, field: &str| {
        ApiFault::new(
            ApiFaultKind::Unavailable,
            format!(
                "{whose} has {held} change(s) not yet final: {adding} more would pass \
                 {most} (limits.{field}); nothing queued, try again when some have ended"
            ),
        )
    };
    if theirs + adding > l.changes_queued_per_tenant {
        return Err(refuse(
            theirs,
            l.changes_queued_per_tenant,
            format!("tenant {tenant}"),
            "changes_queued_per_tenant",
        ));
    }
    if all + adding > l.changes_queued {
        return Err(refuse(
            all,
            l.changes_queued,
            "the tower".into(),
            "changes_queued",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(title: &str) -> ChangeSpec {
        vigie_changes::parse_change(
            "c.yml",
            &format!("title: {title:?}\nsteps:\n  - run: \"true\"\n"),
        )
        .unwrap()
    }

    #[test]
    fn a_small_change_fits_and_a_title_copied_into_every_record_may_not() {
        let hosts = vec!["web-1".to_owned()];
        assert!(check(&spec("init"), "acme", "ops", &hosts).is_ok());
        // Under MAX_VALUE once, but copied into the record, its audit
        // record and the answer: more than one turn may take.
        let title = "x".repeat(3 << 20);
        assert!(encode(&spec(&title)).len() <= MAX_VALUE);
        let err = check(&spec(&title), "acme", "ops", &hosts)
            .err()
            .expect("refused");
        assert_eq!(err.kind, ApiFaultKind::Invalid);
        assert!(err.message.contains("would store"), "{}", err.message);
    }
}
