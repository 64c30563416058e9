//! The metrics endpoint is the tower's only HTTP port and shows every
//! tenant's hosts: a local user without the tower's bearer token
//! (`DATA/keys/metrics.token`, 0600) gets a bare 401, whatever he asks,
//! and a scrape loop — authenticated or not — does not grow the tower's
//! log.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use serde_json::Value;
use vigie_tests::{Launcher, Setup};

const LONG: Duration = Duration::from_secs(60);

/// `GET url` with this `Authorization` (if any): the status and body,
/// whatever the status.
fn get(url: &str, authorization: Option<&str>) -> anyhow::Result<(u16, String)> {
    let mut req = ureq::get(url).timeout(Duration::from_secs(10));
    if let Some(a) = authorization {
        req = req.set("Authorization", a);
    }
    match req.call() {
        Ok(r) => Ok((r.status(), r.into_string()?)),
        Err(ureq::Error::Status(code, r)) => Ok((code, r.into_string()?)),
        Err(e) => Err(e.into()),
    }
}

/// The tower's metrics base URL and its token, read as Prometheus does.
fn endpoint(tower: &Launcher) -> anyhow::Result<(String, String)> {
    let started = tower.wait_from("metrics", "metrics_started", 1, LONG)?;
    let base = started
        .str("address")
        .ok_or_else(|| anyhow::anyhow!("metrics_started without address"))?
        .to_owned();
    let token = std::fs::read_to_string(tower.data_dir().join("keys").join("metrics.token"))?;
    Ok((base, token.trim().to_owned()))
}

