//! The tower's catalogs on the wire: servers and their import sessions,
//! IP pools and their allocations, applications. One API variant,
//! [`crate::tower::ApiCall::Catalog`], carries a [`CatalogCall`]; its
//! answer is [`crate::tower::ApiAnswer::Catalog`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::access::Verb;
use crate::ids::Labels;

/// A server as a supplier lists it (one CSV row, validated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSpec {
    /// Unique in the tenant; becomes the host id once provisioned.
    pub name: String,
    pub address: IpAddr,
    pub ssh_port: u16,
    pub ssh_user: String,
    pub provider: String,
    pub cpu: u32,
    pub ram_gb: u32,
    pub disk_gb: u32,
    pub labels: Labels,
    /// The SSH host key the supplier announced (`ssh-ed25519 AAAA…` or a
    /// `SHA256:…` fingerprint): pinned when given.
    pub host_key: Option<String>,
}

/// A row of an import, with its line in the file (for error messages the
/// referee gives after its own checks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRow {
    pub line: u64,
    pub server: ServerSpec,
}

/// Where a server is on its way to becoming a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerState {
    New,
    Provisioning,
    Host,
    Failed { reason: String },
}

impl ServerState {
    pub fn word(&self) -> &'static str {
        match self {
            ServerState::New => "new",
            ServerState::Provisioning => "provisioning",
            ServerState::Host => "host",
            ServerState::Failed { .. } => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    pub spec: ServerSpec,
    pub tenant: String,
    /// The import session that added it.
    pub session: u64,
    pub state: ServerState,
    pub added_ms: u64,
    /// It was a host, removed since: its old agent key is revoked, so the
    /// next provisioning makes the agent a new one on the server.
    #[serde(default)]
    pub fresh_key: bool,
}

/// One CSV import, a record of its own: "session 1 → 100 servers added on
/// a date".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Numbered per tenant from 1.
    pub id: u64,
    pub tenant: String,
    pub operator: String,
    pub at_ms: u64,
    /// The file's name as the operator gave it.
    pub file: String,
    /// SHA-256 of the file's bytes, hex.
    pub digest: String,
    pub rows: u64,
    /// The servers it added, in file order.
    pub servers: Vec<String>,
    /// When `servers sessions undo` removed its servers (the record stays:
    /// session ids are never reused).
    #[serde(default)]
    pub undone_ms: Option<u64>,
}

/// A pool of addresses to hand out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    pub name: String,
    pub cidr: IpNet,
    /// Never handed out.
    pub gateway: Option<IpAddr>,
    /// Never handed out either (routers, DNS, …).
    pub reserved: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolView {
    pub spec: PoolSpec,
    pub tenant: String,
    /// Addresses that can be handed out (network, broadcast, gateway and
    /// reserved ones excluded), saturated at `u64::MAX`.
    pub usable: u64,
    pub allocated: u64,
}

/// Who an address is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Owner {
    Server(String),
    App(String),
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Server(n) => write!(f, "server:{n}"),
            Owner::App(n) => write!(f, "app:{n}"),
        }
    }
}

impl std::str::FromStr for Owner {
    type Err = String;

    /// `server:NAME` or `app:NAME`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("server", n)) if !n.is_empty() => Ok(Owner::Server(n.to_owned())),
            Some(("app", n)) if !n.is_empty() => Ok(Owner::App(n.to_owned())),
            _ => Err(format!("{s:?}: expected server:NAME or app:NAME")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub pool: String,
    pub address: IpAddr,
    pub owner: Owner,
    pub operator: String,
    pub at_ms: u64,
}

/// A service an application runs by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppService {
    pub name: String,
    /// How it runs (`php-fpm`, `node`, `static`, …), free text.
    pub runtime: Option<String>,
    pub command: Option<String>,
    pub port: Option<u16>,
}

