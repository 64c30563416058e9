//! `vigie hosts --metrics` (the latest host metrics the referee holds) and
//! `vigie logs HOST` (a host's logs, fetched from the host through the
//! tower: steps' whole output, or a deployed service's stdout/stderr;
//! `--target` reads many hosts: `fleet_logs.rs`).

use std::process::ExitCode;
use std::time::Duration;

use vigie_client::calls;
use vigie_wire::observe::{HostMetricsView, LogCursor, LogSource, LogsPage, LogsQuery};

use super::conn::{Conn, Tower};
use super::json::{HostMetricsJson, LogLineJson};
use super::out::{self, Format, Table};
use super::pace::{self, Next, Pace};

/// A logs call waits for the host (the referee gives it 10 s).
const LOGS_TIMEOUT: Duration = Duration::from_secs(15);

pub fn host_metrics(
    tower: &mut Tower,
    format: Format,
    page: &super::page::PageArgs,
) -> anyhow::Result<ExitCode> {
    let call = calls::HostMetrics { host: None };
    let (views, info) = super::page::call(tower, call, page.ask())?;
    if format == Format::Json {
        for v in &views {
            out::json(&HostMetricsJson::from(v))?;
        }
        super::page::footer(&info, format, "hosts")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&[
        "HOST",
        "AGE",
        "CPUS",
        "LOAD1",
        "LOAD5",
        "MEM USED",
        "DISK USED",
        "UPTIME",
        "SERVICES",
    ]);
    for v in &views {
        t.row(metrics_row(v));
    }
    if !t.is_empty() {
        t.print()?;
    }
    super::page::footer(&info, format, "hosts")?;
    Ok(ExitCode::SUCCESS)
}

fn gib(bytes: u64) -> String {
    format!("{:.1}G", bytes as f64 / (1u64 << 30) as f64)
}

fn used(total: u64, available: u64) -> String {
    if total == 0 {
        return "-".into();
    }
    let pct = 100.0 * total.saturating_sub(available) as f64 / total as f64;
    format!("{pct:.0}% of {}", gib(total))
}

/// Replicas running, replicas that should, and replicas of instances
/// kept stopped on purpose: an instance none of whose replicas runs while
/// another instance of the same service does is the one a deploy keeps
/// for a rollback, not a service down.
fn count_services(services: &[vigie_wire::observe::ServiceState]) -> (usize, usize, usize) {
    let live: std::collections::BTreeSet<(&str, &str)> = services
        .iter()
        .filter(|x| x.running)
        .map(|x| (x.name.as_str(), x.instance.as_str()))
        .collect();
    let serving: std::collections::BTreeSet<&str> = live.iter().map(|(n, _)| *n).collect();
    let kept = services
        .iter()
        .filter(|x| {
            serving.contains(x.name.as_str())
                && !live.contains(&(x.name.as_str(), x.instance.as_str()))
        })
        .count();
    let running = services.iter().filter(|x| x.running).count();
    (running, services.len() - kept, kept)
}

/// The replicas running, and what the health watch did when it did.
fn services_cell(
    (running, listed, kept): (usize, usize, usize),
    s: &vigie_wire::observe::HostSample,
) -> String {
    let mut cell = format!("{running}/{listed} running");
    if kept > 0 {
        cell.push_str(&format!(", {kept} kept for a rollback"));
    }
    if s.replica_restarts > 0 {
        cell.push_str(&format!(", {} restarted", s.replica_restarts));
    }
    if s.replicas_given_up > 0 {
        cell.push_str(&format!(", {} given up", s.replicas_given_up));
    }
    cell
}

