//! The web console and HTTP API against a real tower: signing in with a
//! one-time URL, sessions listed and revoked, the operator's own grants on
//! every page and API call, CSRF, escaping, API tokens and idempotency.

use std::time::Duration;

use vigie_tests::front::{add_operator, admin, client_with, grants, spec};
use vigie_tests::web::{console, csrf_of, login_url, Http};
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
    // No servers.admin: her import is refused, nothing imported.
    let form = http.get(&format!("{base}/servers/import"), Some(&cookie), None)?;
    let csrf = csrf_of(&form.body).unwrap_or_default();
    let csv = format!("{CSV_HEADER}web-7,192.0.2.17,22,debian,ovh,4,8,80,role=web,\n");
    let import = http.multipart(
        &format!("{base}/servers/import"),
        Some(&cookie),
        &[
            ("csrf", None, csrf.as_bytes()),
            ("action", None, b"import"),
            ("file", Some("s.csv"), csv.as_bytes()),
        ],
    )?;
    assert_eq!(import.status, 403, "{import:?}");
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
    cli_ok(&t, &["ips", "pool", "add", "lan", "192.0.2.0/28"])?;
    let doc = http.get(&format!("{base}/api/openapi.json"), None, None)?;
    let doc: serde_json::Value = serde_json::from_str(&doc.body)?;
    for (path, _) in doc["paths"].as_object().into_iter().flatten() {
        let path = path.replace("{id}", &id).replace("{pool}", "lan");
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

/// A page's text as shown (the entities maud writes undone).
fn shown(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

const CSV_HEADER: &str =
    "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels,host_key\n";

#[test]
fn a_csv_import_lists_every_error_as_the_cli_does_then_imports_after_a_dry_run(
) -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("web-import"))?;
    let base = console(&t)?;
    let http = Http::new();
    let mut root = admin(&t, None)?;
    let cookie = http.sign_in(&login_url(&mut root)?)?;
    let form = http.get(&format!("{base}/servers/import"), Some(&cookie), None)?;
    assert_eq!(form.status, 200, "{form:?}");
    let csrf = csrf_of(&form.body).unwrap_or_default();
    let url = format!("{base}/servers/import");

    // Three errors, each on its own line and column.
    let bad = format!(
        "{CSV_HEADER}web-1,192.0.2.11,22,debian,ovh,4,8,80,role=web,\n\
         web-2,not-an-ip,22,debian,ovh,4,8,80,role=web,\n\
         web-3,192.0.2.13,99999,debian,ovh,4,8,80,role=web,\n\
         web-4,192.0.2.14,22,debian,ovh,many,8,80,role=web,\n"
    );
    let file = t.dir.path().join("three-errors.csv");
    std::fs::write(&file, &bad)?;
    let cli = t.cli(&["servers", "import", &file.display().to_string()])?;
    assert!(!cli.status.success());
    let said = String::from_utf8(cli.stderr)?;
    let cli_errors: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("line "))
        .collect();
    assert_eq!(cli_errors.len(), 3, "{said}");
    let a = http.multipart(
        &url,
        Some(&cookie),
        &[
            ("csrf", None, csrf.as_bytes()),
            ("action", None, b"dry"),
            ("file", Some("three-errors.csv"), bad.as_bytes()),
        ],
    )?;
    assert_eq!(a.status, 422, "{a:?}");
    let page = shown(&a.body);
    assert!(page.contains("3 error(s)"), "{page}");
    for e in &cli_errors {
        // "line 3, column 'address': MESSAGE" as the table's three cells.
        let (line, rest) = e
            .trim_start_matches("line ")
            .split_once(", column '")
            .unwrap_or_default();
        let (column, message) = rest.split_once("': ").unwrap_or_default();
        let row = format!("<td>{line}</td><td>{column}</td><td>{message}</td>");
        assert!(
            page.contains(&row),
            "the CLI's {e:?} is not on the page: {page}"
        );
    }

    // A dry run of a right file writes nothing; its form imports it.
    let good = format!(
        "{CSV_HEADER}web-1,192.0.2.11,22,debian,ovh,4,8,80,role=web,\n\
         web-2,192.0.2.12,22,debian,ovh,4,8,80,role=web,\n"
    );
    let forged = http.multipart(
        &url,
        Some(&cookie),
        &[
            ("csrf", None, "0".repeat(64).as_bytes()),
            ("action", None, b"import"),
            ("file", Some("good.csv"), good.as_bytes()),
        ],
    )?;
    assert_eq!(forged.status, 403, "{forged:?}");
    let dry = http.multipart(
        &url,
        Some(&cookie),
        &[
            ("csrf", None, csrf.as_bytes()),
            ("action", None, b"dry"),
            ("file", Some("good.csv"), good.as_bytes()),
        ],
    )?;
    assert_eq!(dry.status, 200, "{dry:?}");
    assert!(
        dry.body.contains("2 server(s) would be imported"),
        "{}",
        dry.body
    );
    let servers = cli_ok(&t, &["--json", "servers", "list"])?;
    assert!(
        servers.trim().is_empty() || servers.trim() == "[]",
        "a dry run wrote: {servers}"
    );
    let data = dry
        .body
        .split("name=\"data\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let done = http.multipart(
        &url,
        Some(&cookie),
        &[
            ("csrf", None, csrf.as_bytes()),
            ("action", None, b"import"),
            ("name", None, b"good.csv"),
            ("data", None, data.as_bytes()),
        ],
    )?;
    assert_eq!(done.status, 200, "{done:?}");
    assert!(
        done.body.contains("2 server(s) imported from good.csv"),
        "{}",
        done.body
    );
    let listed = http.get(&format!("{base}/servers"), Some(&cookie), None)?;
    assert!(listed.body.contains("web-2"), "{}", listed.body);
    Ok(())
}

