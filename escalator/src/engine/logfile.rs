//! LevelDB's log format, read strictly: the decision logic of crash recovery.
//!
//! A log (a `*.log` write-ahead log or a `MANIFEST-*`) is a sequence of
//! 32 KiB blocks holding records: a 7-byte header (masked crc32c of type and
//! data, u16 length, u8 type FULL/FIRST/MIDDLE/LAST), then the data. A
//! block's last 1-6 bytes, too short for a header, are zero padding.
//!
//! rusty-leveldb's own reader stops at the first bad record without an error
//! and then appends after it, so Escalator reads every log itself before
//! opening a database ([`scan`]): a bad spot followed by nothing valid is a
//! torn tail (a write cut by a crash or a full disk: never acknowledged, so
//! cut at the last complete record); a bad spot followed by a valid record is
//! corruption, refused. [`salvage`] keeps every intact record for a repair.
//! No I/O here: callers hand in the file's bytes.

pub const BLOCK_SIZE: usize = 32 * 1024;
pub const HEADER_SIZE: usize = 7;

const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;

/// What the records of a log hold, so that each complete record can be
/// checked to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// A write-ahead log: every record is a write batch.
    WriteAhead,
    /// A MANIFEST: records are version edits (checked for framing only).
    Manifest,
}

/// One complete logical record and where it sits in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub end: u64,
    pub data: Vec<u8>,
}

/// The verdict on a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The file ends in an incomplete or damaged record with nothing valid
    /// after it: keep the first `keep` bytes.
    TornTail {
        keep: u64,
        reason: String,
    },
    /// Damage followed by valid records: not a crash's doing.
    Corrupt {
        offset: u64,
        reason: String,
    },
}

/// A strict reading of a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The complete records before any damage.
    pub records: Vec<Record>,
    pub verdict: Verdict,
}

struct Bad {
    /// Where the damaged record starts (its FIRST fragment if it has one).
    offset: usize,
    /// The fragment found wrong: anything valid from here on was written
    /// after the damage.
    at: usize,
    reason: String,
    /// Damage no torn write can leave (a record whose checksum matches but
    /// whose content does not decode): corruption wherever it is.
    never_torn: bool,
}

fn bad(offset: usize, reason: impl Into<String>) -> Bad {
    Bad {
        offset,
        at: offset,
        reason: reason.into(),
        never_torn: false,
    }
}

