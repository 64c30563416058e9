//! Simulated servers for provisioning tests: machines (network
//! namespaces) each running a real OpenSSH server (Debian's `sshd`, its
//! own host key and config, the tower's provisioning key authorised for
//! root), and a tower machine they route to. All namespaces share one
//! filesystem, so each sshd runs in a private mount namespace where its
//! machine's own directory is bind-mounted over one install path (the
//! provisioner's `install_dir`): every server installs the agent, makes
//! its key and keeps its state at the same path, seeing only its own
//! files, as on real machines. Readiness is sshd's own notification
//! (`READY=1` on `NOTIFY_SOCKET`), never a sleep.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::netns::Machines;
use crate::Setup;

/// The tower's address as every server reaches it (on the tower's
/// loopback, routed through each server's link).
pub const TOWER_IP: &str = "198.51.100.1";

/// One simulated server.
pub struct SshServer {
    pub name: String,
    pub ns: String,
    pub ip: String,
    /// Its own files: host key, sshd config, and (bind-mounted over the
    /// install path) the agent, its key, state and root.
    pub dir: PathBuf,
    /// `ssh-ed25519 AAAA…`
    pub host_key: String,
    /// A user of this machine only (see [`SshMachines::add_user`]).
    user: Option<String>,
    /// The keys this machine alone accepts (see
    /// [`SshMachines::authorize_on`]); else the shared file.
    authorized: Option<PathBuf>,
    sshd: Option<Child>,
}

impl SshServer {
    pub fn host_key_file(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key.pub")
    }
}

/// The tower's machine and `n` servers. Dropping it stops the agents
/// the provisioner started (by their pid files) and every sshd, then
/// removes the namespaces.
pub struct SshMachines {
    pub servers: Vec<SshServer>,
    pub tower_ns: String,
    /// The install path every server sees as its own.
    pub mount: PathBuf,
    pub authorized: PathBuf,
    machines: Machines,
}

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Why these tests cannot run here (namespaces, OpenSSH missing).
pub fn unavailable() -> Option<String> {
    if let Some(why) = crate::netns::unavailable() {
        return Some(why);
    }
    ["/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keyscan"]
        .iter()
        .find(|t| !Path::new(t).exists())
        .map(|t| format!("{t} missing (scripts/deps installs OpenSSH)"))
}

/// `ssh-keygen -lf FILE`'s fingerprint (`SHA256:…`).
pub fn fingerprint(pubfile: &Path) -> anyhow::Result<String> {
    let out = run(Command::new("ssh-keygen").arg("-lf").arg(pubfile))?;
    Ok(out
        .split_whitespace()
        .nth(1)
        .context("ssh-keygen -l output")?
        .to_owned())
}

