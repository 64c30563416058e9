//! `vigie web`: the web console's daemon (the launcher runs it), and the
//! operator's side of it — `web login` (a one-time URL), `web sessions`,
//! `web revoke ID` — and `vigie tokens` (API tokens for scripts). The
//! secrets are made and kept (hashed) by the tower, asked for as the
//! operator through the majordomo like every other call.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;
use vigie_wire::web::{CredentialKind, CredentialView, WebAnswer, WebCall};

use super::conn::Conn;
use super::json::rfc3339;
use super::out::{self, Format};
use crate::runtime::{shutdown_flag, EXIT_CONFIG};

/// The web daemon's default address: loopback only.
pub const DEFAULT_WEB: &str = "http://127.0.0.1:7180";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// (The daemon) where to serve the console and API: http://IP:PORT on
    /// loopback, or https://IP:PORT anywhere (port 0: any free port, said
    /// in `web_started`).
    #[arg(long, default_value = DEFAULT_WEB)]
    bind: String,
    /// (The daemon, https) the directory where a self-signed certificate
    /// is made at the first start and kept (web.crt, web.key).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// (The daemon, https) the operator's own certificate chain (PEM),
    /// instead of a made one.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// (The daemon, https) the key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// (The daemon) the referee's API socket.
    #[arg(long, default_value = super::DEFAULT_API)]
    api: String,
    /// (The daemon) the referee's PUB socket, for changes' updates.
    #[arg(long, default_value = super::DEFAULT_ORDERS)]
    orders: String,
    #[command(flatten)]
    pub(super) conn: Conn,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Print a one-time URL that signs you in to the console (valid a
    /// minute, used once).
    Login,
    /// Your console sessions and API tokens.
    Sessions,
    /// End one of your sessions or API tokens by its id.
    Revoke {
        /// The id `web sessions` shows.
        id: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct TokensArgs {
    #[command(subcommand)]
    action: TokensAction,
    #[command(flatten)]
    pub(super) conn: Conn,
}

#[derive(Debug, Subcommand)]
enum TokensAction {
    /// Make an API token (shown once): `Authorization: Bearer TOKEN`.
    Create {
        /// How long it is valid (`30d`, `12h`; at most a year).
        #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
        expires: Duration,
        /// A note to tell your tokens apart.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Your API tokens (never their secrets).
    List,
    /// Revoke one of your API tokens by its id.
    Revoke {
        /// The id `tokens list` shows.
        id: String,
    },
}

/// A credential as `--json` prints it.
#[derive(Debug, Serialize)]
struct CredentialJson {
    id: String,
    kind: &'static str,
    label: String,
    created: String,
    expires: String,
    /// The secret, only when it was just made.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

impl CredentialJson {
    fn of(v: &CredentialView) -> Self {
        Self {
            id: v.id.clone(),
            kind: v.kind.word(),
            label: v.label.clone(),
            created: rfc3339(v.created_ms),
            expires: rfc3339(v.expires_ms),
            secret: None,
            url: None,
        }
    }
}

pub fn run(a: Args, format: Format) -> anyhow::Result<ExitCode> {
    let Some(action) = a.action else {
        let tls = match (a.tls_cert, a.tls_key, a.keys) {
            (Some(cert), Some(key), _) => Some(vigie_web::TlsFiles::Own { cert, key }),
            (_, _, Some(keys)) => Some(vigie_web::TlsFiles::Made { keys }),
            _ => None,
        };
        let cfg = vigie_web::WebConfig {
            bind: a.bind,
            api: a.api,
            orders: a.orders,
            tls,
        };
        return daemon(cfg);
    };
    let mut tower = a.conn.client()?;
    match action {
        Action::Login => {
            let answer = tower.ask(WebCall::Login)?;
            let WebAnswer::Issued { view, secret, url } = answer else {
                anyhow::bail!("unexpected answer");
            };
            let Some(base) = url else {
                anyhow::bail!("the tower's web console is not running (no URL announced)");
            };
            let url = format!("{base}/login/{secret}");
            match format {
                Format::Json => out::json(&CredentialJson {
                    url: Some(url),
                    ..CredentialJson::of(&view)
                })?,
                Format::Text => out::line(&url)?,
            }
        }
        Action::Sessions => list(
            &mut tower,
            format,
            &[CredentialKind::Session, CredentialKind::Token],
        )?,
        Action::Revoke { id } => revoke(&mut tower, format, id)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub fn tokens(a: TokensArgs, format: Format) -> anyhow::Result<ExitCode> {
    let mut tower = a.conn.client()?;
    match a.action {
        TokensAction::Create { expires, label } => {
            let valid_ms = u64::try_from(expires.as_millis()).unwrap_or(u64::MAX);
            let answer = tower.ask(WebCall::TokenCreate { valid_ms, label })?;
            let WebAnswer::Issued { view, secret, .. } = answer else {
                anyhow::bail!("unexpected answer");
            };
            match format {
                Format::Json => out::json(&CredentialJson {
                    secret: Some(secret),
                    ..CredentialJson::of(&view)
                })?,
                Format::Text => {
                    out::line(&secret)?;
                    out::esay!(
                        "token {} valid until {}: shown once, keep it secret",
                        view.id,
                        rfc3339(view.expires_ms)
                    );
                }
            }
        }
        TokensAction::List => list(&mut tower, format, &[CredentialKind::Token])?,
        TokensAction::Revoke { id } => revoke(&mut tower, format, id)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn list(
    tower: &mut super::conn::Tower,
    format: Format,
    kinds: &[CredentialKind],
) -> anyhow::Result<()> {
    let WebAnswer::Credentials(v) = tower.ask(WebCall::Credentials)? else {
        anyhow::bail!("unexpected answer");
    };
    let v: Vec<&CredentialView> = v.iter().filter(|c| kinds.contains(&c.kind)).collect();
    if format == Format::Json {
        for c in v {
            out::json(&CredentialJson::of(c))?;
        }
        return Ok(());
    }
    let mut t = out::Table::new(&["ID", "KIND", "LABEL", "CREATED", "EXPIRES"]);
    for c in v {
        t.row(vec![
            c.id.clone(),
            c.kind.word().into(),
            c.label.clone(),
            rfc3339(c.created_ms),
            rfc3339(c.expires_ms),
        ]);
    }
    t.print()?;
    Ok(())
}

fn revoke(tower: &mut super::conn::Tower, format: Format, id: String) -> anyhow::Result<()> {
    tower.ask(WebCall::Revoke { id: id.clone() })?;
    super::json::done(format, "web revoke", format!("{id} revoked"))?;
    Ok(())
}

fn daemon(cfg: vigie_web::WebConfig) -> anyhow::Result<ExitCode> {
    let stop = shutdown_flag()?;
    match vigie_web::serve(cfg, move || stop.load(std::sync::atomic::Ordering::Relaxed)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(
            e @ (vigie_web::WebError::Endpoint(_)
            | vigie_web::WebError::NotLoopback(_)
            | vigie_web::WebError::Tls(_)
            | vigie_web::WebError::Bind { .. }),
        ) => {
            out::esay!("vigie web: {e}");
            Ok(ExitCode::from(EXIT_CONFIG))
        }
        Err(e) => Err(e).context("web daemon stopped on an error"),
    }
}
