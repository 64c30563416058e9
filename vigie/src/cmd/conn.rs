//! How the operator's commands reach the tower: always through the
//! majordomo, with the operator's own key. Flags override the config file
//! (`--config`, else `$VIGIE_CONFIG`, else `$XDG_CONFIG_HOME/vigie/config.yml`
//! or `~/.config/vigie/config.yml`), which `vigie start` writes for the
//! tower's admin at first start. An error reaching the tower says where
//! its address and key came from: a config file left by an older tower on
//! the same machine must be recognisable as the cause. Every error says
//! its cause (`failure::Cause`), which `main` turns into the exit code.
//! The options are accepted before the subcommand too (`Cli` has a copy,
//! merged under the subcommand's own by `merge_under`).

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigie_client::{ApiClient, Call, ClientError};
use vigie_majordomo::operator::OperatorConfig;
use vigie_wire::tower::{ApiFaultKind, ChangeView};

use super::failure::{Cause, Failure};

/// A call that changes something waits this many times `--timeout`: it is
/// resent every 5 s while unanswered, with its idempotency key.
const CHANGE_TIMEOUT_FACTOR: u32 = 3;
/// `--timeout` when not given.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the plain TCP probe of the tower's address may take: a refused
/// connection is known at once; a slower network is left to ZeroMQ.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Default, clap::Args)]
pub struct Conn {
    /// The tower's front door (the majordomo), e.g. tcp://tower.example:7110;
    /// a tower group's front doors comma-separated (the active one answers).
    #[arg(long, global = true, value_name = "ENDPOINT")]
    tower: Option<String>,
    /// The tower's public key, as `vigie start` printed it: @FILE, 64 hex
    /// digits, or Z85.
    // Z85 text may start with '-': every key argument allows it.
    #[arg(long, allow_hyphen_values = true, global = true, value_name = "KEY",
          value_parser = super::key_arg::parse_key)]
    tower_key: Option<String>,
    /// This operator's secret key file (made by `vigie keys gen`).
    #[arg(long, global = true, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// The CLI config file (YAML: tower, tower_key, identity).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Act in this tenant instead of one's own (needs tenants.admin).
    #[arg(long, global = true, value_name = "TENANT")]
    tenant: Option<String>,
    /// How long to wait for the tower's answer to a read, e.g. 5s, 1m (5s
    /// if not given); a call that changes something waits three times as long.
    #[arg(long, global = true, value_name = "DURATION",
          value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
}

/// The connection options as given before the subcommand. Not global
/// there: a daemon's own `--tower` or `kv --timeout` would meet them; a
/// subcommand that talks to the tower merges them under its own.
#[derive(Debug, Default)]
pub struct TopConn(pub Conn);

/// The ids of `Conn`'s options.
const CONN_IDS: [&str; 6] = [
    "tower",
    "tower_key",
    "identity",
    "config",
    "tenant",
    "timeout",
];

fn local(mut cmd: clap::Command) -> clap::Command {
    for id in CONN_IDS {
        cmd = cmd.mut_arg(id, |a| a.global(false));
    }
    cmd
}

impl clap::FromArgMatches for TopConn {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        <Conn as clap::FromArgMatches>::from_arg_matches(m).map(TopConn)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

impl clap::Args for TopConn {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        local(<Conn as clap::Args>::augment_args(cmd))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        local(<Conn as clap::Args>::augment_args_for_update(cmd))
    }
}

/// The operator's config file in the XDG config dir.
pub fn user_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("vigie").join("config.yml"))
}

/// A path as printed to the operator: absolute, without `.` or `..`
/// (lexically: a path that does not exist yet still prints).
pub fn normalised(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |d| d.join(path))
    };
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Flag,
    File(PathBuf),
}

/// Where the tower's address and its key came from.
#[derive(Debug, Clone)]
struct Source {
    tower: Origin,
    key: Origin,
}

impl Conn {
    /// Options given before the subcommand (`top`) fill those not given
    /// after it: `vigie --tower X servers list` is `vigie servers list --tower X`.
    pub fn merge_under(&mut self, top: Conn) {
        self.tower = self.tower.take().or(top.tower);
        self.tower_key = self.tower_key.take().or(top.tower_key);
        self.identity = self.identity.take().or(top.identity);
        self.config = self.config.take().or(top.config);
        self.tenant = self.tenant.take().or(top.tenant);
        self.timeout = self.timeout.or(top.timeout);
    }

