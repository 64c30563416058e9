//! The hot path codec: gets, exists, puts and deletes — the requests a
//! pipelined client sends by the thousand — and their `Done`/`Value`
//! replies, read and written directly in the MessagePack layout that
//! `vigie_wire` (rmp-serde) gives them, borrowing keys and values from the
//! frame and writing into reused buffers: no allocation per request, and a
//! tenth of the instructions of the generic serde path. Anything else, and
//! anything this reader does not recognise exactly, goes through
//! `vigie_wire::decode`, which stays the one judge of what is malformed;
//! the tests prove both codecs agree byte for byte.

use vigie_wire::escalator::{DbRef, Fault, FaultKind, Reply, Response};
use vigie_wire::limits::MAX_FRAME;
use vigie_wire::{WireError, MAGIC, VERSION};

/// A database named in a request, borrowed from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbRefRef<'a> {
    pub name: &'a str,
    pub prefix: &'a [u8],
}

impl<'a> DbRefRef<'a> {
    pub fn of(db: &'a DbRef) -> Self {
        Self {
            name: &db.name,
            prefix: &db.prefix,
        }
    }
}

/// A hot request, borrowed from its frame.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestRef<'a> {
    pub id: u64,
    pub body: BodyRef<'a>,
}

/// The hot variants of `RequestBody`, keys and values borrowed.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyRef<'a> {
    Get {
        db: DbRefRef<'a>,
        key: &'a [u8],
    },
    Exists {
        db: DbRefRef<'a>,
        key: &'a [u8],
    },
    Put {
        db: DbRefRef<'a>,
        key: &'a [u8],
        value: &'a [u8],
        durable: bool,
    },
    Delete {
        db: DbRefRef<'a>,
        key: &'a [u8],
        durable: bool,
    },
}

const HEADER: usize = 4;

/// A MessagePack reader over a frame's body that accepts only the forms
/// rmp-serde writes; `None` on anything else.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(*b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0, |v, b| (v << 8) | u64::from(*b)),
        )
    }

    fn uint(&mut self) -> Option<u64> {
        match self.byte()? {
            b @ 0x00..=0x7f => Some(u64::from(b)),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            _ => None,
        }
    }

    fn array(&mut self, len: u8) -> Option<()> {
        (self.byte()? == 0x90 | len).then_some(())
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = match self.byte()? {
            b @ 0xa0..=0xbf => usize::from(b & 0x1f),
            0xd9 => usize::try_from(self.be(1)?).ok()?,
            0xda => usize::try_from(self.be(2)?).ok()?,
            0xdb => usize::try_from(self.be(4)?).ok()?,
            _ => return None,
        };
        std::str::from_utf8(self.take(n)?).ok()
    }

    fn bin(&mut self) -> Option<&'a [u8]> {
        let n = match self.byte()? {
            0xc4 => self.be(1)?,
            0xc5 => self.be(2)?,
            0xc6 => self.be(4)?,
            _ => return None,
        };
        self.take(usize::try_from(n).ok()?)
    }

    fn bool(&mut self) -> Option<bool> {
        match self.byte()? {
            0xc2 => Some(false),
            0xc3 => Some(true),
            _ => None,
        }
    }

    /// `[id, {variant: …}]` up to the variant's name.
    fn head(&mut self) -> Option<(u64, &'a str)> {
        self.array(2)?;
        let id = self.uint()?;
        (self.byte()? == 0x81).then_some(())?;
        Some((id, self.str()?))
    }

    fn db(&mut self) -> Option<DbRefRef<'a>> {
        self.array(2)?;
        let name = self.str()?;
        let prefix = self.bin()?;
        Some(DbRefRef { name, prefix })
    }
}

fn body(frame: &[u8]) -> Option<&[u8]> {
    if frame.len() > MAX_FRAME || frame.len() < HEADER || frame[..2] != MAGIC {
        return None;
    }
    (u16::from_be_bytes([frame[2], frame[3]]) == VERSION).then(|| &frame[HEADER..])
}

/// The request in `frame` when it is a hot one, whole, with its envelope
/// checked and nothing after it; `None` sends the frame to the owned
/// decoder.
pub fn decode_hot(frame: &[u8]) -> Option<RequestRef<'_>> {
    let mut r = Reader { buf: body(frame)? };
    let (id, variant) = r.head()?;
    let body = match variant {
        "Get" | "Exists" => {
            r.array(2)?;
            let (db, key) = (r.db()?, r.bin()?);
            if variant == "Get" {
                BodyRef::Get { db, key }
            } else {
                BodyRef::Exists { db, key }
            }
        }
        "Put" => {
            r.array(4)?;
            let (db, key, value) = (r.db()?, r.bin()?, r.bin()?);
            let durable = r.bool()?;
            BodyRef::Put {
                db,
                key,
                value,
                durable,
            }
        }
        "Delete" => {
            r.array(3)?;
            let (db, key, durable) = (r.db()?, r.bin()?, r.bool()?);
            BodyRef::Delete { db, key, durable }
        }
        _ => return None,
    };
    r.buf.is_empty().then_some(RequestRef { id, body })
}

