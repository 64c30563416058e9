//! How the operator's commands reach the tower: always through the
//! majordomo, with the operator's own key. Flags override the config file
//! (`--config`, else `$VIGIE_CONFIG`, else `$XDG_CONFIG_HOME/vigie/config.yml`
//! or `~/.config/vigie/config.yml`), which `vigie start` writes for the
//! tower's admin at first start. An error reaching the tower says where
//! its address and key came from: a config file left by an older tower on
//! the same machine must be recognisable as the cause.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use vigie_majordomo::operator::OperatorConfig;
use vigie_referee::{ApiClient, ClientError};
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFaultKind, ChangeView};

/// A call that changes something waits this many times `--timeout`: it is
/// resent every 5 s while unanswered, with its idempotency key.
const CHANGE_TIMEOUT_FACTOR: u32 = 3;

#[derive(Debug, clap::Args)]
pub struct Conn {
    /// The tower's front door (the majordomo), e.g. tcp://tower.example:7110.
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
    /// How long to wait for the tower's answer to a read, e.g. 5s, 1m; a
    /// call that changes something waits three times as long.
    #[arg(long, global = true, value_name = "DURATION", default_value = "5s",
          value_parser = humantime::parse_duration)]
    timeout: Duration,
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

/// Where the tower's address and key came from, for error messages.
#[derive(Debug, Clone)]
enum Source {
    Flags,
    File(PathBuf),
}

impl Conn {
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
            Some(path) => Some(OperatorConfig::load(path)?),
            None => None,
        };
        let pick = |flag: &Option<String>, from: Option<&String>, name: &str| {
            flag.clone().or_else(|| from.cloned()).with_context(|| {
                format!(
                    "no {name}: pass --{} or write a config file ({}; the tower's first start writes one for its admin in its data dir, operator.yml)",
                    name.replace('_', "-"),
                    user_config_path().map_or("$XDG_CONFIG_HOME/vigie/config.yml".into(), |p| p.display().to_string())
                )
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
            (None, None) => anyhow::bail!("no identity: pass --identity FILE (the operator's secret key) or write a config file"),
        };
        let source = match (&file, self.tower.is_some() && self.tower_key.is_some()) {
            (Some(f), false) => Source::File(f.clone()),
            _ => Source::Flags,
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

    /// A client for the tower, with this command's timeouts.
    pub fn client(&self) -> anyhow::Result<Tower> {
        let (config, source) = self.resolve()?;
        let link = config
            .connect(self.tenant.clone())
            .map_err(|e| anyhow::anyhow!("{e}{}", source.hint()))?;
        let mut client = ApiClient::over(link);
        client.set_timeouts(self.timeout, self.timeout * CHANGE_TIMEOUT_FACTOR);
        Ok(Tower { client, source })
    }
}

impl Source {
    /// For a refused handshake: the settings may be an older tower's.
    fn hint(&self) -> String {
        match self {
            Source::Flags => String::new(),
            Source::File(p) => format!(
                " (the tower's address and key come from the config file {}: if it is an older tower's, pass --config FILE, or --tower and --tower-key, or replace that file)",
                p.display()
            ),
        }
    }

    /// For no answer at all: the tower may be down, or elsewhere.
    fn down_hint(&self) -> String {
        match self {
            Source::Flags => " (is the tower running?)".to_owned(),
            Source::File(p) => format!(
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
            source: Source::Flags,
        }
    }

    /// An error from the client, as one message (no repeated cause).
    pub fn explain(&self, e: ClientError) -> anyhow::Error {
        match e {
            // The tower's words may quote a host or a file: one line, shown.
            ClientError::Refused(f) => anyhow::anyhow!(
                "{}: {}",
                fault_word(f.kind),
                super::escape::field(&f.message)
            ),
            ClientError::Door(_) => anyhow::anyhow!("{e}{}", self.source.hint()),
            ClientError::Timeout { .. } => anyhow::anyhow!("{e}{}", self.source.down_hint()),
            other => anyhow::anyhow!("{other}"),
        }
    }

    /// Reads wait at least `d` (a logs call waits for its host).
    pub fn wait_at_least(&mut self, d: Duration) {
        let (read, change) = self.client.timeouts();
        self.client.set_timeouts(read.max(d), change.max(d));
    }

    pub fn call(&mut self, call: ApiCall) -> anyhow::Result<ApiAnswer> {
        self.client.call(call).map_err(|e| self.explain(e))
    }

    /// Like `call`, keeping the client's error (`audit verify` shows a
    /// refusal as the verdict, not as a failure to ask).
    pub fn call_raw(&mut self, call: ApiCall) -> Result<ApiAnswer, ClientError> {
        self.client.call(call)
    }

    pub fn changes(&mut self, call: ApiCall) -> anyhow::Result<Vec<ChangeView>> {
        self.client.changes(call).map_err(|e| self.explain(e))
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