    /// Whether no option was given (before a subcommand that takes none).
    pub fn is_empty(&self) -> bool {
        self.tower.is_none()
            && self.tower_key.is_none()
            && self.identity.is_none()
            && self.config.is_none()
            && self.tenant.is_none()
            && self.timeout.is_none()
    }

    fn config_file(&self) -> Option<PathBuf> {
        self.config
            .clone()
            .or_else(|| std::env::var_os("VIGIE_CONFIG").map(PathBuf::from))
            .or_else(|| user_config_path().filter(|p| p.exists()))
            .map(|p| normalised(&p))
    }

    fn resolve(&self) -> anyhow::Result<(OperatorConfig, Source)> {
        let file = self.config_file();
        let base = match &file {
            Some(path) => Some(
                OperatorConfig::load(path)
                    .map_err(|e| Failure::error(Cause::Usage, e.to_string()))?,
            ),
            None => None,
        };
        let pick = |flag: &Option<String>, from: Option<&String>, name: &str| {
            flag.clone().or_else(|| from.cloned()).ok_or_else(|| {
                Failure::error(Cause::Usage, format!(
                    "no {name}: pass --{} or write a config file ({}; the tower's first start writes one for its admin in its data dir, operator.yml)",
                    name.replace('_', "-"),
                    user_config_path().map_or("$XDG_CONFIG_HOME/vigie/config.yml".into(), |p| p.display().to_string())
                ))
            })
        };
        let tower = pick(&self.tower, base.as_ref().map(|b| &b.tower), "tower")?;
        let tower_key = pick(
            &self.tower_key,
            base.as_ref().map(|b| &b.tower_key),
            "tower_key",
        )?;
        let identity = match (&self.identity, &base) {
            (Some(p), _) => p.clone(),
            (None, Some(b)) => b.identity.clone(),
            (None, None) => return Err(Failure::error(Cause::Usage, "no identity: pass --identity FILE (the operator's secret key) or write a config file")),
        };
        let origin = |given: bool| match (&file, given) {
            (Some(f), false) => Origin::File(f.clone()),
            _ => Origin::Flag,
        };
        let source = Source {
            tower: origin(self.tower.is_some()),
            key: origin(self.tower_key.is_some()),
        };
        Ok((
            OperatorConfig {
                tower,
                tower_key,
                identity,
            },
            source,
        ))
    }

    /// A client for the tower, with this command's timeouts. A tower whose
    /// address refuses connections is said at once.
    pub fn client(&self) -> anyhow::Result<Tower> {
        let (config, source) = self.resolve()?;
        if refused(&config.tower) {
            return Err(Failure::error(
                Cause::Unavailable,
                format!("nothing listens at {}{}", config.tower, source.down_hint()),
            ));
        }
        let link = config
            .connect(self.tenant.clone())
            .map_err(|e| Failure::error(Cause::Usage, format!("{e}{}", source.hint())))?;
        let mut client = ApiClient::over(link);
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        client.set_timeouts(timeout, timeout * CHANGE_TIMEOUT_FACTOR);
        Ok(Tower { client, source })
    }
}

/// Whether nothing listens at a `tcp://` or `ipc://` endpoint: ZeroMQ
/// would retry a refused connection silently until the call's timeout. A
/// name that does not resolve, no answer within `PROBE_TIMEOUT` or another
/// transport are left to the ZeroMQ call. The probe closes before ZeroMQ's
/// greeting: the majordomo sees a connection that said nothing, never a key.
/// A tower group's doors are refused when every one is.
fn refused(endpoint: &str) -> bool {
    let doors = vigie_majordomo::door::front_doors(endpoint);
    !doors.is_empty() && doors.into_iter().all(refused_door)
}

fn refused_door(endpoint: &str) -> bool {
    let nobody = |e: std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
        )
    };
    if let Some(path) = endpoint.strip_prefix("ipc://") {
        // '@' is Linux's abstract namespace: not a path.
        return !path.starts_with('@')
            && std::os::unix::net::UnixStream::connect(path).is_err_and(nobody);
    }
    let Some(addr) = endpoint.strip_prefix("tcp://") else {
        return false;
    };
    let Ok(addrs) = addr.to_socket_addrs() else {
        return false;
    };
    let addrs: Vec<_> = addrs.collect();
    !addrs.is_empty()
        && addrs
            .iter()
            .all(|a| TcpStream::connect_timeout(a, PROBE_TIMEOUT).is_err_and(nobody))
}

