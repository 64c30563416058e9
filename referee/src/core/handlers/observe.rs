//! What hosts say of themselves besides changes, kept in memory only:
//! host metrics (the latest sample per host, stale after a few of its
//! intervals) and logs requests waiting for their host's answer. Neither
//! is tower state: nothing here is ever written to Escalator, and a
//! restarted referee simply starts without samples (`metrics` shows none
//! until the next one, a few seconds later) and without pending requests
//! (their callers' clients time out and say so).
//!
//! A logs call is answered later: the referee publishes a
//! `Published::LogsRequest` on the host's exact topic (like an order; the
//! majordomo relays it to an agent), the plug answers with a bounded chunk
//! on its PUSH (`PlugEvent::Logs`), and the referee sends that as the
//! call's reply. A host offline, or silent past [`LOGS_TIMEOUT`], is a
//! clear `Unavailable`.

use std::time::Instant;

use vigie_wire::observe::{HostMetricsView, HostSample, LogsQuery, LogsRequest};
use vigie_wire::tower::{host_topic, ApiAnswer, ApiFault, ApiFaultKind, Caller, HostId, Published};

use crate::core::observed::{stale, unavailable, Pending, LOGS_TIMEOUT};
use crate::core::scope::Visible;
use crate::core::state::Core;
use crate::core::turn::Turn;

/// A host's sample, kept if the host is registered (a plug may only
/// speak for itself: the majordomo checked an agent's key).
pub fn host_sample(core: &mut Core, sample: HostSample, now: Instant) {
    if core.hosts().contains(&sample.host) {
        core.observed_mut().keep_sample(sample, now);
    }
}

/// The latest samples of the hosts the caller may read.
pub fn host_metrics(
    core: &Core,
    caller: &Caller,
    host: Option<HostId>,
    now: Instant,
) -> Result<ApiAnswer, ApiFault> {
    if let Some(h) = &host {
        check_known_host(core, caller, h)?;
    }
    let vis = Visible::of(caller);
    let views = core
        .hosts()
        .values()
        .filter(|h| host.as_ref().is_none_or(|want| *want == h.rec.id))
        .filter(|h| vis.host(&h.rec.tenant, &h.rec.id, &h.rec.labels))
        .map(|h| match core.observed().sample(&h.rec.id) {
            Some((s, at)) => {
                let age = now.duration_since(*at);
                HostMetricsView {
                    host: h.rec.id.clone(),
                    stale: stale(s, age),
                    age_ms: age.as_millis() as u64,
                    sample: Some(s.clone()),
                }
            }
            None => HostMetricsView {
                host: h.rec.id.clone(),
                sample: None,
                age_ms: 0,
                stale: true,
            },
        })
        .collect();
    Ok(ApiAnswer::HostMetrics(views))
}

/// Scope first (another tenant's host does not exist), then existence.
fn check_known_host(core: &Core, caller: &Caller, host: &str) -> Result<(), ApiFault> {
    super::scope::check_host(core, caller, host)?;
    if !core.hosts().contains(host) {
        return Err(ApiFault::new(
            ApiFaultKind::NotFound,
            format!("no host {host}"),
        ));
    }
    Ok(())
}

