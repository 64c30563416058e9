//! The operator's side of the tower's API. An [`ApiClient`] makes calls
//! and follows changes over a [`Link`]: [`Direct`] to the referee (inside
//! the tower: the majordomo, the provisioner, metrics, tests, benchmarks),
//! or through the majordomo (the operator's CLI; see
//! `vigie_majordomo::operator`). Each call of [`calls`] names its answer's
//! type ([`Call::Answer`]), so a caller gets that type or an error, never
//! an answer to sort out.

mod api;
pub mod calls;
mod error;
mod link;
mod watcher;

pub use api::{new_idem_key, ApiClient};
pub use calls::Call;
pub use error::ClientError;
pub use link::{poll_for, Direct, Incoming, Link};
pub use watcher::Watcher;
