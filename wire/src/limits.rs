//! Explicit size limits. They are checked before decoding so that a hostile
//! peer cannot make a daemon allocate more than a frame's worth of memory.

/// Largest frame any Vigie socket accepts (envelope included).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// Largest key Escalator stores (prefix of a sub-database included).
pub const MAX_KEY: usize = 16 * 1024;
/// Largest value Escalator stores.
pub const MAX_VALUE: usize = 4 * 1024 * 1024;
/// Most operations in one atomic batch.
pub const MAX_BATCH_OPS: usize = 100_000;
/// Most changes one `StatusOf` call reads (a follow of more asks in
/// several calls): its answer stays far below a frame.
pub const MAX_STATUS_OF: usize = 1_000;
/// Longest database name.
pub const MAX_DB_NAME: usize = 64;

/// Shares of the tower's bounded resources (the setup file's `limits:`):
/// a tower-wide bound and, beneath it, what one tenant (or operator, or
/// source address) may take, so that one tenant at its limits leaves the
/// others their share. The launcher reads them and hands them to the
/// referee and the majordomo; the defaults are documented in README.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shares {
    /// Logs requests waiting for their host, in the whole tower.
    pub logs_waiting: u32,
    /// Of those, one tenant's.
    pub logs_waiting_per_tenant: u32,
    /// Of those, one operator's.
    pub logs_waiting_per_operator: u32,
    /// Changes not yet final (queued or in flight), in the whole tower.
    pub changes_queued: u64,
    /// Of those, one tenant's.
    pub changes_queued_per_tenant: u64,
    /// Servers in the catalog, in the whole tower.
    pub servers: u64,
    /// Of those, one tenant's.
    pub servers_per_tenant: u64,
    /// Hosts registered, in the whole tower (ids are tower-wide: this also
    /// bounds the names one tenant holds).
    pub hosts: u64,
    /// Of those, one tenant's (provisioned servers included).
    pub hosts_per_tenant: u64,
    /// Addresses one allocation call hands out.
    pub allocate_per_call: u32,
    /// Addresses allocated to one tenant, over all its pools.
    pub allocated_per_tenant: u64,
    /// Unknown keys a minute the door records as pending, in all.
    pub knocks_per_minute: u32,
    /// Of those, one source address's.
    pub knocks_per_source: u32,
}

impl Default for Shares {
    fn default() -> Self {
        Self {
            logs_waiting: 1_000,
            logs_waiting_per_tenant: 200,
            logs_waiting_per_operator: 16,
            changes_queued: 500_000,
            changes_queued_per_tenant: 100_000,
            servers: 200_000,
            servers_per_tenant: 20_000,
            hosts: 200_000,
            hosts_per_tenant: 25_000,
            allocate_per_call: 1_024,
            allocated_per_tenant: 65_536,
            knocks_per_minute: 100,
            knocks_per_source: 10,
        }
    }
}

impl Shares {
    /// Every bound positive, every share within its tower-wide bound:
    /// what is wrong, naming the field.
    pub fn check(&self) -> Result<(), String> {
        let pairs: [(&str, u64, &str, u64); 6] = [
            (
                "logs_waiting_per_operator",
                self.logs_waiting_per_operator.into(),
                "logs_waiting_per_tenant",
                self.logs_waiting_per_tenant.into(),
            ),
            (
                "logs_waiting_per_tenant",
                self.logs_waiting_per_tenant.into(),
                "logs_waiting",
                self.logs_waiting.into(),
            ),
            (
                "changes_queued_per_tenant",
                self.changes_queued_per_tenant,
                "changes_queued",
                self.changes_queued,
            ),
            (
                "servers_per_tenant",
                self.servers_per_tenant,
                "servers",
                self.servers,
            ),
            (
                "hosts_per_tenant",
                self.hosts_per_tenant,
                "hosts",
                self.hosts,
            ),
            (
                "knocks_per_source",
                self.knocks_per_source.into(),
                "knocks_per_minute",
                self.knocks_per_minute.into(),
            ),
        ];
        for (share, s, whole, w) in pairs {
            if s == 0 || w == 0 {
                return Err(format!("{share} and {whole} must be at least 1"));
            }
            if s > w {
                return Err(format!("{share} ({s}) is more than {whole} ({w})"));
            }
        }
        if self.allocate_per_call == 0
            || u64::from(self.allocate_per_call) > self.allocated_per_tenant
        {
            return Err(format!(
                "allocate_per_call ({}) must be from 1 to allocated_per_tenant ({})",
                self.allocate_per_call, self.allocated_per_tenant
            ));
        }
        if self.allocate_per_call > 4_096 {
            return Err(format!(
                "allocate_per_call ({}): at most 4096 (one call is one stored batch)",
                self.allocate_per_call
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_shares_are_valid_and_a_share_above_its_whole_is_not() {
        assert_eq!(Shares::default().check(), Ok(()));
        let s = Shares {
            logs_waiting_per_tenant: 2_000,
            ..Shares::default()
        };
        let e = s.check().unwrap_err();
        assert!(e.contains("logs_waiting_per_tenant"), "{e}");
        let s = Shares {
            servers: 0,
            ..Shares::default()
        };
        assert!(s.check().unwrap_err().contains("servers"));
    }
}