#[test]
fn every_string_from_a_host_or_a_file_is_text_on_the_new_pages() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("web-escape").host("web-1", &[("role", "web")]))?;
    let base = console(&t)?;
    let http = Http::new();
    let mut root = admin(&t, None)?;
    let cookie = http.sign_in(&login_url(&mut root)?)?;
    let probe = "<script>alert(1)</script>";
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;";
    let page = |path: &str| -> anyhow::Result<String> {
        let a = http.get(&format!("{base}{path}"), Some(&cookie), None)?;
        assert!(
            !a.body.contains(probe),
            "{path} made markup of a probe: {}",
            a.body
        );
        Ok(a.body)
    };

    // A step's output, in the host's logs tail.
    let echo = vigie_changes::parse_change(
        "echo.yml",
        &format!("title: echo\nsteps:\n  - run: \"echo '{probe}'\"\n"),
    )?;
    let id = root.changes(ApiCall::Submit {
        spec: echo,
        target: "web-1".into(),
    })?[0]
        .id
        .clone();
    t.wait_final(&[id], WAIT)?;
    let host = page("/hosts/web-1")?;
    assert!(
        host.contains(escaped),
        "the logs tail lost the probe: {host}"
    );
    assert!(
        host.contains("id=\"metrics\"") || host.contains("No sample"),
        "{host}"
    );

    // A file's field, in the import's errors.
    let csrf = csrf_of(&page("/servers/import")?).unwrap_or_default();
    let csv = format!("{CSV_HEADER}web-9,{probe},22,debian,ovh,4,8,80,role=web,\n");
    let a = http.multipart(
        &format!("{base}/servers/import"),
        Some(&cookie),
        &[
            ("csrf", None, csrf.as_bytes()),
            ("action", None, b"dry"),
            ("file", Some(&format!("{probe}.csv")), csv.as_bytes()),
        ],
    )?;
    assert_eq!(a.status, 422);
    assert!(
        a.body.contains(escaped) && !a.body.contains(probe),
        "{}",
        a.body
    );

    // A token's label (pools, owners and operators have checked names:
    // their pages are read for the frame's sake).
    cli_ok(&t, &["ips", "pool", "add", "lan", "192.0.2.0/28"])?;
    assert!(page("/pools")?.contains("192.0.2.0/28"));
    assert!(page("/pools/lan")?.contains("0 addresses handed out"));
    let made = http.form(
        &format!("{base}/tokens"),
        Some(&cookie),
        &[("csrf", &csrf), ("label", probe), ("days", "30")],
    )?;
    assert_eq!(made.status, 200, "{made:?}");
    assert!(made.body.contains("id=\"new-token\"") && !made.body.contains(probe));
    assert!(page("/tokens")?.contains(escaped));
    page("/operators")?;
    page("/deployments")?;
    Ok(())
}

/// `curl` run on the tower's machine (its network namespace).
fn curl_in(ns: &str, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(std::process::Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-sS", "--max-time", "20"])
        .args(args)
        .output()?)
}

