//! Small things a new user meets at the CLI, through the real binary:
//! fish completes `completions SHELL` with shell names, `submit -` reads
//! stdin and `submit --wait` shows what a failed step printed, `servers
//! pin` refuses a key that is not one, and a CSV saved with semicolons
//! gets a hint rather than nine "unknown header" lines.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use vigie_tests::{vigie_bin, Launcher, Setup};

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn fish_completes_completions_with_shell_names() -> anyhow::Result<()> {
    let o = Command::new(vigie_bin())
        .args(["completions", "fish"])
        .output()?;
    let script = String::from_utf8(o.stdout)?;
    let line = script
        .lines()
        .find(|l| l.contains("__fish_vigie_using_subcommand completions\" -f -a"));
    assert!(
        line.is_some_and(|l| l.contains("bash") && l.contains("fish") && l.contains("zsh")),
        "no shell names for `vigie completions <TAB>`"
    );
    Ok(())
}

/// The import's limits are where a user meets them: `--help` says them,
/// from the same constants the check uses.
#[test]
fn import_help_says_its_limits() -> anyhow::Result<()> {
    let o = Command::new(vigie_bin())
        .args(["servers", "import", "--help"])
        .output()?;
    let help = String::from_utf8(o.stdout)?;
    let rows = vigie_catalog::thousands(vigie_catalog::servers::MAX_ROWS);
    let errors = vigie_catalog::thousands(vigie_catalog::servers::MAX_ERRORS);
    assert!(
        help.contains(&format!("{rows} rows")) && help.contains(&format!("first {errors} listed")),
        "{help}"
    );
    Ok(())
}

#[test]
fn submit_reads_stdin_and_wait_shows_the_failed_steps_output() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("details").host("h-1", &[]))?;
    let yaml = "title: fails\nsteps:\n  - name: migrate\n    run: echo \"boom-from-the-step\" >&2; exit 3\n";
    let mut child = Command::new(vigie_bin())
        .args(["submit", "-", "--target", "h-1", "--wait"])
        .env("XDG_CONFIG_HOME", t.dir.path().join("xdg"))
        .env_remove("VIGIE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(yaml.as_bytes())?;
    }
    let o = child.wait_with_output()?;
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("step 1 (migrate) failed: exit 3") && stdout.contains("boom-from-the-step"),
        "{out}"
    );
    Ok(())
}

#[test]
fn a_bad_host_key_or_a_semicolon_csv_is_refused_with_why() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("pinbad"))?;
    let head = "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels";
    let good = t.dir.path().join("good.csv");
    std::fs::write(&good, format!("{head}\ns-1,10.3.0.1,22,debian,x,1,1,1,\n"))?;
    let o = t.cli(&["servers", "import", &good.display().to_string()])?;
    assert!(o.status.success(), "{}", text(&o));

    let o = t.cli(&["servers", "pin", "s-1", "ssh-ed25519 AAAA"])?;
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("ssh-ed25519 key is cut short"),
        "{}",
        text(&o)
    );
    let o = t.cli(&["servers", "show", "s-1"])?;
    assert!(text(&o).contains("(not pinned yet)"), "{}", text(&o));

    let semi = t.dir.path().join("semi.csv");
    std::fs::write(
        &semi,
        format!(
            "{}\ns-2;10.3.0.2;22;debian;x;1;1;1;\n",
            head.replace(',', ";")
        ),
    )?;
    let o = t.cli(&["servers", "import", &semi.display().to_string()])?;
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(
        text(&o).contains("looks semicolon-separated"),
        "{}",
        text(&o)
    );
    Ok(())
}
