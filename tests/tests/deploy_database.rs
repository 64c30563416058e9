//! The deployer's database helper (`auto-bin/database`) against a real
//! PostgreSQL: it makes the `auto-*` database and its role once, says what
//! it made, and its undo drops only what that very run made — never a
//! database that was there before.

use std::path::Path;
use std::process::{Command, Output};

use vigie_tests::servers::Postgres;

fn helper(root: &Path, op: &str, admin: &str, name: &str) -> anyhow::Result<Output> {
    let script = root.join("database");
    std::fs::write(&script, vigie_deployer::DATABASE)?;
    Ok(Command::new("sh")
        .arg(&script)
        .args([op, admin, name])
        .env("VIGIE_HOST_ROOT", root)
        .output()?)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn databases_are_made_once_and_only_what_a_run_made_is_undone() -> anyhow::Result<()> {
    let pg = Postgres::start()?;
    let root = tempfile::tempdir()?;
    let admin = pg.admin_url();
    let exists = |what: &str, name: &str| -> anyhow::Result<bool> {
        let table = if what == "role" {
            "pg_roles WHERE rolname"
        } else {
            "pg_database WHERE datname"
        };
        Ok(pg.query(
            "postgres",
            &format!("SELECT count(*) FROM {table} = '{name}'"),
        )? == "1")
    };

    let made = helper(root.path(), "ensure", &admin, "auto-shop-prod-main")?;
    assert!(made.status.success(), "{}", text(&made));
    assert!(
        text(&made).contains("created role database"),
        "{}",
        text(&made)
    );
    assert!(exists("role", "auto-shop-prod-main")? && exists("db", "auto-shop-prod-main")?);
    assert_eq!(
        pg.query(
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'auto-shop-prod-main'"
        )?,
        "auto-shop-prod-main"
    );

    // Again: idempotent, and this run made nothing, so its undo drops nothing.
    let again = helper(root.path(), "ensure", &admin, "auto-shop-prod-main")?;
    assert!(text(&again).contains("already there"), "{}", text(&again));
    let undo = helper(root.path(), "undo", &admin, "auto-shop-prod-main")?;
    assert!(undo.status.success(), "{}", text(&undo));
    assert!(
        exists("db", "auto-shop-prod-main")?,
        "a database made before is never dropped"
    );

    // A run that made both: its undo drops both, even with a client connected.
    let made = helper(root.path(), "ensure", &admin, "auto-shop-test-main")?;
    assert!(made.status.success(), "{}", text(&made));
    let mut client = Command::new("psql")
        .arg(format!(
            "postgresql://auto-shop-test-main@127.0.0.1:{}/auto-shop-test-main",
            pg.port
        ))
        .args(["-c", "SELECT pg_sleep(30)"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let undo = helper(root.path(), "undo", &admin, "auto-shop-test-main")?;
    assert!(undo.status.success(), "{}", text(&undo));
    assert!(!exists("db", "auto-shop-test-main")? && !exists("role", "auto-shop-test-main")?);
    let _ = client.kill();
    let _ = client.wait();

    // An unreachable server: a clear failure, nothing recorded as made.
    let down = helper(
        root.path(),
        "ensure",
        "postgresql://postgres@127.0.0.1:1/postgres",
        "auto-x-y-z",
    )?;
    assert!(!down.status.success());
    assert!(!root
        .path()
        .join("srv/services/auto-state/auto-x-y-z.created")
        .exists());
    Ok(())
}
