//! The shell scripts run on a server, as text (no I/O, tested alone):
//! the preflight (who am I, is there sudo), the install (binary, tower
//! key, the agent's key made on the server — its secret never leaves
//! it — and only the `.pub` printed back) and the agent's start (a
//! systemd unit where systemd is PID 1, else detached with `setsid`).
//!
//! Layout under the install dir `D`: `bin/vigie`, `agent.key` (+ `.pub`),
//! `tower.public`, `state/` (journal, stash), `run-agent.sh`, and for a
//! detached agent `agent.pid` and `agent.log`.

/// How the agent is kept running on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// systemd where `/run/systemd/system` exists, else detached.
    Auto,
    Systemd,
    Detached,
}

impl std::str::FromStr for Service {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Service::Auto),
            "systemd" => Ok(Service::Systemd),
            "detached" => Ok(Service::Detached),
            _ => Err(format!("{s:?}: expected auto, systemd or detached")),
        }
    }
}

/// Where things go on every server.
#[derive(Debug, Clone)]
pub struct Layout {
    pub install_dir: String,
    /// The agent's host root (`/` on a real server).
    pub agent_root: String,
    pub service: Service,
}

/// The systemd unit's name.
pub const UNIT: &str = "vigie-agent.service";

/// A word for `sh`, single-quoted.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The line of the preflight's output that says what it found.
pub const PREFLIGHT_MARK: &str = "vigie-preflight";

/// Run as the SSH user, without sudo: prints
/// `vigie-preflight ARCH HOME root|sudo|no-sudo|sudo-password`.
pub fn preflight() -> String {
    format!(
        r#"if [ "$(id -u)" = 0 ]; then how=root
elif ! command -v sudo >/dev/null 2>&1; then how=no-sudo
elif sudo -n true 2>/dev/null; then how=sudo
else how=sudo-password
fi
echo "{PREFLIGHT_MARK} $(uname -m) $HOME $how"
"#
    )
}

/// What the preflight found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    pub arch: String,
    pub home: String,
    /// `root`, `sudo`, `no-sudo`, `sudo-password`.
    pub how: String,
}

pub fn read_preflight(out: &str) -> Option<Preflight> {
    let line = out.lines().find(|l| l.starts_with(PREFLIGHT_MARK))?;
    let mut w = line.split_whitespace().skip(1);
    Some(Preflight {
        arch: w.next()?.to_owned(),
        home: w.next()?.to_owned(),
        how: w.next()?.to_owned(),
    })
}

impl Preflight {
    /// Whether the install runs under `sudo -n` (not root), or why it
    /// cannot run at all.
    pub fn sudo(&self, user: &str) -> Result<bool, crate::ProvisionError> {
        let missing = |detail: &str| crate::ProvisionError::MissingSudo {
            user: user.to_owned(),
            detail: detail.to_owned(),
        };
        match self.how.as_str() {
            "root" => Ok(false),
            "sudo" => Ok(true),
            "no-sudo" => Err(missing("is not root and sudo is not installed")),
            _ => Err(missing("may not use sudo without a password")),
        }
    }
}

/// The line of the install's output that carries the agent's public key.
pub const KEY_MARK: &str = "vigie-agent-key";

/// Run as root: stops an agent a previous attempt started, installs the
/// uploaded binary, checks it runs here, writes the tower's key and the
/// agent's start script, makes the agent's key unless one is there (a
/// retry reuses it), and prints its public half.
pub fn install(l: &Layout, upload: &str, host: &str, tower: &str, tower_key: &str) -> String {
    let d = quote(&l.install_dir);
    let run_agent = run_agent(l, host, tower);
    format!(
        r#"set -e
umask 077
D={d}
if [ -d /run/systemd/system ] && systemctl is-active --quiet {UNIT} 2>/dev/null; then systemctl stop {UNIT}; fi
if [ -s "$D/agent.pid" ]; then kill "$(cat "$D/agent.pid")" 2>/dev/null || true; rm -f "$D/agent.pid"; fi
mkdir -p "$D/bin" "$D/state"
chmod 0755 "$D" "$D/bin"
install -m 0755 {upload} "$D/bin/vigie"
rm -f {upload}
"$D/bin/vigie" --version >/dev/null
mkdir -p {root}
printf '%s\n' {key} > "$D/tower.public"
cat > "$D/run-agent.sh" <<'VIGIE_EOF'
{run_agent}VIGIE_EOF
chmod 0700 "$D/run-agent.sh"
if [ -s "$D/agent.key" ] && [ ! -s "$D/agent.key.pub" ]; then rm -f "$D/agent.key"; fi
if [ ! -s "$D/agent.key" ]; then "$D/bin/vigie" keys gen --out "$D/agent.key" >/dev/null 2>&1; fi
echo "{KEY_MARK} $(cat "$D/agent.key.pub")"
"#,
        upload = quote(upload),
        root = quote(&l.agent_root),
        key = quote(tower_key),
    )
}

