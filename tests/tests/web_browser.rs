//! The web console in a real browser: headless Chromium (Debian's
//! `chromium` and `chromium-driver`, installed by `scripts/deps`) driven
//! over WebDriver with fantoccini. Signing in with the one-time URL, a
//! change followed live to its end (server-sent events, no reload), a
//! host label holding `<script>` shown as text, a forged CSRF token
//! refused, and a narrow operator who sees only her hosts and gets 403 on
//! another's change. Screenshots of the pages go to
//! `target/web-screenshots/` (or `$VIGIE_SCREENSHOTS`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use vigie_tests::front::{add_operator, admin, client_with, grants, spec};
use vigie_tests::web::{console, login_url};
use vigie_tests::{Launcher, Setup};
use vigie_wire::tower::{ApiCall, Labels};

const WAIT: Duration = Duration::from_secs(60);

/// A chromedriver of the test's own, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver on a free port and waits for its readiness line.
fn chromedriver() -> anyhow::Result<Driver> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!("chromedriver (scripts/deps installs chromium-driver): {e}")
        })?;
    let out = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut seen = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line?;
        if line.contains("started successfully") {
            return Ok(Driver {
                child,
                url: format!("http://127.0.0.1:{port}"),
            });
        }
        seen.push(line);
    }
    anyhow::bail!("chromedriver ended before it was ready: {seen:?}")
}

async fn browser(driver: &Driver) -> anyhow::Result<Client> {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox",
            "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1024,720"]}),
    );
    // `implicit`: a find waits in the driver for its element (a page that
    // follows a form post), failing after it.
    caps.insert(
        "timeouts".into(),
        json!({"script": 60_000, "pageLoad": 60_000, "implicit": 30_000}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    Ok(ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await?)
}

fn screenshots() -> PathBuf {
    std::env::var_os("VIGIE_SCREENSHOTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/web-screenshots"),
        PathBuf::from,
    )
}

async fn shot(c: &Client, name: &str) -> anyhow::Result<()> {
    let dir = screenshots();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{name}.png")), c.screenshot().await?)?;
    Ok(())
}

/// Opens a one-time URL and presses its button: the fleet page follows.
async fn sign_in(c: &Client, url: &str) -> anyhow::Result<()> {
    c.goto(url).await?;
    c.find(Locator::Id("signin")).await?.click().await?;
    c.find(Locator::Id("hosts")).await?;
    Ok(())
}

/// The HTTP status a same-origin fetch of `path` gets in the browser.
async fn status_of(c: &Client, path: &str) -> anyhow::Result<u64> {
    let v = c
        .execute_async(
            "const done = arguments[1]; fetch(arguments[0]).then(r => done(r.status), e => done(String(e)));",
            vec![json!(path)],
        )
        .await?;
    v.as_u64()
        .ok_or_else(|| anyhow::anyhow!("fetch {path}: {v}"))
}

/// Waits, in the page, until the change's state shown is `want` — on the
/// DOM's own mutation events, never by reloading.
async fn until_state(c: &Client, want: &str) -> anyhow::Result<String> {
    let v = c
        .execute_async(
            r#"const [want, done] = arguments;
               const now = () => (document.getElementById('state') || {}).textContent;
               if (now() === want) { done(now()); return; }
               new MutationObserver(() => { if (now() === want) done(now()); })
                 .observe(document.getElementById('live'), {subtree: true, childList: true, characterData: true});"#,
            vec![json!(want)],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "current_thread")]
async fn the_console_in_chromium() -> anyhow::Result<()> {
    let t = Launcher::start(
        Setup::new("web-browser")
            .host("web-1", &[("role", "web")])
            .host("db-1", &[("role", "db")]),
    )?;
    console(&t)?;
    let driver = chromedriver()?;
    let c = browser(&driver).await?;
    let r = scenario(&t, &c).await;
    c.close().await?;
    r
}

/// A CSV with three errors uploaded from the file input: all three
/// listed, by line and column; nothing imported.
async fn import_three_errors(t: &Launcher, c: &Client, origin: &str) -> anyhow::Result<()> {
    let file = t.dir.path().join("supplier.csv");
    std::fs::write(
        &file,
        "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels,host_key\n\
         web-7,192.0.2.17,22,debian,ovh,4,8,80,role=web,\n\
         web-8,not-an-ip,22,debian,ovh,4,8,80,role=web,\n\
         web-9,192.0.2.19,99999,debian,ovh,4,8,80,role=web,\n\
         web-10,192.0.2.20,22,debian,ovh,many,8,80,role=web,\n",
    )?;
    c.goto(&format!("{origin}/servers")).await?;
    c.find(Locator::Id("import-link")).await?.click().await?;
    c.find(Locator::Id("csv"))
        .await?
        .send_keys(&file.display().to_string())
        .await?;
    c.find(Locator::Id("dryrun")).await?.click().await?;
    c.find(Locator::Id("import-errors")).await?;
    let rows = c
        .execute(
            "return Array.from(document.querySelectorAll('#import-errors tbody tr')).map(r => Array.from(r.cells).slice(0, 2).map(c => c.textContent).join(':'))",
            vec![],
        )
        .await?;
    assert_eq!(rows, json!(["3:address", "4:ssh_port", "5:cpu"]));
    shot(c, "import").await?;
    c.goto(&format!("{origin}/servers")).await?;
    let servers = c.find(Locator::Id("servers")).await?.text().await?;
    assert!(!servers.contains("web-7"), "a refused file was imported");
    shot(c, "servers").await?;
    Ok(())
}

