//! `vigie kv`: the Escalator client on the command line, for operators and
//! the demo. Keys and values are UTF-8 text here; output is one line per
//! entry, or JSON with `--json`.

use std::process::ExitCode;

use clap::Subcommand;
use vigie_escalator::{Client, RangeSpec};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Escalator endpoint.
    #[arg(long, default_value = super::DEFAULT_ESCALATOR)]
    escalator: String,
    /// Seconds before giving up on the server.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    #[command(subcommand)]
    op: Op,
}

#[derive(Debug, Subcommand)]
enum Op {
    /// Create a database (no error if it exists).
    Create {
        /// The database's name.
        db: String,
    },
    /// Print a key's value (exit 1 when absent).
    Get {
        /// The database's name.
        db: String,
        /// The key (UTF-8 text).
        key: String,
    },
    /// Say whether a key is there (exit 1 when absent).
    Exists {
        /// The database's name.
        db: String,
        /// The key (UTF-8 text).
        key: String,
    },
    /// Store a value under a key (durable unless --volatile).
    Put {
        /// The database's name.
        db: String,
        /// The key (UTF-8 text).
        key: String,
        /// The value (UTF-8 text).
        value: String,
        /// Do not wait for fdatasync.
        #[arg(long)]
        volatile: bool,
    },
    /// Delete a key (no error if absent).
    Delete {
        /// The database's name.
        db: String,
        /// The key (UTF-8 text).
        key: String,
    },
    /// List a range: start inclusive, stop exclusive.
    Range {
        /// The database's name.
        db: String,
        /// The first key (inclusive).
        #[arg(long)]
        start: Option<String>,
        /// The key to stop before (exclusive).
        #[arg(long)]
        stop: Option<String>,
        /// Only keys with this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// Last key first.
        #[arg(long)]
        reverse: bool,
        /// At most this many entries.
        #[arg(long)]
        limit: Option<u32>,
        /// Keys without their values.
        #[arg(long)]
        keys_only: bool,
    },
    /// Server counters.
    Stats,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn run(args: Args, format: super::out::Format) -> anyhow::Result<ExitCode> {
    let json = format == super::out::Format::Json;
    let client = Client::connect(&args.escalator)?;
    let timeout = std::time::Duration::from_secs(args.timeout.max(1));
    client.set_timeouts(timeout.min(std::time::Duration::from_secs(1)), timeout);
    let bytes = |s: &Option<String>| s.as_ref().map(|s| s.as_bytes().to_vec());
    match args.op {
        Op::Create { db } => {
            client.create(&db)?;
            super::out::line(&if json {
                "{\"created\":true}".into()
            } else {
                format!("created {db}")
            })?;
        }
        Op::Get { db, key } => {
            let v = client.connect_db(&db)?.get(key.as_bytes())?;
            match (&v, json) {
                (_, true) => super::out::json(
                    &serde_json::json!({ "key": key, "value": v.as_deref().map(text) }),
                )?,
                (Some(v), false) => super::out::line(&text(v))?,
                (None, false) => {
                    eprintln!("{key}: not found");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Op::Exists { db, key } => {
            let e = client.connect_db(&db)?.exists(key.as_bytes())?;
            super::out::line(&e.to_string())?;
            if !e {
                return Ok(ExitCode::FAILURE);
            }
        }
        Op::Put {
            db,
            key,
            value,
            volatile,
        } => {
            client
                .connect_db(&db)?
                .durable(!volatile)
                .put(key.as_bytes(), value.as_bytes())?;
        }
        Op::Delete { db, key } => client.connect_db(&db)?.delete(key.as_bytes())?,
        Op::Range {
            db,
            start,
            stop,
            prefix,
            reverse,
            limit,
            keys_only,
        } => {
            let spec = RangeSpec {
                start: bytes(&start),
                stop: bytes(&stop),
                prefix: bytes(&prefix),
                reverse,
                limit,
                keys_only,
            };
            range(&client, &db, spec, json)?;
        }
        Op::Stats => {
            let s = client.stats()?;
            super::out::json(&serde_json::json!({
                "requests": s.requests, "durable_writes": s.durable_writes,
                "syncs": s.syncs, "errors": s.errors, "databases": s.databases,
            }))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A range's records, one a line (key and value apart by a tab: neither
/// can forge one), or one JSON object each.
fn range(client: &Client, db: &str, spec: RangeSpec, json: bool) -> anyhow::Result<()> {
    for e in client.connect_db(db)?.iter(spec) {
        let e = e?;
        let value = e.value.as_deref().map(text);
        if json {
            super::out::json(&serde_json::json!({ "key": text(&e.key), "value": value }))?;
            continue;
        }
        let key = text(&e.key);
        let key = super::escape::field(&key);
        match value {
            Some(v) => super::out::line(&format!("{key}\t{}", super::escape::field(&v)))?,
            None => super::out::line(&key)?,
        }
    }
    Ok(())
}
