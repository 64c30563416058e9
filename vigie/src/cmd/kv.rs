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
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
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
        db: String,
    },
    Get {
        db: String,
        key: String,
    },
    Exists {
        db: String,
        key: String,
    },
    Put {
        db: String,
        key: String,
        value: String,
        /// Do not wait for fdatasync.
        #[arg(long)]
        volatile: bool,
    },
    Delete {
        db: String,
        key: String,
    },
    /// List a range: start inclusive, stop exclusive.
    Range {
        db: String,
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        stop: Option<String>,
        #[arg(long)]
        prefix: Option<String>,
        #[arg(long)]
        reverse: bool,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        keys_only: bool,
    },
    /// Server counters.
    Stats,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::connect(&args.escalator)?;
    let timeout = std::time::Duration::from_secs(args.timeout.max(1));
    client.set_timeouts(timeout.min(std::time::Duration::from_secs(1)), timeout);
    let bytes = |s: &Option<String>| s.as_ref().map(|s| s.as_bytes().to_vec());
    match args.op {
        Op::Create { db } => {
            client.create(&db)?;
            println!(
                "{}",
                if args.json {
                    "{\"created\":true}".into()
                } else {
                    format!("created {db}")
                }
            );
        }
        Op::Get { db, key } => {
            let v = client.connect_db(&db)?.get(key.as_bytes())?;
            match (&v, args.json) {
                (_, true) => println!(
                    "{}",
                    serde_json::json!({ "key": key, "value": v.as_deref().map(text) })
                ),
                (Some(v), false) => println!("{}", text(v)),
                (None, false) => {
                    eprintln!("{key}: not found");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Op::Exists { db, key } => {
            let e = client.connect_db(&db)?.exists(key.as_bytes())?;
            println!("{e}");
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
            for e in client.connect_db(&db)?.iter(spec) {
                let e = e?;
                let value = e.value.as_deref().map(text);
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({ "key": text(&e.key), "value": value })
                    );
                } else {
                    match value {
                        Some(v) => println!("{}\t{v}", text(&e.key)),
                        None => println!("{}", text(&e.key)),
                    }
                }
            }
        }
        Op::Stats => {
            let s = client.stats()?;
            println!(
                "{}",
                serde_json::json!({
                    "requests": s.requests, "durable_writes": s.durable_writes,
                    "syncs": s.syncs, "errors": s.errors, "databases": s.databases,
                })
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
