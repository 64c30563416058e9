//! Log records as a plug reads them back to answer the tower's logs
//! requests: files of records written from what a step printed (any
//! bytes), or found as they are on disk (torn by a crash, or damaged), read
//! with any query. The invariant the referee relies on: an answer never
//! holds more text than was asked (the referee refuses one that does).
//! The frames carrying the answers are fuzzed by `wire_frame`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use vigie_drivers::OutputSink;
use vigie_plug::LogStore;
use vigie_wire::observe::{LogCursor, LogSource, LogsQuery, MAX_LOG_CHUNK};

/// One store directory per fuzzing process, emptied at each input.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| std::env::temp_dir().join(format!("vigie-fuzz-logs-{}", std::process::id())))
}

#[derive(Debug, Arbitrary)]
enum Written {
    /// What a step printed, in chunks, on either stream.
    Printed {
        change: bool,
        chunks: Vec<(bool, Vec<u8>)>,
    },
    /// The bytes of a steps file, as found in generation 1 or 2.
    Raw { second: bool, bytes: Vec<u8> },
}

#[derive(Debug, Arbitrary)]
struct Input {
    written: Written,
    only_change: bool,
    service: Option<String>,
    since_ms: Option<u64>,
    cursor: Option<(u8, u16)>,
    max_bytes: u32,
}

fn write(store: &LogStore, written: Written) {
    match written {
        Written::Printed { change, chunks } => {
            store.begin_step(if change { "c1" } else { "c2" }, 0, "do");
            for (err, bytes) in chunks {
                store.write(if err { "err" } else { "out" }, &bytes);
            }
            store.end_step();
        }
        Written::Raw { second, bytes } => {
            let generation = if second { 2 } else { 1 };
            let file = store.dir().join(format!("steps.{generation:012}.log"));
            std::fs::write(file, bytes).expect("the fuzzer's temp dir is writable");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let dir = dir();
    let _ = std::fs::remove_dir_all(dir);
    let store = LogStore::open(dir).expect("the fuzzer's temp dir is writable");
    write(&store, input.written);
    let source = match input.service {
        Some(name) => LogSource::Service { name },
        None => LogSource::Steps {
            change: input.only_change.then(|| "c1".to_owned()),
        },
    };
    let query = LogsQuery {
        host: "web-1".into(),
        source,
        since_ms: input.since_ms,
        cursor: input.cursor.map(|(g, o)| LogCursor {
            generation: u64::from(g),
            offset: u64::from(o),
        }),
        max_bytes: input.max_bytes,
    };
    if let Ok(page) = store.read(&query) {
        let max = input.max_bytes.clamp(1, MAX_LOG_CHUNK) as usize;
        assert!(
            page.text.len() <= max,
            "{} bytes of text answered, {max} asked",
            page.text.len()
        );
    }
});
