//! The server's hot path codec: reads the frequent requests (get, exists,
//! put, delete) borrowing keys and values from the received frame, and
//! encodes replies into a buffer reused from one request to the next, so a
//! pipelined request costs no allocation of its own. Anything else — and
//! anything this reader refuses — goes through `vigie_wire::decode`, which
//! stays the one judge of what is malformed.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use vigie_wire::{WireError, MAGIC, VERSION};
use vigie_wire::escalator::{DbRef, Fault, FaultKind, Reply};
use vigie_wire::limits::MAX_FRAME;

/// A database named in a request, borrowed from the frame.
#[derive(Debug, Serialize, Deserialize)]
pub struct DbRefRef<'a> {
    pub name: &'a str,
    #[serde(with = "serde_bytes", borrow)]
    pub prefix: &'a [u8],
}

/// `vigie_wire::escalator::Request`, field for field, with the hot bodies
/// borrowed and every other body skipped (it is decoded again, owned).
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestRef<'a> {
    pub id: u64,
    #[serde(borrow)]
    pub body: BodyRef<'a>,
}

/// The variants of `RequestBody`, by the same names (rmp-serde names the
/// variant in the frame), in the same field order. Serializing one only
/// measures how long its frame must be.
#[derive(Debug, Serialize, Deserialize)]
pub enum BodyRef<'a> {
    #[serde(skip_serializing)]
    Ping,
    #[serde(skip_serializing)]
    Create(IgnoredAny),
    #[serde(skip_serializing)]
    Open(IgnoredAny),
    Get {
        #[serde(borrow)]
        db: DbRefRef<'a>,
        #[serde(with = "serde_bytes", borrow)]
        key: &'a [u8],
    },
    Exists {
        #[serde(borrow)]
        db: DbRefRef<'a>,
        #[serde(with = "serde_bytes", borrow)]
        key: &'a [u8],
    },
    Put {
        #[serde(borrow)]
        db: DbRefRef<'a>,
        #[serde(with = "serde_bytes", borrow)]
        key: &'a [u8],
        #[serde(with = "serde_bytes", borrow)]
        value: &'a [u8],
        durable: bool,
    },
    Delete {
        #[serde(borrow)]
        db: DbRefRef<'a>,
        #[serde(with = "serde_bytes", borrow)]
        key: &'a [u8],
        durable: bool,
    },
    #[serde(skip_serializing)]
    Range(IgnoredAny),
    #[serde(skip_serializing)]
    Batch(IgnoredAny),
    #[serde(skip_serializing)]
    Stats,
}

/// A writer that only counts.
#[derive(Default)]
struct Count(usize);

impl std::io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const HEADER: usize = 4;

/// The request in `frame` when it is a hot one that decodes whole with its
/// envelope checked; `None` sends the frame to the owned decoder.
pub fn decode_hot(frame: &[u8]) -> Option<RequestRef<'_>> {
    if frame.len() > MAX_FRAME || frame.len() < HEADER || frame[..2] != MAGIC {
        return None;
    }
    if u16::from_be_bytes([frame[2], frame[3]]) != VERSION {
        return None;
    }
    let body = &frame[HEADER..];
    let req: RequestRef<'_> = rmp_serde::from_slice(body).ok()?;
    match req.body {
        BodyRef::Get { .. } | BodyRef::Exists { .. } | BodyRef::Put { .. } => {}
        BodyRef::Delete { .. } => {}
        _ => return None,
    }
    // rmp-serde does not say where it stopped reading: a frame is taken
    // here only when it is exactly as long as its canonical encoding, so
    // trailing bytes (or a sender's longer encodings) go the owned way.
    let mut count = Count::default();
    rmp_serde::encode::write(&mut count, &req).ok()?;
    (count.0 == body.len()).then_some(req)
}

/// Encodes `reply` in its envelope into `out` (cleared first, capacity
/// kept). A reply too large for a frame becomes a `TooLarge` fault.
pub fn encode_reply_into(out: &mut Vec<u8>, reply: &Reply) {
    if write_envelope(out, reply) {
        return;
    }
    let why = if out.len() > MAX_FRAME {
        format!("reply of {} bytes exceeds {MAX_FRAME}", out.len())
    } else {
        "reply cannot be encoded".to_owned()
    };
    let fallback = Reply {
        id: reply.id,
        body: Err(Fault::new(FaultKind::TooLarge, why)),
    };
    if !write_envelope(out, &fallback) {
        out.clear();
    }
}

fn write_envelope(out: &mut Vec<u8>, reply: &Reply) -> bool {
    out.clear();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    rmp_serde::encode::write(out, reply).is_ok() && out.len() <= MAX_FRAME
}

