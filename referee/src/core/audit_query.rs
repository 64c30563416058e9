//! Which audit records an operator's `audit` call answers with: its
//! filters (host, change, operator, time) and its page, numbered by the
//! tenant's own sequence (`tenant_seq`) so that no other tenant's volume
//! shows. No I/O: the caller brings the records.

use vigie_wire::tower::{ApiCall, AuditFilter, AuditRecord};

/// Most records one `audit` answer lists.
pub const MAX_LIST: u32 = 1_000;

/// What one `audit` call asks for.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub host: Option<String>,
    pub change: Option<String>,
    pub filter: AuditFilter,
    pub limit: usize,
}

impl AuditQuery {
    /// What an `audit` call asks for, its limit within `MAX_LIST`
    /// (`None`: not an audit call).
    pub fn of(call: &ApiCall) -> Option<Self> {
        match call {
            ApiCall::Audit {
                host,
                change,
                limit,
                filter,
            } => Some(Self {
                host: host.clone(),
                change: change.clone(),
                filter: (**filter).clone(),
                limit: (*limit).min(MAX_LIST) as usize,
            }),
            _ => None,
        }
    }

    pub fn matches(&self, r: &AuditRecord) -> bool {
        let f = &self.filter;
        self.host.as_ref().is_none_or(|h| *h == r.host)
            && self.change.as_ref().is_none_or(|c| *c == r.change)
            && f.operator.as_ref().is_none_or(|o| *o == r.operator)
            && f.since_ms.is_none_or(|t| r.at_ms >= t)
            && f.until_ms.is_none_or(|t| r.at_ms < t)
            && f.before.is_none_or(|n| r.tenant_seq < n)
            && f.after.is_none_or(|n| r.tenant_seq > n)
    }

    /// The page, oldest first: the first `limit` records after `after`
    /// when it is given (paging forward), else the last `limit` (the newest,
    /// or the newest before `before`: paging back).
    pub fn select(&self, records: impl IntoIterator<Item = AuditRecord>) -> Vec<AuditRecord> {
        let matching = records.into_iter().filter(|r| self.matches(r));
        if self.filter.after.is_some() {
            return matching.take(self.limit).collect();
        }
        let mut v: Vec<AuditRecord> = matching.collect();
        let skip = v.len().saturating_sub(self.limit);
        v.drain(..skip);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u64, operator: &str, host: &str) -> AuditRecord {
        AuditRecord {
            seq: n * 10,
            at_ms: 1_000 * n,
            tenant: "t".into(),
            operator: operator.into(),
            host: host.into(),
            change: format!("c{n}"),
            step: None,
            action: "submitted".into(),
            summary: String::new(),
            exit_code: None,
            before_digest: None,
            after_digest: None,
            output_tail: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
            tenant_seq: n,
        }
    }

    fn numbers(v: &[AuditRecord]) -> Vec<u64> {
        v.iter().map(|r| r.tenant_seq).collect()
    }

    #[test]
    fn pages_back_and_forward_by_tenant_number() {
        let all: Vec<AuditRecord> = (1..=250).map(|n| rec(n, "ann", "h")).collect();
        let mut q = AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        };
        let newest = q.select(all.clone());
        assert_eq!(numbers(&newest).first(), Some(&151));
        q.filter.before = Some(151);
        let page = q.select(all.clone());
        assert_eq!((page[0].tenant_seq, page[99].tenant_seq), (51, 150));
        q.filter.before = Some(51);
        assert_eq!(
            numbers(&q.select(all.clone())),
            (1..=50).collect::<Vec<_>>()
        );
        q.filter.before = None;
        q.filter.after = Some(200);
        q.limit = 3;
        assert_eq!(numbers(&q.select(all)), vec![201, 202, 203]);
    }

    #[test]
    fn filters_by_operator_host_and_time() {
        let all = vec![
            rec(1, "ann", "web-1"),
            rec(2, "bob", "web-1"),
            rec(3, "ann", "web-2"),
            rec(4, "ann", "web-1"),
        ];
        let q = AuditQuery {
            host: Some("web-1".into()),
            filter: AuditFilter {
                operator: Some("ann".into()),
                since_ms: Some(1_000),
                until_ms: Some(4_000),
                ..AuditFilter::default()
            },
            limit: 100,
            ..AuditQuery::default()
        };
        assert_eq!(numbers(&q.select(all)), vec![1]);
    }
}