/// MessagePack writing, in rmp-serde's (smallest) forms.
fn put_uint(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=0x7f => out.push(v as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, v as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// A length header: `fix` holds lengths below `fix_max`, then 8-, 16- and
/// 32-bit forms (`None` where the type has no such form).
fn put_len(out: &mut Vec<u8>, len: usize, fix: Option<(u8, usize)>, wide: [Option<u8>; 3]) {
    if let Some((marker, max)) = fix {
        if len < max {
            out.push(marker | len as u8);
            return;
        }
    }
    match (len, wide) {
        (0..=0xff, [Some(m), _, _]) => out.extend_from_slice(&[m, len as u8]),
        (0..=0xffff, [_, Some(m), _]) => {
            out.push(m);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (_, [_, _, Some(m)]) => {
            out.push(m);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
        _ => {}
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(
        out,
        s.len(),
        Some((0xa0, 32)),
        [Some(0xd9), Some(0xda), Some(0xdb)],
    );
    out.extend_from_slice(s.as_bytes());
}

fn put_bin(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len(), None, [Some(0xc4), Some(0xc5), Some(0xc6)]);
    out.extend_from_slice(b);
}

fn put_head(out: &mut Vec<u8>, id: u64, variant: &str) {
    out.clear();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.push(0x92);
    put_uint(out, id);
    out.push(0x81);
    put_str(out, variant);
}

/// The client's hot requests, encoded exactly as `vigie_wire::encode`
/// encodes the owned `Request` they stand for.
pub fn encode_request(id: u64, body: &BodyRef<'_>) -> Result<Vec<u8>, WireError> {
    let (db, payload) = match body {
        BodyRef::Get { db, key } | BodyRef::Exists { db, key } => (db, key.len()),
        BodyRef::Put { db, key, value, .. } => (db, key.len() + value.len()),
        BodyRef::Delete { db, key, .. } => (db, key.len()),
    };
    // Sized once for the whole frame: growing from a small guess would
    // copy a put's value more than once.
    let mut out = Vec::with_capacity(HEADER + 48 + db.name.len() + db.prefix.len() + payload);
    let (variant, fields) = match body {
        BodyRef::Get { .. } => ("Get", 2),
        BodyRef::Exists { .. } => ("Exists", 2),
        BodyRef::Put { .. } => ("Put", 4),
        BodyRef::Delete { .. } => ("Delete", 3),
    };
    put_head(&mut out, id, variant);
    out.push(0x90 | fields);
    out.push(0x92);
    put_str(&mut out, db.name);
    put_bin(&mut out, db.prefix);
    match body {
        BodyRef::Get { key, .. } | BodyRef::Exists { key, .. } => put_bin(&mut out, key),
        BodyRef::Put {
            key,
            value,
            durable,
            ..
        } => {
            put_bin(&mut out, key);
            put_bin(&mut out, value);
            out.push(if *durable { 0xc3 } else { 0xc2 });
        }
        BodyRef::Delete { key, durable, .. } => {
            put_bin(&mut out, key);
            out.push(if *durable { 0xc3 } else { 0xc2 });
        }
    }
    if out.len() > MAX_FRAME {
        return Err(WireError::Oversized {
            size: out.len(),
            max: MAX_FRAME,
        });
    }
    Ok(out)
}

/// Encodes `reply` in its envelope into `out` (cleared first, capacity
/// kept). A reply too large for a frame becomes a `TooLarge` fault.
pub fn encode_reply_into(out: &mut Vec<u8>, reply: &Reply) {
    match &reply.body {
        Ok(Response::Done) => {
            put_head(out, reply.id, "Ok");
            put_str(out, "Done");
            return;
        }
        Ok(Response::Value(v)) if v.as_ref().is_none_or(|v| v.len() < MAX_FRAME - 64) => {
            put_head(out, reply.id, "Ok");
            out.push(0x81);
            put_str(out, "Value");
            match v {
                Some(v) => put_bin(out, v),
                None => out.push(0xc0),
            }
            return;
        }
        _ => {}
    }
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

/// The client's reading of a reply: `Done` and `Value` read directly,
/// anything else by `vigie_wire::decode`.
pub fn decode_reply(frame: &[u8]) -> Result<Reply, WireError> {
    if let Some(r) = decode_hot_reply(frame) {
        return Ok(r);
    }
    vigie_wire::decode(frame)
}

fn decode_hot_reply(frame: &[u8]) -> Option<Reply> {
    let mut r = Reader { buf: body(frame)? };
    let (id, variant) = r.head()?;
    (variant == "Ok").then_some(())?;
    let response = if r.buf.first() == Some(&0x81) {
        r.byte()?;
        (r.str()? == "Value").then_some(())?;
        if r.buf.first() == Some(&0xc0) {
            r.byte()?;
            Response::Value(None)
        } else {
            Response::Value(Some(r.bin()?.to_vec()))
        }
    } else {
        (r.str()? == "Done").then_some(())?;
        Response::Done
    };
    r.buf.is_empty().then_some(Reply {
        id,
        body: Ok(response),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_wire::escalator::{Request, RequestBody};

    fn db() -> DbRef {
        DbRef {
            name: "state".into(),
            prefix: b"p/".to_vec(),
        }
    }

    /// Pairs of (borrowed, owned) hot requests over every length form.
    fn samples(db: &DbRef, long: &[u8]) -> Vec<(BodyRef<'static>, RequestBody)> {
        let d = Box::leak(Box::new(db.clone()));
        let long: &'static [u8] = Box::leak(long.to_vec().into_boxed_slice());
        let r = DbRefRef::of(d);
        vec![
            (
                BodyRef::Get { db: r, key: b"k" },
                RequestBody::Get {
                    db: db.clone(),
                    key: b"k".to_vec(),
                },
            ),
            (
                BodyRef::Exists { db: r, key: long },
                RequestBody::Exists {
                    db: db.clone(),
                    key: long.to_vec(),
                },
            ),
            (
                BodyRef::Put {
                    db: r,
                    key: b"k",
                    value: long,
                    durable: true,
                },
                RequestBody::Put {
                    db: db.clone(),
                    key: b"k".to_vec(),
                    value: long.to_vec(),
                    durable: true,
                },
            ),
            (
                BodyRef::Delete {
                    db: r,
                    key: b"",
                    durable: false,
                },
                RequestBody::Delete {
                    db: db.clone(),
                    key: Vec::new(),
                    durable: false,
                },
            ),
        ]
    }

    #[test]
    fn hot_requests_encode_and_decode_as_the_wire_crate_does() {
        for len in [0, 31, 32, 255, 256, 70_000] {
            let long = vec![7u8; len];
            for id in [0, 127, 128, 255, 256, 65_536, u64::MAX] {
                for (hot, owned) in samples(&db(), &long) {
                    let wire = vigie_wire::encode(&Request { id, body: owned }).unwrap();
                    assert_eq!(encode_request(id, &hot).unwrap(), wire, "{hot:?}");
                    assert_eq!(decode_hot(&wire), Some(RequestRef { id, body: hot }));
                }
            }
        }
    }

    #[test]
    fn cold_truncated_or_trailing_frames_go_to_the_owned_decoder() {
        let cold = |body| vigie_wire::encode(&Request { id: 9, body }).unwrap();
        assert!(decode_hot(&cold(RequestBody::Ping)).is_none());
        assert!(decode_hot(&cold(RequestBody::Stats)).is_none());
        let (hot, _) = samples(&db(), b"v").remove(2);
        let put = encode_request(9, &hot).unwrap();
        for n in 0..put.len() {
            assert!(decode_hot(&put[..n]).is_none(), "truncated at {n}");
        }
        let mut long = put.clone();
        long.push(0);
        assert!(decode_hot(&long).is_none());
        let mut old = put;
        old[3] ^= 1;
        assert!(decode_hot(&old).is_none());
    }

    #[test]
    fn replies_encode_and_decode_as_the_wire_crate_does() {
        let mut out = Vec::new();
        for id in [1, 300, u64::MAX] {
            for body in [
                Ok(Response::Done),
                Ok(Response::Value(None)),
                Ok(Response::Value(Some(b"x".to_vec()))),
                Ok(Response::Value(Some(vec![1; 300]))),
                Ok(Response::Exists(true)),
                Err(Fault::new(FaultKind::Storage, "disk")),
            ] {
                let reply = Reply { id, body };
                encode_reply_into(&mut out, &reply);
                assert_eq!(out, vigie_wire::encode(&reply).unwrap(), "{reply:?}");
                assert_eq!(decode_reply(&out).unwrap(), reply);
            }
        }
        let big = Reply {
            id: 4,
            body: Ok(Response::Value(Some(vec![0; MAX_FRAME]))),
        };
        encode_reply_into(&mut out, &big);
        let back = decode_reply(&out).unwrap();
        assert_eq!(back.id, 4);
        assert!(matches!(back.body, Err(f) if f.kind == FaultKind::TooLarge));
    }
}
