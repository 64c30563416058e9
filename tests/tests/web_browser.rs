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
            "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"]}),
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
    c.goto(&format!("{origin}/changes/{queued}")).await?;
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
    c.goto(&format!("{origin}/servers")).await?;
    shot(c, "servers").await?;

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
