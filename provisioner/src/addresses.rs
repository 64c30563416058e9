//! The server's addresses from IP pools (`servers provision … --pool`),
//! put on the server before its agent is set up: the host is labelled
//! `address=` with the first one and the deployer binds its nginx and
//! replicas there, so an address only the catalog knows would fail the
//! first deploy. The script, as text (no I/O, tested alone): an address
//! some interface has already is kept (the supplier's network gave it,
//! or an earlier attempt did); else it is added, with its pool's prefix
//! length, to the interface that carries the address the provisioner
//! reached the server at (the one its network routes to), or failing
//! that the interface of its default route. Added with `ip addr`, so it
//! lasts until the server restarts (a known limit: the server's own
//! network configuration keeps it for good).

use vigie_wire::catalog::GivenAddress;

use crate::remote::quote;

/// The line of the script's output for each address:
/// `vigie-address ADDRESS kept|added [INTERFACE]`.
pub const MARK: &str = "vigie-address";

/// The script putting `given` on the server reached at `reached`.
pub fn configure(reached: &str, given: &[GivenAddress]) -> String {
    let mut script = format!(
        r#"command -v ip >/dev/null 2>&1 || {{ echo "vigie: no ip command (iproute2) on the server: cannot put its addresses on it" >&2; exit 1; }}
# An interface's addresses, one `NAME ADDRESS` a line.
addrs() {{ ip -o addr show | awk '{{ split($4, p, "/"); print $2, p[1] }}'; }}
dev=$(addrs | awk -v a={reached} '$2 == a {{ print $1; exit }}')
[ -n "$dev" ] || dev=$(ip route show default | awk '{{ for (i = 1; i < NF; i++) if ($i == "dev") {{ print $(i + 1); exit }} }}')
put() {{
  if addrs | awk -v a="$1" '$2 == a {{ f = 1 }} END {{ exit !f }}'; then echo "{MARK} $1 kept"; return 0; fi
  if [ -z "$dev" ]; then echo "vigie: no interface for $1: none has the address the server was reached at, and there is no default route" >&2; exit 1; fi
  ip addr add "$1/$2" dev "$dev" || exit 1
  echo "{MARK} $1 added $dev"
}}
"#,
        reached = quote(reached)
    );
    for g in given {
        script.push_str(&format!(
            "put {} {}\n",
            quote(&g.address.to_string()),
            g.prefix
        ));
    }
    script
}

/// One address's outcome, as the script printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    pub address: String,
    /// `kept` or `added`.
    pub outcome: String,
    /// Where it was added.
    pub interface: Option<String>,
}

/// The script's report, one per address it printed.
pub fn read(out: &str) -> Vec<Configured> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix(MARK)?.split_whitespace();
            Some(Configured {
                address: w.next()?.to_owned(),
                outcome: w.next()?.to_owned(),
                interface: w.next().map(str::to_owned),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(a: &str, prefix: u8) -> GivenAddress {
        GivenAddress {
            pool: "lan".into(),
            address: a.parse().unwrap(),
            prefix,
            gateway: None,
        }
    }

    #[test]
    fn each_address_is_put_with_its_pool_prefix() {
        let s = configure(
            "192.0.2.2",
            &[given("203.0.113.2", 29), given("2001:db8::5", 64)],
        );
        assert!(s.contains("-v a='192.0.2.2'"), "{s}");
        assert!(s.contains("put '203.0.113.2' 29\n"), "{s}");
        assert!(s.contains("put '2001:db8::5' 64\n"), "{s}");
    }

    #[test]
    fn the_reached_address_is_quoted_for_the_shell() {
        let s = configure("x'; reboot; '", &[]);
        assert!(s.contains(r#"-v a='x'\''; reboot; '\'''"#), "{s}");
    }

    #[test]
    fn the_report_reads_kept_and_added() {
        let r = read("noise\nvigie-address 192.0.2.2 kept\nvigie-address 203.0.113.2 added eth0\n");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].outcome, "kept");
        assert_eq!(r[1].interface.as_deref(), Some("eth0"));
    }
}