#[test]
fn beyond_loopback_the_console_speaks_only_tls_with_the_certificate_it_made() -> anyhow::Result<()>
{
    if let Some(why) = vigie_tests::netns::unavailable() {
        eprintln!("SKIPPED: {why}");
        return Ok(());
    }
    // A machine of its own whose address is not loopback (192.0.2.10,
    // outside 127.0.0.0/8): the rule, not a stand-in for it.
    let mut m = vigie_tests::netns::Machines::new();
    let ns = m.add("tower")?;
    m.ip_in(&ns, &["addr", "add", "192.0.2.10/32", "dev", "lo"])?;
    let t = Launcher::start_in_netns(Setup::new("web-tls").web("https://192.0.2.10:0"), &ns)?;
    let base = console(&t)?;
    anyhow::ensure!(base.starts_with("https://192.0.2.10:"), "{base}");
    let keys = t.data_dir().join("keys");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(keys.join("web.key"))?.permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o600,
        "the certificate's key is readable by others"
    );
    let cert = keys.join("web.crt").display().to_string();

    // With the made certificate pinned (the only one trusted): served.
    let doc = curl_in(
        &ns,
        &["--cacert", &cert, &format!("{base}/api/openapi.json")],
    )?;
    assert!(doc.status.success(), "{doc:?}");
    assert!(String::from_utf8(doc.stdout)?.contains("\"openapi\""));
    // Without it the certificate is nobody's: refused by the client.
    let untrusted = curl_in(&ns, &[&format!("{base}/api/openapi.json")])?;
    assert!(
        !untrusted.status.success(),
        "a self-signed certificate passed unpinned"
    );
    // Plain HTTP on the same port gets no page.
    let plain = base.replace("https://", "http://");
    let clear = curl_in(
        &ns,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{plain}/"),
        ],
    )?;
    assert!(
        !clear.status.success() && !String::from_utf8_lossy(&clear.stdout).starts_with('2'),
        "plain HTTP answered: {clear:?}"
    );

    // Signing in over TLS: the session cookie is Secure.
    let mut root = admin(&t, None)?;
    let url = login_url(&mut root)?;
    anyhow::ensure!(url.starts_with(&base), "{url}");
    let ticket = url.rsplit('/').next().unwrap_or_default();
    let signed = curl_in(
        &ns,
        &[
            "--cacert",
            &cert,
            "-i",
            "-d",
            &format!("ticket={ticket}"),
            &format!("{base}/login"),
        ],
    )?;
    let head = String::from_utf8(signed.stdout)?;
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{head}"
    );
    Ok(())
}

/// A `vigie demo` run, interrupted (its temp dir removed) when dropped.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let _ = self.0.wait();
    }
}

#[test]
fn vigie_demo_prints_a_sign_in_url_whose_pages_show_its_changes() -> anyhow::Result<()> {
    use std::io::BufRead;
    let xdg = tempfile::tempdir()?;
    let mut demo = Demo(
        std::process::Command::new(vigie_tests::vigie_bin())
            .arg("demo")
            .env("XDG_CONFIG_HOME", xdg.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?,
    );
    let out = demo
        .0
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    // Its output read to the end on a thread of its own (the demo writes
    // on after the URL: a closed pipe would end it).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The demo prints the URL once its changes ended.
    let mut seen = Vec::new();
    let url = loop {
        let line = rx
            .recv_timeout(WAIT)
            .map_err(|_| anyhow::anyhow!("no sign-in URL in the demo's output: {seen:#?}"))?;
        if line.trim().contains("/login/") {
            break line.trim().to_owned();
        }
        seen.push(line);
    };
    let http = Http::new();
    let cookie = http.sign_in(&url)?;
    let base = url.split("/login/").next().unwrap_or_default();
    let changes = http.get(&format!("{base}/changes"), Some(&cookie), None)?;
    assert_eq!(changes.status, 200);
    for shown in ["web-1", "web-2", "db-1", "succeeded", "rolled_back"] {
        assert!(
            changes.body.contains(shown),
            "{shown} not on the changes page: {}",
            changes.body
        );
    }
    let fleet = http.get(&format!("{base}/"), Some(&cookie), None)?;
    assert!(fleet.body.contains("3 hosts: 3 online"), "{}", fleet.body);
    Ok(())
}