/// The record of a deploy of a small environment on web-1, as the
/// deployer stores it.
fn deployed() -> anyhow::Result<Vec<u8>> {
    use vigie_deployer::{parse_environment, plan, settle, Target};
    let env = parse_environment(
        "environment.yml",
        "app: shop\nenvironment: prod\nhosts: web-1\noverrides: []\nservices:\n  web:\n    repository: /r\n    revision: v1\n    start: run\n    health:\n      http: /h\n",
    )?;
    let targets = [Target::from_labels("web-1", &Labels::new())?];
    let p = plan(&env, None, &targets, &[])?;
    let ok = [("web-1".to_owned(), ("c1".to_owned(), true))].into();
    Ok(settle(None, &p, &env, &ok).to_json()?)
}

/// The host (metrics, logs), deployments, IP pools, operators and
/// tokens pages, each once, for the README.
async fn other_pages(t: &Launcher, c: &Client, origin: &str) -> anyhow::Result<()> {
    let mut root = admin(t, None)?;
    c.goto(&format!("{origin}/changes")).await?;
    c.find(Locator::Css("table.changes")).await?;
    shot(c, "changes").await?;
    c.goto(&format!("{origin}/hosts/web-1")).await?;
    c.find(Locator::Id("logs")).await?;
    shot(c, "host").await?;
    root.call(ApiCall::Deploy(vigie_wire::deploy::DeployCall::Record {
        app: "shop".into(),
        environment: "prod".into(),
        expected: 0,
        record: deployed()?,
    }))?;
    c.goto(&format!("{origin}/deployments/shop/prod")).await?;
    c.find(Locator::Id("instances")).await?;
    let verbs = c.find(Locator::Id("verbs")).await?.text().await?;
    assert!(verbs.contains("Check what runs"), "{verbs}");
    // The tower's verbs, for an admin, while no rollout holds the
    // environment; no canary word while none waits.
    for v in ["Restart", "Roll back", "Maintenance on", "Undeploy"] {
        assert!(verbs.contains(v), "{v} missing: {verbs}");
    }
    assert!(!verbs.contains("Continue after the canary"), "{verbs}");
    shot(c, "deployment").await?;
    let out = t.cli(&[
        "ips",
        "pool",
        "add",
        "lan",
        "192.0.2.0/28",
        "--gateway",
        "192.0.2.1",
    ])?;
    anyhow::ensure!(out.status.success(), "{out:?}");
    c.goto(&format!("{origin}/pools")).await?;
    c.find(Locator::Id("pools")).await?;
    shot(c, "pools").await?;
    c.goto(&format!("{origin}/operators")).await?;
    c.find(Locator::Id("operators")).await?;
    shot(c, "operators").await?;
    c.goto(&format!("{origin}/tokens")).await?;
    c.find(Locator::Css("#token-create input[name=label]"))
        .await?
        .send_keys("ci")
        .await?;
    c.find(Locator::Css("#token-create button"))
        .await?
        .click()
        .await?;
    let token = c.find(Locator::Id("new-token")).await?.text().await?;
    assert!(token.contains('.'), "{token}");
    // The picture keeps the token's id, not its secret.
    c.execute(
        "const t = document.getElementById('new-token'); t.textContent = t.textContent.split('.')[0] + '.' + '•'.repeat(20)",
        vec![],
    )
    .await?;
    shot(c, "tokens").await?;
    Ok(())
}