#[test]
fn a_scrape_without_the_tower_s_bearer_token_gets_a_bare_401() -> anyhow::Result<()> {
    let tower = Launcher::start(Setup::new("token").host("web-1", &[]))?;
    let (base, token) = endpoint(&tower)?;
    let path = tower.data_dir().join("keys").join("metrics.token");
    let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
    assert!(
        token.len() >= 64 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "32 random bytes, hex"
    );
    tower.events().wait_n("host_sampled web-1", 1, LONG, |e| {
        e.name == "host_sampled" && e.str("host") == Some("web-1")
    })?;

    let metrics = format!("{base}/metrics");
    let mut wrong = token.clone().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong)?;
    let refused = [
        None,
        Some(format!("Bearer {wrong}")),
        Some(format!("Bearer {}", &token[..token.len() - 1])),
        Some("Bearer ".to_owned()),
        Some(format!("Basic {token}")),
        Some(token.clone()),
    ];
    for auth in &refused {
        for url in [&metrics, &base, &format!("{base}/nowhere")] {
            let (code, body) = get(url, auth.as_deref())?;
            assert_eq!(code, 401, "{url} with {auth:?}: {body}");
            // Nothing said: no metric, no host, not even where they are.
            assert_eq!(body, "unauthorized\n", "{url} with {auth:?}");
        }
    }

    let (code, body) = get(&metrics, Some(&format!("Bearer {token}")))?;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("vigie_referee_up 1"), "{body}");
    assert!(body.contains(r#"vigie_host_cpus{host="web-1"}"#), "{body}");
    Ok(())
}

/// Issue 19: the series a dashboard panel shows that would exist only
/// once non-zero (rollbacks, changes by state, each child's restarts)
/// are exported at 0 by a fresh tower, so the panels show 0, not
/// "No data".
#[test]
fn a_fresh_tower_exports_rollbacks_changes_and_restarts_at_zero() -> anyhow::Result<()> {
    let tower = Launcher::start(Setup::new("zeros").host("web-1", &[]))?;
    let (base, token) = endpoint(&tower)?;
    tower.events().wait_n("host_sampled web-1", 1, LONG, |e| {
        e.name == "host_sampled" && e.str("host") == Some("web-1")
    })?;
    let (code, body) = get(&format!("{base}/metrics"), Some(&format!("Bearer {token}")))?;
    assert_eq!(code, 200, "{body}");
    let has = |line: &str| body.lines().any(|l| l == line);
    for line in [
        r#"vigie_rollbacks_total{outcome="rolled_back"} 0"#,
        r#"vigie_rollbacks_total{outcome="rollback_failed"} 0"#,
    ] {
        assert!(has(line), "{line} not in:\n{body}");
    }
    for state in [
        "queued",
        "succeeded",
        "rolled_back",
        "rollback_failed",
        "cancelled",
    ] {
        let head = format!(r#"vigie_changes_total{{state="{state}",tenant="#);
        assert!(
            body.lines()
                .any(|l| l.starts_with(&head) && l.ends_with("} 0")),
            "{head} at 0 not in:\n{body}"
        );
    }
    // Each child the launcher runs: its restarts at 0 beside its state.
    let children: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("vigie_child_state{"))
        .filter_map(|l| l.split_once(r#",state="running"}"#).map(|(who, _)| who))
        .collect();
    assert!(
        children.iter().any(|c| c.starts_with(r#"child="referee""#)),
        "{body}"
    );
    for who in children {
        let line = format!("vigie_child_restarts_total{{{who}}} 0");
        assert!(has(&line), "{line} not in:\n{body}");
    }
    Ok(())
}

#[test]
fn a_scrape_loop_does_not_grow_the_tower_s_log() -> anyhow::Result<()> {
    let tower = Launcher::start(Setup::new("loop").host("web-1", &[]))?;
    let (base, token) = endpoint(&tower)?;
    let metrics = format!("{base}/metrics");
    let bearer = format!("Bearer {token}");
    // The first scrape is said (what it could read): the loop starts after.
    assert_eq!(get(&metrics, Some(&bearer))?.0, 200);
    tower.events().wait_n("first scrape_served", 1, LONG, |e| {
        e.name == "scrape_served"
    })?;
    let from_metrics = |e: &vigie_tests::Event| e.str("source") == Some("metrics");
    let before = tower.events().snapshot().len();

    let (served, refused) = (400, 400);
    let looped = std::time::Instant::now();
    for i in 0..served + refused {
        let auth = if i % 2 == 0 {
            Some(bearer.as_str())
        } else if i % 4 == 1 {
            None
        } else {
            Some("Bearer not-the-token")
        };
        let (code, _) = get(&metrics, auth)?;
        assert_eq!(code, if i % 2 == 0 { 200 } else { 401 });
    }

    let took = looped.elapsed();
    // A scrape whose reading changes is said: once it is seen, everything
    // the loop made the daemon log before it has been seen too.
    let referee = tower.child_pid("referee")?;
    kill(referee, Signal::SIGSTOP)?;
    let marker = get(&metrics, Some(&bearer));
    kill(referee, Signal::SIGCONT)?;
    assert_eq!(marker?.0, 200);
    tower
        .events()
        .wait_n("scrape_served without referee", 1, LONG, |e| {
            e.name == "scrape_served" && e.fields["referee"] == Value::Bool(false)
        })?;
    let events = tower.events().snapshot();
    let during: Vec<_> = events[before..]
        .iter()
        .filter(|e| from_metrics(e))
        .take_while(|e| !(e.name == "scrape_served" && e.fields["referee"] == Value::Bool(false)))
        .collect();
    let bytes: usize = during.iter().map(|e| e.fields.to_string().len()).sum();
    eprintln!(
        "{} scrapes ({served} served, {refused} refused) in {took:?}: {} metrics events, {bytes} \
         bytes of log",
        served + refused,
        during.len()
    );
    let names: Vec<&str> = during.iter().map(|e| e.name.as_str()).collect();
    assert!(
        during.len() <= 2,
        "a scrape loop is not logged per request: {names:?}"
    );
    assert!(
        names
            .iter()
            .all(|n| *n == "scrape_refused" || *n == "scrapes_counted"),
        "{names:?}"
    );
    Ok(())
}