/// An application of the catalog, one version of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub description: Option<String>,
    pub services: Vec<AppService>,
    /// What the deployer will need beyond this (kept, not interpreted yet).
    pub extra: BTreeMap<String, String>,
    /// This version's environments: each one's `environment.yml` text
    /// (`vigie deploy APP/ENV --version V` deploys it).
    #[serde(default)]
    pub environments: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    pub spec: AppSpec,
    pub tenant: String,
    pub operator: String,
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogCall {
    /// One CSV import: all rows or none. `dry_run` checks everything the
    /// referee would and writes nothing.
    Import {
        file: String,
        digest: String,
        rows: Vec<ImportRow>,
        dry_run: bool,
    },
    Sessions,
    /// Servers, of one session and/or matching a selector.
    Servers {
        session: Option<u64>,
        target: Option<String>,
    },
    Server {
        name: String,
    },
    PoolAdd {
        spec: PoolSpec,
    },
    Pools,
    /// `count` addresses of `pool` for `owner`, in one decision.
    Allocate {
        pool: String,
        owner: Owner,
        count: u32,
    },
    /// One address, or every address of an owner, back to the pool.
    Release {
        pool: String,
        address: Option<IpAddr>,
        owner: Option<Owner>,
    },
    Allocations {
        pool: String,
    },
    AppAdd {
        spec: AppSpec,
    },
    Apps,
    /// Every version of an application.
    App {
        name: String,
    },
    /// Removes one version of an application: refused while an
    /// environment runs it or a deploy of it goes on.
    AppRemove {
        name: String,
        version: String,
    },
    /// Asks the tower to make these servers hosts (named, or those
    /// `target` matches): they become `provisioning`, with the change to
    /// queue as each new host's first (`None`: a retry keeps the last one).
    Provision {
        names: Vec<String>,
        target: Option<String>,
        init: Option<crate::change::ChangeSpec>,
        /// An IP pool each queued server without an address of it gets
        /// one from, in the same decision; its host is labelled
        /// `address=` with it (where the deployer binds).
        #[serde(default)]
        pool: Option<String>,
    },
    /// The tower's own (the provisioner's): every tenant's servers in
    /// `provisioning`.
    Provisioning,
    /// The tower's own (the provisioner's): the addresses pools gave
    /// server `name`, each with its pool's prefix and gateway: what
    /// provisioning configures on the server.
    ServerAddresses {
        name: String,
    },
    /// The tower's own: the SSH host key first seen on a server that had
    /// none pinned (`ssh-ed25519 AAAA…`), pinned from now on.
    HostKeySeen {
        name: String,
        key: String,
    },
    /// The tower's own: the last step of provisioning, in one batch —
    /// the host registered with the server's labels, its agent's key
    /// accepted, the init change queued first, the server a `host`.
    Enrol {
        name: String,
        public: String,
    },
    /// The tower's own: provisioning this server failed.
    ProvisionFailed {
        name: String,
        reason: String,
    },
    /// An operator sets the host key a server that is not a host must
    /// offer (the supplier's was wrong, or the server was reinstalled):
    /// explicit and audited, never done by the tower itself.
    Pin {
        name: String,
        host_key: String,
    },
    /// The caller's tenant's SSH public key for provisioning (made at the
    /// tenant's first use; its secret half never leaves the tower): what
    /// its servers' SSH user must accept.
    SshKey,
    /// Changes fields of a server's catalog row, checked like an import
    /// row; fields that would break a host are refused while it is one.
    Edit {
        name: String,
        edit: ServerEdit,
    },
    /// Removes servers from the catalog, all or none: refused while one
    /// is a host or being provisioned, or holds addresses unless `force`
    /// (which releases them).
    Remove {
        names: Vec<String>,
        force: bool,
    },
    /// Removes an import session's servers, only while none of them was
    /// provisioned; the session record stays, marked undone.
    Undo {
        session: u64,
        force: bool,
    },
    /// Servers for `servers export`, by name from `after`, at most
    /// [`EXPORT_PAGE`] a call.
    Export {
        target: Option<String>,
        after: Option<String>,
    },
    /// The tower's checks of an import's rows (names and addresses in the
    /// catalog, scope), answered with every problem rather than refused:
    /// how the CLI reports them with the file's own errors, in one list.
    ImportCheck {
        rows: Vec<ImportRow>,
    },
}

/// Most servers one `Export` answer holds.
pub const EXPORT_PAGE: usize = 5_000;

/// What `servers edit` changes (`None`: kept). `host_key: Some(None)`
/// removes the pin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerEdit {
    pub address: Option<IpAddr>,
    pub ssh_port: Option<u16>,
    pub ssh_user: Option<String>,
    pub provider: Option<String>,
    pub cpu: Option<u32>,
    pub ram_gb: Option<u32>,
    pub disk_gb: Option<u32>,
    pub labels: Option<Labels>,
    pub host_key: Option<Option<String>>,
}