fn metrics_row(v: &HostMetricsView) -> Vec<String> {
    let Some(s) = &v.sample else {
        let none = || "-".to_string();
        return vec![
            v.host.clone(),
            "no sample".into(),
            none(),
            none(),
            none(),
            none(),
            none(),
            none(),
            none(),
        ];
    };
    let age = if v.stale {
        format!("{}s (stale)", v.age_ms / 1000)
    } else {
        format!("{}s", v.age_ms / 1000)
    };
    let (running, listed, kept) = count_services(&s.services);
    let listed = listed + s.services_omitted as usize;
    vec![
        v.host.clone(),
        age,
        s.cpus.to_string(),
        format!("{:.2}", f64::from(s.load_centi[0]) / 100.0),
        format!("{:.2}", f64::from(s.load_centi[1]) / 100.0),
        used(s.memory_total_bytes, s.memory_available_bytes),
        used(s.disk_total_bytes, s.disk_available_bytes),
        humantime::format_duration(Duration::from_secs(s.uptime_ms / 1000)).to_string(),
        services_cell((running, listed, kept), s),
    ]
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The host whose logs to read.
    #[arg(value_name = "HOST", required_unless_present = "target")]
    host: Option<String>,
    /// Every host this selector matches (`web-*`, `role=web`, `*`): their
    /// lines merged by time, each prefixed by its host; at most what one
    /// host's read carries in all.
    #[arg(long, value_name = "SELECTOR", conflicts_with_all = ["host", "follow", "raw"])]
    target: Option<String>,
    /// Only lines whose text matches this regular expression.
    #[arg(long, value_name = "RE", value_parser = regex::Regex::new)]
    grep: Option<regex::Regex>,
    /// A deployed service's stdout/stderr (its `auto-APP-ENV-SERVICE` name)
    /// instead of the steps' output.
    #[arg(long, value_name = "NAME", conflicts_with = "change")]
    service: Option<String>,
    /// Only the output of this change's steps.
    #[arg(long, value_name = "ID")]
    change: Option<String>,
    /// Only what was written in the last DURATION, e.g. 10m, 2h.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// Keep printing what comes next, until interrupted, like `tail -f`:
    /// from the end, or from --since when given (at most 256 KiB a
    /// second: a host writing faster is skipped ahead, saying how much).
    #[arg(long)]
    follow: bool,
    /// Each line's text exactly as the host kept it, nothing added and
    /// nothing escaped: for a file or a pipe, not a terminal.
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    pub(super) conn: Conn,
}

/// How the lines are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Time, origin and text, escaped for a terminal.
    Text,
    Json,
    /// The text alone, as it came (`--raw`).
    Raw,
}

