//! `vigie ips`: IP pools and allocations. The tower decides every
//! allocation (one writer), so parallel calls never get the same address.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::Subcommand;
use ipnet::IpNet;
use vigie_client::calls::catalog;
use vigie_wire::catalog::{Allocation, Owner, PoolSpec, PoolView};

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

/// What an `ips` command shows.
enum Shown {
    Pools(Vec<PoolView>),
    Allocations(Vec<Allocation>),
}

pub fn run(a: Args, format: Format) -> anyhow::Result<ExitCode> {
    if let Action::Release {
        address: None,
        owner: None,
        ..
    } = &a.action
    {
        eprintln!("vigie ips release: name an ADDRESS or --for OWNER");
        return Ok(ExitCode::from(crate::runtime::EXIT_CONFIG));
    }
    let mut tower = a.conn.client()?;
    let (shown, info) = match a.action {
        Action::Pool {
            action:
                PoolAction::Add {
                    name,
                    cidr,
                    gateway,
                    reserved,
                },
        } => {
            let spec = PoolSpec {
                name,
                cidr,
                gateway,
                reserved,
            };
            (Shown::Pools(tower.ask(catalog::PoolAdd { spec })?), None)
        }
        Action::Pools { page } => {
            let (v, info) = super::page::call(&mut tower, catalog::Pools, page.ask())?;
            (Shown::Pools(v), Some(info))
        }
        Action::Allocate { pool, owner, count } => {
            let call = catalog::Allocate { pool, owner, count };
            (Shown::Allocations(tower.ask(call)?), None)
        }
        Action::Release {
            pool,
            address,
            owner,
        } => {
            let call = catalog::Release {
                pool,
                address,
                owner,
            };
            (Shown::Allocations(tower.ask(call)?), None)
        }
        Action::List { pool, page } => {
            let call = catalog::Allocations { pool };
            let (v, info) = super::page::call(&mut tower, call, page.ask())?;
            (Shown::Allocations(v), Some(info))
        }
    };
    let things = match shown {
        Shown::Pools(_) => "pools",
        Shown::Allocations(_) => "addresses allocated",
    };
    show(shown, format == Format::Json)?;
    if let Some(info) = info {
        super::page::footer(&info, format, things)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn show(shown: Shown, json: bool) -> anyhow::Result<()> {
    match shown {
        Shown::Pools(v) if json => {
            for p in &v {
                out::json(&PoolJson::from(p))?;
            }
        }
        Shown::Pools(v) => {
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
        Shown::Allocations(v) if json => {
            for al in &v {
                out::json(&AllocationJson::from(al))?;
            }
        }
        Shown::Allocations(v) => {
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
    }
    Ok(())
}