impl Source {
    fn flags() -> Self {
        Self {
            tower: Origin::Flag,
            key: Origin::Flag,
        }
    }

    /// For a refused handshake: the settings may be an older tower's.
    fn hint(&self) -> String {
        match (&self.key, &self.tower) {
            (Origin::Flag, _) => String::new(),
            (Origin::File(p), Origin::Flag) => format!(
                " (the tower's key comes from the config file {}, its address from --tower: if the key is another tower's, pass --tower-key too)",
                p.display()
            ),
            (Origin::File(p), Origin::File(_)) => format!(
                " (the tower's address and key come from the config file {}: if it is an older tower's, pass --config FILE, or --tower and --tower-key, or replace that file)",
                p.display()
            ),
        }
    }

    /// For no answer at all: the tower may be down, or elsewhere.
    fn down_hint(&self) -> String {
        match &self.tower {
            Origin::Flag => {
                " (is the tower running? its address is the one --tower gave)".to_owned()
            }
            Origin::File(p) => format!(
                " (is the tower running? its address comes from the config file {})",
                p.display()
            ),
        }
    }
}

/// The tower as the CLI talks to it: the API client, and errors said once
/// in words, naming the config file when the settings came from one.
pub struct Tower {
    client: ApiClient,
    source: Source,
}

fn fault_word(kind: ApiFaultKind) -> &'static str {
    match kind {
        ApiFaultKind::Malformed => "malformed",
        ApiFaultKind::Invalid => "invalid",
        ApiFaultKind::NotFound => "not found",
        ApiFaultKind::Conflict => "conflict",
        ApiFaultKind::Tampered => "tampered",
        ApiFaultKind::Forbidden => "forbidden",
        ApiFaultKind::Storage => "storage",
        ApiFaultKind::Unavailable => "unavailable",
    }
}

impl Tower {
    /// A client made elsewhere (the demo's, from the admin's config).
    pub fn over(client: ApiClient) -> Self {
        Self {
            client,
            source: Source::flags(),
        }
    }

    /// An error from the client, as one message (no repeated cause).
    pub fn explain(&self, e: ClientError) -> anyhow::Error {
        let cause = Cause::of_client(&e);
        let message = match e {
            // The tower's words may quote a host or a file: one line, shown.
            ClientError::Refused(f) => {
                format!(
                    "{}: {}",
                    fault_word(f.kind),
                    super::escape::field(&f.message)
                )
            }
            ClientError::Door(_) => format!("{e}{}", self.source.hint()),
            ClientError::Timeout { .. } => format!("{e}{}", self.source.down_hint()),
            other => other.to_string(),
        };
        Failure::error(cause, message)
    }

    /// Reads wait at least `d` (a logs call waits for its host).
    pub fn wait_at_least(&mut self, d: Duration) {
        let (read, change) = self.client.timeouts();
        self.client.set_timeouts(read.max(d), change.max(d));
    }

    /// A call: its answer, typed, or one message saying what went wrong.
    pub fn ask<C: Call>(&mut self, call: C) -> anyhow::Result<C::Answer> {
        self.client.ask(call).map_err(|e| self.explain(e))
    }

    /// Like `ask`, keeping the client's error (`audit verify` shows a
    /// refusal as the verdict, not as a failure to ask).
    pub fn ask_raw<C: Call>(&mut self, call: C) -> Result<C::Answer, ClientError> {
        self.client.ask(call)
    }

    pub fn follow(
        &mut self,
        ids: &[String],
        timeout: Option<Duration>,
        on_view: impl FnMut(Option<&ChangeView>, &ChangeView),
    ) -> anyhow::Result<Vec<ChangeView>> {
        self.client
            .follow(ids, timeout, on_view)
            .map_err(|e| self.explain(e))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::normalised;

    #[test]
    fn printed_paths_have_no_dot_components() {
        assert_eq!(
            normalised(Path::new("/srv/vigie/./data/../keys/admin.key")),
            Path::new("/srv/vigie/keys/admin.key")
        );
        assert!(normalised(Path::new("data/x")).is_absolute());
    }
}
