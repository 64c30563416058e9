//! `vigie hosts --metrics` (the latest host metrics the referee holds) and
//! `vigie logs HOST` (a host's logs, fetched from the host through the
//! tower: steps' whole output, or a deployed service's stdout/stderr).

use std::process::ExitCode;
use std::time::Duration;

use vigie_wire::observe::{HostMetricsView, LogCursor, LogSource, LogsPage, LogsQuery};
use vigie_wire::tower::{ApiAnswer, ApiCall};

use super::conn::{Conn, Tower};
use super::json::{HostMetricsJson, LogLineJson};
use super::out::{self, Format, Table};

/// A chunk asked of the host at a time.
const CHUNK: u32 = 64 * 1024;
/// How long `--follow` waits before asking again when it is up to date.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// A logs call waits for the host (the referee gives it 10 s).
const LOGS_TIMEOUT: Duration = Duration::from_secs(15);

pub fn host_metrics(tower: &mut Tower, format: Format) -> anyhow::Result<ExitCode> {
    let ApiAnswer::HostMetrics(views) = tower.call(ApiCall::HostMetrics { host: None })? else {
        anyhow::bail!("unexpected answer");
    };
    if format == Format::Json {
        for v in &views {
            out::json(&HostMetricsJson::from(v))?;
        }
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
    t.print()?;
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
    let running = s.services.iter().filter(|x| x.running).count();
    let listed = s.services.len() + s.services_omitted as usize;
    vec![
        v.host.clone(),
        age,
        s.cpus.to_string(),
        format!("{:.2}", f64::from(s.load_centi[0]) / 100.0),
        format!("{:.2}", f64::from(s.load_centi[1]) / 100.0),
        used(s.memory_total_bytes, s.memory_available_bytes),
        used(s.disk_total_bytes, s.disk_available_bytes),
        humantime::format_duration(Duration::from_secs(s.uptime_ms / 1000)).to_string(),
        format!("{running}/{listed} running"),
    ]
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The host whose logs to read.
    #[arg(value_name = "HOST")]
    host: String,
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
    /// Keep printing what comes next, until interrupted.
    #[arg(long)]
    follow: bool,
    #[command(flatten)]
    pub(super) conn: Conn,
}

pub fn logs(a: LogsArgs, format: Format) -> anyhow::Result<ExitCode> {
    let mut tower = a.conn.client()?;
    tower.wait_at_least(LOGS_TIMEOUT);
    let source = match a.service {
        Some(name) => LogSource::Service { name },
        None => LogSource::Steps {
            change: a.change.clone(),
        },
    };
    let since_ms = a
        .since
        .map(|d| vigie_referee::now_ms().saturating_sub(d.as_millis() as u64));
    let mut cursor: Option<LogCursor> = None;
    loop {
        let query = LogsQuery {
            host: a.host.clone(),
            source: source.clone(),
            since_ms,
            cursor,
            max_bytes: CHUNK,
        };
        let ApiAnswer::Logs(page) = tower.call(ApiCall::Logs(query))? else {
            anyhow::bail!("unexpected answer");
        };
        print_page(&page, &source, a.change.is_some(), format)?;
        cursor = Some(page.cursor);
        if page.more {
            continue;
        }
        if !a.follow {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
}

fn print_page(
    page: &LogsPage,
    source: &LogSource,
    one_change: bool,
    format: Format,
) -> anyhow::Result<()> {
    if let Some(why) = &page.beyond_retention {
        eprintln!("vigie logs: {why}");
    }
    for record in page.text.lines() {
        let Some(l) = LogLineJson::parse(record, source) else {
            continue;
        };
        if format == Format::Json {
            out::json(&l)?;
            continue;
        }
        let at = l.at.get(11..23).unwrap_or(&l.at);
        let text = match (&l.service, &l.change) {
            (Some(_), _) => format!(
                "{at} {}/{} | {}",
                l.instance.as_deref().unwrap_or("-"),
                l.replica.as_deref().unwrap_or("-"),
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
                    format!("{c} ")
                };
                format!(
                    "{at} {who}step {step}{undo} {} | {}",
                    l.stream.as_deref().unwrap_or("-"),
                    l.text
                )
            }
            (None, None) => l.text.clone(),
        };
        out::line(&text)?;
    }
    Ok(())
}
