//! The catalogs' calls (`ApiCall::Catalog`), typed like the others: each
//! names what its `CatalogAnswer` holds.

use std::net::IpAddr;

use vigie_wire::catalog::{
    Allocation, AppRecord, AppSpec, CatalogAnswer, CatalogCall, GivenAddress, ImportProblem,
    ImportRow, Owner, PoolSpec, PoolView, ProvisionResult, ServerEdit, ServerRecord, SessionRecord,
};
use vigie_wire::change::ChangeSpec;
use vigie_wire::tower::{ApiAnswer, ApiCall};

use super::Call;

call!(
    /// One CSV import, all rows or none (`dry_run`: checked, not written).
    Import { file: String, digest: String, rows: Vec<ImportRow>, dry_run: bool }
        => ApiCall::Catalog(CatalogCall::Import { file, digest, rows, dry_run }), Imported,
        ApiAnswer::Catalog(CatalogAnswer::Imported { session, servers }) => Imported { session, servers }
);
call!(
    /// The tower's checks of an import's rows, every problem listed.
    ImportCheck { rows: Vec<ImportRow> }
        => ApiCall::Catalog(CatalogCall::ImportCheck { rows }), ImportChecked,
        ApiAnswer::Catalog(CatalogAnswer::ImportChecked { problems, total }) => ImportChecked { problems, total }
);
call!(
    Sessions => ApiCall::Catalog(CatalogCall::Sessions), Vec<SessionRecord>,
        ApiAnswer::Catalog(CatalogAnswer::Sessions(v)) => v
);
call!(
    /// Servers, of one session and/or matching a selector.
    Servers { session: Option<u64>, target: Option<String> }
        => ApiCall::Catalog(CatalogCall::Servers { session, target }), Vec<ServerRecord>,
        ApiAnswer::Catalog(CatalogAnswer::Servers(v)) => v
);
call!(
    /// One server (a list of one).
    Server { name: String } => ApiCall::Catalog(CatalogCall::Server { name }), Vec<ServerRecord>,
        ApiAnswer::Catalog(CatalogAnswer::Servers(v)) => v
);
call!(
    /// Sets the host key a server must offer: the server as it is now.
    Pin { name: String, host_key: String }
        => ApiCall::Catalog(CatalogCall::Pin { name, host_key }), Vec<ServerRecord>,
        ApiAnswer::Catalog(CatalogAnswer::Servers(v)) => v
);
call!(
    /// Changes fields of a server's row: the server as it is now.
    Edit { name: String, edit: ServerEdit }
        => ApiCall::Catalog(CatalogCall::Edit { name, edit }), Vec<ServerRecord>,
        ApiAnswer::Catalog(CatalogAnswer::Servers(v)) => v
);
call!(
    /// Removes servers, all or none.
    Remove { names: Vec<String>, force: bool }
        => ApiCall::Catalog(CatalogCall::Remove { names, force }), Removed,
        ApiAnswer::Catalog(CatalogAnswer::Removed { servers, released }) => Removed { servers, released }
);
call!(
    /// Removes an import session's servers.
    Undo { session: u64, force: bool }
        => ApiCall::Catalog(CatalogCall::Undo { session, force }), Removed,
        ApiAnswer::Catalog(CatalogAnswer::Removed { servers, released }) => Removed { servers, released }
);
call!(
    /// A page of servers for `servers export`.
    Export { target: Option<String>, after: Option<String> }
        => ApiCall::Catalog(CatalogCall::Export { target, after }), Exported,
        ApiAnswer::Catalog(CatalogAnswer::Exported { servers, next }) => Exported { servers, next }
);
call!(
    /// The caller's tenant's SSH public key for provisioning.
    SshKey => ApiCall::Catalog(CatalogCall::SshKey), String,
        ApiAnswer::Catalog(CatalogAnswer::SshKey(k)) => k
);
call!(
    /// Makes servers hosts: each server's result once.
    Provision { names: Vec<String>, target: Option<String>, init: Option<ChangeSpec>, pool: Option<String> }
        => ApiCall::Catalog(CatalogCall::Provision { names, target, init, pool }), Vec<ProvisionResult>,
        ApiAnswer::Catalog(CatalogAnswer::Provisioned(v)) => v
);
call!(
    /// The provisioner's: every tenant's servers in `provisioning`.
    Provisioning => ApiCall::Catalog(CatalogCall::Provisioning), Vec<ServerRecord>,
        ApiAnswer::Catalog(CatalogAnswer::Servers(v)) => v
);
call!(
    /// The provisioner's: the host key first seen on a server.
    HostKeySeen { name: String, key: String }
        => ApiCall::Catalog(CatalogCall::HostKeySeen { name, key }), Vec<ServerRecord>,
        ApiAnswer::Catalog(CatalogAnswer::Servers(v)) => v
);
call!(
    /// The provisioner's: the last step of provisioning, in one batch.
    Enrol { name: String, public: String }
        => ApiCall::Catalog(CatalogCall::Enrol { name, public }), Vec<ServerRecord>,
        ApiAnswer::Catalog(CatalogAnswer::Servers(v)) => v
);
call!(
    /// The provisioner's: the addresses pools gave this server.
    ServerAddresses { name: String }
        => ApiCall::Catalog(CatalogCall::ServerAddresses { name }), Vec<GivenAddress>,
        ApiAnswer::Catalog(CatalogAnswer::Given(v)) => v
);
call!(
    /// The provisioner's: provisioning this server failed.
    ProvisionFailed { name: String, reason: String }
        => ApiCall::Catalog(CatalogCall::ProvisionFailed { name, reason }), Vec<ServerRecord>,
        ApiAnswer::Catalog(CatalogAnswer::Servers(v)) => v
);
call!(
    /// Adds an IP pool: the pools after.
    PoolAdd { spec: PoolSpec } => ApiCall::Catalog(CatalogCall::PoolAdd { spec }), Vec<PoolView>,
        ApiAnswer::Catalog(CatalogAnswer::Pools(v)) => v
);
call!(
    Pools => ApiCall::Catalog(CatalogCall::Pools), Vec<PoolView>,
        ApiAnswer::Catalog(CatalogAnswer::Pools(v)) => v
);
call!(
    /// `count` addresses of `pool` for `owner`, in one decision.
    Allocate { pool: String, owner: Owner, count: u32 }
        => ApiCall::Catalog(CatalogCall::Allocate { pool, owner, count }), Vec<Allocation>,
        ApiAnswer::Catalog(CatalogAnswer::Allocations(v)) => v
);
call!(
    /// One address, or every address of an owner, back to the pool.
    Release { pool: String, address: Option<IpAddr>, owner: Option<Owner> }
        => ApiCall::Catalog(CatalogCall::Release { pool, address, owner }), Vec<Allocation>,
        ApiAnswer::Catalog(CatalogAnswer::Allocations(v)) => v
);
call!(
    Allocations { pool: String } => ApiCall::Catalog(CatalogCall::Allocations { pool }),
        Vec<Allocation>, ApiAnswer::Catalog(CatalogAnswer::Allocations(v)) => v
);
call!(
    /// Adds an application version: the application after.
    AppAdd { spec: AppSpec } => ApiCall::Catalog(CatalogCall::AppAdd { spec }), Vec<AppRecord>,
        ApiAnswer::Catalog(CatalogAnswer::Apps(v)) => v
);
call!(
    /// Removes one version (refused while an environment runs it).
    AppRemove { name: String, version: String }
        => ApiCall::Catalog(CatalogCall::AppRemove { name, version }), Vec<AppRecord>,
        ApiAnswer::Catalog(CatalogAnswer::Apps(v)) => v
);
call!(
    Apps => ApiCall::Catalog(CatalogCall::Apps), Vec<AppRecord>,
        ApiAnswer::Catalog(CatalogAnswer::Apps(v)) => v
);
call!(
    /// Every version of an application.
    App { name: String } => ApiCall::Catalog(CatalogCall::App { name }), Vec<AppRecord>,
        ApiAnswer::Catalog(CatalogAnswer::Apps(v)) => v
);

/// An import done (`session` is `None` after a dry run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub session: Option<SessionRecord>,
    pub servers: u64,
}

/// The problems the tower found in an import's rows (at most
/// `MAX_ERRORS` listed, `total` counts all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportChecked {
    pub problems: Vec<ImportProblem>,
    pub total: u64,
}

/// The servers removed and the addresses released with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub servers: Vec<String>,
    pub released: Vec<Allocation>,
}

/// A page of an export; `next` is where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub servers: Vec<ServerRecord>,
    pub next: Option<String>,
}
