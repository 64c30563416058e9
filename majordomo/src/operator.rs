//! The operator's link to the tower: calls and watched updates over a
//! CURVE DEALER to the majordomo, with the operator's own key. A refused
//! key or a wrong tower key is an error at once, not a silent retry.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigie_client::{poll_for, ClientError, Incoming, Link};
use vigie_wire::front::{FrontIn, FrontOut};
use vigie_wire::tower::{ApiCall, IdemKey};

use crate::door::{curve_dealer, read_monitor, Handshake};
use crate::error::MajordomoError;
use crate::keys::KeyPair;

/// Where an operator's CLI finds the tower and its own key: flags, or a
/// YAML file (`$VIGIE_CONFIG`, else `$XDG_CONFIG_HOME/vigie/config.yml`).
/// The tower's first start writes one for its admin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    /// The majordomo, e.g. `tcp://tower.example:7110`; a tower group's
    /// front doors comma-separated.
    pub tower: String,
    /// The tower's public key (Z85).
    pub tower_key: String,
    /// The operator's secret key file (relative to this file's directory).
    pub identity: PathBuf,
}

fn config_err(path: &Path, reason: impl ToString) -> MajordomoError {
    MajordomoError::Config {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

impl OperatorConfig {
    pub fn load(path: &Path) -> Result<Self, MajordomoError> {
        let text = std::fs::read_to_string(path).map_err(|e| config_err(path, e))?;
        let mut c: OperatorConfig =
            serde_norway::from_str(&text).map_err(|e| config_err(path, e))?;
        if c.identity.is_relative() {
            if let Some(dir) = path.parent() {
                c.identity = dir.join(&c.identity);
            }
        }
        Ok(c)
    }

    /// Written whole or not at all (temporary file, then rename).
    pub fn write(&self, path: &Path) -> Result<(), MajordomoError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| config_err(path, e))?;
        }
        let text = serde_norway::to_string(self).map_err(|e| config_err(path, e))?;
        let tmp = path.with_extension("yml.tmp");
        std::fs::write(&tmp, text).map_err(|e| config_err(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| config_err(path, e))
    }

    pub fn connect(&self, tenant: Option<String>) -> Result<FrontLink, MajordomoError> {
        let tower_key =
            crate::keys::from_z85(&self.tower_key).ok_or_else(|| MajordomoError::Key {
                path: PathBuf::from("tower_key"),
                reason: format!(
                    "{:?} is not a Z85 public key (40 characters)",
                    self.tower_key
                ),
            })?;
        let keys = crate::keys::read_secret(&self.identity)?;
        FrontLink::connect(&self.tower, &tower_key, &keys, tenant)
    }
}

pub struct FrontLink {
    _ctx: zmq::Context,
    dealer: zmq::Socket,
    monitor: zmq::Socket,
    endpoint: String,
    /// Act in this tenant instead of the operator's own.
    tenant: Option<String>,
}

impl FrontLink {
    pub fn connect(
        tower: &str,
        tower_key: &[u8; 32],
        keys: &KeyPair,
        tenant: Option<String>,
    ) -> Result<Self, MajordomoError> {
        let ctx = zmq::Context::new();
        let (dealer, monitor) = curve_dealer(&ctx, tower_key, keys)?;
        dealer.set_linger(0)?;
        crate::door::connect_doors(&dealer, tower)?;
        Ok(Self {
            _ctx: ctx,
            dealer,
            monitor,
            endpoint: tower.to_owned(),
            tenant,
        })
    }
}

fn zmq_err(e: zmq::Error) -> ClientError {
    ClientError::Zmq(e)
}

impl Link for FrontLink {
    fn send(
        &mut self,
        id: u64,
        call: &ApiCall,
        watch: bool,
        idem: Option<&IdemKey>,
    ) -> Result<(), ClientError> {
        let msg = FrontIn::Call {
            id,
            call: call.clone(),
            tenant: self.tenant.clone(),
            watch,
            idem: idem.cloned(),
        };
        self.dealer
            .send(vigie_wire::encode(&msg)?, 0)
            .map_err(zmq_err)
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<Incoming>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(h) = read_monitor(&self.monitor) {
                // The operator's key may come from flags or a config file:
                // the CLI says which, so the words here name no flag.
                let why = match h {
                    Handshake::KeyRefused => h.explain("operator"),
                    Handshake::TowerKeyWrong => {
                        "the CURVE handshake failed: the tower key is not this tower's public key"
                            .to_owned()
                    }
                    Handshake::Up | Handshake::Other => continue,
                };
                return Err(ClientError::Door(format!("{}: {why}", self.endpoint)));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut items = [
                self.dealer.as_poll_item(zmq::POLLIN),
                self.monitor.as_poll_item(zmq::POLLIN),
            ];
            poll_for(&mut items, left)?;
            let frame = match self.dealer.recv_bytes(zmq::DONTWAIT) {
                Ok(f) => f,
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            match vigie_wire::decode::<FrontOut>(&frame)? {
                FrontOut::Reply(r) => return Ok(Some(Incoming::Reply(r))),
                FrontOut::Update(v) => return Ok(Some(Incoming::Update(v))),
                FrontOut::Refused { reason } => {
                    return Err(ClientError::Door(format!("the tower refused: {reason}")))
                }
                FrontOut::Revoked => {
                    return Err(ClientError::Door(
                        "this operator's key is revoked".to_owned(),
                    ))
                }
                FrontOut::Ping | FrontOut::Published(_) => {}
            }
        }
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }
}