pub fn logs(a: LogsArgs, format: Format) -> anyhow::Result<ExitCode> {
    if a.raw && format == Format::Json {
        eprintln!("vigie logs: --raw and --json are two different outputs: choose one");
        return Ok(ExitCode::from(crate::runtime::EXIT_CONFIG));
    }
    let mut tower = a.conn.client()?;
    tower.wait_at_least(LOGS_TIMEOUT);
    let shape = match (a.raw, format) {
        (true, _) => Shape::Raw,
        (false, Format::Json) => Shape::Json,
        (false, Format::Text) => Shape::Text,
    };
    let source = source(a.service.clone(), a.change.clone());
    let since_ms = a
        .since
        .map(|d| vigie_referee::now_ms().saturating_sub(d.as_millis() as u64));
    let grep = a.grep.as_ref();
    let host = match (&a.host, &a.target) {
        (Some(host), _) => host.clone(),
        (None, Some(selector)) => {
            let ask = super::fleet_logs::Ask {
                selector,
                source,
                since_ms,
                grep,
                one_change: a.change.is_some(),
            };
            return super::fleet_logs::read(&mut tower, ask, format);
        }
        (None, None) => anyhow::bail!("a HOST or --target is needed"),
    };
    let read = HostRead {
        host: &host,
        source: &source,
        since_ms,
        follow: a.follow,
        only: (a.change.is_some(), grep),
        shape,
    };
    let shown = read_host(&mut tower, &read)?;
    if shown == 0 && !a.follow {
        if let LogSource::Service { name } = &source {
            super::fleet_logs::quiet_note(&host, name, a.since.is_some() || grep.is_some());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `vigie logs HOST` reads and how it prints it.
struct HostRead<'a> {
    host: &'a str,
    source: &'a LogSource,
    since_ms: Option<u64>,
    follow: bool,
    /// Whether one change is shown, and `--grep`.
    only: (bool, Option<&'a regex::Regex>),
    shape: Shape,
}

/// Reads and prints one host's records, paced; returns how many lines it
/// printed. `--follow` starts at the end, like `tail -f`: only what comes
/// next, unless `--since` says from when.
fn read_host(tower: &mut Tower, r: &HostRead) -> anyhow::Result<usize> {
    let mut cursor: Option<LogCursor> = None;
    let mut pace = Pace::new(r.follow);
    let mut from_end = r.follow && r.since_ms.is_none();
    let mut skip = false;
    let mut shown = 0;
    loop {
        let query = LogsQuery {
            host: r.host.to_owned(),
            source: r.source.clone(),
            // Records older than the end of time: none, the cursor to the end.
            since_ms: if skip || from_end {
                Some(u64::MAX)
            } else {
                r.since_ms
            },
            cursor,
            max_bytes: pace::CHUNK,
        };
        let page = tower.ask(calls::Logs { query })?;
        tracing::debug!(
            event = "logs_page",
            bytes = page.text.len(),
            more = page.more,
            skipped = page.skipped_bytes,
            from_end
        );
        if skip {
            out::warn(&format!(
                "vigie logs: … {} bytes skipped: the host writes faster than --follow shows",
                page.skipped_bytes
            ));
        }
        shown += print_page(&page, r.source, r.only, r.shape)?;
        cursor = Some(page.cursor);
        (skip, from_end) = (false, false);
        match pace.after(page.text.len(), page.more) {
            Next::Now => {}
            Next::After(d) => std::thread::sleep(d),
            Next::SkipToEnd => skip = true,
            Next::Done => return Ok(shown),
            Next::Outrun => {
                out::warn(&format!(
                    "vigie logs: stopped after {} MiB: the host writes faster than this reads \
                     (--follow skips ahead)",
                    pace::BURST_BYTES >> 20
                ));
                return Ok(shown);
            }
        }
    }
}

/// A service's output (`--service`), or the steps' (of one `--change`).
fn source(service: Option<String>, change: Option<String>) -> LogSource {
    match service {
        Some(name) => LogSource::Service { name },
        None => LogSource::Steps { change },
    }
}

/// `only`: whether one change is shown, and `--grep`. Returns the lines
/// printed.
fn print_page(
    page: &LogsPage,
    source: &LogSource,
    only: (bool, Option<&regex::Regex>),
    shape: Shape,
) -> anyhow::Result<usize> {
    let (one_change, grep) = only;
    let mut printed = 0;
    if let Some(why) = &page.beyond_retention {
        out::warn(&format!("vigie logs: {why}"));
    }
    for record in page.text.lines() {
        let Some(l) = LogLineJson::parse(record, source) else {
            continue;
        };
        if grep.is_some_and(|re| !re.is_match(&l.text)) {
            continue;
        }
        match shape {
            Shape::Json => out::json(&l)?,
            Shape::Raw => out::raw(&l.text)?,
            Shape::Text => out::line(&super::fleet_logs::line_text(&l, one_change))?,
        }
        printed += 1;
    }
    Ok(printed)
}

#[cfg(test)]
mod tests {
    use vigie_wire::observe::ServiceState;

    fn replica(instance: &str, replica: &str, running: bool) -> ServiceState {
        ServiceState {
            name: "auto-shop-prod-web".into(),
            instance: instance.into(),
            replica: replica.into(),
            running,
        }
    }

    /// Issue 19 item 8: the stopped instance a deploy keeps for a
    /// rollback is not counted as replicas down; a replica of the serving
    /// instance that stopped is.
    #[test]
    fn the_instance_kept_for_a_rollback_is_not_counted_as_down() {
        let kept = [
            replica("2", "1", false),
            replica("2", "2", false),
            replica("3", "1", true),
            replica("3", "2", true),
        ];
        assert_eq!(super::count_services(&kept), (2, 2, 2));
        let down = [replica("3", "1", true), replica("3", "2", false)];
        assert_eq!(super::count_services(&down), (1, 2, 0));
        let all_down = [replica("2", "1", false), replica("3", "1", false)];
        assert_eq!(super::count_services(&all_down), (0, 2, 0));
    }
}
