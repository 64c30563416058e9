//! What every handler shares: the way to the referee, the CSRF key and
//! the session settings.

use std::sync::Arc;

use crate::csrf::Csrf;
use crate::referee::Referee;

#[derive(Debug)]
pub struct App {
    pub referee: Referee,
    pub csrf: Csrf,
    pub session_ms: u64,
    /// Served over TLS (cookies marked `Secure`).
    pub secure: bool,
}

pub type Shared = Arc<App>;
