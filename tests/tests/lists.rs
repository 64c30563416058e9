//! Every list of the operator's CLI pages, and none is cut silently: each
//! list verb is walked with a page smaller than the list by following the
//! cursor each page ends with, and every row is reached once, the total
//! said on every page. The server catalog past 20,000 servers (where
//! `servers list` used to stop without a word); an empty list says so.
//! An import's errors, the file's and the tower's, come in one list.

use std::collections::BTreeSet;
use std::process::Output;

use vigie_tests::front::{add_operator, admin, grants};
use vigie_tests::{Launcher, Setup};
use vigie_wire::deploy::DeployCall;
use vigie_wire::tower::ApiCall;

const HEAD: &str = "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels\n";

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output) -> anyhow::Result<Output> {
    anyhow::ensure!(o.status.success(), "{}", text(&o));
    Ok(o)
}

/// One page with `--json`: its rows (stdout) and what it leaves out (the
/// last line of stderr).
fn page(
    t: &Launcher,
    args: &[&str],
) -> anyhow::Result<(Vec<serde_json::Value>, serde_json::Value)> {
    let o = ok(t.cli(args)?)?;
    let rows = String::from_utf8(o.stdout.clone())?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<Vec<serde_json::Value>, _>>()?;
    let err = String::from_utf8(o.stderr.clone())?;
    let tail = err.lines().last().unwrap_or("");
    let tail: serde_json::Value = serde_json::from_str(tail)
        .map_err(|e| anyhow::anyhow!("no page line ({e}): {}", text(&o)))?;
    Ok((rows, tail))
}