async fn scenario(t: &Launcher, c: &Client) -> anyhow::Result<()> {
    let mut root = admin(t, None)?;
    root.call(ApiCall::HostLabel {
        host: "web-1".into(),
        set: Labels::from([("note".to_owned(), "<script>alert(1)</script>".to_owned())]),
        remove: Vec::new(),
    })?;
    root.call(ApiCall::HostAdd {
        host: "idle-1".into(),
        labels: Labels::new(),
    })?;
    sign_in(c, &login_url(&mut root)?).await?;

    // The label is text: shown as typed, no script element made of it.
    let label = c
        .find(Locator::XPath(
            "//span[@class='label'][starts-with(., 'note=')]",
        ))
        .await?;
    assert_eq!(label.text().await?, "note=<script>alert(1)</script>");
    let scripts = c
        .execute(
            "return document.querySelectorAll('main script').length",
            vec![],
        )
        .await?;
    assert_eq!(scripts, json!(0));
    shot(c, "fleet").await?;

    // A change followed live: loaded while it runs, final without reload.
    let slow = vigie_changes::parse_change(
        "slow.yml",
        "title: slow\nsteps:\n  - name: one\n    run: sleep 1\n  - name: two\n    run: sleep 1\n  - name: three\n    run: echo done\n",
    )?;
    let id = root.changes(ApiCall::Submit {
        spec: slow,
        target: "web-1".into(),
    })?[0]
        .id
        .clone();
    c.goto(&format!(
        "{}/changes/{id}",
        c.current_url().await?.origin().ascii_serialization()
    ))
    .await?;
    // Read in one script: the live part is replaced as updates come.
    let first = c
        .execute(
            "return document.getElementById('state').textContent",
            vec![],
        )
        .await?;
    assert_ne!(
        first,
        json!("succeeded"),
        "the change ended before the page was read"
    );
    c.execute("window.__same_page = true", vec![]).await?;
    assert_eq!(until_state(c, "succeeded").await?, "succeeded");
    assert_eq!(
        c.execute("return window.__same_page === true", vec![])
            .await?,
        json!(true)
    );
    let steps = c
        .execute(
            "return document.getElementById('steps').textContent",
            vec![],
        )
        .await?;
    let steps = steps.as_str().unwrap_or_default();
    assert!(steps.contains("three") && steps.contains("done"), "{steps}");
    t.wait_final(&[id], WAIT)?;
    shot(c, "change").await?;

    // A forged CSRF token: refused, the change still queued.
    let queued = root.changes(ApiCall::Submit {
        spec: spec("waits")?,
        target: "idle-1".into(),
    })?[0]
        .id
        .clone();
    let origin = c.current_url().await?.origin().ascii_serialization();
    // Cancel is a link to its confirmation page, whose form acts.
    c.goto(&format!("{origin}/changes/{queued}")).await?;
    c.find(Locator::Css("#verbs a[href$='/cancel']"))
        .await?
        .click()
        .await?;
    c.find(Locator::Css("main form.inline")).await?;
    shot(c, "change-confirm").await?;
    c.execute(
        "document.querySelector('main input[name=csrf]').value = 'f'.repeat(64)",
        vec![],
    )
    .await?;
    c.find(Locator::Css("main form.inline button"))
        .await?
        .click()
        .await?;
    // The refusal's page (only it has an error paragraph), once loaded.
    let why = c.find(Locator::Css("p.error")).await?.text().await?;
    assert!(why.contains("stale"), "{why}");
    let h1 = c
        .execute("return document.querySelector('h1').textContent", vec![])
        .await?;
    assert_eq!(h1, json!("Refused"));
    let v = root.changes(ApiCall::Status {
        change: Some(queued),
        limit: 1,
    })?;
    assert_eq!(v[0].state.word(), "queued");

    c.goto(&format!("{origin}/audit")).await?;
    c.find(Locator::Css("table.audit")).await?;
    shot(c, "audit").await?;
    // Filtered by host through the page's own form: web-1's records only.
    c.find(Locator::Css("#audit-filters input[name=host]"))
        .await?
        .send_keys("web-1")
        .await?;
    c.find(Locator::Css("#audit-filters button"))
        .await?
        .click()
        .await?;
    c.find(Locator::Css("table.audit")).await?;
    let mut hosts = Vec::new();
    for cell in c
        .find_all(Locator::Css("table.audit tbody tr td:nth-child(4)"))
        .await?
    {
        hosts.push(cell.text().await?);
    }
    assert!(!hosts.is_empty(), "web-1 has records");
    assert!(hosts.iter().all(|h| h == "web-1"), "{hosts:?}");
    import_three_errors(t, c, &origin).await?;
    other_pages(t, c, &origin).await?;

    // A narrow operator: her hosts only, 403 on db-1's change.
    let db = root.changes(ApiCall::Submit {
        spec: spec("on db")?,
        target: "db-1".into(),
    })?[0]
        .id
        .clone();
    t.wait_final(std::slice::from_ref(&db), WAIT)?;
    c.delete_all_cookies().await?;
    let dir = t.dir.path().to_path_buf();
    let keys = add_operator(
        t,
        &dir,
        "default",
        "ann",
        &grants(&["hosts.read@role=web", "changes.read@role=web"])?,
    )?;
    sign_in(c, &login_url(&mut client_with(t, &keys, None)?)?).await?;
    let hosts = c.find(Locator::Id("hosts")).await?.text().await?;
    assert!(
        hosts.contains("web-1") && !hosts.contains("db-1"),
        "{hosts}"
    );
    shot(c, "fleet-narrow").await?;
    assert_eq!(status_of(c, &format!("/changes/{db}")).await?, 403);
    c.goto(&format!("{origin}/changes/{db}")).await?;
    assert_eq!(c.find(Locator::Css("h1")).await?.text().await?, "Refused");
    Ok(())
}