/// A logs call: asks the host, answered by `Observed::logs_answer` or
/// the timeout. An error is answered at once.
pub fn logs_call(
    core: &mut Core,
    caller: &Caller,
    query: LogsQuery,
    ident: Vec<u8>,
    reply_id: u64,
    now: Instant,
    turn: &mut Turn,
) -> Result<(), ApiFault> {
    check_known_host(core, caller, &query.host)?;
    let online = core.hosts().get(&query.host).is_some_and(|h| h.online);
    if !online {
        return Err(unavailable(format!(
            "host {} is offline: its logs stay on it (within its retention) and can be read \
             when it is back",
            query.host
        )));
    }
    let asker = (caller.tenant.clone(), caller.operator.clone());
    core.observed().check_logs_share(&asker, core.limits())?;
    let request = core.observed_mut().next_request();
    let host = query.host.clone();
    let max_bytes = query.max_bytes.clamp(1, vigie_wire::observe::MAX_LOG_CHUNK) as usize;
    turn.publish.push((
        vec![host_topic(&host)],
        Published::LogsRequest(LogsRequest { request, query }),
    ));
    core.observed_mut().wait(
        request,
        Pending {
            asker,
            ident,
            reply_id,
            host,
            max_bytes,
            deadline: now + LOGS_TIMEOUT,
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::observed::MAX_NOTE;
    use std::time::Duration;
    use vigie_wire::observe::{LogSource, LogsChunk, LogsPage};

    fn online_tower(store: &crate::shell::test_store::TestStore, now: Instant) -> Core {
        let mut tower = store.tower();
        let beat = crate::core::handlers::events::Beat {
            incarnation: 1,
            labels: Default::default(),
            busy: None,
            refusing: None,
        };
        crate::core::handlers::events::heartbeat(
            &mut tower,
            "web-1",
            beat,
            now,
            &mut Turn::started(),
        );
        tower
    }

    fn query(host: &str) -> LogsQuery {
        LogsQuery {
            host: host.into(),
            source: LogSource::Steps { change: None },
            since_ms: None,
            cursor: None,
            max_bytes: 1024,
        }
    }

    fn caller() -> Caller {
        Caller::internal("default", "t")
    }

    #[test]
    fn samples_are_kept_for_known_hosts_only_and_go_stale() {
        let store = crate::shell::test_store::store();
        let now = Instant::now();
        let mut tower = online_tower(&store, now);
        for host in ["web-1", "ghost"] {
            let s = HostSample {
                host: host.into(),
                interval_ms: 10_000,
                cpus: 2,
                ..HostSample::default()
            };
            host_sample(&mut tower, s, now);
        }
        let ApiAnswer::HostMetrics(v) = host_metrics(&tower, &caller(), None, now).unwrap() else {
            panic!()
        };
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].host.as_str(), v[0].stale), ("web-1", false));
        let later = now + Duration::from_secs(31);
        let ApiAnswer::HostMetrics(v) = host_metrics(&tower, &caller(), None, later).unwrap()
        else {
            panic!()
        };
        assert!(v[0].stale);
        let e = host_metrics(&tower, &caller(), Some("ghost".into()), now).unwrap_err();
        assert_eq!(e.kind, ApiFaultKind::NotFound);
    }

    /// The operator's logs request for `host`, answered to `ident` under `id`.
    fn ask(
        tower: &mut Core,
        host: &str,
        ident: Vec<u8>,
        id: u64,
        now: Instant,
        turn: &mut Turn,
    ) -> Result<(), ApiFault> {
        logs_call(tower, &caller(), query(host), ident, id, now, turn)
    }

    #[test]
    fn a_logs_call_is_answered_by_its_host_or_the_timeout() {
        let store = crate::shell::test_store::store();
        let now = Instant::now();
        let mut tower = online_tower(&store, now);
        let mut turn = Turn::started();
        ask(&mut tower, "web-1", b"id".to_vec(), 7, now, &mut turn).unwrap();
        let Some((topics, Published::LogsRequest(req))) = turn.publish.pop() else {
            panic!("no request published")
        };
        assert_eq!(topics, vec![host_topic("web-1")]);
        // Another host cannot answer in its place.
        let page = |host: &str| LogsChunk {
            host: host.into(),
            request: req.request,
            body: Ok(LogsPage::default()),
        };
        tower.observed_mut().logs_answer(page("web-2"), &mut turn);
        assert!(turn.replies.is_empty());
        tower.observed_mut().logs_answer(page("web-1"), &mut turn);
        let (ident, reply) = turn.replies.pop().unwrap();
        assert_eq!((ident.as_slice(), reply.id), (&b"id"[..], 7));
        assert!(matches!(reply.body, Ok(ApiAnswer::Logs(_))));

        // Silent host: a clear error after the timeout, not before.
        ask(&mut tower, "web-1", b"id".to_vec(), 8, now, &mut turn).unwrap();
        tower
            .observed_mut()
            .expire_logs(now + Duration::from_secs(5), &mut turn);
        assert!(turn.replies.is_empty());
        tower
            .observed_mut()
            .expire_logs(now + LOGS_TIMEOUT, &mut turn);
        let (_, reply) = turn.replies.pop().unwrap();
        let fault = reply.body.unwrap_err();
        assert_eq!(fault.kind, ApiFaultKind::Unavailable);
        assert!(fault.message.contains("did not answer"), "{fault:?}");

        // Unknown host, offline host.
        let e = ask(&mut tower, "nosuch", vec![1], 9, now, &mut turn).unwrap_err();
        assert_eq!(e.kind, ApiFaultKind::NotFound);
        tower.tick(now + Duration::from_secs(10), &mut turn);
        let e = ask(&mut tower, "web-1", vec![1], 9, now, &mut turn).unwrap_err();
        assert_eq!(e.kind, ApiFaultKind::Unavailable);
        assert!(e.message.contains("offline"), "{e:?}");
    }

    #[test]
    fn a_lying_sample_is_bounded_and_a_removed_host_forgets_it() {
        let store = crate::shell::test_store::store();
        let now = Instant::now();
        let mut tower = online_tower(&store, now);
        let service = |name: String| vigie_wire::observe::ServiceState {
            name,
            instance: "1".into(),
            replica: "1".into(),
            running: true,
        };
        let s = HostSample {
            host: "web-1".into(),
            interval_ms: u64::MAX,
            services: vec![service("x".repeat(1 << 20)), service("auto-a-b-c".into())],
            ..HostSample::default()
        };
        host_sample(&mut tower, s, now);
        let year = now + Duration::from_secs(365 * 24 * 3600);
        let ApiAnswer::HostMetrics(v) = host_metrics(&tower, &caller(), None, year).unwrap() else {
            panic!()
        };
        assert!(
            v[0].stale,
            "a claimed interval of u64::MAX does not keep it fresh"
        );
        let kept = v[0].sample.as_ref().unwrap();
        assert_eq!(kept.services.len(), 1, "the 1 MiB name is dropped");
        assert_eq!(kept.services_omitted, 1);
        tower.observed_mut().forget_sample("web-1");
        let ApiAnswer::HostMetrics(v) = host_metrics(&tower, &caller(), None, now).unwrap() else {
            panic!()
        };
        assert!(v[0].sample.is_none());
    }

    #[test]
    fn a_logs_answer_larger_than_asked_is_refused_and_notes_are_cut() {
        let store = crate::shell::test_store::store();
        let now = Instant::now();
        let mut tower = online_tower(&store, now);
        let mut turn = Turn::started();
        let ask = |tower: &mut Core, turn: &mut Turn| {
            logs_call(
                tower,
                &caller(),
                query("web-1"),
                b"id".to_vec(),
                1,
                now,
                turn,
            )
            .unwrap();
            match turn.publish.pop() {
                Some((_, Published::LogsRequest(req))) => req.request,
                other => panic!("{other:?}"),
            }
        };
        let request = ask(&mut tower, &mut turn);
        let page = LogsPage {
            text: "x".repeat(1025),
            ..LogsPage::default()
        };
        tower.observed_mut().logs_answer(
            LogsChunk {
                host: "web-1".into(),
                request,
                body: Ok(page),
            },
            &mut turn,
        );
        let (_, reply) = turn.replies.pop().unwrap();
        let fault = reply.body.unwrap_err();
        assert!(
            fault.message.contains("more than the 1024 asked"),
            "{fault:?}"
        );
        let request = ask(&mut tower, &mut turn);
        tower.observed_mut().logs_answer(
            LogsChunk {
                host: "web-1".into(),
                request,
                body: Err("é".repeat(1 << 20)),
            },
            &mut turn,
        );
        let (_, reply) = turn.replies.pop().unwrap();
        assert!(reply.body.unwrap_err().message.len() < 2 * MAX_NOTE);
    }

    #[test]
    fn one_operator_cannot_take_every_waiting_logs_slot() {
        let store = crate::shell::test_store::store();
        let now = Instant::now();
        let mut tower = online_tower(&store, now);
        let mut turn = Turn::started();
        for i in 0..u64::from(tower.limits().logs_waiting_per_operator) {
            logs_call(
                &mut tower,
                &caller(),
                query("web-1"),
                vec![1],
                i,
                now,
                &mut turn,
            )
            .unwrap();
        }
        let e = logs_call(
            &mut tower,
            &caller(),
            query("web-1"),
            vec![1],
            99,
            now,
            &mut turn,
        )
        .unwrap_err();
        assert_eq!(e.kind, ApiFaultKind::Unavailable);
        assert!(e.message.contains("of your logs requests"), "{e:?}");
        let other = Caller::internal("default", "u");
        logs_call(
            &mut tower,
            &other,
            query("web-1"),
            vec![2],
            100,
            now,
            &mut turn,
        )
        .unwrap();
    }

    /// Issue 18, attack 3: a tenant with 63 operators and a host that
    /// never answers asked until the tower was full; every other
    /// tenant's logs were refused.
    #[test]
    fn a_tenant_with_many_operators_and_a_silent_host_leaves_other_tenants_their_logs() {
        let store = crate::shell::test_store::store();
        let now = Instant::now();
        let mut tower = online_tower(&store, now);
        let mut turn = Turn::started();
        let beat = || crate::core::handlers::events::Beat {
            incarnation: 1,
            labels: Default::default(),
            busy: None,
            refusing: None,
        };
        crate::core::handlers::host_labels::new_host(
            &mut tower,
            "acme",
            "silent-1",
            Default::default(),
            &mut turn,
        );
        crate::core::handlers::events::heartbeat(&mut tower, "silent-1", beat(), now, &mut turn);
        let share = tower.limits().logs_waiting_per_tenant as usize;
        let mut waiting = 0;
        for op in 0..63 {
            let acme = Caller::internal("acme", &format!("op-{op}"));
            for i in 0..16 {
                let id = (op * 100 + i) as u64;
                if logs_call(
                    &mut tower,
                    &acme,
                    query("silent-1"),
                    vec![1],
                    id,
                    now,
                    &mut turn,
                )
                .is_ok()
                {
                    waiting += 1;
                }
            }
        }
        assert_eq!(waiting, share, "acme waits for its share, no more");
        let e = logs_call(
            &mut tower,
            &Caller::internal("acme", "op-99"),
            query("silent-1"),
            vec![1],
            1,
            now,
            &mut turn,
        )
        .unwrap_err();
        assert_eq!(e.kind, ApiFaultKind::Unavailable);
        assert!(e.message.contains("logs_waiting_per_tenant"), "{e:?}");
        // Another tenant's logs are still asked for.
        logs_call(
            &mut tower,
            &caller(),
            query("web-1"),
            b"b".to_vec(),
            7,
            now,
            &mut turn,
        )
        .expect("tenant default still reads its logs");
        // Nothing lost: each of acme's waiting callers gets an answer.
        turn.replies.clear();
        tower
            .observed_mut()
            .expire_logs(now + LOGS_TIMEOUT, &mut turn);
        assert_eq!(turn.replies.len(), share + 1);
    }

    #[test]
    fn a_sample_is_stale_after_three_of_its_intervals() {
        let s = HostSample {
            interval_ms: 10_000,
            ..HostSample::default()
        };
        assert!(!stale(&s, Duration::from_secs(29)));
        assert!(stale(&s, Duration::from_secs(31)));
    }
}
