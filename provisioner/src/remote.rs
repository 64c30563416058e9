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

/// Exit status of an install refused before it touched anything.
pub const REFUSED: i32 = 3;

/// The file of the install dir naming the host id its agent is for.
pub const OWNER: &str = "owner";

/// The install's first part, with `D` set: refuses an install dir that is
/// a symbolic link or that someone else owns than the user installing
/// (root, or the SSH user when it installs without sudo), or whose agent
/// is another host's (its `owner` file names another host id: that
/// agent is never stopped, reused nor overwritten, and the refusal does
/// not say whose it is), and stops a detached agent an earlier install
/// for this host started — only if the pid file names a process running
/// `$D/bin/vigie … agent …`: a stale pid file may name anyone's process
/// by now.
pub fn prelude(host: &str) -> String {
    let host = quote(host);
    format!(
        r#"if [ -L "$D" ]; then echo "vigie: $D is a symbolic link: refusing to install there" >&2; exit {REFUSED}; fi
if [ -e "$D" ]; then
  owner=$(stat -c %u "$D")
  if [ "$owner" != "$(id -u)" ]; then echo "vigie: $D exists and belongs to uid $owner, not to $(id -un) who installs: refusing to install there" >&2; exit {REFUSED}; fi
fi
if [ -e "$D/{OWNER}" ] && [ "$(head -n 1 "$D/{OWNER}")" != {host} ]; then echo "vigie: $D holds the agent of another host: refusing to touch it" >&2; exit {REFUSED}; fi
if [ -s "$D/agent.pid" ]; then
  pid=$(head -c 32 "$D/agent.pid" | tr -d ' \n')
  case "$pid" in
    ''|*[!0-9]*) ;;
    *)
      first=$(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | head -n 1) || true
      if [ "$first" = "$D/bin/vigie" ] && tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -qx agent; then
        kill "$pid" 2>/dev/null || true
      fi;;
  esac
  rm -f "$D/agent.pid"
fi
"#
    )
}

/// Run as root: stops an agent a previous attempt started, installs the
/// uploaded binary, checks it runs here, writes the tower's key and the
/// agent's start script, makes the agent's key unless one is there (a
/// retry reuses it; `fresh_key`: the server was a host whose key is
/// revoked, so a new one is made, and its agent's state — journal,
/// stash — starts anew), and prints its public half.
pub fn install(
    l: &Layout,
    binary: &Binary,
    host: &str,
    tower: &str,
    tower_key: &str,
    fresh_key: bool,
) -> String {
    let d = quote(&l.install_dir);
    let run_agent = run_agent(l, host, tower);
    let prelude = prelude(host);
    // A removed host's server is a new host: a new key, and a new journal
    // (the old one numbers reports the tower forgot with the host).
    let fresh = if fresh_key {
        "rm -f \"$D/agent.key\" \"$D/agent.key.pub\"\nrm -rf \"$D/state\"\nmkdir -p \"$D/state\"\n"
    } else {
        ""
    };
    let (upload, put) = put_binary(binary);
    format!(
        r#"set -e
umask 077
U={upload}
trap 'rm -f "$U"' EXIT
D={d}
{prelude}if [ -d /run/systemd/system ] && systemctl is-active --quiet {UNIT} 2>/dev/null; then systemctl stop {UNIT}; fi
mkdir -p "$D/bin" "$D/state"
chmod 0755 "$D" "$D/bin"
printf '%s\n' {owner} > "$D/{OWNER}.new"
mv -f "$D/{OWNER}.new" "$D/{OWNER}"
{put}"$D/bin/vigie" --version >/dev/null
mkdir -p {root}
printf '%s\n' {key} > "$D/tower.public"
cat > "$D/run-agent.sh" <<'VIGIE_EOF'
{run_agent}VIGIE_EOF
chmod 0700 "$D/run-agent.sh"
{fresh}if [ -s "$D/agent.key" ] && [ ! -s "$D/agent.key.pub" ]; then rm -f "$D/agent.key"; fi
if [ ! -s "$D/agent.key" ]; then "$D/bin/vigie" keys gen --out "$D/agent.key" >/dev/null 2>&1; fi
echo "{KEY_MARK} $(cat "$D/agent.key.pub")"
"#,
        root = quote(&l.agent_root),
        key = quote(tower_key),
        owner = quote(host),
    )
}

