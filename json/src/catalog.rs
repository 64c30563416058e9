//! The catalogs' part of the JSON contract (see the crate's root): servers,
//! import sessions, pools, allocations and applications, converted from
//! the wire types — a server's state is a word with its reason beside it,
//! an owner is spelled as `--for` takes it (`server:NAME`), times are
//! RFC 3339.

use std::collections::BTreeMap;

use serde::Serialize;
use vigie_wire::catalog::{
    Allocation, AppRecord, AppService, PoolView, ServerRecord, ServerState, SessionRecord,
};

use crate::rfc3339;

#[derive(Debug, Serialize)]
pub struct ServerJson {
    pub name: String,
    /// `new`, `provisioning`, `host` or `failed`.
    pub state: &'static str,
    /// Why provisioning failed, when it did.
    pub reason: Option<String>,
    pub address: String,
    pub ssh_port: u16,
    pub ssh_user: String,
    pub provider: String,
    pub cpu: u32,
    pub ram_gb: u32,
    pub disk_gb: u32,
    pub labels: BTreeMap<String, String>,
    /// The pinned SSH host key, once known.
    pub host_key: Option<String>,
    pub session: u64,
    pub added: String,
}

impl From<&ServerRecord> for ServerJson {
    fn from(s: &ServerRecord) -> Self {
        let p = &s.spec;
        Self {
            name: p.name.clone(),
            state: s.state.word(),
            reason: match &s.state {
                ServerState::Failed { reason } => Some(reason.clone()),
                _ => None,
            },
            address: p.address.to_string(),
            ssh_port: p.ssh_port,
            ssh_user: p.ssh_user.clone(),
            provider: p.provider.clone(),
            cpu: p.cpu,
            ram_gb: p.ram_gb,
            disk_gb: p.disk_gb,
            labels: p.labels.clone(),
            host_key: p.host_key.clone(),
            session: s.session,
            added: rfc3339(s.added_ms),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SessionJson {
    pub id: u64,
    pub operator: String,
    pub at: String,
    pub file: String,
    /// SHA-256 of the file, hex.
    pub digest: String,
    pub rows: u64,
    pub servers: Vec<String>,
    /// When `servers sessions undo` removed its servers.
    pub undone: Option<String>,
}

impl From<&SessionRecord> for SessionJson {
    fn from(s: &SessionRecord) -> Self {
        Self {
            id: s.id,
            operator: s.operator.clone(),
            at: rfc3339(s.at_ms),
            file: s.file.clone(),
            digest: s.digest.clone(),
            rows: s.rows,
            servers: s.servers.clone(),
            undone: s.undone_ms.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PoolJson {
    pub name: String,
    pub cidr: String,
    pub gateway: Option<String>,
    pub reserved: Vec<String>,
    /// Addresses that can be handed out at all.
    pub usable: u64,
    pub allocated: u64,
}

impl From<&PoolView> for PoolJson {
    fn from(p: &PoolView) -> Self {
        Self {
            name: p.spec.name.clone(),
            cidr: p.spec.cidr.to_string(),
            gateway: p.spec.gateway.map(|g| g.to_string()),
            reserved: p.spec.reserved.iter().map(ToString::to_string).collect(),
            usable: p.usable,
            allocated: p.allocated,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AllocationJson {
    pub pool: String,
    pub address: String,
    /// `server:NAME` or `app:NAME`, as `--for` spells it.
    pub owner: String,
    pub operator: String,
    pub at: String,
}

impl From<&Allocation> for AllocationJson {
    fn from(a: &Allocation) -> Self {
        Self {
            pool: a.pool.clone(),
            address: a.address.to_string(),
            owner: a.owner.to_string(),
            operator: a.operator.clone(),
            at: rfc3339(a.at_ms),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AppJson {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub description: Option<String>,
    pub services: Vec<AppServiceJson>,
    pub extra: BTreeMap<String, String>,
    /// The environments this version deploys (`vigie deploy APP/ENV --version V`).
    pub environments: Vec<String>,
    pub operator: String,
    pub added: String,
}

#[derive(Debug, Serialize)]
pub struct AppServiceJson {
    pub name: String,
    pub runtime: Option<String>,
    pub command: Option<String>,
    pub port: Option<u16>,
}

impl From<&AppService> for AppServiceJson {
    fn from(s: &AppService) -> Self {
        Self {
            name: s.name.clone(),
            runtime: s.runtime.clone(),
            command: s.command.clone(),
            port: s.port,
        }
    }
}

impl From<&AppRecord> for AppJson {
    fn from(a: &AppRecord) -> Self {
        let s = &a.spec;
        Self {
            name: s.name.clone(),
            version: s.version.clone(),
            repository: s.repository.clone(),
            description: s.description.clone(),
            services: s.services.iter().map(AppServiceJson::from).collect(),
            extra: s.extra.clone(),
            environments: s.environments.keys().cloned().collect(),
            operator: a.operator.clone(),
            added: rfc3339(a.at_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_wire::catalog::{Owner, ServerSpec};

    fn server(state: ServerState) -> ServerRecord {
        ServerRecord {
            spec: ServerSpec {
                name: "web-1".into(),
                address: "192.0.2.10".parse().expect("an address"),
                ssh_port: 22,
                ssh_user: "root".into(),
                provider: "ovh".into(),
                cpu: 4,
                ram_gb: 8,
                disk_gb: 100,
                labels: [("role".to_owned(), "web".to_owned())].into(),
                host_key: None,
            },
            tenant: "acme".into(),
            session: 1,
            state,
            added_ms: 0,
            fresh_key: false,
        }
    }

    #[test]
    fn a_servers_state_is_a_word_and_its_reason_a_field_of_its_own() {
        let v = serde_json::to_value(ServerJson::from(&server(ServerState::Failed {
            reason: "host key mismatch".into(),
        })))
        .expect("json");
        assert_eq!(v["state"], "failed");
        assert_eq!(v["reason"], "host key mismatch");
        assert_eq!(v["address"], "192.0.2.10");
        assert_eq!(v["added"], "1970-01-01T00:00:00.000Z");
        let v = serde_json::to_value(ServerJson::from(&server(ServerState::Host))).expect("json");
        assert_eq!(v["state"], "host");
        assert!(v["reason"].is_null());
    }

    #[test]
    fn an_owner_is_spelled_as_the_command_line_takes_it() {
        let a = Allocation {
            pool: "front".into(),
            address: "10.0.0.5".parse().expect("an address"),
            owner: Owner::Server("web-1".into()),
            operator: "admin".into(),
            at_ms: 0,
        };
        let v = serde_json::to_value(AllocationJson::from(&a)).expect("json");
        assert_eq!(v["owner"], "server:web-1");
        assert_eq!(v["address"], "10.0.0.5");
    }
}
