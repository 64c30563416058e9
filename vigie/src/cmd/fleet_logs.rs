//! `vigie logs --target SELECTOR`: the logs of every host the selector
//! matches, read host after host with the single-host pacing
//! ([`pace`]), merged by time, each line prefixed by its host. The whole
//! read is bounded like one host's: at most [`pace::BURST_BYTES`] across
//! every host, then it stops, saying so. A host that cannot be read
//! (offline, outside the operator's `logs.read` scope) is said on stderr,
//! the others are shown, and the exit code says some were missed.

use std::process::ExitCode;

use regex::Regex;
use serde::Serialize;
use vigie_changes::Selector;
use vigie_client::{calls, ClientError};
use vigie_wire::observe::{LogCursor, LogSource, LogsQuery};

use super::conn::Tower;
use super::escape;
use super::failure::{Cause, Failure};
use super::json::LogLineJson;
use super::out::{self, Format};
use super::pace::{self, Next, Pace};

/// What to read on every matching host.
pub struct Ask<'a> {
    pub selector: &'a str,
    pub source: LogSource,
    pub since_ms: Option<u64>,
    pub grep: Option<&'a Regex>,
    pub one_change: bool,
}

/// One record read, with its host and its time (host clock, Unix ms).
struct Line {
    at_ms: u64,
    host: String,
    line: LogLineJson,
}

#[derive(Serialize)]
struct FleetLineJson<'a> {
    host: &'a str,
    #[serde(flatten)]
    line: &'a LogLineJson,
}

/// How one host's read ended.
enum Read {
    /// Everything there was (or all `since_ms` asked).
    All,
    /// The fleet's budget ran out: nothing more is read.
    Cut,
    /// The tower refused it (the refusal's words).
    Refused(String),
}

pub fn read(tower: &mut Tower, ask: Ask, format: Format) -> anyhow::Result<ExitCode> {
    let selector = Selector::parse(ask.selector).map_err(|e| {
        Failure::error(
            Cause::Usage,
            format!("--target {}: {e}", escape::field(ask.selector)),
        )
    })?;
    let hosts = tower.ask(calls::Hosts)?;
    let mut ids: Vec<String> = hosts
        .iter()
        .filter(|h| selector.matches(&h.id, &h.labels))
        .map(|h| h.id.clone())
        .collect();
    ids.sort();
    if ids.is_empty() {
        return Err(Failure::error(
            Cause::NotFound,
            format!("no host matches --target {}", escape::field(ask.selector)),
        ));
    }
    let mut budget = pace::BURST_BYTES;
    let mut lines = Vec::new();
    let mut missed = 0usize;
    for host in &ids {
        match read_host(tower, host, &ask, &mut budget, &mut lines)? {
            Read::All => {}
            Read::Refused(why) => {
                missed += 1;
                out::warn(&format!("vigie logs: {host}: {}", escape::field(&why)));
            }
            Read::Cut => {
                out::warn(&format!(
                    "vigie logs: stopped after {} MiB over the hosts read so far: \
                     narrow --target, --since or --service",
                    pace::BURST_BYTES >> 20
                ));
                break;
            }
        }
    }
    // Stable: records of the same millisecond keep their host's order.
    lines.sort_by_key(|l| l.at_ms);
    for l in &lines {
        match format {
            Format::Json => out::json(&FleetLineJson {
                host: &l.host,
                line: &l.line,
            })?,
            Format::Text => out::line(&format!(
                "{} {}",
                escape::field(&l.host),
                line_text(&l.line, ask.one_change)
            ))?,
        }
    }
    if let (true, LogSource::Service { name }) = (lines.is_empty(), &ask.source) {
        let filtered = ask.since_ms.is_some() || ask.grep.is_some();
        quiet_note(ask.selector, name, filtered);
    }
    if missed > 0 {
        return Err(Failure::error(
            Cause::Unavailable,
            format!(
                "{missed} of {} hosts could not be read (said above)",
                ids.len()
            ),
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads `host`'s records into `into`, page after page, within `budget`
/// bytes (what is left of the fleet's).
fn read_host(
    tower: &mut Tower,
    host: &str,
    ask: &Ask,
    budget: &mut u64,
    into: &mut Vec<Line>,
) -> anyhow::Result<Read> {
    let mut cursor: Option<LogCursor> = None;
    let mut pace = Pace::new(false);
    loop {
        let query = LogsQuery {
            host: host.to_owned(),
            source: ask.source.clone(),
            since_ms: ask.since_ms,
            cursor,
            max_bytes: pace::CHUNK,
        };
        let page = match tower.ask_raw(calls::Logs { query }) {
            Ok(page) => page,
            Err(ClientError::Refused(f)) => return Ok(Read::Refused(f.message)),
            Err(e) => return Err(tower.explain(e)),
        };
        if let Some(why) = &page.beyond_retention {
            out::warn(&format!("vigie logs: {host}: {why}"));
        }
        for record in page.text.lines() {
            keep(host, record, ask, into);
        }
        cursor = Some(page.cursor);
        *budget = budget.saturating_sub(page.text.len() as u64);
        if *budget == 0 && page.more {
            return Ok(Read::Cut);
        }
        match pace.after(page.text.len(), page.more) {
            Next::Now => {}
            Next::Done => return Ok(Read::All),
            // Without --follow: only Outrun, which is the budget again.
            Next::After(_) | Next::SkipToEnd | Next::Outrun => return Ok(Read::Cut),
        }
    }
}

/// Adds one record of `host` if it parses and `--grep` matches its text.
fn keep(host: &str, record: &str, ask: &Ask, into: &mut Vec<Line>) {
    let Some(line) = LogLineJson::parse(record, &ask.source) else {
        return;
    };
    if ask.grep.is_some_and(|re| !re.is_match(&line.text)) {
        return;
    }
    let at_ms = record
        .split('\t')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    into.push(Line {
        at_ms,
        host: host.to_owned(),
        line,
    });
}

/// Said on stderr when a service's read printed no line: a service that
/// printed nothing yet is not an error (stdout stays empty, exit 0).
pub(super) fn quiet_note(host: &str, service: &str, filtered: bool) {
    if filtered {
        out::warn(&format!(
            "vigie logs: {host}: no line of {service} matches --since/--grep"
        ));
    } else {
        out::warn(&format!(
            "vigie logs: {host}: {service} has printed no line yet"
        ));
    }
}

/// A record as a line: time, where it came from (each field escaped: a
/// forged record cannot forge a prefix), ` | `, then its text (its
/// controls shown by `out::line`).
pub(super) fn line_text(l: &LogLineJson, one_change: bool) -> String {
    let f = |s: Option<&str>| escape::field(s.unwrap_or("-")).into_owned();
    let at = escape::field(l.at.get(11..23).unwrap_or(&l.at)).into_owned();
    match (&l.service, &l.change) {
        (Some(_), _) => format!(
            "{at} {}/{} | {}",
            f(l.instance.as_deref()),
            f(l.replica.as_deref()),
            l.text
        ),
        (None, Some(c)) => {
            let step = l.step.map_or("-".into(), |s| s.to_string());
            let undo = if l.phase.as_deref() == Some("undo") {
                " undo"
            } else {
                ""
            };
            let who = if one_change {
                String::new()
            } else {
                format!("{} ", escape::field(c))
            };
            format!(
                "{at} {who}step {step}{undo} {} | {}",
                f(l.stream.as_deref()),
                l.text
            )
        }
        (None, None) => l.text.clone(),
    }
}
