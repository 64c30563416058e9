//! `vigie operators`: the operators' catalogue of one's tenant — list, add,
//! rotate an operator's key, revoke one.

use std::process::ExitCode;

use clap::Subcommand;
use vigie_wire::front::Grant;
use vigie_wire::tower::{ApiAnswer, ApiCall};

use super::conn::Conn;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Add an operator to the tenant, with grants no wider than yours
    /// (a name in use is refused: see rotate-key).
    Add {
        name: String,
        /// The operator's public key (Z85; `vigie keys gen` prints it).
        #[arg(long, allow_hyphen_values = true)]
        key: String,
        /// A permission, `VERB` or `VERB@SCOPE` (scope: a host id, list,
        /// glob or labels; every host when omitted), e.g.
        /// `changes.submit@web-*`. Repeat for several.
        #[arg(long = "grant", value_parser = Grant::parse, required = true)]
        grants: Vec<Grant>,
    },
    /// Give an operator a new key: the old one no longer gets in (refused
    /// for an operator whose grants exceed yours).
    RotateKey {
        name: String,
        /// The new public key (Z85).
        #[arg(long, allow_hyphen_values = true)]
        key: String,
    },
    /// Revoke an operator: its key no longer gets in, its watches end.
    Revoke { name: String },
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut client = a.conn.client()?;
    let json = a.conn.json;
    let said = |what: String| {
        if !json {
            println!("{what}");
        }
        Ok(ExitCode::SUCCESS)
    };
    match a.action {
        Some(Action::Add { name, key, grants }) => {
            client.call(ApiCall::OperatorAdd {
                name: name.clone(),
                public: key,
                grants,
            })?;
            said(format!("operator {name} added"))
        }
        Some(Action::RotateKey { name, key }) => {
            client.call(ApiCall::OperatorRotateKey {
                name: name.clone(),
                public: key,
            })?;
            said(format!("operator {name} has a new key"))
        }
        Some(Action::Revoke { name }) => {
            client.call(ApiCall::OperatorRevoke { name: name.clone() })?;
            said(format!("operator {name} revoked"))
        }
        None => {
            let ApiAnswer::Operators(ops) = client.call(ApiCall::Operators)? else {
                anyhow::bail!("unexpected answer");
            };
            for o in ops {
                if json {
                    println!("{}", serde_json::to_string(&o)?);
                    continue;
                }
                let grants: Vec<String> = o.grants.iter().map(Grant::to_string).collect();
                let state = if o.revoked { "revoked" } else { "active" };
                println!(
                    "{:<16} {:<12} {:<8} {} {}",
                    o.name,
                    o.tenant,
                    state,
                    o.public,
                    grants.join(" ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
