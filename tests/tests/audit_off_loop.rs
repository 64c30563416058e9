//! `audit` calls that read much of the chain (a filter that matches
//! nothing) are answered off the referee's decision loop: a change
//! submitted while one reads a long chain is dispatched and finished
//! before that read ends, not behind it.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use vigie_client::ApiClient;
use vigie_tests::{Event, Launcher, Setup};
use vigie_wire::tower::{ApiAnswer, ApiCall, AuditFilter, AuditRecord};

/// Records added to the chain: enough that reading them all takes far
/// longer than one dispatch.
const SEEDED: u64 = 100_000;

fn stamp(e: &Event) -> anyhow::Result<SystemTime> {
    Ok(humantime::parse_rfc3339(
        e.str("timestamp").context("a timestamp")?,
    )?)
}

/// Appends `SEEDED` records of the default tenant to the stored chain
/// (their hashes are not checked by a list), with its head and counter,
/// then restarts the referee so it continues from there.
fn seed(tower: &Launcher) -> anyhow::Result<()> {
    let client = vigie_escalator::Client::connect(&tower.endpoint("escalator"))?;
    client.set_timeouts(Duration::from_secs(10), Duration::from_secs(300));
    let db = client.create("tower")?;
    let head = db.get(b"audit/head")?.unwrap_or_else(|| b"0 -".to_vec());
    let head = String::from_utf8(head)?;
    let last: u64 = head.split(' ').next().context("head")?.parse()?;
    let tenant_key = b"audit/tenant/default";
    let mine = match db.get(tenant_key)? {
        Some(v) => u64::from_be_bytes(v.as_slice().try_into()?),
        None => 0,
    };
    let mut batch = db.batch();
    for i in 1..=SEEDED {
        let r = AuditRecord {
            seq: last + i,
            at_ms: 1,
            tenant: "default".into(),
            operator: "someone".into(),
            host: "web-1".into(),
            change: format!("old{i}"),
            step: None,
            action: "finished".into(),
            summary: "old".into(),
            exit_code: Some(0),
            before_digest: None,
            after_digest: None,
            output_tail: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
            tenant_seq: mine + i,
        };
        let key = format!("audit/rec/{:020}", last + i);
        batch.put(key.as_bytes(), &vigie_wire::encode(&r)?);
        if batch.len() >= 5_000 {
            std::mem::replace(&mut batch, db.batch()).write()?;
        }
    }
    batch.put(
        b"audit/head",
        format!("{} seeded", last + SEEDED).as_bytes(),
    );
    batch.put(tenant_key, &(mine + SEEDED).to_be_bytes());
    batch.write()?;
    tower.kill_child("referee")
}

#[test]
fn a_dispatch_does_not_wait_behind_an_audit_that_reads_the_whole_chain() -> anyhow::Result<()> {
    let tower = Launcher::start(Setup::new("offloop").host("web-1", &[]))?;
    seed(&tower)?;
    let (api, orders) = (tower.endpoint("api"), tower.endpoint("orders"));
    let audit = std::thread::spawn(move || -> anyhow::Result<ApiAnswer> {
        let mut reader = ApiClient::direct(&api, &orders, Launcher::caller())?;
        reader.set_timeout(Duration::from_secs(600));
        Ok(reader.call(ApiCall::Audit {
            host: None,
            change: None,
            limit: 100,
            filter: Box::new(AuditFilter {
                operator: Some("nobody".into()),
                ..AuditFilter::default()
            }),
        })?)
    });
    let reading = tower
        .events()
        .wait_n("audit_reading", 1, Duration::from_secs(60), |e| {
            e.name == "audit_reading" && e.str("what") == Some("list")
        })?;
    let spec = vigie_changes::parse_change("t.yml", "title: t\nsteps:\n  - run: true\n")?;
    let v = tower.api()?.changes(ApiCall::Submit {
        spec,
        target: "web-1".into(),
    })?;
    anyhow::ensure!(v.len() == 1, "one change: {v:?}");
    let finished = tower.until_changes_finished(1, Duration::from_secs(120))?;
    let read = tower
        .events()
        .wait_n("audit_read", 1, Duration::from_secs(600), |e| {
            e.name == "audit_read" && e.str("what") == Some("list")
        })?;
    let answer = audit
        .join()
        .map_err(|_| anyhow::anyhow!("audit thread"))??;
    anyhow::ensure!(
        matches!(&answer, ApiAnswer::Audit(v) if v.is_empty()),
        "nobody's records: {answer:?}"
    );
    let (began, done, ended) = (stamp(&reading)?, stamp(&finished)?, stamp(&read)?);
    anyhow::ensure!(
        began <= done && done < ended,
        "the change finished at {done:?}, outside the audit read ({began:?} to {ended:?}): \
         it waited behind it"
    );
    Ok(())
}