/// Walks a list `limit` rows at a time, following `next` with `flag`;
/// the rows' `key`s, each once, and the total every page said.
fn walk(
    t: &Launcher,
    args: &[&str],
    key: &str,
    flag: &str,
    limit: u32,
) -> anyhow::Result<(Vec<String>, u64)> {
    let limit = limit.to_string();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    for _ in 0..1_000 {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--json", "--limit", &limit]);
        if let Some(c) = &cursor {
            a.extend([flag, c.as_str()]);
        }
        let (rows, tail) = page(t, &a)?;
        let said = tail["total"].as_u64();
        anyhow::ensure!(said.is_some(), "{args:?}: no total in {tail}");
        anyhow::ensure!(
            total.is_none() || total == said,
            "{args:?}: the total moved: {total:?} then {tail}"
        );
        total = said;
        anyhow::ensure!(
            rows.len() <= limit.parse::<usize>()?,
            "{args:?}: a page longer than asked"
        );
        for r in &rows {
            seen.push(match &r[key] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        match &tail["next"] {
            serde_json::Value::String(n) => cursor = Some(n.clone()),
            serde_json::Value::Null => {
                let total = total.unwrap_or(0);
                let unique: BTreeSet<&String> = seen.iter().collect();
                anyhow::ensure!(
                    unique.len() == seen.len() && seen.len() as u64 == total,
                    "{args:?}: {} rows, {} distinct, total said {total}: {seen:?}",
                    seen.len(),
                    unique.len()
                );
                return Ok((seen, total));
            }
            other => anyhow::bail!("{args:?}: next is {other}"),
        }
    }
    anyhow::bail!("{args:?}: never ended")
}

fn csv(t: &Launcher, name: &str, rows: impl Iterator<Item = String>) -> anyhow::Result<String> {
    let p = t.dir.path().join(name);
    let mut body = HEAD.to_owned();
    for r in rows {
        body.push_str(&r);
        body.push('\n');
    }
    std::fs::write(&p, body)?;
    Ok(p.display().to_string())
}

/// Every list verb, against more rows than a page.
#[test]
fn every_list_verb_pages_and_reaches_every_row() -> anyhow::Result<()> {
    let t = Launcher::start(
        Setup::new("lists")
            .host("web-1", &[("role", "web")])
            .host("web-2", &[("role", "web")])
            .host("web-3", &[("role", "web")]),
    )?;
    let dir = t.dir.path().to_path_buf();
    // Nothing yet: an empty list says so on a terminal's stderr, and in
    // JSON prints no row, with `next` null.
    let o = ok(t.cli(&["servers", "list"])?)?;
    assert!(o.stdout.is_empty(), "{}", text(&o));
    assert!(text(&o).contains("no servers"), "{}", text(&o));
    let (rows, tail) = page(&t, &["servers", "list", "--json"])?;
    assert!(rows.is_empty());
    assert_eq!(
        tail,
        serde_json::json!({"next": null, "more": 0, "total": 0})
    );

    for s in 0..3u32 {
        let rows = (0..2u32).map(|i| format!("s{s}-{i},10.9.{s}.{i},22,debian,x,1,1,1,"));
        ok(t.cli(&["servers", "import", &csv(&t, &format!("s{s}.csv"), rows)?])?)?;
    }
    let app = std::fs::read_to_string("../examples/app.yml")?;
    for v in ["1.0.0", "1.1.0", "2.0.0"] {
        let p = dir.join(format!("app-{v}.yml"));
        std::fs::write(&p, app.replace("version: 1.0.0", &format!("version: {v}")))?;
        ok(t.cli(&["apps", "add", &p.display().to_string()])?)?;
    }
    for n in ["a", "b", "c"] {
        let cidr = match n {
            "a" => "10.50.0.0/24",
            "b" => "10.51.0.0/24",
            _ => "10.52.0.0/24",
        };
        ok(t.cli(&["ips", "pool", "add", n, cidr])?)?;
    }
    ok(t.cli(&["ips", "allocate", "a", "--for", "app:shop", "--count", "5"])?)?;
    for name in ["ann", "bob"] {
        add_operator(&t, &dir, "default", name, &grants(&["changes.read"])?)?;
    }
    let change = dir.join("c.yml");
    std::fs::write(
        &change,
        "title: wait\nsteps:\n  - name: hi\n    run: \"true\"\n",
    )?;
    // A host with no plug: its changes stay queued.
    ok(t.cli(&["hosts", "add", "far-1"])?)?;
    for _ in 0..3 {
        ok(t.cli(&["submit", &change.display().to_string(), "--target", "far-1"])?)?;
    }
    let mut api = admin(&t, None)?;
    for env in ["prod", "staging", "test"] {
        let key = vigie_deployer::EnvKey {
            app: vigie_deployer::Part::parse("shop").map_err(anyhow::Error::msg)?,
            environment: vigie_deployer::Part::parse(env).map_err(anyhow::Error::msg)?,
        };
        let mut record = vigie_deployer::EnvRecord::new(key);
        record.history.push(vigie_deployer::DeployRecord {
            number: 1,
            bumped: Vec::new(),
            changes: Default::default(),
            outcome: vigie_deployer::Outcome::Succeeded,
            maintenance: false,
            run: None,
            at_ms: None,
            operator: None,
            revisions: Default::default(),
            version: None,
            verb: None,
        });
        api.call(ApiCall::Deploy(DeployCall::Record {
            app: "shop".into(),
            environment: env.into(),
            expected: 0,
            record: record.to_json()?,
        }))?;
    }

    let lists: [(&[&str], &str, &str, u64); 12] = [
        (&["servers", "list"], "name", "--after", 6),
        (&["servers", "sessions"], "id", "--after", 3),
        (&["hosts"], "id", "--after", 4),
        (&["hosts", "--metrics"], "host", "--after", 4),
        (&["status"], "id", "--before", 3),
        (&["queue", "far-1"], "id", "--after", 3),
        (&["ips", "pools"], "name", "--after", 3),
        (&["ips", "list", "a"], "address", "--after", 5),
        (&["apps", "list"], "version", "--after", 3),
        (&["operators"], "name", "--after", 3),
        (&["deployments", "list"], "name", "--after", 3),
        (&["audit"], "tenant_seq", "--before", 0),
    ];
    for (args, key, flag, want) in lists {
        let (seen, total) = walk(&t, args, key, flag, 2)?;
        if want > 0 {
            assert_eq!(total, want, "{args:?}: {seen:?}");
        } else {
            assert!(total > 2, "{args:?}: {seen:?}");
        }
    }
    // In text, what a page leaves out is said after it, with the cursor.
    let o = ok(t.cli(&["servers", "list", "--limit", "4"])?)?;
    assert!(
        text(&o).contains("2 more: --after s1-1 (6 in all)"),
        "{}",
        text(&o)
    );
    let o = ok(t.cli(&["status", "--limit", "1"])?)?;
    assert!(text(&o).contains("2 more: --before "), "{}", text(&o));
    Ok(())
}

/// 25,000 servers: `servers list` says so and reaches the last one (it
/// stopped at 20,000 without a word).
#[test]
fn the_server_catalog_lists_past_twenty_thousand() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("many").limit("servers_per_tenant", 30_000))?;
    for part in 0..2u32 {
        let rows = (0..12_500u32).map(|i| {
            let n = part * 12_500 + i;
            format!(
                "m-{n:05},10.{}.{}.{},22,debian,x,1,1,1,",
                100 + part,
                i >> 8,
                i & 255
            )
        });
        ok(t.cli(&[
            "servers",
            "import",
            &csv(&t, &format!("m{part}.csv"), rows)?,
        ])?)?;
    }
    let o = ok(t.cli(&["servers", "list"])?)?;
    let out = text(&o);
    assert!(
        out.contains("24,800 more: --after m-00199 (25,000 in all)"),
        "{}",
        &out[out.len().saturating_sub(300)..]
    );
    let started = std::time::Instant::now();
    let (seen, total) = walk(&t, &["servers", "list"], "name", "--after", 1_000)?;
    // A figure for BENCHMARKS.md, not a bound: 25 pages, one CLI run each.
    println!(
        "25,000 servers listed in 25 pages of 1,000: {:?}",
        started.elapsed()
    );
    assert_eq!(total, 25_000);
    assert_eq!(seen.last().map(String::as_str), Some("m-24999"));
    Ok(())
}

