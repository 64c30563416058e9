//! Where the daemons listen, and who can reach them.
//!
//! The internal endpoints (escalator, the referee's API, events and orders,
//! the launcher's lifecycle) carry every tenant's traffic without any
//! authentication: whoever connects is trusted. They must be reachable by
//! the tower's own user only, so they are `ipc://` sockets in the private
//! (0700) data dir by default, and a setup that puts one on `tcp://` — on
//! loopback, which every local user can reach, or on the network — is
//! refused. Only the majordomo (CURVE-authenticated) may face the network.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The longest path a unix socket address holds (`sun_path` is 108 bytes
/// with its terminating NUL); libzmq refuses a longer one at bind.
pub const MAX_IPC_PATH: usize = 107;

/// The majordomo's default: loopback only until the setup opens it.
pub const DEFAULT_MAJORDOMO: &str = "tcp://127.0.0.1:7110";

/// The metrics daemon's HTTP endpoint (Prometheus's scrape target):
/// loopback by default, port 9464 as Prometheus exporters use.
pub const DEFAULT_METRICS: &str = "http://127.0.0.1:9464";

/// The web console's HTTP endpoint: loopback by default.
pub const DEFAULT_WEB: &str = "http://127.0.0.1:7180";

/// Where the daemons listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub escalator: String,
    pub api: String,
    pub events: String,
    pub orders: String,
    /// PUB socket of the launcher's lifecycle events.
    pub lifecycle: String,
    /// The front door for remote agents and operators (CurveZMQ): the only
    /// endpoint meant to be reachable from other machines.
    pub majordomo: String,
    /// HTTP, read-only: the Prometheus metrics (`http://HOST:PORT`).
    pub metrics: String,
    /// The web console and API (`http://IP:PORT` on loopback, or
    /// `https://IP:PORT` anywhere), every call authenticated and made as
    /// its operator.
    pub web: String,
    /// The operator's own certificate and key (PEM) for an `https://` web
    /// endpoint; without them one is made into `DATA/keys/`.
    pub web_tls: Option<(String, String)>,
}

/// The directory of the default internal sockets inside a data dir.
pub fn run_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("run")
}

impl Endpoints {
    /// The defaults of a tower whose data dir is `data_dir` (absolute):
    /// the internal sockets in `DATA/run/`, the majordomo on loopback.
    pub fn defaults(data_dir: &Path) -> Self {
        let ipc = |n: &str| format!("ipc://{}/{n}.sock", run_dir(data_dir).display());
        Self {
            escalator: ipc("escalator"),
            api: ipc("api"),
            events: ipc("events"),
            orders: ipc("orders"),
            lifecycle: ipc("lifecycle"),
            majordomo: DEFAULT_MAJORDOMO.into(),
            metrics: DEFAULT_METRICS.into(),
            web: DEFAULT_WEB.into(),
            web_tls: None,
        }
    }

    /// The internal endpoints with their setup key.
    pub fn internal(&self) -> [(&'static str, &str); 5] {
        [
            ("escalator", &self.escalator),
            ("api", &self.api),
            ("events", &self.events),
            ("orders", &self.orders),
            ("lifecycle", &self.lifecycle),
        ]
    }
}

/// Who can reach an endpoint, as far as its address says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// A unix socket file: whoever the file and its directories let in.
    IpcFile(PathBuf),
    /// `ipc://@name`, Linux's abstract namespace: no permissions at all.
    IpcAbstract,
    /// TCP on a loopback address: every user of this machine.
    TcpLoopback,
    /// TCP on any other address (wildcard, an interface, a name).
    TcpNetwork,
    /// Not `tcp://` nor `ipc://`.
    Unsupported,
}

/// Classifies an endpoint string; no I/O (names are not resolved).
pub fn reach(endpoint: &str) -> Reach {
    if let Some(path) = endpoint.strip_prefix("ipc://") {
        return if path.starts_with('@') {
            Reach::IpcAbstract
        } else {
            Reach::IpcFile(PathBuf::from(path))
        };
    }
    let Some(addr) = endpoint.strip_prefix("tcp://") else {
        return Reach::Unsupported;
    };
    // `tcp://source;host:port` binds from `source`: the host is what follows.
    let addr = addr.rsplit(';').next().unwrap_or(addr);
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Reach::TcpLoopback
    } else {
        Reach::TcpNetwork
    }
}

