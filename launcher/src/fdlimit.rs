//! A daemon's descriptor limit: raised from the soft limit to the hard one
//! at start, since every agent connected to the majordomo holds a TCP
//! descriptor and a simulated agent two (its connection and its socket's
//! mailbox), and a soft limit of 1,024 is the usual default. Said once at
//! start, with how many agents it allows, so that a full front door is
//! explained by the log rather than found by `Too many open files`.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors kept for everything that is not an agent: the daemon's own
/// sockets, files, libzmq's threads' pipes.
pub const RESERVED: u64 = 256;

/// The descriptor limits after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit in force (the hard one when it could be raised).
    pub soft: u64,
    /// The hard limit (only root raises it).
    pub hard: u64,
    /// The soft limit before it was raised.
    pub was: u64,
}

impl FdLimit {
    /// How many agents fit when each holds `per_agent` descriptors.
    pub fn agents_max(&self, per_agent: u64) -> u64 {
        self.soft.saturating_sub(RESERVED) / per_agent.max(1)
    }
}

/// Raises this process's soft descriptor limit to its hard limit. A limit
/// that cannot be read or raised is left as it is and reported as found.
pub fn raise() -> FdLimit {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return FdLimit {
            soft: 1024,
            hard: 1024,
            was: 1024,
        };
    };
    // "Unlimited" is refused for RLIMIT_NOFILE; the kernel's own ceiling
    // (nr_open) applies and is what setrlimit accepts.
    let target = if hard == nix::sys::resource::RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(soft)
    } else {
        hard
    };
    if target > soft && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
        return FdLimit {
            soft: target,
            hard,
            was: soft,
        };
    }
    FdLimit {
        soft,
        hard,
        was: soft,
    }
}

/// Raises the limit and says so in one `fd_limit` event. A daemon that
/// holds agents gives `per_agent`, the descriptors each costs it, and the
/// event says `agents_max`, how many it can hold.
pub fn raise_and_say(daemon: &str, per_agent: Option<u64>) -> FdLimit {
    let l = raise();
    match per_agent {
        Some(per_agent) => tracing::info!(
            event = "fd_limit",
            daemon,
            soft = l.soft,
            hard = l.hard,
            was = l.was,
            per_agent,
            agents_max = l.agents_max(per_agent)
        ),
        None => tracing::info!(
            event = "fd_limit",
            daemon,
            soft = l.soft,
            hard = l.hard,
            was = l.was
        ),
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_reaches_the_hard_limit_and_counts_agents_within_it() {
        let l = raise();
        assert!(l.soft >= l.was);
        assert_eq!(raise().soft, l.soft, "raising twice changes nothing");
        if l.hard != nix::sys::resource::RLIM_INFINITY {
            assert_eq!(l.soft, l.hard);
        }
        let l = FdLimit {
            soft: 20_000,
            hard: 20_000,
            was: 1024,
        };
        assert_eq!(l.agents_max(1), 19_744);
        assert_eq!(l.agents_max(2), 9_872);
        assert_eq!(l.agents_max(0), 19_744);
    }
}
