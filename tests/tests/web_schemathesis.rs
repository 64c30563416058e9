//! schemathesis (from PyPI, installed by `scripts/deps`) against the web
//! API's own OpenAPI document, with an operator's API token: no answer
//! may be a 5xx, break its documented schema, status or content type.

use std::path::PathBuf;
use std::process::Command;

use vigie_tests::web::console;
use vigie_tests::{Launcher, Setup};

fn schemathesis() -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("schemathesis-venv/bin/schemathesis");
    anyhow::ensure!(
        bin.exists(),
        "{} is missing: run scripts/deps (it installs schemathesis from PyPI into a venv)",
        bin.display()
    );
    Ok(bin)
}

#[test]
fn schemathesis_finds_no_server_error_nor_schema_break() -> anyhow::Result<()> {
    let bin = schemathesis()?;
    let t = Launcher::start(Setup::new("web-st").host("web-1", &[("role", "web")]))?;
    let base = console(&t)?;
    let out = t.cli(&["tokens", "create", "--expires", "1h"])?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)?.trim().to_owned();
    let run = Command::new(bin)
        .args(["run", &format!("{base}/api/openapi.json")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,\
             content_type_conformance,response_headers_conformance",
        ])
        .args(["--max-examples", "25", "--seed", "1"])
        .env("NO_COLOR", "1")
        // Its caches go with the test, not into the source tree.
        .current_dir(t.dir.path())
        .output()?;
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "schemathesis failed:\n{text}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    Ok(())
}
