//! The web console and HTTP API against a real tower: signing in with a
//! one-time URL, sessions listed and revoked, the operator's own grants on
//! every page and API call, CSRF, escaping, API tokens and idempotency.

use std::time::Duration;

use vigie_tests::front::{add_operator, admin, client_with, grants, spec};
use vigie_tests::web::{console, login_url, Http};
use vigie_tests::{Launcher, Setup};
use vigie_wire::tower::{ApiCall, Labels};

const WAIT: Duration = Duration::from_secs(60);

fn cli_ok(t: &Launcher, args: &[&str]) -> anyhow::Result<String> {
    let out = t.cli(args)?;
    anyhow::ensure!(
        out.status.success(),
        "vigie {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn a_one_time_url_signs_in_once_and_a_revoked_session_is_out() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("web-login").host("web-1", &[("role", "web")]))?;
    let base = console(&t)?;
    let http = Http::new();
    let url = cli_ok(&t, &["web", "login"])?.trim().to_owned();
    anyhow::ensure!(url.starts_with(&format!("{base}/login/")), "{url}");

    // Opening the URL spends nothing (a link previewer may fetch it).
    let page = http.get(&url, None, None)?;
    assert_eq!(page.status, 200);
    let ticket = url.rsplit('/').next().unwrap_or_default();
    // Posted from another site's page: refused, the ticket kept.
    let evil = http.form_with(
        &format!("{base}/login"),
        None,
        &[("Origin", "http://evil.example")],
        &[("ticket", ticket)],
    )?;
    assert_eq!(evil.status, 403, "{evil:?}");
    let cross = http.form_with(
        &format!("{base}/login"),
        None,
        &[("Sec-Fetch-Site", "cross-site"), ("Origin", "null")],
        &[("ticket", ticket)],
    )?;
    assert_eq!(cross.status, 403, "{cross:?}");
    let signed = http.form(&format!("{base}/login"), None, &[("ticket", ticket)])?;
    assert_eq!(signed.status, 303, "{signed:?}");
    let set = signed.header("set-cookie").unwrap_or_default().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Max-Age=43200", "Path=/"] {
        assert!(set.contains(attr), "cookie without {attr}: {set}");
    }
    let cookie = set.split(';').next().unwrap_or_default().to_owned();

    // Used once.
    let again = http.form(&format!("{base}/login"), None, &[("ticket", ticket)])?;
    assert_eq!(again.status, 403, "a spent ticket signed in again");
    assert!(again.header("set-cookie").is_none());

    let fleet = http.get(&format!("{base}/"), Some(&cookie), None)?;
    assert_eq!(fleet.status, 200);
    assert!(fleet.body.contains("web-1"), "{}", fleet.body);
    let csp = fleet.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(fleet.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(fleet.header("referrer-policy"), Some("no-referrer"));

    // Listed, then revoked: the cookie no longer opens anything.
    let sessions = cli_ok(&t, &["web", "sessions", "--json"])?;
    let session: serde_json::Value = serde_json::from_str(sessions.lines().next().unwrap_or("{}"))?;
    assert_eq!(session["kind"], "session", "{sessions}");
    let id = session["id"].as_str().unwrap_or_default().to_owned();
    cli_ok(&t, &["web", "revoke", &id])?;
    let after = http.get(&format!("{base}/"), Some(&cookie), None)?;
    assert_eq!(
        after.status, 401,
        "a revoked session still reads: {after:?}"
    );
    let forged = http.get(
        &format!("{base}/"),
        Some("vigie_session=0123456789abcdef.00"),
        None,
    )?;
    assert_eq!(forged.status, 401);
    Ok(())
}

#[test]
fn a_narrow_operator_sees_only_her_hosts_and_gets_403_on_another_s_change() -> anyhow::Result<()> {
    let t = Launcher::start(
        Setup::new("web-narrow")
            .host("web-1", &[("role", "web")])
            .host("db-1", &[("role", "db")]),
    )?;
    let base = console(&t)?;
    let http = Http::new();
    let dir = t.dir.path().to_path_buf();
    let keys = add_operator(
        &t,
        &dir,
        "default",
        "ann",
        &grants(&[
            "hosts.read@role=web",
            "changes.read@role=web",
            "changes.cancel@role=web",
        ])?,
    )?;
    let mut ann = client_with(&t, &keys, None)?;
    let cookie = http.sign_in(&login_url(&mut ann)?)?;

    let fleet = http.get(&format!("{base}/"), Some(&cookie), None)?;
    assert_eq!(fleet.status, 200);
    assert!(fleet.body.contains("web-1"), "{}", fleet.body);
    assert!(
        !fleet.body.contains("db-1"),
        "a host outside her scope is shown"
    );

    let mut root = admin(&t, None)?;
    let v = root.changes(ApiCall::Submit {
        spec: spec("on db")?,
        target: "db-1".into(),
    })?;
    let db_change = v[0].id.clone();
    t.wait_final(std::slice::from_ref(&db_change), WAIT)?;
    for path in [
        format!("/changes/{db_change}"),
        format!("/changes/{db_change}/events"),
        "/hosts/db-1".to_owned(),
    ] {
        let a = http.get(&format!("{base}{path}"), Some(&cookie), None)?;
        assert!(a.status == 403 || a.status == 404, "{path}: {a:?}");
        assert!(!a.body.contains("on db"), "{path} shows the change");
    }
    let a = http.get(&format!("{base}/changes/{db_change}"), Some(&cookie), None)?;
    assert_eq!(a.status, 403, "{a:?}");
    // Her audit.read is missing: the audit page says the tower refused.
    let audit = http.get(&format!("{base}/audit"), Some(&cookie), None)?;
    assert_eq!(audit.status, 403);
    Ok(())
}

#[test]
fn a_forged_or_stale_csrf_token_is_refused_and_nothing_is_cancelled() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("web-csrf"))?;
    let base = console(&t)?;
    let http = Http::new();
    let mut root = admin(&t, None)?;
    // No plug for this host: its change stays queued.
    root.call(ApiCall::HostAdd {
        host: "idle-1".into(),
        labels: Labels::from([("note".to_owned(), "<script>alert(1)</script>".to_owned())]),
    })?;
    let v = root.changes(ApiCall::Submit {
        spec: spec("<b>waits</b>")?,
        target: "idle-1".into(),
    })?;
    let id = v[0].id.clone();
    let old = http.sign_in(&login_url(&mut root)?)?;
    let cookie = http.sign_in(&login_url(&mut root)?)?;

    // The label and the title are text on the pages.
    let fleet = http.get(&format!("{base}/"), Some(&cookie), None)?;
    assert!(
        fleet.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        fleet.body
    );
    assert!(
        !fleet.body.contains("<script>alert"),
        "a label became markup"
    );
    let page = http.get(&format!("{base}/changes/{id}"), Some(&cookie), None)?;
    assert!(page.body.contains("&lt;b&gt;waits&lt;/b&gt;") && !page.body.contains("<b>waits"));

    // The token of this session is on its page; another session's (stale
    // for this one) or a made-up one is refused.
    let token = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        token.len() == 64,
        "no CSRF token on the page: {}",
        page.body
    );
    let stale = http.get(&format!("{base}/changes/{id}"), Some(&old), None)?;
    let stale_token = stale
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let cancel = format!("{base}/changes/{id}/cancel");
    for bad in [stale_token.as_str(), "0".repeat(64).as_str(), ""] {
        let a = http.form(&cancel, Some(&cookie), &[("csrf", bad)])?;
        assert_eq!(a.status, 403, "token {bad:?} passed: {a:?}");
    }
    let still = root.changes(ApiCall::Status {
        change: Some(id.clone()),
        limit: 1,
    })?;
    assert_eq!(
        still[0].state.word(),
        "queued",
        "a refused form cancelled the change"
    );
    let ok = http.form(&cancel, Some(&cookie), &[("csrf", &token)])?;
    assert_eq!(ok.status, 303, "{ok:?}");
    let done = root.changes(ApiCall::Status {
        change: Some(id),
        limit: 1,
    })?;
    assert_eq!(done[0].state.word(), "cancelled");
    // Signing out is an action too: the token first, then the session ends.
    let forged = http.form(&format!("{base}/logout"), Some(&cookie), &[("csrf", "0")])?;
    assert_eq!(forged.status, 403);
    let out = http.form(
        &format!("{base}/logout"),
        Some(&cookie),
        &[("csrf", &token)],
    )?;
    assert_eq!(out.status, 303);
    assert!(out
        .header("set-cookie")
        .unwrap_or_default()
        .contains("Max-Age=0"));
    assert_eq!(
        http.get(&format!("{base}/"), Some(&cookie), None)?.status,
        401
    );
    Ok(())
}