/// The agent's command line (`exec`), for the start script and the unit.
fn agent_command(l: &Layout, host: &str, tower: &str) -> String {
    let d = &l.install_dir;
    [
        format!("{d}/bin/vigie"),
        "--log-json".into(),
        "agent".into(),
        "--tower".into(),
        tower.into(),
        "--tower-key".into(),
        format!("@{d}/tower.public"),
        "--key".into(),
        format!("{d}/agent.key"),
        "--host".into(),
        host.into(),
        "--root".into(),
        l.agent_root.clone(),
        "--state".into(),
        format!("{d}/state"),
    ]
    .iter()
    .map(|w| quote(w))
    .collect::<Vec<_>>()
    .join(" ")
}

/// `run-agent.sh`: the detached agent's entry (its pid recorded, its
/// output appended to `agent.log`).
fn run_agent(l: &Layout, host: &str, tower: &str) -> String {
    let d = quote(&l.install_dir);
    format!(
        "#!/bin/sh\necho $$ > {d}/agent.pid\nexec {} >> {d}/agent.log 2>&1 </dev/null\n",
        agent_command(l, host, tower)
    )
}

/// The systemd unit (see `packaging/systemd/vigie-agent.service`).
pub fn unit(l: &Layout, host: &str, tower: &str) -> String {
    format!(
        "[Unit]\nDescription=Vigie agent (provisioned by the tower)\n\
         After=network-online.target\nWants=network-online.target\n\n\
         [Service]\nType=simple\nExecStart={}\nRestart=always\nRestartSec=10\n\
         RestartPreventExitStatus=64\nKillMode=mixed\nTimeoutStopSec=30\n\n\
         [Install]\nWantedBy=multi-user.target\n",
        agent_command(l, host, tower)
    )
}

/// Run as root once the host is enrolled: starts the agent.
pub fn start(l: &Layout, host: &str, tower: &str) -> String {
    let d = quote(&l.install_dir);
    let systemd = format!(
        r#"cat > /etc/systemd/system/{UNIT} <<'VIGIE_EOF'
{}VIGIE_EOF
systemctl daemon-reload
systemctl enable {UNIT} >/dev/null 2>&1
systemctl restart {UNIT}
echo started systemd"#,
        unit(l, host, tower)
    );
    let detached = format!(
        "cd /\nsetsid -f {d}/run-agent.sh </dev/null >/dev/null 2>&1\necho started detached"
    );
    let body = match l.service {
        Service::Systemd => systemd,
        Service::Detached => detached,
        Service::Auto => {
            format!("if [ -d /run/systemd/system ]; then\n{systemd}\nelse\n{detached}\nfi")
        }
    };
    format!("set -e\n{body}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(service: Service) -> Layout {
        Layout {
            install_dir: "/opt/vigie".into(),
            agent_root: "/".into(),
            service,
        }
    }

    #[test]
    fn words_are_quoted_for_sh() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn preflight_output_is_read() {
        let p = read_preflight("motd\nvigie-preflight x86_64 /home/deb sudo\n");
        assert_eq!(
            p,
            Some(Preflight {
                arch: "x86_64".into(),
                home: "/home/deb".into(),
                how: "sudo".into()
            })
        );
        assert_eq!(read_preflight("nothing"), None);
    }

    #[test]
    fn root_runs_as_is_a_sudoer_under_sudo_and_anyone_else_is_refused_clearly() {
        let p = |how: &str| Preflight {
            arch: "x86_64".into(),
            home: "/home/deb".into(),
            how: how.into(),
        };
        assert_eq!(p("root").sudo("root").ok(), Some(false));
        assert_eq!(p("sudo").sudo("deb").ok(), Some(true));
        let e = p("no-sudo").sudo("deb").unwrap_err().to_string();
        assert!(e.starts_with("missing sudo: user deb is not root"), "{e}");
        let e = p("sudo-password").sudo("deb").unwrap_err().to_string();
        assert!(e.contains("without a password"), "{e}");
    }

    #[test]
    fn the_install_keeps_a_key_already_there_and_prints_only_the_public_half() {
        let s = install(
            &layout(Service::Auto),
            "/root/.up",
            "web-1",
            "tcp://192.0.2.1:7110",
            "k",
        );
        assert!(s.contains(r#"if [ ! -s "$D/agent.key" ]; then"#), "{s}");
        assert!(s.contains(r#"cat "$D/agent.key.pub""#), "{s}");
        assert!(
            !s.contains(r#"cat "$D/agent.key""#),
            "the secret is never printed: {s}"
        );
        assert!(s.contains("'--host' 'web-1'"), "{s}");
    }

    #[test]
    fn the_start_follows_the_service_setting() {
        let d = start(&layout(Service::Detached), "h", "tcp://t:1");
        assert!(d.contains("setsid -f") && !d.contains("systemctl"), "{d}");
        let s = start(&layout(Service::Systemd), "h", "tcp://t:1");
        assert!(s.contains("systemctl restart vigie-agent.service") && !s.contains("setsid"));
        let a = start(&layout(Service::Auto), "h", "tcp://t:1");
        assert!(a.contains("if [ -d /run/systemd/system ]") && a.contains("setsid"));
    }
}
