//! Log records as a plug reads them back to answer the tower's logs
//! requests: files of records written from what a step printed (any
//! bytes), or found as they are on disk (torn by a crash or a full disk,
//! or damaged), read with any query. The invariant the referee relies on:
//! an answer never holds more text than was asked (the referee refuses one
//! that does). The frames carrying the answers are fuzzed by `wire_frame`.
//!
//! Input: a flags byte, the asked size (2 bytes, big-endian), the `since`
//! time (2 bytes) and a cursor (generation 1 byte, offset 2 bytes) when
//! their flags are set, then the body: the file's bytes, or what the step
//! printed, each NUL starting a new write on the other stream.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vigie_drivers::OutputSink;
use vigie_plug::LogStore;
use vigie_wire::observe::{LogCursor, LogSource, LogsQuery, MAX_LOG_CHUNK};

const RAW: u8 = 1;
const SECOND_GENERATION: u8 = 2;
const ONLY_CHANGE: u8 = 4;
const SERVICE: u8 = 8;
const SINCE: u8 = 16;
const CURSOR: u8 = 32;
const SERVICE_NAME: &str = "auto-shop-prod-web";

/// One store directory per fuzzing process, emptied at each input.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| std::env::temp_dir().join(format!("vigie-fuzz-logs-{}", std::process::id())))
}

fn take<const N: usize>(data: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = data.split_first_chunk::<N>()?;
    *data = rest;
    Some(*head)
}

fn write(store: &LogStore, flags: u8, body: &[u8]) {
    if flags & RAW == 0 {
        store.begin_step(if flags & ONLY_CHANGE == 0 { "c2" } else { "c1" }, 0, "do");
        for (i, chunk) in body.split(|b| *b == 0).enumerate() {
            store.write(if i % 2 == 0 { "out" } else { "err" }, chunk);
        }
        store.end_step();
        return;
    }
    let source = if flags & SERVICE == 0 {
        "steps".to_owned()
    } else {
        format!("service-{SERVICE_NAME}")
    };
    let generation = if flags & SECOND_GENERATION == 0 { 1 } else { 2 };
    let file = store.dir().join(format!("{source}.{generation:012}.log"));
    std::fs::write(file, body).expect("the fuzzer's temp dir is writable");
}

fn query(flags: u8, data: &mut &[u8]) -> Option<LogsQuery> {
    let max_bytes = u32::from(u16::from_be_bytes(take(data)?));
    let since_ms = match flags & SINCE {
        0 => None,
        _ => Some(u64::from(u16::from_be_bytes(take(data)?))),
    };
    let cursor = match flags & CURSOR {
        0 => None,
        _ => {
            let [generation] = take(data)?;
            Some(LogCursor {
                generation: u64::from(generation),
                offset: u64::from(u16::from_be_bytes(take(data)?)),
            })
        }
    };
    let source = match flags & SERVICE {
        0 => LogSource::Steps {
            change: (flags & ONLY_CHANGE != 0).then(|| "c1".to_owned()),
        },
        _ => LogSource::Service {
            name: SERVICE_NAME.to_owned(),
        },
    };
    Some(LogsQuery {
        host: "web-1".into(),
        source,
        since_ms,
        cursor,
        max_bytes,
    })
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let Some([flags]) = take(&mut data) else {
        return;
    };
    let Some(query) = query(flags, &mut data) else {
        return;
    };
    let dir = dir();
    let _ = std::fs::remove_dir_all(dir);
    let store = LogStore::open(dir).expect("the fuzzer's temp dir is writable");
    write(&store, flags, data);
    if let Ok(page) = store.read(&query) {
        let max = query.max_bytes.clamp(1, MAX_LOG_CHUNK) as usize;
        assert!(
            page.text.len() <= max,
            "{} bytes of text answered, {max} asked",
            page.text.len()
        );
    }
});
