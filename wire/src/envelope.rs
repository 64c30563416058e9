//! The versioned envelope around every message: magic, version, then the
//! MessagePack body; size, magic and version are checked before decoding.

use serde::{de::DeserializeOwned, Serialize};

use crate::limits::MAX_FRAME;

/// First two bytes of every frame.
pub const MAGIC: [u8; 2] = *b"VG";
/// The protocol version this build speaks. Bumped on any incompatible change.
pub const VERSION: u16 = 1;
const HEADER: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame of {size} bytes exceeds the {max}-byte limit")]
    Oversized { size: usize, max: usize },
    #[error("frame of {0} bytes is too short for an envelope")]
    Truncated(usize),
    #[error("frame does not start with the Vigie magic bytes")]
    BadMagic,
    #[error("protocol version {got} is not supported (this build speaks {VERSION})")]
    Version { got: u16 },
    #[error("malformed message body: {0}")]
    Body(String),
    #[error("cannot encode message: {0}")]
    Encode(String),
}

/// Encodes `msg` in a versioned envelope.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    rmp_serde::encode::write(&mut out, msg).map_err(|e| WireError::Encode(e.to_string()))?;
    if out.len() > MAX_FRAME {
        return Err(WireError::Oversized {
            size: out.len(),
            max: MAX_FRAME,
        });
    }
    Ok(out)
}

/// Checks the envelope and returns the body slice.
fn open(frame: &[u8]) -> Result<&[u8], WireError> {
    if frame.len() > MAX_FRAME {
        return Err(WireError::Oversized {
            size: frame.len(),
            max: MAX_FRAME,
        });
    }
    if frame.len() < HEADER {
        return Err(WireError::Truncated(frame.len()));
    }
    if frame[..2] != MAGIC {
        return Err(WireError::BadMagic);
    }
    let got = u16::from_be_bytes([frame[2], frame[3]]);
    if got != VERSION {
        return Err(WireError::Version { got });
    }
    Ok(&frame[HEADER..])
}

/// The version a frame claims, if it has a valid header.
pub fn peek_version(frame: &[u8]) -> Option<u16> {
    (frame.len() >= HEADER && frame[..2] == MAGIC).then(|| u16::from_be_bytes([frame[2], frame[3]]))
}

/// Decodes a frame produced by [`encode`].
pub fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T, WireError> {
    let body = open(frame)?;
    let mut de = rmp_serde::Deserializer::new(body);
    let value = T::deserialize(&mut de).map_err(|e| WireError::Body(e.to_string()))?;
    let rest = de.into_inner();
    if !rest.is_empty() {
        return Err(WireError::Body(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escalator::{DbRef, Request, RequestBody};

    fn sample() -> Request {
        Request {
            id: 7,
            body: RequestBody::Get {
                db: DbRef::root("state"),
                key: b"k".to_vec(),
            },
        }
    }

    #[test]
    fn roundtrip() {
        let frame = encode(&sample()).unwrap();
        let back: Request = decode(&frame).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let frame = encode(&sample()).unwrap();
        for n in 0..frame.len() {
            assert!(
                decode::<Request>(&frame[..n]).is_err(),
                "prefix of {n} bytes decoded"
            );
        }
    }

    #[test]
    fn wrong_version_is_typed() {
        let mut frame = encode(&sample()).unwrap();
        frame[3] = 99;
        assert!(matches!(
            decode::<Request>(&frame),
            Err(WireError::Version { got: 99 })
        ));
    }

    #[test]
    fn bad_magic_and_garbage() {
        assert!(matches!(
            decode::<Request>(b"XXXXXXXX"),
            Err(WireError::BadMagic)
        ));
        let mut garbage = b"VG\x00\x01".to_vec();
        garbage.extend((0..=255u8).cycle().take(4096).map(|b| b.wrapping_mul(37)));
        assert!(decode::<Request>(&garbage).is_err());
    }

    #[test]
    fn oversized_rejected_before_decoding() {
        let big = vec![0u8; MAX_FRAME + 1];
        assert!(matches!(
            decode::<Request>(&big),
            Err(WireError::Oversized { .. })
        ));
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut frame = encode(&sample()).unwrap();
        frame.push(0);
        assert!(matches!(decode::<Request>(&frame), Err(WireError::Body(_))));
    }

    #[test]
    fn pseudo_random_bytes_never_panic() {
        // A tiny deterministic fuzz: flip every byte of a valid frame.
        let frame = encode(&sample()).unwrap();
        for i in HEADER..frame.len() {
            for v in [0u8, 0x7f, 0x80, 0xc1, 0xdc, 0xff] {
                let mut f = frame.clone();
                f[i] = v;
                let _ = decode::<Request>(&f);
            }
        }
    }
}
