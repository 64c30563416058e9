//! `vigie ips`: IP pools and allocations. The tower decides every
//! allocation (one writer), so parallel calls never get the same address.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::Subcommand;
use ipnet::IpNet;
use vigie_wire::catalog::{CatalogAnswer, CatalogCall, Owner, PoolSpec};
use vigie_wire::tower::{ApiAnswer, ApiCall};

use super::conn::Conn;
use super::json_catalog::{AllocationJson, PoolJson};
use super::out::{self, Format, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    pub(super) conn: Conn,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Pools: `ips pool add NAME CIDR`.
    Pool {
        #[command(subcommand)]
        action: PoolAction,
    },
    /// The tenant's pools with their use, a page at a time.
    Pools {
        #[command(flatten)]
        page: super::page::PageArgs,
    },
    /// Hand out addresses of a pool (all or none).
    Allocate {
        /// The pool's name.
        pool: String,
        /// Who for: server:NAME or app:NAME.
        #[arg(long = "for")]
        owner: Owner,
        /// How many addresses.
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Give an address, or every address of an owner, back to the pool.
    Release {
        /// The pool's name.
        pool: String,
        /// The address to give back.
        address: Option<IpAddr>,
        /// Give back every address of this owner (server:NAME or app:NAME).
        #[arg(long = "for")]
        owner: Option<Owner>,
    },
    /// The addresses of a pool handed out, and to whom.
    List {
        /// The pool's name.
        pool: String,
        #[command(flatten)]
        page: super::page::PageArgs,
    },
}

#[derive(Debug, Subcommand)]
enum PoolAction {
    /// A new pool: its CIDR must not overlap another pool of the tenant.
    Add {
        /// The pool's name.
        name: String,
        /// Its network, e.g. 10.0.0.0/24.
        cidr: IpNet,
        /// Never handed out.
        #[arg(long)]
        gateway: Option<IpAddr>,
        /// Never handed out either (repeat for several).
        #[arg(long = "reserve")]
        reserved: Vec<IpAddr>,
    },
}

fn catalog(answer: ApiAnswer) -> anyhow::Result<CatalogAnswer> {
    match answer {
        ApiAnswer::Catalog(c) => Ok(c),
        other => anyhow::bail!("unexpected answer: {other:?}"),
    }
}

pub fn run(a: Args, format: Format) -> anyhow::Result<ExitCode> {
    let json = format == Format::Json;
    let mut page = None;
    let call = match a.action {
        Action::Pool {
            action:
                PoolAction::Add {
                    name,
                    cidr,
                    gateway,
                    reserved,
                },
        } => CatalogCall::PoolAdd {
            spec: PoolSpec {
                name,
                cidr,
                gateway,
                reserved,
            },
        },
        Action::Pools { page: p } => {
            page = Some(p);
            CatalogCall::Pools
        }
        Action::Allocate { pool, owner, count } => CatalogCall::Allocate { pool, owner, count },
        Action::Release {
            pool,
            address,
            owner,
        } => {
            if address.is_none() && owner.is_none() {
                eprintln!("vigie ips release: name an ADDRESS or --for OWNER");
                return Ok(ExitCode::from(crate::runtime::EXIT_CONFIG));
            }
            CatalogCall::Release {
                pool,
                address,
                owner,
            }
        }
        Action::List { pool, page: p } => {
            page = Some(p);
            CatalogCall::Allocations { pool }
        }
    };
    let mut tower = a.conn.client()?;
    let (answer, info) = match page {
        Some(p) => {
            let (answer, info) = super::page::call(&mut tower, ApiCall::Catalog(call), p.ask())?;
            (answer, Some(info))
        }
        None => (tower.call(ApiCall::Catalog(call))?, None),
    };
    let things = if matches!(answer, ApiAnswer::Catalog(CatalogAnswer::Pools(_))) {
        "pools"
    } else {
        "addresses allocated"
    };
    match catalog(answer)? {
        CatalogAnswer::Pools(v) if json => {
            for p in &v {
                out::json(&PoolJson::from(p))?;
            }
        }
        CatalogAnswer::Pools(v) => {
            let mut t = Table::new(&["POOL", "CIDR", "ALLOCATED", "USABLE", "GATEWAY"]);
            for p in v {
                t.row(vec![
                    p.spec.name,
                    p.spec.cidr.to_string(),
                    p.allocated.to_string(),
                    p.usable.to_string(),
                    p.spec.gateway.map_or("-".to_owned(), |g| g.to_string()),
                ]);
            }
            if !t.is_empty() {
                t.print()?;
            }
        }
        CatalogAnswer::Allocations(v) if json => {
            for al in &v {
                out::json(&AllocationJson::from(al))?;
            }
        }
        CatalogAnswer::Allocations(v) => {
            let mut t = Table::new(&["ADDRESS", "FOR", "BY"]);
            for al in v {
                t.row(vec![
                    al.address.to_string(),
                    al.owner.to_string(),
                    al.operator,
                ]);
            }
            if !t.is_empty() {
                t.print()?;
            }
        }
        other => anyhow::bail!("unexpected answer: {other:?}"),
    }
    if let Some(info) = info {
        super::page::footer(&info, format, things)?;
    }
    Ok(ExitCode::SUCCESS)
}