impl SshMachines {
    /// The machines and their host keys; no sshd runs yet.
    pub fn new(dir: &Path, n: usize) -> anyhow::Result<Self> {
        std::fs::create_dir_all("/run/sshd")?; // sshd's privilege separation dir
        let mount = dir.join("mnt");
        std::fs::create_dir_all(&mount)?;
        let mut machines = Machines::new();
        let tower_ns = machines.add("tower")?;
        machines.ip_in(
            &tower_ns,
            &["addr", "add", &format!("{TOWER_IP}/32"), "dev", "lo"],
        )?;
        let mut servers = Vec::new();
        for i in 0..n {
            let name = format!("srv-{i}");
            let ns = machines.add(&format!("s{i}"))?;
            // One /30 per server: tower .4i+1, server .4i+2.
            let (t, a) = (4 * i + 1, 4 * i + 2);
            machines.link(
                &tower_ns,
                &format!("192.0.2.{t}/30"),
                &ns,
                &format!("192.0.2.{a}/30"),
                &format!("p{i}"),
            )?;
            machines.ip_in(
                &ns,
                &["route", "add", "default", "via", &format!("192.0.2.{t}")],
            )?;
            let sdir = dir.join(&name);
            std::fs::create_dir_all(&sdir)?;
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(sdir.join("ssh_host_ed25519_key")))?;
            let host_key = std::fs::read_to_string(sdir.join("ssh_host_ed25519_key.pub"))?
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            servers.push(SshServer {
                name,
                ns,
                ip: format!("192.0.2.{a}"),
                dir: sdir,
                host_key,
                user: None,
                authorized: None,
                sshd: None,
            });
        }
        Ok(Self {
            servers,
            tower_ns,
            mount,
            authorized: dir.join("authorized_keys"),
            machines,
        })
    }

    /// A tower setup whose provisioner installs into the per-machine
    /// path, starts agents detached, reaches servers in `parallel`.
    pub fn setup(&self, name: &str, port: u16, parallel: usize) -> Setup {
        Setup::new(name)
            .majordomo(&format!("tcp://0.0.0.0:{port}"))
            .provision("parallel", &parallel.to_string())
            .provision("tower", &format!("tcp://{TOWER_IP}:{port}"))
            .provision("install_dir", &self.mount.display().to_string())
            .provision("agent_root", &self.mount.join("root").display().to_string())
            .provision("service", "detached")
            .provision("connect_timeout", "3s")
    }

    /// Authorises the tower's provisioning public key for every user on
    /// every server. sshd reads the file as the user logging in, so a
    /// user other than root must be able to reach it: the test's dir is
    /// made traversable (not listable), the file readable.
    pub fn authorize(&self, public: &str) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&self.authorized, public)?;
        std::fs::set_permissions(&self.authorized, std::fs::Permissions::from_mode(0o644))?;
        if let Some(dir) = self.authorized.parent() {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
        }
        Ok(())
    }

    /// Server `i` accepts `public` alone (one tenant's key), instead of
    /// the file every server shares. Before its sshd starts.
    pub fn authorize_on(&mut self, i: usize, public: &str) -> anyhow::Result<()> {
        let s = &mut self.servers[i];
        let file = s.dir.join("authorized_keys");
        std::fs::write(&file, format!("{}\n", public.trim()))?;
        s.authorized = Some(file);
        Ok(())
    }

    /// Gives server `i` a user of its own (not root, no sudo, a login
    /// shell): its sshd sees copies of `/etc/passwd` and `/etc/shadow`
    /// with that user added, bind-mounted in its mount namespace only, so
    /// this machine's user database is not touched.
    pub fn add_user(&mut self, i: usize, user: &str) -> anyhow::Result<()> {
        let s = &mut self.servers[i];
        let passwd = std::fs::read_to_string("/etc/passwd")?;
        std::fs::write(
            s.dir.join("passwd"),
            format!("{passwd}{user}:x:2345:2345::/tmp:/bin/sh\n"),
        )?;
        let shadow = std::fs::read_to_string("/etc/shadow")?;
        // `*`: no password, yet not locked (sshd refuses a locked account).
        std::fs::write(
            s.dir.join("shadow"),
            format!("{shadow}{user}:*:20000::::::\n"),
        )?;
        s.user = Some(user.to_owned());
        Ok(())
    }

    /// Starts server `i`'s sshd; returns once it listens.
    pub fn start_sshd(&mut self, i: usize) -> anyhow::Result<()> {
        let s = &mut self.servers[i];
        let config = s.dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port 22\nListenAddress 0.0.0.0\nHostKey {}\nPidFile none\n\
                 PermitRootLogin prohibit-password\nAuthorizedKeysFile {}\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\n",
                s.dir.join("ssh_host_ed25519_key").display(),
                s.authorized.as_ref().unwrap_or(&self.authorized).display()
            ),
        )?;
        let notify = s.dir.join("notify.sock");
        let _ = std::fs::remove_file(&notify);
        let sock = UnixDatagram::bind(&notify)?;
        sock.set_read_timeout(Some(Duration::from_secs(30)))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &s.ns])
            .args(["unshare", "--mount", "--propagation", "private"])
            .args([
                "sh",
                "-c",
                r#"mount --bind "$1" "$2" &&
                   if [ -n "$4" ]; then
                     mount --bind "$1/passwd" /etc/passwd &&
                     mount --bind "$1/shadow" /etc/shadow || exit 1
                   fi &&
                   exec /usr/sbin/sshd -D -e -f "$3""#,
                "sh",
            ])
            .arg(&s.dir)
            .arg(&self.mount)
            .arg(&config)
            .arg(s.user.as_deref().unwrap_or(""))
            .env("NOTIFY_SOCKET", &notify)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(s.dir.join("sshd.log"))?)
            .spawn()?;
        s.sshd = Some(child);
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).with_context(|| {
            format!(
                "{}: sshd not ready: {}",
                s.name,
                std::fs::read_to_string(s.dir.join("sshd.log")).unwrap_or_default()
            )
        })?;
        anyhow::ensure!(
            buf[..n].starts_with(b"READY=1"),
            "sshd said {:?}",
            &buf[..n]
        );
        Ok(())
    }

    /// A supplier's CSV of the servers, `pins[i]` in server i's
    /// `host_key` column; labels `role=web;rack=rI`.
    pub fn csv(&self, pins: &[String]) -> String {
        let mut csv = String::from(
            "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels,host_key\n",
        );
        for (i, s) in self.servers.iter().enumerate() {
            let pin = pins.get(i).map_or("", String::as_str);
            csv.push_str(&format!(
                "{},{},22,root,netns,1,1,10,role=web;rack=r{i},{pin}\n",
                s.name, s.ip
            ));
        }
        csv
    }

    pub fn machines(&self) -> &Machines {
        &self.machines
    }
}

impl Drop for SshMachines {
    fn drop(&mut self) {
        for s in &mut self.servers {
            if let Ok(pid) = std::fs::read_to_string(s.dir.join("agent.pid")) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            if let Some(mut c) = s.sshd.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
