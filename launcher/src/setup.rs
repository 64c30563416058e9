//! The setup file (`tower.yml`, in the spirit of Onitu's setup files):
//! the tower's name, data dir, endpoints, supervision, the hosts served by
//! local plugs with their driver and options, and label rules. Validated
//! whole before anything starts; every error names the file, and the host
//! and option when there is one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vigie_drivers::{options_of, OptionKind, OptionSpec, DRIVERS};

pub use crate::endpoints::Endpoints;

#[derive(Debug, thiserror::Error)]
#[error("{file}{at}: {message}")]
pub struct SetupError {
    pub file: String,
    /// `:line:col` when the YAML parser knows it.
    pub at: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetup {
    name: String,
    data_dir: String,
    #[serde(default)]
    endpoints: RawEndpoints,
    #[serde(default)]
    supervision: RawSupervision,
    #[serde(default)]
    hosts: Vec<RawHost>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    provisioner: RawProvisioner,
    #[serde(default)]
    limits: vigie_wire::limits::Shares,
    /// Active/standby towers (see `ha.rs`).
    ha: Option<crate::ha::RawHa>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvisioner {
    parallel: Option<u32>,
    tower: Option<String>,
    install_dir: Option<String>,
    agent_root: Option<String>,
    service: Option<String>,
    connect_timeout: Option<String>,
    /// The networks servers may be in (CIDRs); see `ProvisionerSetup`.
    networks: Option<Vec<String>>,
}

/// The provisioner's settings (`provisioner:` in the setup file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionerSetup {
    /// Servers provisioned at once (default 8).
    pub parallel: u32,
    /// The majordomo as the servers reach it; by default the majordomo's
    /// endpoint when it names an address servers can dial.
    pub tower: Option<String>,
    pub install_dir: String,
    pub agent_root: String,
    /// `auto`, `systemd` or `detached`.
    pub service: String,
    pub connect_timeout: Duration,
    /// The networks servers may be in: an address outside is refused
    /// before any connection. Empty (not set): any address but the
    /// tower's own and special ones (loopback, link-local, multicast…).
    pub networks: Vec<ipnet::IpNet>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoints {
    escalator: Option<String>,
    api: Option<String>,
    events: Option<String>,
    orders: Option<String>,
    lifecycle: Option<String>,
    majordomo: Option<String>,
    metrics: Option<String>,
    web: Option<String>,
    /// The operator's own certificate (PEM) of an `https://` web endpoint.
    web_cert: Option<String>,
    /// Its key (PEM).
    web_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSupervision {
    grace: Option<String>,
    ready_timeout: Option<String>,
    backoff_initial: Option<String>,
    backoff_max: Option<String>,
    /// Accepted for setup files written when a plug was given up after
    /// that many fast crashes; no daemon is given up any more.
    #[serde(rename = "max_fast_crashes")]
    _max_fast_crashes: Option<u32>,
    fast_crash_window: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    id: String,
    driver: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    options: BTreeMap<String, serde_norway::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    /// A host selector (`web-*`, `web-1,web-2`, `role=web`).
    hosts: String,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervision {
    /// How long a child has after SIGTERM before SIGKILL.
    pub grace: Duration,
    /// How long a child has to say it is ready.
    pub ready_timeout: Duration,
    /// The delay before restarting a child after its first crash...
    pub backoff_initial: Duration,
    /// ...doubling with each fast crash in a row, up to this ceiling.
    pub backoff_max: Duration,
    /// A crash this soon after the child's start counts as one more in a
    /// row; a later one starts the doubling again.
    pub fast_crash_window: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSetup {
    pub id: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// Every option of the driver's schema, defaults filled in, paths
    /// absolute.
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    pub name: String,
    pub file: PathBuf,
    pub data_dir: PathBuf,
    pub endpoints: Endpoints,
    pub supervision: Supervision,
    pub hosts: Vec<HostSetup>,
    /// The label rules, in order, as `(selector, labels)`: applied here to
    /// the setup's hosts, and passed to the referee for hosts that
    /// register later.
    pub rules: Vec<(String, BTreeMap<String, String>)>,
    pub provisioner: ProvisionerSetup,
    /// The shares of the tower's bounded resources (`limits:`), checked.
    pub limits: vigie_wire::limits::Shares,
    /// `ha:`: this tower is one of an active/standby group over etcd.
    pub ha: Option<crate::ha::HaSetup>,
}

fn duration(
    file: &str,
    field: &str,
    v: &Option<String>,
    default_ms: u64,
) -> Result<Duration, SetupError> {
    match v {
        None => Ok(Duration::from_millis(default_ms)),
        Some(s) => vigie_changes::parse_duration_ms(s)
            .map(Duration::from_millis)
            .map_err(|e| err(file, format!("supervision.{field}: {e}"))),
    }
}

fn err(file: &str, message: String) -> SetupError {
    SetupError {
        file: file.to_owned(),
        at: String::new(),
        message,
    }
}

/// An HTTP endpoint of the setup (`endpoints.web`): a literal
/// `http://IP:PORT`, checked before anything starts.
fn check_http(
    file: &str,
    key: &str,
    value: &str,
    default: &str,
) -> Result<std::net::SocketAddr, SetupError> {
    value
        .strip_prefix("http://")
        .and_then(|a| {
            a.trim_end_matches('/')
                .replace("localhost:", "127.0.0.1:")
                .parse::<std::net::SocketAddr>()
                .ok()
        })
        .ok_or_else(|| {
            err(
                file,
                format!("endpoints.{key}: {value:?} is not http://IP:PORT (default {default})"),
            )
        })
}

fn scalar(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Checks one option value against its declared kind; returns it resolved.
fn check_option(kind: OptionKind, v: &serde_norway::Value, base: &Path) -> Option<String> {
    match (kind, v) {
        (OptionKind::Path, serde_norway::Value::String(s)) if !s.is_empty() => {
            Some(base.join(s).display().to_string())
        }
        (OptionKind::String, serde_norway::Value::String(s)) => Some(s.clone()),
        (OptionKind::Integer, serde_norway::Value::Number(n)) if n.is_i64() || n.is_u64() => {
            Some(n.to_string())
        }
        (OptionKind::Bool, serde_norway::Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    }
}

pub fn load(path: &Path) -> Result<Setup, SetupError> {
    let file = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| err(&file, format!("cannot read: {e}")))?;
    parse(path, &text)
}

/// Parses and validates a setup file's text; `path` names it in errors and
/// anchors its relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Setup, SetupError> {
    let file = path.display().to_string();
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    // Children run elsewhere: every path they get is absolute.
    let base = std::path::absolute(&base).unwrap_or(base);
    let raw = read_raw(&file, text)?;
    if raw.name.trim().is_empty() {
        return Err(err(&file, "name: must not be empty".into()));
    }
    if raw.data_dir.is_empty() {
        return Err(err(&file, "data_dir: must not be empty".into()));
    }
    let data_dir = base.join(&raw.data_dir);
    let endpoints = endpoints_of(&file, raw.endpoints, &data_dir)?;
    let supervision = supervision_of(&file, &raw.supervision)?;
    let mut seen = BTreeSet::new();
    let mut hosts = raw
        .hosts
        .into_iter()
        .enumerate()
        .map(|(i, h)| host_of(&file, i, h, &base, &mut seen))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rules = Vec::new();
    for (i, rule) in raw.rules.into_iter().enumerate() {
        let sel = vigie_changes::Selector::parse(&rule.hosts)
            .map_err(|e| err(&file, format!("rules[{i}]: {e}")))?;
        for h in &mut hosts {
            if sel.matches(&h.id, &h.labels) {
                h.labels
                    .extend(rule.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        rules.push((rule.hosts, rule.labels));
    }
    let provisioner = provisioner(&file, raw.provisioner, &endpoints.majordomo)?;
    raw.limits
        .check()
        .map_err(|e| err(&file, format!("limits: {e}")))?;
    let ha = crate::ha::check(raw.ha, &raw.name).map_err(|m| err(&file, m))?;
    Ok(Setup {
        provisioner,
        ha,
        limits: raw.limits,
        name: raw.name,
        file: path.to_path_buf(),
        data_dir,
        endpoints,
        supervision,
        hosts,
        rules,
    })
}

/// The file as serde reads it; an error says where.
fn read_raw(file: &str, text: &str) -> Result<RawSetup, SetupError> {
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e
            .inner()
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        let inner = e.inner().to_string();
        // serde_norway appends its own "at line L column C": we already say where.
        let inner = inner.split(" at line ").next().unwrap_or(&inner).to_owned();
        let path = e.path().to_string();
        let message = if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        };
        SetupError {
            file: file.to_owned(),
            at,
            message,
        }
    })
}

/// The endpoints, each defaulting to a socket in the data dir, checked.
fn endpoints_of(file: &str, e: RawEndpoints, data_dir: &Path) -> Result<Endpoints, SetupError> {
    let d = Endpoints::defaults(data_dir);
    let endpoints = Endpoints {
        escalator: e.escalator.unwrap_or(d.escalator),
        api: e.api.unwrap_or(d.api),
        events: e.events.unwrap_or(d.events),
        orders: e.orders.unwrap_or(d.orders),
        lifecycle: e.lifecycle.unwrap_or(d.lifecycle),
        majordomo: e.majordomo.unwrap_or(d.majordomo),
        metrics: e.metrics.unwrap_or(d.metrics),
        web: e.web.unwrap_or(d.web),
        web_tls: match (e.web_cert, e.web_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(err(
                    file,
                    "endpoints.web_cert and endpoints.web_key go together".into(),
                ))
            }
        },
    };
    check_web(file, &endpoints.web)?;
    // Metrics are read-only HTTP, not an internal socket: any address, but
    // a literal one (checked here, before anything starts).
    if !endpoints.metrics.starts_with("http://")
        || endpoints
            .metrics
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .replace("localhost:", "127.0.0.1:")
            .parse::<std::net::SocketAddr>()
            .is_err()
    {
        return Err(err(
            file,
            format!(
                "endpoints.metrics: {:?} is not http://IP:PORT (default {})",
                endpoints.metrics,
                crate::endpoints::DEFAULT_METRICS
            ),
        ));
    }
    for (key, ep) in endpoints.internal() {
        if let Some(why) = crate::endpoints::refuse_internal(key, ep) {
            return Err(err(file, why));
        }
    }
    if !(endpoints.majordomo.starts_with("tcp://") || endpoints.majordomo.starts_with("ipc://")) {
        return Err(err(
            file,
            format!(
                "endpoints.majordomo: {:?} is not a tcp:// or ipc:// endpoint",
                endpoints.majordomo
            ),
        ));
    }
    let all: Vec<&str> = endpoints
        .internal()
        .iter()
        .map(|(_, ep)| *ep)
        .chain([endpoints.majordomo.as_str()])
        .collect();
    if all.iter().collect::<BTreeSet<_>>().len() != all.len() {
        return Err(err(
            file,
            "endpoints: every endpoint must be different".into(),
        ));
    }
    Ok(endpoints)
}

/// The web console's endpoint: a literal `http://IP:PORT` on loopback
/// (plain HTTP carries its cookies and tokens in clear), or
/// `https://IP:PORT` anywhere (the web daemon refuses the same; said here
/// before anything starts).
fn check_web(file: &str, web: &str) -> Result<(), SetupError> {
    if let Some(rest) = web.strip_prefix("https://") {
        return check_http(
            file,
            "web",
            &format!("http://{rest}"),
            crate::endpoints::DEFAULT_WEB,
        )
        .map(|_| ());
    }
    let addr = check_http(file, "web", web, crate::endpoints::DEFAULT_WEB)?;
    if addr.ip().is_loopback() {
        return Ok(());
    }
    Err(err(
        file,
        format!(
            "endpoints.web: {web:?} is not a loopback address: plain HTTP would carry \
             sessions and tokens in clear; use https://{} (a certificate is made into \
             DATA/keys/ at the first start, or give endpoints.web_cert and web_key)",
            web.trim_start_matches("http://")
        ),
    ))
}

fn supervision_of(file: &str, s: &RawSupervision) -> Result<Supervision, SetupError> {
    Ok(Supervision {
        grace: duration(file, "grace", &s.grace, 5_000)?,
        ready_timeout: duration(file, "ready_timeout", &s.ready_timeout, 30_000)?,
        backoff_initial: duration(file, "backoff_initial", &s.backoff_initial, 100)?,
        backoff_max: duration(file, "backoff_max", &s.backoff_max, 120_000)?,
        fast_crash_window: duration(file, "fast_crash_window", &s.fast_crash_window, 10_000)?,
    })
}

/// One host of the file, its options checked against its driver's.
fn host_of(
    file: &str,
    i: usize,
    h: RawHost,
    base: &Path,
    seen: &mut BTreeSet<String>,
) -> Result<HostSetup, SetupError> {
    let at = format!("hosts[{i}] ({:?})", h.id);
    vigie_changes::validate_host_id(&h.id).map_err(|e| err(file, format!("{at}: {e}")))?;
    if !seen.insert(h.id.clone()) {
        return Err(err(file, format!("{at}: duplicate host id {:?}", h.id)));
    }
    let Some(schema) = options_of(&h.driver) else {
        return Err(err(
            file,
            format!(
                "{at}: unknown driver {:?} (known: {})",
                h.driver,
                DRIVERS.join(", ")
            ),
        ));
    };
    for name in h.options.keys() {
        if !schema.iter().any(|o| o.name == name) {
            let known: Vec<&str> = schema.iter().map(|o| o.name).collect();
            return Err(err(
                file,
                format!(
                    "{at}: option '{name}': unknown for driver {} (known: {})",
                    h.driver,
                    known.join(", ")
                ),
            ));
        }
    }
    let options = host_options(file, &at, &h, schema, base)?;
    Ok(HostSetup {
        id: h.id,
        driver: h.driver,
        labels: h.labels,
        options,
    })
}

/// A host's options: each known to its driver, of its kind, the
/// required ones given, defaults filled in.
fn host_options(
    file: &str,
    at: &str,
    h: &RawHost,
    schema: &[OptionSpec],
    base: &Path,
) -> Result<BTreeMap<String, String>, SetupError> {
    let mut options = BTreeMap::new();
    for spec in schema {
        let value = match h.options.get(spec.name) {
            Some(v) => check_option(spec.kind, v, base).ok_or_else(|| {
                let got = scalar(v).unwrap_or_else(|| "a list or map".into());
                err(
                    file,
                    format!(
                        "{at}: option '{}': expected {}, got {got:?}",
                        spec.name,
                        spec.kind.word()
                    ),
                )
            })?,
            None if spec.required => {
                return Err(err(
                    file,
                    format!("{at}: option '{}' is required ({})", spec.name, spec.help),
                ));
            }
            None => match spec.default {
                Some(d) => d.to_owned(),
                None => continue,
            },
        };
        if spec.kind == OptionKind::Path && spec.name == "root" && !Path::new(&value).is_dir() {
            return Err(err(
                file,
                format!("{at}: option 'root': {value} is not an existing directory"),
            ));
        }
        options.insert(spec.name.to_owned(), value);
    }
    Ok(options)
}

fn provisioner(
    file: &str,
    p: RawProvisioner,
    majordomo: &str,
) -> Result<ProvisionerSetup, SetupError> {
    let tower = match p.tower {
        Some(t) if t.starts_with("tcp://") => Some(t),
        Some(t) => {
            return Err(err(
                file,
                format!(
                "provisioner.tower: {t:?} is not tcp://IP:PORT (the majordomo as servers reach it)"
            ),
            ))
        }
        // 0.0.0.0 or a unix socket is no address a server can dial.
        None => Some(majordomo.to_owned())
            .filter(|m| m.starts_with("tcp://") && !m.contains("0.0.0.0") && !m.contains("[::]")),
    };
    let service = p.service.unwrap_or_else(|| "auto".into());
    if !["auto", "systemd", "detached"].contains(&service.as_str()) {
        return Err(err(
            file,
            format!("provisioner.service: {service:?}: expected auto, systemd or detached"),
        ));
    }
    let abs = |field: &str, v: Option<String>, default: &str| -> Result<String, SetupError> {
        let v = v.unwrap_or_else(|| default.to_owned());
        if v.starts_with('/') {
            Ok(v)
        } else {
            Err(err(
                file,
                format!("provisioner.{field}: {v:?} must be an absolute path on the servers"),
            ))
        }
    };
    let connect_timeout = match &p.connect_timeout {
        None => Duration::from_secs(10),
        Some(s) => vigie_changes::parse_duration_ms(s)
            .map(Duration::from_millis)
            .map_err(|e| err(file, format!("provisioner.connect_timeout: {e}")))?,
    };
    let networks = p
        .networks
        .unwrap_or_default()
        .iter()
        .map(|n| {
            n.trim().parse::<ipnet::IpNet>().map_err(|_| {
                err(
                    file,
                    format!(
                        "provisioner.networks: {n:?} is not a network (CIDR, e.g. 192.0.2.0/24)"
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ProvisionerSetup {
        networks,
        parallel: p.parallel.unwrap_or(8).clamp(1, 256),
        tower,
        install_dir: abs("install_dir", p.install_dir, "/opt/vigie")?,
        agent_root: abs("agent_root", p.agent_root, "/")?,
        service,
        connect_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(extra: &str) -> Result<Setup, SetupError> {
        parse(
            Path::new("/etc/vigie/tower.yml"),
            &format!("name: t\ndata_dir: /var/lib/vigie\n{extra}"),
        )
    }

    #[test]
    fn the_web_console_is_plain_http_on_loopback_by_default_and_https_elsewhere() {
        let s = setup("").unwrap();
        assert_eq!(s.endpoints.web, crate::endpoints::DEFAULT_WEB);
        assert!(setup("endpoints:\n  web: http://127.0.0.1:0\n").is_ok());
        assert!(setup("endpoints:\n  web: https://192.0.2.1:7443\n").is_ok());
        let e =
            setup("endpoints:\n  web: https://192.0.2.1:7443\n  web_cert: /c.pem\n").unwrap_err();
        assert!(e.to_string().contains("go together"), "{e}");
        for bad in [
            "http://0.0.0.0:7180",
            "http://192.0.2.1:7180",
            "tcp://127.0.0.1:7180",
        ] {
            let e = setup(&format!("endpoints:\n  web: {bad}\n")).unwrap_err();
            assert!(e.to_string().contains("endpoints.web"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_provisioner_reaches_servers_where_the_majordomo_listens_by_default() {
        let p = setup("endpoints:\n  majordomo: tcp://203.0.113.10:7110\n")
            .unwrap()
            .provisioner;
        assert_eq!(p.tower.as_deref(), Some("tcp://203.0.113.10:7110"));
        assert_eq!((p.parallel, p.service.as_str()), (8, "auto"));
        assert_eq!(p.install_dir, "/opt/vigie");
        // 0.0.0.0 is no address a server can dial: it must be said.
        let p = setup("endpoints:\n  majordomo: tcp://0.0.0.0:7110\n")
            .unwrap()
            .provisioner;
        assert_eq!(p.tower, None);
        let p = setup(
            "provisioner:\n  tower: tcp://198.51.100.1:7110\n  parallel: 2\n  \
             connect_timeout: 3s\n  service: detached\n",
        )
        .unwrap()
        .provisioner;
        assert_eq!(p.tower.as_deref(), Some("tcp://198.51.100.1:7110"));
        assert_eq!(p.connect_timeout, Duration::from_secs(3));
        assert_eq!((p.parallel, p.service.as_str()), (2, "detached"));
        assert!(p.networks.is_empty(), "not set: the provisioner's default");
        let p = setup("provisioner:\n  networks: [127.0.0.0/8, 2001:db8::/32]\n")
            .unwrap()
            .provisioner;
        let n: Vec<String> = p.networks.iter().map(ToString::to_string).collect();
        assert_eq!(n, ["127.0.0.0/8", "2001:db8::/32"]);
    }

    #[test]
    fn limits_default_when_absent_and_a_bad_share_is_refused_naming_it() {
        let l = setup("").unwrap().limits;
        assert_eq!(l, vigie_wire::limits::Shares::default());
        let l = setup("limits:\n  servers_per_tenant: 500\n  logs_waiting_per_tenant: 50\n")
            .unwrap()
            .limits;
        assert_eq!((l.servers_per_tenant, l.logs_waiting_per_tenant), (500, 50));
        for (text, field) in [
            (
                "limits:\n  servers_per_tenant: 300000\n",
                "servers_per_tenant",
            ),
            ("limits:\n  knocks_per_source: 0\n", "knocks_per_source"),
            ("limits:\n  colour: 3\n", "colour"),
        ] {
            let e = setup(text).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("tower.yml"), "{text}: {e}");
        }
    }

    #[test]
    fn the_shipped_setup_files_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for f in ["examples/tower.yml", "packaging/etc/tower.yml"] {
            let s = load(&root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(s.provisioner.parallel, 8, "{f}");
        }
    }

    #[test]
    fn bad_provisioner_settings_are_refused_naming_the_field() {
        for (text, field) in [
            ("provisioner:\n  service: cron\n", "provisioner.service"),
            (
                "provisioner:\n  install_dir: opt/vigie\n",
                "provisioner.install_dir",
            ),
            (
                "provisioner:\n  tower: 192.0.2.1:7110\n",
                "provisioner.tower",
            ),
            (
                "provisioner:\n  connect_timeout: soon\n",
                "provisioner.connect_timeout",
            ),
            ("provisioner:\n  colour: blue\n", "colour"),
            (
                "provisioner:\n  networks: [10.0.0.0/33]\n",
                "provisioner.networks",
            ),
        ] {
            let e = setup(text).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("tower.yml"), "{text}: {e}");
        }
    }
}