/// The binary an install puts in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary<'a> {
    /// Copied to this path on the server (removed however the install ends).
    Uploaded(&'a str),
    /// The one installed already, whose SHA-256 is this (the tower's).
    Kept { sha256: &'a str },
}

/// Exit status of an install whose kept binary changed since checked.
pub const STALE: i32 = 4;

/// The line of [`installed`]'s output with the installed binary's digest.
pub const INSTALLED_MARK: &str = "vigie-installed";

/// Run as the install will be: prints `vigie-installed SHA256` when the
/// install dir holds this host's agent binary (its `owner` file names
/// `host`; not a symbolic link), nothing otherwise — then the binary is
/// copied.
pub fn installed(l: &Layout, host: &str) -> String {
    format!(
        r#"D={d}
if [ ! -L "$D" ] && [ -f "$D/bin/vigie" ] && [ ! -L "$D/bin/vigie" ] && [ "$(head -n 1 "$D/{OWNER}" 2>/dev/null)" = {host} ]; then
  echo "{INSTALLED_MARK} $(sha256sum "$D/bin/vigie" 2>/dev/null | cut -d ' ' -f 1)"
fi
"#,
        d = quote(&l.install_dir),
        host = quote(host),
    )
}

/// The digest [`installed`] printed, if it printed one.
pub fn read_installed(out: &str) -> Option<&str> {
    out.lines()
        .find_map(|l| l.strip_prefix(INSTALLED_MARK))
        .map(str::trim)
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The install's `U` (what to remove however it ends) and the lines
/// that put the binary in place.
fn put_binary(binary: &Binary) -> (String, String) {
    match binary {
        Binary::Uploaded(u) => (
            quote(u),
            format!(
                "install -m 0755 {u} \"$D/bin/vigie\"\nrm -f {u}\n",
                u = quote(u)
            ),
        ),
        // Checked again as root, right before it is used: the digest was
        // read in another session.
        Binary::Kept { sha256 } => (
            "''".to_owned(),
            format!(
                "if ! printf '%s  %s\\n' {sum} \"$D/bin/vigie\" | sha256sum -c --status; then \
                 echo \"vigie: $D/bin/vigie changed since it was checked\" >&2; exit {STALE}; fi\n",
                sum = quote(sha256)
            ),
        ),
    }
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
/// output appended to `agent.log`, which is made, or narrowed, 0600
/// first: the agent's own umask stays the host's, for its steps).
fn run_agent(l: &Layout, host: &str, tower: &str) -> String {
    let d = quote(&l.install_dir);
    format!(
        "#!/bin/sh\necho $$ > {d}/agent.pid\n(umask 077; : >> {d}/agent.log)\n\
         chmod 0600 {d}/agent.log\nexec {} >> {d}/agent.log 2>&1 </dev/null\n",
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

/// Run as root after a refused enrolment: stops and disables the agent
/// the attempt started for `host` (its key is not the tower's to
/// accept) — never another host's.
pub fn stop(l: &Layout, host: &str) -> String {
    let d = quote(&l.install_dir);
    let prelude = prelude(host);
    let owned = format!(
        "[ \"$(head -n 1 \"$D/{OWNER}\" 2>/dev/null)\" = {} ]",
        quote(host)
    );
    format!(
        "set -e\nD={d}\nif {owned} && [ -d /run/systemd/system ] && systemctl is-enabled --quiet {UNIT} 2>/dev/null; then systemctl disable --now {UNIT}; fi\n{prelude}"
    )
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
            &Binary::Uploaded("/root/.up"),
            "web-1",
            "tcp://192.0.2.1:7110",
            "k",
            false,
        );
        assert!(s.contains(r#"if [ ! -s "$D/agent.key" ]; then"#), "{s}");
        assert!(s.contains(r#"cat "$D/agent.key.pub""#), "{s}");
        assert!(
            !s.contains(r#"cat "$D/agent.key""#),
            "the secret is never printed: {s}"
        );
        assert!(s.contains("'--host' 'web-1'"), "{s}");
        let owner = s.find("> \"$D/owner.new\"").expect("the owner recorded");
        assert!(
            s.find("holds the agent of another host").unwrap() < owner
                && owner < s.find("install -m 0755").unwrap(),
            "checked before anything is touched, recorded before the binary: {s}"
        );
        assert!(!s.contains(r#"rm -f "$D/agent.key" "$D/agent.key.pub""#));
        let fresh = install(
            &layout(Service::Auto),
            &Binary::Uploaded("/root/.up"),
            "web-1",
            "tcp://192.0.2.1:7110",
            "k",
            true,
        );
        let rm = fresh
            .find(r#"rm -f "$D/agent.key" "$D/agent.key.pub""#)
            .expect("a fresh key: the old one removed");
        assert!(rm < fresh.find("keys gen").unwrap(), "{fresh}");
    }

    /// Runs the prelude with a real `sh`, `D` set to `dir`.
    fn run_prelude(dir: &std::path::Path) -> std::process::Output {
        run_prelude_for(dir, "web-1")
    }

    fn run_prelude_for(dir: &std::path::Path, host: &str) -> std::process::Output {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "set -e\nD={}\n{}",
                quote(&dir.to_string_lossy()),
                prelude(host)
            ))
            .output()
            .unwrap()
    }

    /// An agent of this install dir: argv[0] `$D/bin/vigie`, an `agent`
    /// word, its pid in `$D/agent.pid`.
    fn start_agent(d: &std::path::Path) -> std::process::Child {
        let mut agent = std::process::Command::new("sh");
        std::os::unix::process::CommandExt::arg0(&mut agent, d.join("bin/vigie"));
        let agent = agent.args(["-c", "sleep 30; :", "agent"]).spawn().unwrap();
        std::fs::write(d.join("agent.pid"), format!("{}\n", agent.id())).unwrap();
        agent
    }

    #[test]
    fn another_hosts_agent_is_never_stopped_nor_its_dir_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("vigie");
        std::fs::create_dir_all(d.join("bin")).unwrap();
        std::fs::write(d.join(OWNER), "a-web-1\n").unwrap();
        let mut agent = start_agent(&d);
        let out = run_prelude_for(&d, "b-web-1");
        assert_eq!(out.status.code(), Some(REFUSED), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("holds the agent of another host"), "{err}");
        assert!(!err.contains("a-web-1"), "whose it is is not said: {err}");
        assert!(alive(&mut agent), "the other host's agent still runs");
        assert!(d.join("agent.pid").exists());
        // The stop after a refused enrolment is refused the same way.
        let stop = std::process::Command::new("sh")
            .arg("-c")
            .arg(stop(
                &Layout {
                    install_dir: d.to_string_lossy().into_owned(),
                    agent_root: "/".into(),
                    service: Service::Detached,
                },
                "b-web-1",
            ))
            .output()
            .unwrap();
        assert_eq!(stop.status.code(), Some(REFUSED), "{stop:?}");
        assert!(alive(&mut agent));
        // The whole install refuses too, and removes the binary uploaded
        // for it.
        let upload = tmp.path().join(".vigie-upload-b-web-1");
        std::fs::write(&upload, "binary").unwrap();
        let layout = Layout {
            install_dir: d.to_string_lossy().into_owned(),
            agent_root: "/".into(),
            service: Service::Detached,
        };
        let script = install(
            &layout,
            &Binary::Uploaded(&upload.to_string_lossy()),
            "b-web-1",
            "tcp://t:1",
            "k",
            false,
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(REFUSED), "{out:?}");
        assert!(!upload.exists(), "the upload is not left behind");
        assert_eq!(std::fs::read_to_string(d.join(OWNER)).unwrap(), "a-web-1\n");
        assert!(alive(&mut agent));
        // Its own host's install goes on, and stops it.
        let out = run_prelude_for(&d, "a-web-1");
        assert!(out.status.success(), "{out:?}");
        assert!(!agent.wait().unwrap().success());
    }

    fn alive(child: &mut std::process::Child) -> bool {
        child.try_wait().unwrap().is_none()
    }

    #[test]
    fn only_the_install_dirs_own_agent_is_stopped_and_a_foreign_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("vigie");
        std::fs::create_dir_all(d.join("bin")).unwrap();
        // A stale pid file naming someone else's process: left alone.
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(d.join("agent.pid"), format!("{}\n", other.id())).unwrap();
        let out = run_prelude(&d);
        assert!(out.status.success(), "{out:?}");
        assert!(alive(&mut other), "a foreign process is not killed");
        assert!(!d.join("agent.pid").exists());
        // The agent this dir runs.
        let mut agent = start_agent(&d);
        let out = run_prelude(&d);
        assert!(out.status.success(), "{out:?}");
        let status = agent.wait().unwrap();
        assert!(!status.success(), "killed: {status:?}");
        other.kill().unwrap();
        other.wait().unwrap();

        // A dir owned by another user than the one installing: refused.
        let foreign = if is_root() {
            let f = tmp.path().join("foreign");
            std::fs::create_dir(&f).unwrap();
            std::os::unix::fs::chown(&f, Some(65534), Some(65534)).unwrap();
            f
        } else {
            std::path::PathBuf::from("/usr")
        };
        let out = run_prelude(&foreign);
        assert_eq!(out.status.code(), Some(REFUSED), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("refusing to install there"), "{err}");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert_eq!(run_prelude(&link).status.code(), Some(REFUSED));
    }

    fn is_root() -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    }

    #[test]
    fn an_installed_binary_is_kept_only_while_its_digest_is_the_towers() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("vigie");
        std::fs::create_dir_all(d.join("bin")).unwrap();
        let bin = d.join("bin/vigie");
        // Stands for the agent: `--version` runs, `keys gen --out F` makes a key.
        std::fs::write(
            &bin,
            "#!/bin/sh\nif [ \"$1\" = keys ]; then echo pub > \"$4.pub\"; echo sec > \"$4\"; fi\n",
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.join(OWNER), "web-1\n").unwrap();
        let l = Layout {
            install_dir: d.to_string_lossy().into_owned(),
            agent_root: tmp.path().join("root").to_string_lossy().into_owned(),
            service: Service::Detached,
        };
        let sh = |script: String| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .output()
                .unwrap()
        };
        let (sum, _) = crate::agent_bin::digest(&bin).unwrap();
        let out = sh(installed(&l, "web-1"));
        assert_eq!(
            read_installed(&String::from_utf8_lossy(&out.stdout)),
            Some(sum.as_str())
        );
        // Another host's dir is never taken for this host's.
        let out = sh(installed(&l, "web-2"));
        assert_eq!(read_installed(&String::from_utf8_lossy(&out.stdout)), None);
        let kept = |sha256: &str| {
            sh(install(
                &l,
                &Binary::Kept { sha256 },
                "web-1",
                "tcp://t:1",
                "k",
                false,
            ))
        };
        let out = kept(&sum);
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{KEY_MARK} pub")));
        // A binary changed since it was checked is not used.
        let out = kept(&"0".repeat(64));
        assert_eq!(out.status.code(), Some(STALE), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("changed since it was checked"));
    }

    #[test]
    fn the_start_follows_the_service_setting() {
        let d = start(&layout(Service::Detached), "h", "tcp://t:1");
        assert!(d.contains("setsid -f") && !d.contains("systemctl"), "{d}");
        let s = start(&layout(Service::Systemd), "h", "tcp://t:1");
        assert!(s.contains("systemctl restart vigie-agent.service") && !s.contains("setsid"));
        let a = start(&layout(Service::Auto), "h", "tcp://t:1");
        assert!(a.contains("if [ -d /run/systemd/system ]") && a.contains("setsid"));
        let stop = stop(&layout(Service::Auto), "h");
        assert!(
            stop.contains("systemctl disable --now vigie-agent.service"),
            "{stop}"
        );
        assert!(
            stop.contains(&prelude("h")),
            "the detached agent, checked: {stop}"
        );
    }
}