#[test]
fn an_api_token_submits_once_per_idempotency_key_and_is_audited_and_revocable() -> anyhow::Result<()>
{
    let t = Launcher::start(Setup::new("web-api").host("web-1", &[("role", "web")]))?;
    let base = console(&t)?;
    let http = Http::new();
    let out = t.cli(&["tokens", "create", "--expires", "30d", "--label", "ci"])?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)?.trim().to_owned();

    let hosts = http.get(&format!("{base}/api/hosts"), None, Some(&token))?;
    assert_eq!(hosts.status, 200, "{hosts:?}");
    let hosts: serde_json::Value = serde_json::from_str(&hosts.body)?;
    assert_eq!(hosts[0]["id"], "web-1");
    assert_eq!(hosts[0]["online"], true);

    let body =
        serde_json::json!({"target": "web-1", "change": "title: api\nsteps:\n  - run: \"true\"\n"});
    let key = [("Idempotency-Key", "deploy-42")];
    let first = http.json(&format!("{base}/api/changes"), &token, &key, &body)?;
    assert_eq!(first.status, 200, "{first:?}");
    let second = http.json(&format!("{base}/api/changes"), &token, &key, &body)?;
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&first.body)?,
        serde_json::from_str(&second.body)?,
    );
    assert_eq!(a[0]["id"], b[0]["id"], "the same key submitted twice");
    let id = a[0]["id"].as_str().unwrap_or_default().to_owned();
    t.wait_final(std::slice::from_ref(&id), WAIT)?;
    let change = http.get(&format!("{base}/api/changes/{id}"), None, Some(&token))?;
    let change: serde_json::Value = serde_json::from_str(&change.body)?;
    assert_eq!(change["state"], "succeeded");
    assert_eq!(change["final"], true);

    // Every documented path answers, none with a 5xx.
    let doc = http.get(&format!("{base}/api/openapi.json"), None, None)?;
    let doc: serde_json::Value = serde_json::from_str(&doc.body)?;
    for (path, _) in doc["paths"].as_object().into_iter().flatten() {
        let path = path.replace("{id}", &id);
        let a = http.get(&format!("{base}{path}"), None, Some(&token))?;
        assert!(a.status < 500 && a.status != 404, "{path}: {a:?}");
    }

    let audit = http.get(&format!("{base}/api/audit?limit=100"), None, Some(&token))?;
    assert!(audit.body.contains("token_issued"), "{}", audit.body);
    let list = cli_ok(&t, &["tokens", "list", "--json"])?;
    let listed: serde_json::Value = serde_json::from_str(list.lines().next().unwrap_or("{}"))?;
    assert!(
        listed.get("secret").is_none(),
        "a listed token shows its secret"
    );
    assert!(!list.contains(token.split('.').nth(1).unwrap_or("-")));
    cli_ok(
        &t,
        &[
            "tokens",
            "revoke",
            listed["id"].as_str().unwrap_or_default(),
        ],
    )?;
    let after = http.get(&format!("{base}/api/hosts"), None, Some(&token))?;
    assert_eq!(after.status, 401);
    assert_eq!(after.header("www-authenticate"), Some("Bearer"));
    // The console's cookie is never an API credential.
    let cookie = http.sign_in(&login_url(&mut admin(&t, None)?)?)?;
    let by_cookie = http.get(&format!("{base}/api/hosts"), Some(&cookie), None)?;
    assert_eq!(by_cookie.status, 401);
    Ok(())
}
