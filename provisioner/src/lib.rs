//! The provisioner: turns catalog servers into hosts over SSH, with
//! OpenSSH's own tools. `daemon` is the loop (`vigie provisioner`, started
//! by the launcher), `job` one server's attempt, `ssh` the commands,
//! `hostkey` the pinning decision, `networks` which addresses may be
//! dialled, `remote` the scripts run on the server and `addresses` the
//! one putting its pool addresses on it (all four without I/O), `agent_bin` the agent's binary stripped once and digested,
//! `sshkey` where the tenants' provisioning key pairs are, `error`
//! the reasons.

pub mod addresses;
pub mod agent_bin;
pub mod daemon;
pub mod error;
pub mod hostkey;
pub mod job;
pub mod networks;
pub mod remote;
pub mod ssh;
pub mod sshkey;

pub use agent_bin::AgentBinary;
pub use daemon::{run, ProvisionerConfig};
pub use error::ProvisionError;
pub use job::Context;
pub use networks::Networks;
pub use remote::{Layout, Service};
