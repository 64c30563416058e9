//! `audit verify` and `audit` lists off the decision loop: the chain is
//! read (and for verify checked) by a thread with its own Escalator
//! client, so no dispatch waits behind it (a list: `audit_list.rs`). The loop hands it the call and forwards its reply when it
//! comes (an inproc socket the loop polls). Records written once never
//! change, and a turn stores its records with the head that covers them,
//! so the chain up to the head read first is a consistent view while turns
//! go on; a record past that head is one a later turn added, unless the
//! head still says otherwise once the chain is read.

use std::sync::mpsc;

use vigie_escalator::Client;
use vigie_wire::tower::{
    ApiAnswer, ApiCall, ApiFault, ApiFaultKind, ApiReply, AuditRecord, Caller,
};

use crate::core::audit::{self, record_key, verify_chain, AuditChain};
use crate::core::audit_read::Sight;
use crate::core::codec::decode;
use crate::error::RefereeError;
use crate::shell::store::Store;

/// What a call asks of the reader.
enum Work {
    /// `audit verify` for a tenant.
    Verify { tenant: String },
    /// An `audit` list (paged or not), seen as `sight` saw it.
    List {
        sight: Box<Sight>,
        call: Box<ApiCall>,
    },
}

/// A call to answer: the caller's ROUTER identity, its request id, what
/// it asks.
struct Job {
    ident: Vec<u8>,
    id: u64,
    work: Work,
}

/// The loop's end: where to hand calls, and the replies to forward.
pub struct Verifier {
    jobs: mpsc::Sender<Job>,
    /// `[ident, reply]` messages, each ready for the ROUTER.
    pub replies: zmq::Socket,
}

impl Verifier {
    /// Starts the thread, on its own client of `escalator`.
    pub fn start(ctx: &zmq::Context, escalator: &str) -> Result<Self, RefereeError> {
        let escalator = escalator.to_owned();
        let at = format!("inproc://audit-verify-{:p}", ctx);
        let replies = ctx.socket(zmq::PULL)?;
        replies.bind(&at)?;
        let out = ctx.socket(zmq::PUSH)?;
        out.connect(&at)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            // Its own client (a client stays on its thread); without one,
            // the loop answers these calls itself, as `ask` fails.
            let db =
                match Client::connect(&escalator).and_then(|c| c.create(crate::core::model::DB)) {
                    Ok(db) => db,
                    Err(e) => {
                        tracing::error!(event = "verifier_failed", error = %e);
                        return;
                    }
                };
            for job in rx {
                answer(&db, &out, job);
            }
        });
        Ok(Self { jobs, replies })
    }

    /// Hands `caller`'s `audit verify` over; false when the thread is gone.
    pub fn ask(&self, ident: Vec<u8>, id: u64, caller: &Caller) -> bool {
        let tenant = caller.tenant.clone();
        self.send(ident, id, Work::Verify { tenant }).is_ok()
    }

    /// Hands an `audit` list over (`audit_list::off_loop`), or gives the
    /// call back when the thread is gone (the loop then answers it).
    pub fn ask_list(
        &self,
        ident: Vec<u8>,
        id: u64,
        sight: Sight,
        call: ApiCall,
    ) -> Result<(), (Vec<u8>, Box<ApiCall>)> {
        let (sight, call) = (Box::new(sight), Box::new(call));
        match self.send(ident, id, Work::List { sight, call }) {
            Ok(()) => Ok(()),
            Err(Job {
                ident,
                work: Work::List { call, .. },
                ..
            }) => Err((ident, call)),
            Err(Job { ident, .. }) => Err((ident, Box::new(ApiCall::AuditVerify))),
        }
    }

    fn send(&self, ident: Vec<u8>, id: u64, work: Work) -> Result<(), Job> {
        self.jobs
            .send(Job { ident, id, work })
            .map_err(|mpsc::SendError(job)| job)
    }
}

/// Answers one job on the reader's thread and hands the reply to the loop.
fn answer(db: &dyn Store, out: &zmq::Socket, job: Job) {
    let t0 = std::time::Instant::now();
    let what = match &job.work {
        Work::Verify { .. } => "verify",
        Work::List { .. } => "list",
    };
    tracing::info!(event = "audit_reading", id = job.id, what);
    let body = match &job.work {
        Work::Verify { tenant } => verify(db, tenant),
        Work::List { sight, call } => crate::shell::audit_list::list(db, sight, call),
    };
    tracing::info!(
        event = "audit_read",
        id = job.id,
        what,
        ok = body.is_ok(),
        elapsed_ms = t0.elapsed().as_millis() as u64
    );
    let reply = ApiReply { id: job.id, body };
    match vigie_wire::encode(&reply) {
        Ok(frame) => {
            if let Err(e) = out.send_multipart([job.ident, frame], 0) {
                tracing::error!(event = "verify_unsent", error = %e);
            }
        }
        Err(e) => tracing::error!(event = "verify_unsent", error = %e),
    }
}

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