pub fn mask_crc(c: u32) -> u32 {
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn record_crc(typ: u8, data: &[u8]) -> u32 {
    mask_crc(crc32c::crc32c_append(crc32c::crc32c(&[typ]), data))
}

/// A fragment header at `pos` and its data, when it is whole and its
/// checksum matches.
fn fragment(data: &[u8], pos: usize) -> Result<(u8, &[u8]), Bad> {
    let block_end = (pos / BLOCK_SIZE + 1) * BLOCK_SIZE;
    let Some(h) = data.get(pos..pos + HEADER_SIZE) else {
        return Err(bad(pos, "record header cut by the end of the file"));
    };
    let crc = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let len = usize::from(u16::from_le_bytes([h[4], h[5]]));
    let typ = h[6];
    if !(FULL..=LAST).contains(&typ) {
        return Err(bad(
            pos,
            format!("record type {typ} is not FULL/FIRST/MIDDLE/LAST"),
        ));
    }
    let end = pos + HEADER_SIZE + len;
    if end > block_end {
        return Err(bad(
            pos,
            format!("record of {len} bytes crosses its block's end"),
        ));
    }
    let Some(body) = data.get(pos + HEADER_SIZE..end) else {
        return Err(bad(
            pos,
            format!("record of {len} bytes cut by the end of the file"),
        ));
    };
    if record_crc(typ, body) != crc {
        return Err(bad(pos, "record checksum mismatch"));
    }
    Ok((typ, body))
}

/// A record torn in a later fragment is cut from its start; what comes
/// after the wrong fragment tells a tear from corruption.
fn from_pending(mut b: Bad, pending: &Option<(usize, Vec<u8>)>) -> Bad {
    if let Some((start, _)) = pending {
        b.offset = *start;
    }
    b
}

/// Reads `data` from `start` (a record boundary): the records before the
/// first bad spot, and that spot if any.
fn read_until_bad(data: &[u8], start: usize, kind: LogKind) -> (Vec<Record>, Option<Bad>) {
    let mut records = Vec::new();
    let mut pos = start;
    // A record whose FIRST fragment was read: its offset and data so far.
    let mut pending: Option<(usize, Vec<u8>)> = None;
    loop {
        let left_in_block = BLOCK_SIZE - pos % BLOCK_SIZE;
        if left_in_block < HEADER_SIZE {
            let pad = &data[pos..data.len().min(pos + left_in_block)];
            if pad.iter().any(|&b| b != 0) {
                let b = bad(pos, "block trailer is not zero padding");
                return (records, Some(from_pending(b, &pending)));
            }
            pos += pad.len();
            if pad.len() < left_in_block {
                break;
            }
            continue;
        }
        if pos == data.len() {
            break;
        }
        let (typ, body) = match fragment(data, pos) {
            Ok(f) => f,
            Err(b) => return (records, Some(from_pending(b, &pending))),
        };
        let start = pos;
        pos += HEADER_SIZE + body.len();
        let whole = match (typ, pending.take()) {
            (FULL, None) => Some((start, body.to_vec())),
            (FIRST, None) => {
                pending = Some((start, body.to_vec()));
                None
            }
            (MIDDLE, Some((at, mut acc))) => {
                acc.extend_from_slice(body);
                pending = Some((at, acc));
                None
            }
            (LAST, Some((at, mut acc))) => {
                acc.extend_from_slice(body);
                Some((at, acc))
            }
            (FULL | FIRST, Some(p)) => {
                let b = bad(start, "record's FIRST fragment has no LAST");
                return (records, Some(from_pending(b, &Some(p))));
            }
            _ => {
                return (
                    records,
                    Some(bad(start, "MIDDLE or LAST fragment without a FIRST")),
                );
            }
        };
        if let Some((at, bytes)) = whole {
            if kind == LogKind::WriteAhead {
                if let Err(why) = check_batch(&bytes) {
                    let mut b = bad(at, format!("write batch does not decode: {why}"));
                    b.never_torn = true;
                    return (records, Some(b));
                }
            }
            records.push(Record {
                offset: at as u64,
                end: pos as u64,
                data: bytes,
            });
        }
    }
    if pending.is_some() {
        let b = bad(pos, "record's FIRST fragment has no LAST");
        return (records, Some(from_pending(b, &pending)));
    }
    (records, None)
}

/// The first valid fragment at or after `from` (of type FULL or FIRST when
/// `starts_only`). Any position is tried, not only block starts: a writer
/// that appended after garbage wrote at whatever offset the garbage ended.
fn next_valid(data: &[u8], from: usize, starts_only: bool) -> Option<usize> {
    (from..data.len().saturating_sub(HEADER_SIZE - 1)).find(|&pos| {
        let typ = data[pos + HEADER_SIZE - 1];
        let wanted = if starts_only {
            typ == FULL || typ == FIRST
        } else {
            (FULL..=LAST).contains(&typ)
        };
        wanted && BLOCK_SIZE - pos % BLOCK_SIZE >= HEADER_SIZE && fragment(data, pos).is_ok()
    })
}

/// Reads a whole log file strictly.
pub fn scan(data: &[u8], kind: LogKind) -> Scan {
    let (records, bad) = read_until_bad(data, 0, kind);
    let verdict = match bad {
        None => Verdict::Clean,
        Some(b) if b.never_torn || next_valid(data, b.at, false).is_some() => Verdict::Corrupt {
            offset: b.offset as u64,
            reason: b.reason,
        },
        Some(b) => Verdict::TornTail {
            keep: records.last().map_or(0, |r| r.end),
            reason: b.reason,
        },
    };
    Scan { records, verdict }
}

/// What a repair keeps of a damaged log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salvage {
    pub records: Vec<Record>,
    /// Each bad spot skipped: its offset and why.
    pub skipped: Vec<(u64, String)>,
}

/// Every intact record of a log: after a bad spot, reading resumes at the
/// next valid FULL or FIRST fragment.
pub fn salvage(data: &[u8], kind: LogKind) -> Salvage {
    let mut out = Salvage {
        records: Vec::new(),
        skipped: Vec::new(),
    };
    let mut start = Some(0);
    while let Some(from) = start {
        let (records, bad) = read_until_bad(data, from, kind);
        out.records.extend(records);
        let Some(b) = bad else { break };
        out.skipped.push((b.offset as u64, b.reason));
        start = next_valid(data, b.at.max(b.offset + 1), true);
    }
    out
}

