//! OpenSSH's own client, run as commands: `ssh-keyscan` to see a
//! server's host keys, `ssh` to run a script, `scp` to copy the binary.
//! Every connection trusts only the key pinned for that server (its own
//! known_hosts file, `StrictHostKeyChecking=yes`, no global file, no user
//! config), authenticates with the server's tenant's key only, never
//! asks anything (`BatchMode`), and gives up after `ConnectTimeout`. An
//! SSH failure is read into a typed [`ProvisionError`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;

use crate::error::ProvisionError;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server's name: also the alias its pinned key is filed under.
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
}

#[derive(Debug, Clone)]
pub struct Ssh {
    pub target: Target,
    /// The server's tenant's provisioning secret key.
    pub identity: PathBuf,
    /// This server's own known_hosts file (one pinned key).
    pub known_hosts: PathBuf,
    pub connect_timeout: Duration,
}

/// What a command printed, once it exited 0.
pub struct Ran {
    pub stdout: String,
}

/// Runs `cmd` with `input` on its stdin, killed after `limit`.
fn run(
    mut cmd: Command,
    input: Vec<u8>,
    limit: Duration,
    what: &str,
) -> Result<(Option<i32>, String, String), ProvisionError> {
    let program = PathBuf::from(cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ProvisionError::io(&program, e))?;
    let mut stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(&input);
        }
    });
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || match r {
            Some(r) => read_capped(r, MAX_OUTPUT),
            None => String::new(),
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let status = match child
        .wait_timeout(limit)
        .map_err(|e| ProvisionError::io(&program, e))?
    {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ProvisionError::Timeout {
                what: what.to_owned(),
                secs: limit.as_secs(),
            });
        }
    };
    let _ = writer.join();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok((status.code(), stdout, stderr))
}

/// Most of a command's stdout or stderr kept: the server may be hostile
/// and print without end; what passes this is read and dropped, so the
/// command is not blocked on a full pipe and ends (or meets its limit).
pub const MAX_OUTPUT: u64 = 1 << 20;
/// Lines of stderr a failure's reason quotes, and the most of each.
const TAIL_LINES: usize = 3;
const TAIL_LINE_CHARS: usize = 200;

/// At most `cap` bytes of `r` (lossy UTF-8), the rest drained.
fn read_capped(r: impl Read, cap: u64) -> String {
    let mut buf = Vec::new();
    let mut r = r.take(cap);
    let _ = r.read_to_end(&mut buf);
    let _ = std::io::copy(&mut r.into_inner(), &mut std::io::sink());
    String::from_utf8_lossy(&buf).into_owned()
}

/// The last lines of a command's stderr, for a reason: at most
/// `TAIL_LINES` of `TAIL_LINE_CHARS` each.
fn tail(s: &str) -> String {
    let lines: Vec<String> = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(TAIL_LINES)
        .map(|l| match l.char_indices().nth(TAIL_LINE_CHARS) {
            Some((cut, _)) => format!("{}…", &l[..cut]),
            None => l.to_owned(),
        })
        .collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

impl Ssh {
    fn options(&self) -> Vec<String> {
        let secs = self.connect_timeout.as_secs().max(1);
        let o = |s: String| ["-o".to_owned(), s];
        [
            // No user or system config may change what follows.
            ["-F".to_owned(), "/dev/null".to_owned()],
            o("BatchMode=yes".into()),
            o("StrictHostKeyChecking=yes".into()),
            o(format!("UserKnownHostsFile={}", self.known_hosts.display())),
            o("GlobalKnownHostsFile=/dev/null".into()),
            o(format!("HostKeyAlias={}", self.target.name)),
            o("IdentitiesOnly=yes".into()),
            o(format!("IdentityFile={}", self.identity.display())),
            o("PasswordAuthentication=no".into()),
            o("KbdInteractiveAuthentication=no".into()),
            o(format!("ConnectTimeout={secs}")),
            o("ServerAliveInterval=5".into()),
            o("ServerAliveCountMax=3".into()),
            o("LogLevel=ERROR".into()),
        ]
        .concat()
    }

    /// An `ssh` or `scp` exit of 255 (or any failure) read into a reason.
    fn failure(&self, what: &'static str, code: Option<i32>, stderr: &str) -> ProvisionError {
        let t = &self.target;
        let has = |s: &str| stderr.contains(s);
        if has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            return ProvisionError::HostKeyMismatch {
                expected: "the pinned key".into(),
                seen: vec![format!("another key ({})", tail(stderr))],
            };
        }
        if has("Permission denied") {
            return ProvisionError::Credentials {
                user: t.user.clone(),
                detail: tail(stderr),
            };
        }
        if code == Some(255)
            && [
                "timed out",
                "Connection refused",
                "No route to host",
                "Network is unreachable",
                "Connection reset",
            ]
            .iter()
            .any(|s| has(s))
        {
            return unreachable(t, &tail(stderr));
        }
        ProvisionError::Install {
            step: what,
            detail: format!(
                "exit {}: {}",
                code.map_or("by a signal".into(), |c| c.to_string()),
                tail(stderr)
            ),
        }
    }

    /// Runs `script` with `sh -s` on the server (under `sudo -n` when
    /// `sudo`), the script on stdin.
    pub fn script(
        &self,
        what: &'static str,
        script: &str,
        sudo: bool,
        limit: Duration,
    ) -> Result<Ran, ProvisionError> {
        let t = &self.target;
        let mut cmd = Command::new("ssh");
        cmd.args(self.options())
            .args(["-p", &t.port.to_string(), "-l", &t.user])
            .arg(&t.address)
            .arg("--")
            .arg(if sudo { "sudo -n sh -s" } else { "sh -s" });
        let (code, stdout, stderr) = run(cmd, script.as_bytes().to_vec(), limit, what)?;
        if code == Some(0) {
            Ok(Ran { stdout })
        } else {
            Err(self.failure(what, code, &stderr))
        }
    }

    /// Copies `local` to `remote` (a path on the server).
    pub fn copy(&self, local: &Path, remote: &str, limit: Duration) -> Result<(), ProvisionError> {
        let t = &self.target;
        let mut cmd = Command::new("scp");
        cmd.args(self.options())
            .args(["-q", "-P", &t.port.to_string()])
            .arg(local)
            .arg(format!("{}@{}:{remote}", t.user, bracket(&t.address)));
        let (code, _, stderr) = run(cmd, Vec::new(), limit, "copying the binary")?;
        if code == Some(0) {
            Ok(())
        } else {
            Err(self.failure("copying the binary", code, &stderr))
        }
    }
}

