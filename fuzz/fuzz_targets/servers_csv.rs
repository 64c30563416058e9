//! A supplier's servers CSV as the catalog imports it: every row accepted
//! passes the checks the referee applies again to what it is sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_catalog::servers::{check_server, parse_servers};

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = parse_servers("servers.csv", data, |_| {}) {
        for row in &rows {
            let problems = check_server(&row.server);
            assert!(problems.is_empty(), "accepted {row:?}: {problems:?}");
        }
    }
});
