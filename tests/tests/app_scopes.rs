//! Issue 25 items 2 and 3, on a real tower with a real deploy: an
//! operator granted `deploy@shop/staging` and `logs.read@app=shop`
//! deploys shop/staging from the application catalog (`vigie deploy
//! shop/staging --version 1.0`'s call) but is refused shop/prod (audited);
//! reads the logs of shop's service on the host it runs on, and neither
//! another application's service nor the host's steps; `deployments show`
//! names the catalog version deployed, and that version cannot be removed
//! from the catalog while staging runs it.

use std::time::Duration;

use vigie_client::{ApiClient, ClientError};
use vigie_tests::deploys::{record, shop_repo, Leftovers};
use vigie_tests::front::{add_operator, admin, client_with, fault, grants};
use vigie_tests::{stdout_ok as ok, Launcher, Setup};
use vigie_wire::deploy::{DeployAnswer, DeployCall};
use vigie_wire::observe::{LogSource, LogsQuery};
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFaultKind};

const LONG: Duration = Duration::from_secs(120);
const HOST: &str = "scoped-1";

/// Version 1.0 of shop in the catalog, with a staging and a prod.
fn app_file(repo: &str) -> String {
    let env = |ports: &str| {
        format!(
            "    hosts: role=shop\n    ports: {ports}\n    services:\n      web:\n        repository: {repo}\n\
             \x20       revision: v1\n        start: exec python3 app.py\n        replicas: 1\n\
             \x20       health: {{ http: /health, retries: 50, interval: 100ms, timeout: 1s }}\n"
        )
    };
    format!(
        "name: shop\nversion: \"1.0\"\nrepository: file://{repo}\nservices:\n  - name: web\n\
         environments:\n  staging:\n{}  prod:\n{}",
        env("27560-27569"),
        env("27570-27579")
    )
}

fn start_version(env: &str) -> ApiCall {
    ApiCall::Deploy(DeployCall::StartVersion {
        app: "shop".into(),
        environment: env.into(),
        version: "1.0".into(),
        parallel: 1,
        from_maintenance: false,
        force_unlock: false,
    })
}

/// A logs call's refusal, if any: `None` when the host answered.
fn logs(c: &mut ApiClient, source: LogSource) -> Option<ApiFaultKind> {
    let answer = c.call(ApiCall::Logs(LogsQuery {
        host: HOST.into(),
        source,
        since_ms: None,
        cursor: None,
        max_bytes: 65_536,
    }));
    match answer {
        // The host itself answered (a quiet app has written nothing yet).
        Err(ClientError::Refused(f)) if f.message.starts_with(&format!("host {HOST}: ")) => None,
        other => fault(other),
    }
}

fn service(name: &str) -> LogSource {
    LogSource::Service { name: name.into() }
}

#[test]
fn an_application_scope_deploys_and_reads_its_environment_and_nothing_else() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let repo = shop_repo(work.path(), &[])?;
    let app = work.path().join("shop.yml");
    std::fs::write(&app, app_file(&repo))?;

    let setup = Setup::new("appscopes").host(HOST, &[("role", "shop"), ("address", "127.0.0.57")]);
    let t = Launcher::start(setup)?;
    let _leftovers = Leftovers(vec![t.root(HOST)]);
    ok(t.cli(&["apps", "add", &app.display().to_string()])?)?;
    let shown = ok(t.cli(&["apps", "show", "shop"])?)?;
    assert!(shown.contains("environments: prod, staging"), "{shown}");

    let dir = t.dir.path().to_path_buf();
    let keys = add_operator(
        &t,
        &dir,
        "default",
        "stan",
        &grants(&["deploy@shop/staging", "logs.read@app=shop"])?,
    )?;
    let mut stan = client_with(&t, &keys, None)?;
    let ApiAnswer::Deploy(DeployAnswer::Started { id }) = stan.call(start_version("staging"))?
    else {
        anyhow::bail!("no rollout started");
    };
    let ended = t.events().wait_n("staging deployed", 1, LONG, |e| {
        e.name == "rollout_ended" && e.str("rollout") == Some(id.as_str())
    })?;
    assert_eq!(ended.str("end"), Some("succeeded"), "{:?}", ended.fields);

    // prod is not his: refused, from the catalog or from a file, audited.
    assert_eq!(
        fault(stan.call(start_version("prod"))),
        Some(ApiFaultKind::Forbidden)
    );
    let audit = ok(t.cli(&["audit", "--operator", "stan"])?)?;
    assert!(
        audit.contains("operator_refused") && audit.contains("deploy shop/prod"),
        "{audit}"
    );

    // He sees his deployment, and the version it runs.
    let ApiAnswer::Deploy(DeployAnswer::Deployments(seen)) =
        stan.call(ApiCall::Deploy(DeployCall::List))?
    else {
        anyhow::bail!("deployments answer");
    };
    let names: Vec<String> = seen
        .iter()
        .map(|d| format!("{}/{}", d.app, d.environment))
        .collect();
    assert_eq!(names, vec!["shop/staging".to_string()]);
    let rec = record(&t, "shop", "staging")?;
    assert_eq!(
        rec.history.last().and_then(|d| d.version.as_deref()),
        Some("1.0")
    );
    let show = ok(t.cli(&["deployments", "show", "shop/staging"])?)?;
    assert!(show.contains("version 1.0"), "{show}");

    // shop's service on the host it runs on; nothing else of the host.
    assert_eq!(logs(&mut stan, service("auto-shop-staging-web")), None);
    assert_eq!(
        logs(&mut stan, service("auto-blog-prod-web")),
        Some(ApiFaultKind::Forbidden)
    );
    assert_eq!(
        logs(&mut stan, LogSource::Steps { change: None }),
        Some(ApiFaultKind::Forbidden)
    );

    // The version staging runs stays in the catalog, said so.
    let out = t.cli(&["apps", "remove", "shop", "1.0"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("shop/staging"),
        "{err}"
    );
    let mut boss = admin(&t, None)?;
    let ApiAnswer::Catalog(_) =
        boss.call(ApiCall::Catalog(vigie_wire::catalog::CatalogCall::App {
            name: "shop".into(),
        }))?
    else {
        anyhow::bail!("the version is still there");
    };
    Ok(())
}
