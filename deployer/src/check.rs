//! `vigie deployments check APP/ENV` (seed 001's check), pure: what the
//! inventory says runs on a host, turned into a change of one step that
//! only reads (`compile_check`) and prints one finding a line, and the
//! reading of that output (`findings`). On each host: every placement's
//! instance directory, each replica's supervisor alive and, for a web
//! replica, its port listening; the proxy's site present and routing to
//! the inventory's ports (or the maintenance page, on a host left in
//! maintenance) and nginx running; and instance directories the
//! inventory does not name (the one kept for a rollback among them).

use std::fmt::Write as _;

use vigie_wire::change::{ChangeSpec, Step};

use crate::compile::{host_path, run};
use crate::inventory::{EnvRecord, HostState};
use crate::names::PROXY_DIR;

/// How a finding reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// As the inventory says.
    Ok,
    /// Not as the inventory says.
    Bad,
    /// Worth knowing, not wrong (an instance directory kept).
    Note,
}

/// One line of a host's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub verdict: Verdict,
    pub text: String,
}

/// The name of the check's one step.
pub const CHECK_STEP: &str = "check what runs against the inventory";

/// The change that checks `host` against `record` (`None`: the record
/// does not place the environment there).
pub fn compile_check(record: &EnvRecord, host: &str) -> Option<ChangeSpec> {
    let state = record.hosts.get(host)?;
    let mut script = String::from(
        // A zombie (a killed process its subreaper has not reaped) is gone.
        "alive() { [ -s \"$1\" ] || return 1; p=$(cat \"$1\"); [ -d \"/proc/$p\" ] || return 1; \
         s=$(sed 's/.*) //' \"/proc/$p/stat\" 2>/dev/null | cut -c1); [ -n \"$s\" ] && [ \"$s\" != Z ]; }\n\
         say() { printf '%s %s\\n' \"$1\" \"$2\"; }\n",
    );
    for (name, p) in &state.services {
        let dir = host_path(&record.key.instance_dir(name, p.instance));
        let label = format!("{name} #{}", p.instance);
        let _ = writeln!(
            script,
            "if [ -d {dir}/src ]; then say ok '{label}: instance directory'; else say bad '{label}: instance directory missing'; fi"
        );
        if !state.maintenance && !state.stopped.contains(name) {
            replica_checks(&mut script, &dir, &label, p.replicas, &p.ports);
        }
        let service_dir = host_path(&record.key.service_dir(name));
        let _ = writeln!(
            script,
            "for d in {service_dir}/*; do n=${{d##*/}}; case \"$n\" in ''|*[!0-9]*) continue;; {inst}) continue;; esac; \
             say note \"{name} #$n: instance directory not in the inventory (the one kept for a rollback, or left over)\"; done",
            inst = p.instance
        );
    }
    proxy_checks(&mut script, record, state);
    Some(ChangeSpec {
        title: format!("check {} on {host}", record.key),
        steps: vec![check_step(script)],
    })
}

fn check_step(script: String) -> Step {
    run(CHECK_STEP.into(), script, None, 60_000)
}

fn replica_checks(script: &mut String, dir: &str, label: &str, replicas: u32, ports: &[u16]) {
    for r in 1..=replicas {
        let _ = writeln!(
            script,
            "if alive {dir}/replica-{r}/supervisor.pid; then say ok '{label} replica {r}: supervisor running'; \
             else say bad '{label} replica {r}: supervisor not running'; fi"
        );
        if let Some(port) = ports.get((r - 1) as usize) {
            let _ = writeln!(
                script,
                "if [ -n \"$(ss -Hltn 'sport = :{port}')\" ]; then say ok '{label} replica {r}: port {port} listening'; \
                 else say bad '{label} replica {r}: port {port} not listening'; fi"
            );
        }
    }
}

fn proxy_checks(script: &mut String, record: &EnvRecord, state: &HostState) {
    let site = host_path(&format!("{PROXY_DIR}/sites/{}.conf", record.key.stem()));
    let pid = host_path(&format!("{PROXY_DIR}/run/nginx.pid"));
    let _ = writeln!(
        script,
        "if alive {pid}; then say ok 'proxy: nginx running'; else say bad 'proxy: nginx not running'; fi"
    );
    let _ = writeln!(
        script,
        "if [ -f {site} ]; then say ok 'proxy: site present'; else say bad 'proxy: site missing'; fi"
    );
    if state.maintenance || state.paused {
        let _ = writeln!(
            script,
            "if grep -q 'return 503' {site} 2>/dev/null; then say ok 'proxy: maintenance page, as recorded'; \
             else say bad 'proxy: not the maintenance page, though recorded in maintenance'; fi"
        );
        return;
    }
    let ports = state.services.values().flat_map(|p| p.ports.iter());
    for port in ports {
        let _ = writeln!(
            script,
            "if grep -Eq ':{port}( |;)' {site} 2>/dev/null; then say ok 'proxy: routes to port {port}'; \
             else say bad 'proxy: does not route to port {port}'; fi"
        );
    }
}

/// The findings a check's output holds, in order.
pub fn findings(stdout: &str) -> Vec<Finding> {
    stdout
        .lines()
        .filter_map(|line| {
            let (word, text) = line.split_once(' ')?;
            let verdict = match word {
                "ok" => Verdict::Ok,
                "bad" => Verdict::Bad,
                "note" => Verdict::Note,
                _ => return None,
            };
            Some(Finding {
                verdict,
                text: text.to_owned(),
            })
        })
        .collect()
}