/// An IPv6 address in brackets (scp's `user@[::1]:path`).
fn bracket(address: &str) -> String {
    if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_owned()
    }
}

/// The host keys a server offers (`ssh-keyscan`'s output, read by
/// [`crate::hostkey::parse_keyscan`]).
pub fn keyscan(t: &Target, timeout: Duration) -> Result<String, ProvisionError> {
    let secs = timeout.as_secs().max(1);
    let mut cmd = Command::new("ssh-keyscan");
    cmd.args(["-T", &secs.to_string(), "-p", &t.port.to_string()])
        .arg(&t.address);
    let (_, stdout, _) = run(cmd, Vec::new(), timeout * 3, "ssh-keyscan")?;
    Ok(stdout)
}

/// A server that cannot be reached. The reason an operator reads is the
/// same whatever the cause — refused, timed out, no route, or a port
/// that answers but is no SSH server — so provisioning cannot be used to
/// tell open ports from closed ones; the cause is in the tower's log
/// (`provision_unreachable`), for the tower's administrator.
pub fn unreachable(t: &Target, detail: &str) -> ProvisionError {
    tracing::info!(
        event = "provision_unreachable",
        server = %t.name,
        address = %t.address,
        port = t.port,
        detail
    );
    ProvisionError::Unreachable {
        address: format!("{}:{}", t.address, t.port),
    }
}

/// Whether the server's SSH port answers at all, before any SSH tool
/// runs.
pub fn probe(t: &Target, timeout: Duration) -> Result<(), ProvisionError> {
    let ip: std::net::IpAddr = t
        .address
        .parse()
        .map_err(|_| unreachable(t, "not an IP address"))?;
    std::net::TcpStream::connect_timeout(&(ip, t.port).into(), timeout)
        .map(drop)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                unreachable(t, &format!("no answer within {} s", timeout.as_secs()))
            }
            _ => unreachable(t, &e.to_string()),
        })
}

/// The host keys the SSH server at `t` offers, or `Unreachable` — the
/// same words for a closed port and for one that is no SSH server.
pub fn host_keys(
    t: &Target,
    timeout: Duration,
) -> Result<Vec<crate::hostkey::HostKey>, ProvisionError> {
    probe(t, timeout)?;
    let out = keyscan(t, timeout).map_err(|e| match e {
        // A port that accepts and then says nothing reads as a closed one.
        ProvisionError::Timeout { .. } => unreachable(t, &e.to_string()),
        e => e,
    })?;
    let seen = crate::hostkey::parse_keyscan(&out);
    if seen.is_empty() {
        return Err(unreachable(
            t,
            "the port answered, no SSH host key was read",
        ));
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_read_up_to_the_cap_and_the_rest_drained() {
        let endless = std::io::repeat(b'y').take(3 * MAX_OUTPUT);
        let mut counted = Counting(endless, 0);
        let kept = read_capped(&mut counted, MAX_OUTPUT);
        assert_eq!(kept.len() as u64, MAX_OUTPUT);
        assert_eq!(counted.1, 3 * MAX_OUTPUT, "the rest read and dropped");
        assert_eq!(read_capped(&b"short"[..], MAX_OUTPUT), "short");
    }

    struct Counting<R>(R, u64);
    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_closed_port_and_a_port_that_is_no_ssh_server_read_the_same() {
        if Command::new("ssh-keyscan").arg("-h").output().is_err() {
            eprintln!("SKIPPED: no ssh-keyscan");
            return;
        }
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open_port = open.local_addr().unwrap().port();
        // Answers every connection and hangs up, as a web server
        // refusing a stranger's bytes would.
        std::thread::spawn(move || open.incoming().for_each(drop));
        let reason = |port: u16| {
            let t = Target {
                name: "s".into(),
                address: "127.0.0.1".into(),
                port,
                user: "root".into(),
            };
            let e = host_keys(&t, Duration::from_secs(1)).unwrap_err();
            e.to_string().replace(&port.to_string(), "PORT")
        };
        let (a, b) = (reason(closed_port), reason(open_port));
        assert_eq!(a, b);
        assert_eq!(a, "unreachable: 127.0.0.1:PORT: no SSH server answered");
    }

    #[test]
    fn a_reason_quotes_the_last_three_lines_each_cut_short() {
        let long = "é".repeat(5_000);
        let stderr = format!("one\n\ntwo\n{long}\nfour\n");
        let t = tail(&stderr);
        assert!(t.starts_with("two / "), "{t}");
        assert!(t.ends_with(" / four"), "{t}");
        assert_eq!(
            t.chars().count(),
            "two / ".len() + TAIL_LINE_CHARS + 1 + " / four".len()
        );
        assert_eq!(tail("a\nb"), "a / b");
    }
}
