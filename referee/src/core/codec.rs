//! How the referee's records are encoded in Escalator, and the error that
//! names a stored record that does not decode.

use crate::error::RefereeError;

/// A stored key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

pub fn corrupt(key: &[u8], e: impl std::fmt::Display) -> RefereeError {
    RefereeError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    }
}

pub fn decode<T: serde::de::DeserializeOwned>(key: &[u8], v: &[u8]) -> Result<T, RefereeError> {
    vigie_wire::decode(v).map_err(|e| corrupt(key, e))
}

pub fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Our own records always encode: the limits are far above their size.
    vigie_wire::encode(v).unwrap_or_default()
}
