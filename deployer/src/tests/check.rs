//! `deployments check` on a host root of its own, run by the real shell:
//! what the inventory says against supervisors alive, a port listening,
//! the nginx site and pid, and instance directories it does not name.

use std::collections::BTreeMap;
use std::path::Path;

use crate::inventory::{EnvRecord, HostState, Placement};
use crate::names::{EnvKey, Part};
use crate::{compile_check, findings, Verdict};
use vigie_wire::change::{Action, Command};

fn script(record: &EnvRecord, host: &str) -> String {
    let spec = compile_check(record, host).unwrap();
    match &spec.steps[0].action {
        Action::Run {
            command: Command::Shell(s),
            undo,
            ..
        } => {
            assert!(undo.is_none(), "a check only reads");
            s.clone()
        }
        other => panic!("{other:?}"),
    }
}

fn run(root: &Path, script: &str) -> Vec<(Verdict, String)> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("VIGIE_HOST_ROOT", root)
        .output()
        .unwrap();
    findings(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .map(|f| (f.verdict, f.text))
        .collect()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_check_tells_what_runs_from_what_the_inventory_says() {
    let root = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let key = EnvKey {
        app: Part::parse("shop").unwrap(),
        environment: Part::parse("prod").unwrap(),
    };
    let web = Part::parse("web").unwrap();
    let mut record = EnvRecord::new(key);
    let placed = Placement {
        instance: 2,
        replicas: 1,
        ports: vec![port],
    };
    let state = HostState {
        proxy_port: Some(27100),
        services: BTreeMap::from([(web.clone(), placed)]),
        ..HostState::default()
    };
    record.hosts.insert("web-1".into(), state);
    let mut supervisor = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let mut nginx = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let services = root.path().join("srv/services");
    let instance = services.join("auto-shop-prod-web/2");
    std::fs::create_dir_all(instance.join("src")).unwrap();
    std::fs::create_dir_all(services.join("auto-shop-prod-web/1")).unwrap();
    write(
        &instance.join("replica-1/supervisor.pid"),
        &format!("{}\n", supervisor.id()),
    );
    write(
        &services.join("auto-proxy/run/nginx.pid"),
        &format!("{}\n", nginx.id()),
    );
    write(
        &services.join("auto-proxy/sites/auto-shop-prod.conf"),
        &format!("upstream x {{\n    server 127.0.0.1:{port} max_fails=0;\n}}\n"),
    );
    let check = script(&record, "web-1");
    let seen = run(root.path(), &check);
    assert!(
        seen.iter().all(|(v, _)| *v != Verdict::Bad),
        "as recorded: {seen:#?}"
    );
    assert!(seen.contains(&(
        Verdict::Ok,
        format!("web #2 replica 1: port {port} listening")
    )));
    assert!(seen.iter().any(|(v, t)| *v == Verdict::Note
        && t.starts_with("web #1: instance directory not in the inventory")));

    // The supervisor gone (killed, not reaped yet: a zombie), the port
    // closed, nginx stopped: each said.
    supervisor.kill().unwrap();
    // Exited, left unreaped (WNOWAIT): a zombie, as under a subreaper.
    let pid = nix::unistd::Pid::from_raw(supervisor.id() as i32);
    let flags = nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOWAIT;
    nix::sys::wait::waitid(nix::sys::wait::Id::Pid(pid), flags).unwrap();
    nginx.kill().unwrap();
    nginx.wait().unwrap();
    drop(listener);
    let seen = run(root.path(), &check);
    for wrong in [
        "web #2 replica 1: supervisor not running".to_string(),
        format!("web #2 replica 1: port {port} not listening"),
        "proxy: nginx not running".to_string(),
    ] {
        assert!(
            seen.contains(&(Verdict::Bad, wrong.clone())),
            "{wrong}: {seen:#?}"
        );
    }
    supervisor.wait().unwrap();
    assert!(
        compile_check(&record, "web-2").is_none(),
        "not placed there"
    );
}
