//! `vigie operators`: the operators' catalogue of one's tenant — list, add,
//! rotate an operator's key, revoke one, give or take a grant in place.

use std::process::ExitCode;

use clap::Subcommand;
use vigie_client::calls;
use vigie_wire::front::Grant;

use super::conn::Conn;
use super::json::OperatorJson;
use super::out::{self, Format, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Listing: a page at a time.
    #[command(flatten)]
    page: super::page::PageArgs,
    #[command(flatten)]
    pub(super) conn: Conn,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Add an operator to the tenant, with grants no wider than yours
    /// (a name in use is refused: see rotate-key).
    Add {
        /// The new operator's name, unique in the tenant.
        #[arg(value_name = "NAME")]
        name: String,
        /// The operator's public key: @FILE (the .pub `vigie keys gen`
        /// wrote), 64 hex digits, or Z85.
        #[arg(long, allow_hyphen_values = true, value_name = "KEY",
              value_parser = super::key_arg::parse_key)]
        key: String,
        /// A permission, `VERB` or `VERB@SCOPE` (scope: a host id, list,
        /// glob or labels; every host when omitted), e.g.
        /// `changes.submit@web-*`. Repeat for several.
        #[arg(long = "grant", value_parser = Grant::parse, required = true, value_name = "GRANT")]
        grants: Vec<Grant>,
    },
    /// Give an operator a new key: the old one no longer gets in (refused
    /// for an operator whose grants exceed yours).
    RotateKey {
        /// The operator whose key changes.
        #[arg(value_name = "NAME")]
        name: String,
        /// The new public key: @FILE, 64 hex digits, or Z85.
        #[arg(long, allow_hyphen_values = true, value_name = "KEY",
              value_parser = super::key_arg::parse_key)]
        key: String,
    },
    /// Revoke an operator: its key no longer gets in, its watches end.
    Revoke {
        /// The operator to revoke.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Give an operator one more permission in place (its key stays), no
    /// wider than yours.
    Grant {
        /// The operator who gets it.
        #[arg(value_name = "NAME")]
        name: String,
        /// `VERB` (every host) or `VERB@SCOPE`, e.g. `changes.submit@web-*`.
        #[arg(value_parser = Grant::parse, value_name = "GRANT")]
        grant: Grant,
    },
    /// Take a permission from an operator in place, spelled as it holds it
    /// (refused for an operator holding a grant you lack, and for the last
    /// holder of tenants.admin or of the tenant's operators.admin).
    Ungrant {
        /// The operator who loses it.
        #[arg(value_name = "NAME")]
        name: String,
        /// The grant exactly as `vigie operators` lists it.
        #[arg(value_parser = Grant::parse, value_name = "GRANT")]
        grant: Grant,
    },
}

pub fn run(a: Args, format: Format) -> anyhow::Result<ExitCode> {
    let mut tower = a.conn.client()?;
    match a.action {
        Some(Action::Add { name, key, grants }) => {
            tower.ask(calls::OperatorAdd {
                name: name.clone(),
                public: key,
                grants,
            })?;
            super::json::done(format, "operators add", format!("operator {name} added"))
        }
        Some(Action::RotateKey { name, key }) => {
            tower.ask(calls::OperatorRotateKey {
                name: name.clone(),
                public: key,
            })?;
            super::json::done(
                format,
                "operators rotate-key",
                format!("operator {name} has a new key"),
            )
        }
        Some(Action::Revoke { name }) => {
            tower.ask(calls::OperatorRevoke { name: name.clone() })?;
            super::json::done(
                format,
                "operators revoke",
                format!("operator {name} revoked"),
            )
        }
        Some(Action::Grant { name, grant }) => {
            let said = format!("operator {name} holds {grant}");
            tower.ask(calls::OperatorGrant { name, grant })?;
            super::json::done(format, "operators grant", said)
        }
        Some(Action::Ungrant { name, grant }) => {
            let said = format!("operator {name} no longer holds {grant}");
            tower.ask(calls::OperatorUngrant { name, grant })?;
            super::json::done(format, "operators ungrant", said)
        }
        None => {
            let (ops, info) = super::page::call(&mut tower, calls::Operators, a.page.ask())?;
            if format == Format::Json {
                for o in &ops {
                    out::json(&OperatorJson::from(o))?;
                }
                super::page::footer(&info, format, "operators")?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(&["NAME", "TENANT", "STATE", "KEY", "GRANTS"]);
            for o in &ops {
                let j = OperatorJson::from(o);
                t.row(vec![
                    j.name,
                    j.tenant,
                    j.state.into(),
                    j.public,
                    j.grants.join(" "),
                ]);
            }
            if !t.is_empty() {
                t.print()?;
            }
            super::page::footer(&info, format, "operators")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
