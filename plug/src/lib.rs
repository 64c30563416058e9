//! The plug: the library every executor uses. It receives the orders for
//! its host, journals and acknowledges them, runs the steps through its
//! driver, reports each one, and on a failed step undoes the completed
//! steps in reverse order. The journal makes it crash-safe: restarted after
//! a crash mid-change, it rolls the partial change back and reports it as
//! interrupted — never half-applied, never a step run twice.

mod beat;
mod clock;
mod collect;
mod drive;
mod error;
mod fleet;
pub mod heal;
pub mod host_metrics;
mod journal;
pub mod log_budget;
pub mod logs;
mod observer;
pub mod opener;
mod plug;
mod runner;

pub use beat::HeartbeatSnapshot;
pub use drive::{drive, Handler, FLUSH_FOR};
pub use error::PlugError;
pub use fleet::{run_fleet, FleetConfig};
pub use heal::HealStats;
pub use journal::{FileJournal, Journal, JournalRecord, MemJournal};
pub use log_budget::LogBudget;
pub use logs::LogStore;
pub use observer::{Observer, ObserverConfig};
pub use plug::Plug;
pub use runner::{run, PlugConfig};

#[cfg(test)]
mod tests;
