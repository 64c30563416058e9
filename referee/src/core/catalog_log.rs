//! Lifecycle events of the catalogs: logged once their state is stored.

/// Stable names: tests and operators wait on them.
#[derive(Debug, Clone)]
pub enum CatalogLog {
    ServersImported {
        tenant: String,
        session: u64,
        servers: u64,
    },
    PoolAdded {
        tenant: String,
        pool: String,
    },
    IpsAllocated {
        tenant: String,
        pool: String,
        count: usize,
    },
    IpsReleased {
        tenant: String,
        pool: String,
        count: usize,
    },
    AppAdded {
        tenant: String,
        app: String,
        version: String,
    },
    ServerProvisioning {
        tenant: String,
        server: String,
    },
    HostKeyPinned {
        tenant: String,
        server: String,
    },
    ServerEnrolled {
        tenant: String,
        server: String,
        /// The init change queued first ("" without one).
        change: String,
    },
    ProvisionFailed {
        tenant: String,
        server: String,
        reason: String,
    },
    HostKeySet {
        tenant: String,
        server: String,
    },
    ServerEdited {
        tenant: String,
        server: String,
        /// The fields changed, comma-separated.
        fields: String,
    },
    ServersRemoved {
        tenant: String,
        servers: usize,
        released: usize,
    },
}

impl CatalogLog {
    pub fn emit(&self) {
        use tracing::info;
        match self {
            CatalogLog::ServersImported {
                tenant,
                session,
                servers,
            } => info!(event = "servers_imported", tenant, session, servers),
            CatalogLog::PoolAdded { tenant, pool } => info!(event = "pool_added", tenant, pool),
            CatalogLog::IpsAllocated {
                tenant,
                pool,
                count,
            } => info!(event = "ips_allocated", tenant, pool, count),
            CatalogLog::IpsReleased {
                tenant,
                pool,
                count,
            } => info!(event = "ips_released", tenant, pool, count),
            CatalogLog::AppAdded {
                tenant,
                app,
                version,
            } => info!(event = "app_added", tenant, app, version),
            CatalogLog::ServerProvisioning { tenant, server } => {
                info!(event = "server_provisioning", tenant, server)
            }
            CatalogLog::HostKeyPinned { tenant, server } => {
                info!(event = "host_key_pinned", tenant, server)
            }
            CatalogLog::ServerEnrolled {
                tenant,
                server,
                change,
            } => info!(event = "server_enrolled", tenant, server, change),
            CatalogLog::ProvisionFailed {
                tenant,
                server,
                reason,
            } => tracing::warn!(event = "provision_failed", tenant, server, reason),
            CatalogLog::HostKeySet { tenant, server } => {
                info!(event = "host_key_set", tenant, server)
            }
            CatalogLog::ServerEdited {
                tenant,
                server,
                fields,
            } => info!(event = "server_edited", tenant, server, fields),
            CatalogLog::ServersRemoved {
                tenant,
                servers,
                released,
            } => info!(event = "servers_removed", tenant, servers, released),
        }
    }
}
