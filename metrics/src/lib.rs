//! The metrics daemon (`vigie metrics`): the tower's numbers in the
//! Prometheus text format, over HTTP.
//!
//! Counters and histograms are derived from the structured events every
//! daemon already emits, which the launcher republishes on its lifecycle
//! PUB socket (`observed` reads them, `tower_metrics` counts them);
//! gauges (hosts, queue depths, Escalator's counters and size) are read at
//! scrape time from the referee's internal API and Escalator (`snapshot`),
//! and dropped — not reported stale — when they cannot be read. `server`
//! ties the two to one HTTP endpoint, open only to the bearer token of
//! `token` (`DATA/keys/metrics.token`); `scrape_log` keeps a scrape loop
//! out of the tower's log. No global state: one explicit
//! `prometheus_client` registry per daemon.

mod error;
mod host_series;
pub mod observed;
pub mod scrape_log;
pub mod server;
pub mod snapshot;
pub mod token;
pub mod tower_metrics;

pub use error::MetricsError;
pub use server::{serve, MetricsConfig, SUBSCRIBE_WAIT};
pub use token::Token;
pub use tower_metrics::TowerMetrics;
