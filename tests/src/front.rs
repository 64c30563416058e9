//! Clients through the front door, as operators have them: the tower's
//! admin (with the key `vigie start` made), and operators the admin adds
//! with keys of their own. For tests of permissions and of hostile peers.

use std::path::Path;
use std::time::Duration;

use vigie_client::ApiClient;
use vigie_majordomo::keys::{write_new, KeyPair};
use vigie_majordomo::operator::{FrontLink, OperatorConfig};
use vigie_wire::front::Grant;
use vigie_wire::tower::ApiCall;

use crate::Launcher;

const WAIT: Duration = Duration::from_secs(30);

/// The tower's public key, as agents and operators are given it.
pub fn tower_key(t: &Launcher) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(t.data_dir().join("keys/tower.public"))?;
    vigie_majordomo::keys::from_z85(&text).ok_or_else(|| anyhow::anyhow!("tower key"))
}

/// The tower's admin, made at first start, acting in `tenant`.
pub fn admin(t: &Launcher, tenant: Option<&str>) -> anyhow::Result<ApiClient> {
    let cfg = OperatorConfig::load(&t.data_dir().join("operator.yml"))?;
    let mut c = ApiClient::over(cfg.connect(tenant.map(str::to_owned))?);
    c.set_timeout(WAIT);
    Ok(c)
}

/// A client holding `keys`, acting in `act_in` (its own tenant if `None`).
pub fn client_with(
    t: &Launcher,
    keys: &KeyPair,
    act_in: Option<&str>,
) -> anyhow::Result<ApiClient> {
    let link = FrontLink::connect(
        &t.endpoint("majordomo"),
        &tower_key(t)?,
        keys,
        act_in.map(str::to_owned),
    )?;
    let mut c = ApiClient::over(link);
    c.set_timeout(WAIT);
    Ok(c)
}

/// Adds operator `name` to `tenant` with `grants` (as the admin); returns
/// its key pair (written under `dir`).
pub fn add_operator(
    t: &Launcher,
    dir: &Path,
    tenant: &str,
    name: &str,
    grants: &[Grant],
) -> anyhow::Result<KeyPair> {
    let keys = write_new(&dir.join(format!("{tenant}-{name}.key")))?;
    admin(t, Some(tenant))?.call(ApiCall::OperatorAdd {
        name: name.into(),
        public: keys.public_z85(),
        grants: grants.to_vec(),
    })?;
    Ok(keys)
}

/// Grants from their command-line spelling (`changes.submit@web-*`).
pub fn grants(texts: &[&str]) -> anyhow::Result<Vec<Grant>> {
    texts
        .iter()
        .map(|t| Grant::parse(t).map_err(anyhow::Error::msg))
        .collect()
}

/// The kind of fault a call was refused with, if it was refused.
pub fn fault(
    r: Result<vigie_wire::tower::ApiAnswer, vigie_client::ClientError>,
) -> Option<vigie_wire::tower::ApiFaultKind> {
    match r {
        Err(vigie_client::ClientError::Refused(f)) => Some(f.kind),
        _ => None,
    }
}

/// A one-step change (`true`) titled `title`.
pub fn spec(title: &str) -> anyhow::Result<vigie_wire::change::ChangeSpec> {
    Ok(vigie_changes::parse_change(
        "t.yml",
        &format!("title: {title}\nsteps:\n  - run: \"true\"\n"),
    )?)
}