fn head(db: &dyn Store) -> Result<Option<Vec<u8>>, ApiFault> {
    db.get(audit::HEAD_KEY)
        .map_err(|e| fault(ApiFaultKind::Storage, e.to_string()))
}

/// The whole chain checked against its head, record by record (never all
/// in memory); the count is `tenant`'s records only.
pub fn verify(db: &dyn Store, tenant: &str) -> Result<ApiAnswer, ApiFault> {
    let stored = head(db)?;
    let head = match &stored {
        Some(v) => AuditChain::decode_head(v)
            .ok_or_else(|| fault(ApiFaultKind::Tampered, "the audit head is unreadable"))?,
        None => AuditChain::default(),
    };
    let end = record_key(head.last_seq);
    let (mut failed, mut beyond, mut mine) = (None, false, 0u64);
    let records = db
        .scan(audit::PREFIX, None)
        .take_while(|e| {
            let past = e.as_ref().is_ok_and(|(k, _)| *k > end);
            beyond |= past;
            !past
        })
        .map_while(|e| {
            let read = e
                .map_err(|e| fault(ApiFaultKind::Storage, e.to_string()))
                .and_then(|(k, v)| {
                    decode::<AuditRecord>(&k, &v)
                        .map_err(|err| fault(ApiFaultKind::Tampered, err.to_string()))
                });
            read.map_err(|f| failed = Some(f)).ok()
        })
        .inspect(|r| mine += u64::from(r.tenant == tenant));
    let verified = verify_chain(records, &head);
    if let Some(f) = failed {
        return Err(f);
    }
    let at = verified.map_err(|e| fault(ApiFaultKind::Tampered, e))?;
    if beyond && self::head(db)? == stored {
        return Err(fault(
            ApiFaultKind::Tampered,
            format!(
                "records follow record {} but the head says the chain ends there: records were added",
                at.last_seq
            ),
        ));
    }
    Ok(ApiAnswer::AuditVerified {
        records: mine,
        head: at.last_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::codec::encode;
    use crate::shell::mem_store::MemStore;
    use crate::shell::store::Writes;

    fn rec(tenant: &str) -> AuditRecord {
        AuditRecord {
            seq: 0,
            at_ms: 1,
            tenant: tenant.into(),
            operator: "op".into(),
            host: "web-1".into(),
            change: "c1".into(),
            step: None,
            action: "submitted".into(),
            summary: "s".into(),
            exit_code: None,
            before_digest: None,
            after_digest: None,
            output_tail: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
            tenant_seq: 0,
        }
    }

    /// Stores `n` records sealed on `chain`, with its head when `head`.
    fn append(db: &MemStore, chain: &mut AuditChain, n: usize, head: bool) {
        let mut w: Writes = (0..n)
            .map(|i| {
                let r = chain.seal(rec(if i % 2 == 0 { "a" } else { "b" }));
                (record_key(r.seq), Some(encode(&r)))
            })
            .collect();
        if head {
            w.push((audit::HEAD_KEY.to_vec(), Some(chain.encode_head())));
        }
        db.write(&mut w).unwrap();
    }

    #[test]
    fn verify_reads_to_the_head_and_catches_edits_and_records_past_it() {
        let db = MemStore::default();
        let mut chain = AuditChain::default();
        append(&db, &mut chain, 5, true);
        match verify(&db, "a") {
            Ok(ApiAnswer::AuditVerified { records, head }) => {
                assert_eq!((records, head), (3, chain.last_hash.clone()));
            }
            other => panic!("{other:?}"),
        }
        // Records past the head with the head unchanged: not a later turn.
        append(&db, &mut chain, 2, false);
        let e = verify(&db, "a").unwrap_err();
        assert_eq!(e.kind, ApiFaultKind::Tampered, "{e:?}");
        assert!(e.message.contains("added"), "{}", e.message);
        let mut w: Writes = vec![(audit::HEAD_KEY.to_vec(), Some(chain.encode_head()))];
        db.write(&mut w).unwrap();
        assert!(verify(&db, "a").is_ok());
        // An edited record.
        let key = record_key(2);
        let mut r: AuditRecord = decode(&key, &db.get(&key).unwrap().unwrap()).unwrap();
        r.summary = "nothing to see".into();
        let mut w: Writes = vec![(key, Some(encode(&r)))];
        db.write(&mut w).unwrap();
        let e = verify(&db, "a").unwrap_err();
        assert!(e.message.contains("edited"), "{}", e.message);
    }
}
