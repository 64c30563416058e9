//! The deployer (seeds 001 and 003): from a minimal, normalised
//! `environment.yml` it derives the names it owns (`auto-*`), the ports,
//! the instance numbers of each component, and compiles a deploy into one
//! change request per host. Everything here is pure: the I/O (reading the
//! inventory, submitting the changes) is the caller's.

mod check;
mod compile;
mod env_value;
mod error;
mod file;
mod inventory;
mod maintenance;
mod names;
mod overrides;
mod plan;
mod ports;
mod recovery;
pub mod rollout;
mod scripts;
mod secrets;
mod spec;
mod systemd;
mod values;
mod verb_rollout;
mod verb_secrets;
mod verbs;

pub use check::{compile_check, findings, Finding, Verdict, CHECK_STEP};
pub use compile::{compile_host, env_file, sh_quote, site_conf, Duties, MIGRATE_STEP};
pub use env_value::EnvValue;
pub use error::{DeployError, Location};
pub use file::{load_environment, parse_environment, read_environment, MAX_ENV_FILE};
pub use inventory::{
    may_record, Component, ComponentState, Conflict, DeployRecord, EnvRecord, HostState, Outcome,
    Placement,
};
pub use maintenance::{
    compile_enter, compile_leave, compile_probe, compile_upgrade, migration_check, probe_answer,
    MigrationCheck,
};
pub use names::{owned_names, EnvKey, Part, BIN_DIR, MAX_PART, PROXY_DIR};
pub use overrides::Override;
pub use plan::{
    components_of, kept_instances, plan, settle, Bump, DeployPlan, HostPlan, ServicePlan, Target,
    ADDRESS_LABEL,
};
pub use ports::allocate;
pub use recovery::{migrations_committed, recovery, MigrateRun, Recovery};
pub use rollout::Rollout;
pub use scripts::{maintenance_conf, DATABASE, RETRY_AFTER_S};
pub use spec::{
    connections, Cache, CacheEngine, Database, DbEngine, Environment, Health, Migrations, Role,
    Service, DEFAULT_DRAIN_MS, DEFAULT_PORTS, DEFAULT_STOP_GRACE_MS, RESERVED_ENV,
};
pub use systemd::{unit_template, unit_text, Supervisor};
pub use values::{PgServer, PortRange, RedisUrl, MAX_REPLICAS};
pub use verb_rollout::{Machine, VerbRollout, VerbState};
pub use verbs::{
    compile_verb, previous_instance, rollback_plan, verb_record, verb_refusal, Back, VerbHost,
    CLEAN_STEP,
};

#[cfg(test)]
mod tests;