/// Encodes records as a fresh log, as LevelDB's writer does.
pub fn encode(records: &[Vec<u8>]) -> Vec<u8> {
    encode_from(0, records)
}

/// Encodes records as LevelDB's writer appends them to a log of `start`
/// bytes (the bytes to append).
pub fn encode_from(start: u64, records: &[Vec<u8>]) -> Vec<u8> {
    let skip = start as usize % BLOCK_SIZE;
    let mut out = Vec::new();
    for rec in records {
        let mut rest: &[u8] = rec;
        let mut first = true;
        loop {
            let left_in_block = BLOCK_SIZE - (skip + out.len()) % BLOCK_SIZE;
            if left_in_block < HEADER_SIZE {
                out.resize(out.len() + left_in_block, 0);
                continue;
            }
            let n = rest.len().min(left_in_block - HEADER_SIZE);
            let last = n == rest.len();
            let typ = match (first, last) {
                (true, true) => FULL,
                (true, false) => FIRST,
                (false, false) => MIDDLE,
                (false, true) => LAST,
            };
            let (frag, tail) = rest.split_at(n);
            out.extend_from_slice(&record_crc(typ, frag).to_le_bytes());
            out.extend_from_slice(&(n as u16).to_le_bytes());
            out.push(typ);
            out.extend_from_slice(frag);
            rest = tail;
            first = false;
            if last {
                break;
            }
        }
    }
    out
}

fn varint(b: &[u8], at: &mut usize) -> Result<usize, String> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or("varint cut")?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return usize::try_from(v).map_err(|_| "varint too large".to_owned());
        }
    }
    Err("varint too long".to_owned())
}

fn take<'a>(b: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let end = at
        .checked_add(n)
        .filter(|&e| e <= b.len())
        .ok_or("length past the end")?;
    let s = &b[*at..end];
    *at = end;
    Ok(s)
}