/// A database as a client names it in a request it encodes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DbOut<'a> {
    name: &'a str,
    #[serde(with = "serde_bytes")]
    prefix: &'a [u8],
}

impl<'a> DbOut<'a> {
    pub fn of(db: &'a DbRef) -> Self {
        Self {
            name: &db.name,
            prefix: &db.prefix,
        }
    }
}

/// The hot `RequestBody` variants, borrowing their keys and values: the
/// client encodes them without copying into an owned request first.
#[derive(Debug, Serialize)]
pub enum BodyOut<'a> {
    Get {
        db: DbOut<'a>,
        #[serde(with = "serde_bytes")]
        key: &'a [u8],
    },
    Put {
        db: DbOut<'a>,
        #[serde(with = "serde_bytes")]
        key: &'a [u8],
        #[serde(with = "serde_bytes")]
        value: &'a [u8],
        durable: bool,
    },
}

#[derive(Serialize)]
struct RequestOut<'a> {
    id: u64,
    body: BodyOut<'a>,
}

/// Encodes a hot request exactly as `vigie_wire::encode` encodes the
/// owned `Request` it stands for.
pub fn encode_request(id: u64, body: BodyOut<'_>) -> Result<Vec<u8>, WireError> {
    vigie_wire::encode(&RequestOut { id, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_wire::escalator::{DbRef, Request, RequestBody, Response};

    fn frame(body: RequestBody) -> Vec<u8> {
        vigie_wire::encode(&Request { id: 9, body }).unwrap()
    }

    #[test]
    fn hot_requests_decode_borrowed_as_the_owned_decoder_reads_them() {
        let db = DbRef {
            name: "state".into(),
            prefix: b"p/".to_vec(),
        };
        let f = frame(RequestBody::Put {
            db,
            key: b"k".to_vec(),
            value: b"v".repeat(300),
            durable: true,
        });
        let r = decode_hot(&f).unwrap();
        assert_eq!(r.id, 9);
        let BodyRef::Put {
            db,
            key,
            value,
            durable,
        } = r.body
        else {
            panic!("not a put: {:?}", r.body);
        };
        assert_eq!((db.name, db.prefix, key), ("state", &b"p/"[..], &b"k"[..]));
        assert_eq!((value.len(), durable), (300, true));
    }

    #[test]
    fn cold_truncated_or_trailing_frames_go_to_the_owned_decoder() {
        assert!(decode_hot(&frame(RequestBody::Ping)).is_none());
        assert!(decode_hot(&frame(RequestBody::Stats)).is_none());
        let get = frame(RequestBody::Get {
            db: DbRef::root("d"),
            key: b"k".to_vec(),
        });
        for n in 0..get.len() {
            assert!(decode_hot(&get[..n]).is_none(), "truncated at {n}");
        }
        let mut long = get.clone();
        long.push(0);
        assert!(decode_hot(&long).is_none());
        let mut old = get;
        old[3] ^= 1;
        assert!(decode_hot(&old).is_none());
    }

    #[test]
    fn borrowed_requests_encode_as_the_owned_ones() {
        let db = DbRef {
            name: "state".into(),
            prefix: b"p/".to_vec(),
        };
        let get = BodyOut::Get {
            db: DbOut::of(&db),
            key: b"k",
        };
        let owned = RequestBody::Get {
            db: db.clone(),
            key: b"k".to_vec(),
        };
        assert_eq!(encode_request(5, get).unwrap(), vigie_wire::encode(&Request { id: 5, body: owned }).unwrap());
        let put = BodyOut::Put {
            db: DbOut::of(&db),
            key: b"k",
            value: b"v",
            durable: false,
        };
        let owned = RequestBody::Put {
            db: db.clone(),
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            durable: false,
        };
        assert_eq!(encode_request(6, put).unwrap(), vigie_wire::encode(&Request { id: 6, body: owned }).unwrap());
    }

    #[test]
    fn a_reply_encodes_as_the_wire_crate_decodes_it() {
        let mut out = Vec::new();
        let reply = Reply {
            id: 3,
            body: Ok(Response::Value(Some(b"x".to_vec()))),
        };
        encode_reply_into(&mut out, &reply);
        assert_eq!(vigie_wire::decode::<Reply>(&out).unwrap(), reply);
        let big = Reply {
            id: 4,
            body: Ok(Response::Value(Some(vec![0; MAX_FRAME]))),
        };
        encode_reply_into(&mut out, &big);
        let back = vigie_wire::decode::<Reply>(&out).unwrap();
        assert_eq!(back.id, 4);
        assert!(matches!(back.body, Err(f) if f.kind == FaultKind::TooLarge));
    }
}
