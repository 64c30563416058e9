//! Setup files from Rust code (Onitu's `Setup` and `Rule`, typed): tests
//! describe a tower and get the YAML the launcher reads.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct HostDef {
    pub id: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// Driver options; `root` of a local host defaults to `hosts/<id>/root`.
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub hosts: String,
    pub labels: BTreeMap<String, String>,
}

impl Rule {
    pub fn new(hosts: &str) -> Self {
        Self {
            hosts: hosts.into(),
            labels: BTreeMap::new(),
        }
    }

    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }
}

#[derive(Debug, Clone)]
pub struct Setup {
    pub name: String,
    pub hosts: Vec<HostDef>,
    pub rules: Vec<Rule>,
    pub supervision: BTreeMap<String, String>,
    /// The majordomo's endpoint; an ipc one in the test dir by default.
    pub majordomo: Option<String>,
    /// `provisioner:` settings (parallel, tower, install_dir, …).
    pub provisioner: BTreeMap<String, String>,
    /// `limits:` settings (the shares of bounded resources).
    pub limits: BTreeMap<String, u64>,
    /// Top-level YAML added as is (an `ha:` section, say).
    pub raw: String,
    /// The web console's endpoint (`http://127.0.0.1:0` by default).
    pub web: Option<String>,
}

impl Setup {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            hosts: Vec::new(),
            rules: Vec::new(),
            supervision: BTreeMap::new(),
            majordomo: None,
            provisioner: BTreeMap::new(),
            limits: BTreeMap::new(),
            raw: String::new(),
            web: None,
        }
    }

    /// Where the web console listens, e.g. `https://192.0.2.10:0`.
    pub fn web(mut self, endpoint: &str) -> Self {
        self.web = Some(endpoint.into());
        self
    }

    /// Top-level YAML added as is, e.g. an `ha:` section.
    pub fn raw(mut self, yaml: &str) -> Self {
        self.raw.push_str(yaml);
        self
    }

    /// A `limits:` setting, e.g. `("servers_per_tenant", 100)`.
    pub fn limit(mut self, key: &str, value: u64) -> Self {
        self.limits.insert(key.into(), value);
        self
    }

    /// A host served by a local plug, its root created under the test dir.
    pub fn host(mut self, id: &str, labels: &[(&str, &str)]) -> Self {
        self.hosts.push(HostDef {
            id: id.into(),
            driver: "local".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            options: BTreeMap::new(),
        });
        self
    }

    pub fn rule(mut self, r: Rule) -> Self {
        self.rules.push(r);
        self
    }

    /// Where the majordomo listens, e.g. `tcp://0.0.0.0:7110`.
    pub fn majordomo(mut self, endpoint: &str) -> Self {
        self.majordomo = Some(endpoint.into());
        self
    }

    /// A `supervision:` setting, e.g. `("max_fast_crashes", "3")`.
    pub fn supervise(mut self, key: &str, value: &str) -> Self {
        self.supervision.insert(key.into(), value.into());
        self
    }

    /// A `provisioner:` setting, e.g. `("parallel", "4")`.
    pub fn provision(mut self, key: &str, value: &str) -> Self {
        self.provisioner.insert(key.into(), value.into());
        self
    }

    pub fn root(dir: &Path, host: &str) -> PathBuf {
        dir.join("hosts").join(host).join("root")
    }

    /// The YAML. The internal endpoints are the launcher's defaults
    /// (sockets in `dir/data/run/`); the majordomo is an ipc socket in
    /// `dir` unless set (tests never share ports).
    pub fn yaml(&self, dir: &Path) -> String {
        let mut y = String::new();
        let _ = writeln!(y, "name: {}\ndata_dir: data\nendpoints:", self.name);
        let majordomo = self
            .majordomo
            .clone()
            .unwrap_or_else(|| format!("ipc://{}/majordomo.sock", dir.display()));
        let _ = writeln!(y, "  majordomo: {majordomo}");
        // Any free port: towers of parallel tests never collide; the
        // bound address is in the `metrics_started` event.
        let _ = writeln!(y, "  metrics: http://127.0.0.1:0");
        // The web console too (`web_started` says where).
        let web = self.web.as_deref().unwrap_or("http://127.0.0.1:0");
        let _ = writeln!(y, "  web: {web}");
        if !self.supervision.is_empty() {
            let _ = writeln!(y, "supervision:");
            for (k, v) in &self.supervision {
                let _ = writeln!(y, "  {k}: {v}");
            }
        }
        if !self.provisioner.is_empty() {
            let _ = writeln!(y, "provisioner:");
            for (k, v) in &self.provisioner {
                // A number, or a YAML list (`[192.0.2.0/24]`), as is.
                if v.parse::<u64>().is_ok() || v.starts_with('[') {
                    let _ = writeln!(y, "  {k}: {v}");
                } else {
                    let _ = writeln!(y, "  {k}: {v:?}");
                }
            }
        }
        if !self.limits.is_empty() {
            let _ = writeln!(y, "limits:");
            for (k, v) in &self.limits {
                let _ = writeln!(y, "  {k}: {v}");
            }
        }
        let _ = writeln!(y, "hosts:");
        for h in &self.hosts {
            let _ = writeln!(y, "  - id: {}\n    driver: {}", h.id, h.driver);
            if !h.labels.is_empty() {
                let _ = writeln!(y, "    labels:");
                for (k, v) in &h.labels {
                    let _ = writeln!(y, "      {k}: {v}");
                }
            }
            let mut options = h.options.clone();
            if h.driver == "local" {
                options
                    .entry("root".into())
                    .or_insert_with(|| Self::root(dir, &h.id).display().to_string());
            }
            if !options.is_empty() {
                let _ = writeln!(y, "    options:");
                for (k, v) in &options {
                    let _ = writeln!(y, "      {k}: {v}");
                }
            }
        }
        y.push_str(&self.raw);
        if !self.rules.is_empty() {
            let _ = writeln!(y, "rules:");
            for r in &self.rules {
                let _ = writeln!(y, "  - hosts: \"{}\"\n    labels:", r.hosts);
                for (k, v) in &r.labels {
                    let _ = writeln!(y, "      {k}: {v}");
                }
            }
        }
        y
    }

    /// Writes `tower.yml` into `dir` and creates the hosts' roots.
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        for h in &self.hosts {
            if h.driver == "local" && !h.options.contains_key("root") {
                std::fs::create_dir_all(Self::root(dir, &h.id))?;
            }
        }
        let file = dir.join("tower.yml");
        std::fs::write(&file, self.yaml(dir))?;
        Ok(file)
    }
}