/// A file with local errors and names already in the catalog: all in one
/// list, in line order, counted, one exit code — and a count past the
/// 1,000 listed is the true one.
#[test]
fn an_imports_errors_and_the_towers_come_in_one_list() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("oneround"))?;
    let first = (0..2u32).map(|i| format!("old-{i},10.7.0.{i},22,debian,x,1,1,1,"));
    ok(t.cli(&["servers", "import", &csv(&t, "first.csv", first)?])?)?;
    let rows = [
        "old-0,10.7.1.0,22,debian,x,1,1,1,",
        "new-1,10.7.1.1,22,debian,x,one,1,1,",
        "old-1,10.7.1.2,22,debian,x,1,1,1,",
    ];
    let o = t.cli(&[
        "servers",
        "import",
        &csv(&t, "mixed.csv", rows.iter().map(|r| r.to_string()))?,
    ])?;
    let out = text(&o);
    assert_eq!(o.status.code(), Some(64), "{out}");
    let want = [
        "3 error(s):",
        "line 2, column 'name': \"old-0\" is already in the catalog (session 1)",
        "line 3, column 'cpu'",
        "line 4, column 'name': \"old-1\" is already in the catalog (session 1)",
        "nothing imported",
    ];
    let mut at = 0;
    for w in want {
        let found = out[at..].find(w);
        assert!(found.is_some(), "{w:?} missing or out of order in {out}");
        at += found.unwrap_or(0);
    }
    // Only the tower's errors: the same words, the same exit code.
    let o = t.cli(&[
        "servers",
        "import",
        &csv(
            &t,
            "dup.csv",
            ["old-0,10.7.2.0,22,debian,x,1,1,1,".to_string()].into_iter(),
        )?,
    ])?;
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(
        text(&o).contains("1 error(s):\n  line 2, column 'name'"),
        "{}",
        text(&o)
    );
    // 4,800 errors: all counted, the first 1,000 shown.
    let bad = (0..4_800u32).map(|i| format!("b-{i},10.8.0.300,22,debian,x,1,1,1,"));
    let o = t.cli(&["servers", "import", &csv(&t, "bad.csv", bad)?])?;
    assert!(
        text(&o).contains("4,800 errors, the first 1,000 shown:"),
        "{}",
        &text(&o)[..300]
    );
    let listed = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.starts_with("  line "))
        .count();
    assert_eq!(listed, 1_000);
    Ok(())
}
