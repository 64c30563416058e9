//! How the operator's commands reach the tower: always through the
//! majordomo, with the operator's own key. Flags override the config file
//! (`--config`, else `$VIGIE_CONFIG`, else `$XDG_CONFIG_HOME/vigie/config.yml`
//! or `~/.config/vigie/config.yml`), which `vigie start` writes for the
//! tower's admin at first start.

use std::path::PathBuf;

use anyhow::Context;
use vigie_majordomo::operator::OperatorConfig;
use vigie_referee::ApiClient;

#[derive(Debug, clap::Args)]
pub struct Conn {
    /// The tower's front door (the majordomo), e.g. tcp://tower.example:7110.
    #[arg(long, global = true)]
    tower: Option<String>,
    /// The tower's public key (Z85), as `vigie start` printed it.
    // Z85 text may start with '-': every key argument allows it.
    #[arg(long, allow_hyphen_values = true, global = true)]
    tower_key: Option<String>,
    /// This operator's secret key file (made by `vigie keys gen`).
    #[arg(long, global = true)]
    identity: Option<PathBuf>,
    /// The CLI config file (YAML: tower, tower_key, identity).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Act in this tenant instead of one's own (needs tenants.admin).
    #[arg(long, global = true)]
    tenant: Option<String>,
    /// One JSON value per line instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The operator's config file in the XDG config dir.
pub fn user_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("vigie").join("config.yml"))
}

impl Conn {
    fn config_file(&self) -> Option<PathBuf> {
        self.config
            .clone()
            .or_else(|| std::env::var_os("VIGIE_CONFIG").map(PathBuf::from))
            .or_else(|| user_config_path().filter(|p| p.exists()))
    }

    pub fn resolve(&self) -> anyhow::Result<OperatorConfig> {
        let file = self.config_file();
        let base = match &file {
            Some(path) => Some(OperatorConfig::load(path)?),
            None => None,
        };
        let pick = |flag: &Option<String>, from: Option<&String>, name: &str| {
            flag.clone().or_else(|| from.cloned()).with_context(|| {
                format!(
                    "no {name}: pass --{} or write a config file ({}; the tower's first start writes one for its admin in its data dir, operator.yml)",
                    name.replace('_', "-"),
                    user_config_path().map_or("$XDG_CONFIG_HOME/vigie/config.yml".into(), |p| p.display().to_string())
                )
            })
        };
        let tower = pick(&self.tower, base.as_ref().map(|b| &b.tower), "tower")?;
        let tower_key = pick(
            &self.tower_key,
            base.as_ref().map(|b| &b.tower_key),
            "tower_key",
        )?;
        let identity = match (&self.identity, &base) {
            (Some(p), _) => p.clone(),
            (None, Some(b)) => b.identity.clone(),
            (None, None) => anyhow::bail!("no identity: pass --identity FILE (the operator's secret key) or write a config file"),
        };
        Ok(OperatorConfig {
            tower,
            tower_key,
            identity,
        })
    }

    pub fn client(&self) -> anyhow::Result<ApiClient> {
        let link = self.resolve()?.connect(self.tenant.clone())?;
        Ok(ApiClient::over(link))
    }
}
