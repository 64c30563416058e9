//! Machines for cross-machine tests: network namespaces joined by veth
//! pairs, addresses only from 192.0.2.0/24 (TEST-NET-1), on this machine.
//! Everything made is removed on drop.

use std::process::Command;

use anyhow::Context;

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    anyhow::ensure!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Why namespaces cannot be made here, if they cannot.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("not root: network namespaces need it".into());
    }
    // Tests of one process probe in parallel: each its own name.
    static PROBES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = format!("vigie-probe-{}-{n}", std::process::id());
    if let Err(e) = ip(&["netns", "add", &probe]) {
        return Some(format!("cannot create a network namespace: {e}"));
    }
    let _ = ip(&["netns", "del", &probe]);
    None
}

/// A set of namespaces ("machines") and the links between them.
pub struct Machines {
    prefix: String,
    names: Vec<String>,
}

impl Machines {
    pub fn new() -> Self {
        // Tests of one process run in parallel: each set has its own names.
        static SETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self {
            prefix: format!("vt{}{}", std::process::id(), n),
            names: Vec::new(),
        }
    }

    /// Makes a machine (its loopback up); returns its namespace name.
    pub fn add(&mut self, name: &str) -> anyhow::Result<String> {
        let ns = format!("{}-{name}", self.prefix);
        ip(&["netns", "add", &ns])?;
        self.names.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Joins two machines with a veth pair: `a` gets `a_addr`, `b` gets
    /// `b_addr` (both `x.x.x.x/nn`). Returns the interface name in `b`.
    pub fn link(
        &self,
        a: &str,
        a_addr: &str,
        b: &str,
        b_addr: &str,
        tag: &str,
    ) -> anyhow::Result<String> {
        let (ia, ib) = (format!("va{tag}"), format!("vb{tag}"));
        ip(&[
            "link", "add", &ia, "netns", a, "type", "veth", "peer", "name", &ib, "netns", b,
        ])?;
        ip(&["-n", a, "addr", "add", a_addr, "dev", &ia])?;
        ip(&["-n", b, "addr", "add", b_addr, "dev", &ib])?;
        ip(&["-n", a, "link", "set", &ia, "up"])?;
        ip(&["-n", b, "link", "set", &ib, "up"])?;
        Ok(ib)
    }

    /// Plugs machine `ns` into the switch `br0` of machine `lan` (made at
    /// the first use) with address `addr` (`x.x.x.x/nn`): every machine
    /// plugged in reaches every other. Returns the switch's port for it,
    /// in `lan` (set it down to cut `ns` off, as a machine that died).
    pub fn plug_in(&self, lan: &str, ns: &str, addr: &str, tag: &str) -> anyhow::Result<String> {
        if ip(&["-n", lan, "link", "show", "br0"]).is_err() {
            ip(&["-n", lan, "link", "add", "br0", "type", "bridge"])?;
            ip(&["-n", lan, "link", "set", "br0", "up"])?;
        }
        let (port, nic) = (format!("sw{tag}"), format!("eth{tag}"));
        ip(&[
            "link", "add", &port, "netns", lan, "type", "veth", "peer", "name", &nic, "netns", ns,
        ])?;
        ip(&["-n", lan, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", ns, "addr", "add", addr, "dev", &nic])?;
        ip(&["-n", lan, "link", "set", &port, "up"])?;
        ip(&["-n", ns, "link", "set", &nic, "up"])?;
        Ok(port)
    }

    /// Runs `ip -n NS ARGS…` on a machine (an address on its loopback, a
    /// route through its link).
    pub fn ip_in(&self, ns: &str, args: &[&str]) -> anyhow::Result<()> {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Takes a machine's interface down (a network cut) or up again.
    pub fn set_link(&self, ns: &str, iface: &str, up: bool) -> anyhow::Result<()> {
        ip(&[
            "-n",
            ns,
            "link",
            "set",
            iface,
            if up { "up" } else { "down" },
        ])
    }
}

impl Default for Machines {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Machines {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}