/// Checks that a record decodes as a write batch: a 12-byte header (sequence,
/// count) then exactly `count` puts and deletes, nothing after.
pub fn check_batch(b: &[u8]) -> Result<(), String> {
    if b.len() < 12 {
        return Err(format!(
            "{} bytes, shorter than the 12-byte header",
            b.len()
        ));
    }
    let count = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
    let mut at = 12;
    let mut n = 0u32;
    while at < b.len() {
        let tag = b[at];
        at += 1;
        let klen = varint(b, &mut at)?;
        take(b, &mut at, klen)?;
        match tag {
            1 => {
                let vlen = varint(b, &mut at)?;
                take(b, &mut at, vlen)?;
            }
            0 => {}
            t => return Err(format!("entry tag {t}")),
        }
        n += 1;
    }
    if n != count {
        return Err(format!("header counts {count} entries, found {n}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seq: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut b = seq.to_le_bytes().to_vec();
        b.extend_from_slice(&1u32.to_le_bytes());
        b.push(1);
        b.push(key.len() as u8);
        b.extend_from_slice(key);
        // Values up to 2^14: two varint bytes at most.
        let n = value.len();
        if n < 128 {
            b.push(n as u8);
        } else {
            b.push((n as u8 & 0x7f) | 0x80);
            b.push((n >> 7) as u8);
        }
        b.extend_from_slice(value);
        b
    }

    fn log(n: usize, size: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
        let recs: Vec<_> = (0..n)
            .map(|i| batch(i as u64, format!("k{i}").as_bytes(), &vec![i as u8; size]))
            .collect();
        let bytes = encode(&recs);
        (recs, bytes)
    }

    fn datas(s: &[Record]) -> Vec<Vec<u8>> {
        s.iter().map(|r| r.data.clone()).collect()
    }

    #[test]
    fn a_whole_log_is_clean_and_round_trips() {
        // Records of 10 KiB cross blocks: FIRST/MIDDLE/LAST fragments and trailers.
        let (recs, bytes) = log(20, 10_000);
        let s = scan(&bytes, LogKind::WriteAhead);
        assert_eq!(s.verdict, Verdict::Clean);
        assert_eq!(datas(&s.records), recs);
    }

    #[test]
    fn every_cut_is_a_torn_tail_that_keeps_the_complete_records() {
        let (recs, bytes) = log(12, 5_000);
        let full = scan(&bytes, LogKind::WriteAhead);
        // Every byte around each fragment boundary, and a stride between.
        let mut cuts: Vec<usize> = (0..bytes.len()).step_by(97).collect();
        for r in &full.records {
            cuts.extend((r.end as usize).saturating_sub(9)..(r.end as usize + 9).min(bytes.len()));
        }
        for b in (BLOCK_SIZE..bytes.len()).step_by(BLOCK_SIZE) {
            cuts.extend(b - 9..b + 9);
        }
        for cut in cuts {
            let s = scan(&bytes[..cut], LogKind::WriteAhead);
            let whole = s.records.len();
            assert_eq!(datas(&s.records), recs[..whole], "cut at {cut}");
            let end = s.records.last().map_or(0, |r| r.end);
            match s.verdict {
                Verdict::Clean => assert!(cut as u64 - end < HEADER_SIZE as u64, "cut at {cut}"),
                Verdict::TornTail { keep, .. } => assert_eq!(keep, end, "cut at {cut}"),
                v @ Verdict::Corrupt { .. } => panic!("cut at {cut} taken for corruption: {v:?}"),
            }
            // Nothing complete is lost: the next record ends past the cut.
            if whole < recs.len() {
                assert!(full.records[whole].end > cut as u64, "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_zero_filled_tail_is_torn() {
        let (_, mut bytes) = log(3, 100);
        let end = bytes.len() as u64;
        bytes.resize(bytes.len() + 4_000, 0);
        let s = scan(&bytes, LogKind::WriteAhead);
        assert_eq!(s.records.len(), 3);
        assert!(matches!(s.verdict, Verdict::TornTail { keep, .. } if keep == end));
    }

    #[test]
    fn damage_followed_by_valid_records_is_corruption_at_its_offset() {
        let (recs, mut bytes) = log(40, 3_000);
        let s = scan(&bytes, LogKind::WriteAhead);
        let victim = &s.records[5];
        bytes[victim.offset as usize + 20] ^= 0xff;
        let s2 = scan(&bytes, LogKind::WriteAhead);
        assert_eq!(
            s2.verdict,
            Verdict::Corrupt {
                offset: victim.offset,
                reason: "record checksum mismatch".into()
            }
        );
        // A repair keeps every record not in a damaged block.
        let sv = salvage(&bytes, LogKind::WriteAhead);
        assert_eq!(sv.skipped.len(), 1);
        assert!(sv.records.len() >= recs.len() - 12, "{}", sv.records.len());
        assert_eq!(sv.records[..5], s.records[..5]);
        assert_eq!(sv.records.last(), s.records.last());
        let fresh = encode(&datas(&sv.records));
        assert_eq!(scan(&fresh, LogKind::WriteAhead).verdict, Verdict::Clean);
    }

    #[test]
    fn a_valid_checksum_over_a_bad_batch_is_corruption() {
        // The shape that panics rusty-leveldb's batch decoder: a key length past the end.
        let mut b = batch(1, b"key", b"v");
        b[13] = 200;
        let bytes = encode(&[batch(0, b"a", b"b"), b]);
        let s = scan(&bytes, LogKind::WriteAhead);
        assert_eq!(s.records.len(), 1);
        assert!(
            matches!(&s.verdict, Verdict::Corrupt { offset, reason }
                if *offset == s.records[0].end && reason.contains("does not decode")),
            "{:?}",
            s.verdict
        );
        // A manifest's records are not batches.
        assert_eq!(scan(&bytes, LogKind::Manifest).verdict, Verdict::Clean);
    }

    #[test]
    fn records_appended_after_a_torn_record_are_found_and_salvaged() {
        let (recs, bytes) = log(4, 12_000);
        let full = scan(&bytes, LogKind::WriteAhead);
        // Torn inside the last record's second fragment, then new records
        // appended where the garbage ended, mid-block.
        let torn = full.records[3].offset as usize + 8_000;
        let mut damaged = bytes[..torn].to_vec();
        let after: Vec<_> = (0..3).map(|i| batch(100 + i, b"after", b"v")).collect();
        damaged.extend(encode_from(torn as u64, &after));
        let s = scan(&damaged, LogKind::WriteAhead);
        assert!(
            matches!(s.verdict, Verdict::Corrupt { offset, .. } if offset == full.records[3].offset),
            "{:?}",
            s.verdict
        );
        let sv = salvage(&damaged, LogKind::WriteAhead);
        let mut want = recs[..3].to_vec();
        want.extend(after);
        assert_eq!(datas(&sv.records), want);
    }
}