/// Why an internal endpoint (`key` in the setup's `endpoints:`) is refused,
/// or `None` when only the tower's user can reach it.
pub fn refuse_internal(key: &str, endpoint: &str) -> Option<String> {
    let why = match reach(endpoint) {
        Reach::IpcFile(path) => {
            let len = path.as_os_str().len();
            if len <= MAX_IPC_PATH {
                return None;
            }
            format!(
                "the socket path {} is {len} bytes, over the {MAX_IPC_PATH}-byte limit of a unix \
                 socket path: move data_dir to a shorter path, or give this endpoint a shorter \
                 ipc:// path in a directory only the tower's user can enter",
                path.display()
            )
        }
        Reach::IpcAbstract => "an abstract unix socket (ipc://@...) has no permissions: \
             every local user could connect"
            .into(),
        Reach::TcpLoopback => "loopback TCP is open to every user of this machine, and this \
             socket is not authenticated"
            .into(),
        Reach::TcpNetwork => "this would let anyone who can reach this machine use an \
             unauthenticated internal socket (only the majordomo may face the network)"
            .into(),
        Reach::Unsupported => "not a tcp:// or ipc:// endpoint".into(),
    };
    Some(format!(
        "endpoints.{key}: {endpoint:?}: {why}; internal endpoints must be ipc:// sockets \
         (default: DATA/run/{key}.sock)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_tells_loopback_from_network() {
        assert_eq!(reach("tcp://127.0.0.1:7101"), Reach::TcpLoopback);
        assert_eq!(reach("tcp://127.9.0.1:7101"), Reach::TcpLoopback);
        assert_eq!(reach("tcp://[::1]:7101"), Reach::TcpLoopback);
        assert_eq!(reach("tcp://localhost:7101"), Reach::TcpLoopback);
        for ep in [
            "tcp://0.0.0.0:7101",
            "tcp://*:7101",
            "tcp://[::]:7101",
            "tcp://192.0.2.1:7101",
            "tcp://eth0:7101",
            "tcp://tower.example:7101",
            "tcp://127.0.0.1;192.0.2.1:7101",
        ] {
            assert_eq!(reach(ep), Reach::TcpNetwork, "{ep}");
        }
        assert_eq!(reach("ipc://@vigie"), Reach::IpcAbstract);
        assert_eq!(
            reach("ipc:///var/lib/vigie/run/api.sock"),
            Reach::IpcFile("/var/lib/vigie/run/api.sock".into())
        );
        assert_eq!(reach("udp://127.0.0.1:1"), Reach::Unsupported);
    }

    #[test]
    fn internal_endpoints_must_be_socket_files_of_a_usable_length() {
        assert_eq!(
            refuse_internal("api", "ipc:///var/lib/vigie/run/api.sock"),
            None
        );
        for ep in ["tcp://0.0.0.0:7101", "tcp://127.0.0.1:7101", "ipc://@api"] {
            let msg = refuse_internal("api", ep).unwrap_or_default();
            assert!(msg.starts_with("endpoints.api: "), "{msg}");
            assert!(msg.contains(ep), "{msg}");
        }
        let long = format!("ipc:///{}/api.sock", "d".repeat(100));
        let msg = refuse_internal("api", &long).unwrap_or_default();
        assert!(msg.contains("107-byte limit"), "{msg}");
        let exact = format!("ipc:///{}", "d".repeat(MAX_IPC_PATH - 1));
        assert_eq!(refuse_internal("api", &exact), None);
    }

    #[test]
    fn defaults_are_socket_files_in_the_data_dir() {
        let e = Endpoints::defaults(Path::new("/var/lib/vigie"));
        assert_eq!(e.api, "ipc:///var/lib/vigie/run/api.sock");
        for (key, ep) in e.internal() {
            assert_eq!(refuse_internal(key, ep), None, "{key}");
        }
        assert_eq!(e.majordomo, DEFAULT_MAJORDOMO);
    }
}