/// One server's answer to a provisioning request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProvisionOutcome {
    /// Now `provisioning`.
    Queued,
    AlreadyHost,
    AlreadyProvisioning,
    /// Not queued, and why.
    Refused {
        reason: String,
    },
}

impl ProvisionOutcome {
    pub fn word(&self) -> &'static str {
        match self {
            ProvisionOutcome::Queued => "queued",
            ProvisionOutcome::AlreadyHost => "already_host",
            ProvisionOutcome::AlreadyProvisioning => "already_provisioning",
            ProvisionOutcome::Refused { .. } => "refused",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionResult {
    pub name: String,
    pub outcome: ProvisionOutcome,
}

impl CatalogCall {
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            CatalogCall::Import { dry_run: false, .. }
                | CatalogCall::PoolAdd { .. }
                | CatalogCall::Allocate { .. }
                | CatalogCall::Release { .. }
                | CatalogCall::AppAdd { .. }
                | CatalogCall::AppRemove { .. }
                | CatalogCall::Provision { .. }
                | CatalogCall::HostKeySeen { .. }
                | CatalogCall::Enrol { .. }
                | CatalogCall::ProvisionFailed { .. }
                | CatalogCall::Pin { .. }
                | CatalogCall::Edit { .. }
                | CatalogCall::Remove { .. }
                | CatalogCall::Undo { .. }
        )
    }

    pub fn verb(&self) -> Verb {
        match self {
            CatalogCall::Sessions
            | CatalogCall::Servers { .. }
            | CatalogCall::Server { .. }
            | CatalogCall::SshKey
            | CatalogCall::Export { .. } => Verb::ServersRead,
            CatalogCall::Import { .. }
            | CatalogCall::ImportCheck { .. }
            | CatalogCall::Provision { .. }
            | CatalogCall::Provisioning
            | CatalogCall::ServerAddresses { .. }
            | CatalogCall::HostKeySeen { .. }
            | CatalogCall::Enrol { .. }
            | CatalogCall::ProvisionFailed { .. }
            | CatalogCall::Pin { .. }
            | CatalogCall::Edit { .. }
            | CatalogCall::Remove { .. }
            | CatalogCall::Undo { .. } => Verb::ServersAdmin,
            CatalogCall::PoolAdd { .. }
            | CatalogCall::Pools
            | CatalogCall::Allocate { .. }
            | CatalogCall::Release { .. }
            | CatalogCall::Allocations { .. } => Verb::IpsAdmin,
            CatalogCall::AppAdd { .. } | CatalogCall::AppRemove { .. } => Verb::AppsAdmin,
            CatalogCall::Apps | CatalogCall::App { .. } => Verb::AppsRead,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogAnswer {
    /// `session` is `None` after a dry run.
    Imported {
        session: Option<SessionRecord>,
        servers: u64,
    },
    Sessions(Vec<SessionRecord>),
    Servers(Vec<ServerRecord>),
    Pools(Vec<PoolView>),
    Allocations(Vec<Allocation>),
    Apps(Vec<AppRecord>),
    /// An OpenSSH public key line (`ssh-ed25519 AAAA… vigie-TENANT`).
    SshKey(String),
    /// Each server's result of a provisioning request, once per server.
    Provisioned(Vec<ProvisionResult>),
    /// A page of `Export`; `next` is where the next page starts.
    Exported {
        servers: Vec<ServerRecord>,
        next: Option<String>,
    },
    /// The servers removed (by `Remove` or `Undo`) and the addresses
    /// released with them.
    Removed {
        servers: Vec<String>,
        released: Vec<Allocation>,
    },
    /// The problems the tower found in an `ImportCheck`'s rows: at most
    /// `MAX_ERRORS` of them, `total` counts all.
    ImportChecked {
        problems: Vec<ImportProblem>,
        total: u64,
    },
    /// `ServerAddresses`' answer.
    Given(Vec<GivenAddress>),
}

/// An address a pool gave a server, as the server's interface carries
/// it: `address/prefix` (the pool's prefix length), the pool's gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GivenAddress {
    pub pool: String,
    pub address: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
}

/// One problem of an import row, as the tower sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProblem {
    pub line: u64,
    pub column: Option<String>,
    pub message: String,
}
