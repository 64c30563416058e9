//! The operator's commands: submit, status, watch, queue, cancel, audit,
//! hosts. Human-readable by default, `--json` for scripts (one JSON value
//! per line). Exit status is non-zero when a change did not succeed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use vigie_referee::ApiClient;
use vigie_wire::tower::{ApiAnswer, ApiCall, ChangeState, ChangeView, StepStatus};

use super::conn::Conn;

/// A record's time, for humans: RFC 3339 in UTC, to the millisecond.
fn when(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

fn state_text(s: &ChangeState) -> String {
    match s {
        ChangeState::Running { step } => format!("running step {}", step + 1),
        ChangeState::RollingBack { step } => format!("rolling back step {}", step + 1),
        ChangeState::RolledBack {
            failed_step,
            interrupted,
        } => match (failed_step, interrupted) {
            (_, true) => "rolled back (interrupted)".into(),
            (Some(s), false) => format!("rolled back (step {} failed)", s + 1),
            (None, false) => "rolled back".into(),
        },
        ChangeState::RollbackFailed { .. } => "ROLLBACK FAILED".into(),
        other => other.word().into(),
    }
}

pub(super) fn print_change(v: &ChangeView, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(v);
    }
    println!(
        "{:<8} {:<12} #{:<6} {:<28} {}",
        v.id,
        v.host,
        v.seq,
        state_text(&v.state),
        v.title
    );
    Ok(())
}

/// What a queued change waits for, for humans (`--json` has it in the
/// change's `waiting`).
pub(super) fn print_waiting(v: &ChangeView, json: bool) {
    if let (false, Some(w)) = (json, &v.waiting) {
        println!("{} {}: waiting: {}", v.id, v.host, w.text(&v.host));
    }
}

/// What a step's result says in one line: its summary, and for a failure
/// the last line of its error output.
fn result_text(r: Option<&vigie_wire::change::StepResult>) -> String {
    let Some(r) = r else { return String::new() };
    let err = r.stderr_tail.lines().rev().find(|l| !l.trim().is_empty());
    match err {
        Some(e) if !r.ok => format!(": {} ({})", r.summary, e.trim()),
        _ => format!(": {}", r.summary),
    }
}

/// Lines describing what changed between two views of a change: forward
/// steps in order, then undone steps in the order they were undone.
fn progress(prev: Option<&ChangeView>, now: &ChangeView) -> Vec<String> {
    let total = now.steps.len();
    let mut forward = Vec::new();
    let mut backward = Vec::new();
    for (i, s) in now.steps.iter().enumerate() {
        let before = prev.and_then(|p| p.steps.get(i)).map(|p| p.status);
        if before == Some(s.status) || matches!(s.status, StepStatus::Pending | StepStatus::Skipped)
        {
            continue;
        }
        let (word, detail) = match s.status {
            StepStatus::Running => ("started", String::new()),
            StepStatus::Succeeded => ("succeeded", result_text(s.result.as_ref())),
            StepStatus::Failed => ("FAILED", result_text(s.result.as_ref())),
            StepStatus::Undoing => ("undoing", String::new()),
            StepStatus::Undone => ("undone", result_text(s.undo.as_ref())),
            StepStatus::UndoFailed => ("UNDO FAILED", result_text(s.undo.as_ref())),
            StepStatus::Pending | StepStatus::Skipped => continue,
        };
        let line = format!(
            "{} {}: step {}/{} {} ({}) {word}{detail}",
            now.id,
            now.host,
            i + 1,
            total,
            s.name,
            s.kind
        );
        if matches!(
            s.status,
            StepStatus::Undoing | StepStatus::Undone | StepStatus::UndoFailed
        ) {
            backward.push(line);
        } else {
            forward.push(line);
        }
    }
    backward.reverse();
    let mut lines = forward;
    lines.extend(backward);
    if prev.is_none_or(|p| p.state != now.state) && (now.state.is_final() || prev.is_none()) {
        lines.push(format!(
            "{} {}: {}",
            now.id,
            now.host,
            state_text(&now.state)
        ));
    }
    lines
}

/// Follows changes until all are final, printing their progress. Returns
/// the final views.
pub fn follow(
    json: bool,
    client: &mut ApiClient,
    ids: &[String],
) -> anyhow::Result<Vec<ChangeView>> {
    let views = client.follow(ids, None, |prev, v| {
        if json {
            println!("{}", serde_json::to_string(v).unwrap_or_default());
        } else {
            for line in progress(prev, v) {
                println!("{line}");
            }
        }
    })?;
    Ok(views)
}

fn outcome(views: &[ChangeView]) -> ExitCode {
    if views.iter().all(|v| v.state == ChangeState::Succeeded) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// The change request (YAML).
    file: PathBuf,
    /// Hosts: an id, a list (a,b), a glob (web-*), or labels (role=web).
    #[arg(long)]
    target: String,
    /// Follow the changes until they end; exit non-zero unless all succeeded.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    conn: Conn,
}

pub fn submit(a: SubmitArgs) -> anyhow::Result<ExitCode> {
    let spec = match vigie_changes::load_change(&a.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigie submit: {e}");
            return Ok(ExitCode::from(crate::runtime::EXIT_CONFIG));
        }
    };
    let mut client = a.conn.client()?;
    let views = client.changes(ApiCall::Submit {
        spec,
        target: a.target,
    })?;
    for v in &views {
        print_change(v, a.conn.json)?;
        print_waiting(v, a.conn.json);
    }
    if !a.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    let done = follow(a.conn.json, &mut client, &ids)?;
    Ok(outcome(&done))
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A change id; without it, the latest changes.
    id: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[command(flatten)]
    conn: Conn,
}

pub fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let mut client = a.conn.client()?;
    let views = client.changes(ApiCall::Status {
        change: a.id.clone(),
        limit: a.limit,
    })?;
    for v in &views {
        print_change(v, a.conn.json)?;
        print_waiting(v, a.conn.json);
        if a.id.is_some() && !a.conn.json {
            for (i, s) in v.steps.iter().enumerate() {
                let r = s.result.as_ref().map(|r| r.summary.as_str()).unwrap_or("");
                println!(
                    "  {}. {:<30} {:<10} {:?} {}",
                    i + 1,
                    s.name,
                    s.kind,
                    s.status,
                    r
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Change ids to follow until they end.
    #[arg(required = true)]
    ids: Vec<String>,
    #[command(flatten)]
    conn: Conn,
}

pub fn watch(a: WatchArgs) -> anyhow::Result<ExitCode> {
    let mut client = a.conn.client()?;
    let done = follow(a.conn.json, &mut client, &a.ids)?;
    Ok(outcome(&done))
}

#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    host: String,
    #[command(flatten)]
    conn: Conn,
}

pub fn queue(a: QueueArgs) -> anyhow::Result<ExitCode> {
    let views = a.conn.client()?.changes(ApiCall::Queue {
        host: a.host.clone(),
    })?;
    if views.is_empty() && !a.conn.json {
        println!("no change queued for {}", a.host);
    }
    for v in views {
        print_change(&v, a.conn.json)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    id: String,
    #[command(flatten)]
    conn: Conn,
}

pub fn cancel(a: CancelArgs) -> anyhow::Result<ExitCode> {
    for v in a.conn.client()?.changes(ApiCall::Cancel { change: a.id })? {
        print_change(&v, a.conn.json)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    verify: Option<AuditVerify>,
    #[arg(long)]
    host: Option<String>,
    #[arg(long)]
    change: Option<String>,
    /// Only this operator's records.
    #[arg(long)]
    operator: Option<String>,
    /// From this time: RFC 3339 (`2026-01-31T12:00:00Z`) or a duration ago (`2h`).
    #[arg(long, value_parser = parse_time)]
    since: Option<u64>,
    /// Before this time (same forms as --since).
    #[arg(long, value_parser = parse_time)]
    until: Option<u64>,
    /// Page back: records numbered below N (the `#` column).
    #[arg(long)]
    before: Option<u64>,
    /// Page forward: records numbered above N.
    #[arg(long)]
    after: Option<u64>,
    #[arg(long, default_value_t = 100)]
    limit: u32,
    #[command(flatten)]
    conn: Conn,
}

/// Unix milliseconds from RFC 3339 or from a duration ago.
fn parse_time(s: &str) -> Result<u64, String> {
    let t = match humantime::parse_rfc3339_weak(s) {
        Ok(t) => t,
        Err(_) => {
            let ago = humantime::parse_duration(s).map_err(|_| {
                format!("{s:?} is neither a time (2026-01-31T12:00:00Z) nor a duration (2h)")
            })?;
            std::time::SystemTime::now()
                .checked_sub(ago)
                .ok_or_else(|| format!("{s:?} is too long ago"))?
        }
    };
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("{s:?} is before 1970"))?
        .as_millis();
    u64::try_from(ms).map_err(|_| format!("{s:?} is too far"))
}

#[derive(Debug, Subcommand)]
enum AuditVerify {
    /// Check the whole hash chain: detects an edited or deleted record.
    Verify,
}

pub fn audit(a: AuditArgs) -> anyhow::Result<ExitCode> {
    let mut client = a.conn.client()?;
    if a.verify.is_some() {
        return match client.call(ApiCall::AuditVerify) {
            Ok(ApiAnswer::AuditVerified { records, head }) => {
                if a.conn.json {
                    print_json(
                        &serde_json::json!({ "ok": true, "records": records, "head": head }),
                    )?;
                } else {
                    println!("audit intact: {records} records, head {head}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Ok(other) => anyhow::bail!("unexpected answer {other:?}"),
            Err(e) => {
                if a.conn.json {
                    print_json(&serde_json::json!({ "ok": false, "error": e.to_string() }))?;
                } else {
                    println!("AUDIT BROKEN: {e}");
                }
                Ok(ExitCode::FAILURE)
            }
        };
    }
    let call = ApiCall::Audit {
        host: a.host,
        change: a.change,
        limit: a.limit,
        filter: Box::new(vigie_wire::tower::AuditFilter {
            operator: a.operator,
            since_ms: a.since,
            until_ms: a.until,
            before: a.before,
            after: a.after,
        }),
    };
    let ApiAnswer::Audit(records) = client.call(call)? else {
        anyhow::bail!("unexpected answer");
    };
    for r in records {
        if a.conn.json {
            print_json(&r)?;
        } else {
            let step = r
                .step
                .map(|s| format!("step {}", s + 1))
                .unwrap_or_default();
            println!(
                "#{:<5} {} {}/{} {:<8} {:<8} {:<7} {:<13} {}",
                r.tenant_seq,
                when(r.at_ms),
                r.tenant,
                r.operator,
                r.host,
                r.change,
                step,
                r.action,
                r.summary
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct HostsArgs {
    #[command(subcommand)]
    add: Option<HostsAdd>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Subcommand)]
enum HostsAdd {
    /// Register a host (its changes queue until its plug comes online);
    /// with `--key`, pre-authorise its agent's public key.
    Add {
        id: String,
        #[arg(long = "label", value_parser = super::plug::parse_label)]
        labels: Vec<(String, String)>,
        /// The agent's public key (Z85).
        #[arg(long, allow_hyphen_values = true)]
        key: Option<String>,
    },
    /// Keys that knocked at the majordomo and wait for an operator.
    Pending,
    /// Accept a pending key as this host's agent key (check it against the
    /// key the agent printed when it started).
    Accept {
        id: String,
        #[arg(long, allow_hyphen_values = true)]
        key: String,
        /// Accept again a key that was revoked for this host.
        #[arg(long)]
        readmit: bool,
    },
    /// Revoke this host's key: its agent is cut off at once; its queue stays.
    Revoke { id: String },
    /// Set labels (`k=v`) and remove them (`--remove k`), audited.
    Label {
        id: String,
        #[arg(value_parser = super::plug::parse_label)]
        set: Vec<(String, String)>,
        #[arg(long)]
        remove: Vec<String>,
    },
    /// Forget a host and revoke its keys; refused while changes wait for
    /// it unless `--force` (cancels the queued, abandons the one in flight).
    Remove {
        id: String,
        #[arg(long)]
        force: bool,
    },
    /// Let a held queue move on (see `vigie abandon --hold`).
    Release { id: String },
}

pub fn hosts(a: HostsArgs) -> anyhow::Result<ExitCode> {
    let mut client = a.conn.client()?;
    let done = |what: String| {
        if !a.conn.json {
            println!("{what}");
        }
        Ok(ExitCode::SUCCESS)
    };
    match a.add {
        Some(HostsAdd::Add { id, labels, key }) => {
            // A key alone registers the host if needed, and may be for a
            // host the setup already declared.
            if key.is_none() || !labels.is_empty() {
                client.call(ApiCall::HostAdd {
                    host: id.clone(),
                    labels: labels.into_iter().collect(),
                })?;
            }
            if let Some(public) = key {
                client.call(ApiCall::KeyAdd {
                    host: id.clone(),
                    public,
                })?;
                return done(format!("host {id} registered, its agent key authorised"));
            }
            return done(format!("host {id} registered"));
        }
        Some(HostsAdd::Pending) => {
            let ApiAnswer::Keys(keys) = client.call(ApiCall::Keys)? else {
                anyhow::bail!("unexpected answer");
            };
            for k in keys {
                if a.conn.json {
                    print_json(&k)?;
                } else {
                    println!(
                        "{:<16} {:<9} {} {}",
                        k.host,
                        k.state.word(),
                        k.public,
                        k.address
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(HostsAdd::Accept { id, key, readmit }) => {
            let host = id.clone();
            client.call(if readmit {
                ApiCall::KeyReadmit { host, public: key }
            } else {
                ApiCall::KeyAccept { host, public: key }
            })?;
            return done(format!("the key of {id} is accepted"));
        }
        Some(HostsAdd::Label { id, set, remove }) => {
            client.call(ApiCall::HostLabel {
                host: id.clone(),
                set: set.into_iter().collect(),
                remove,
            })?;
            return done(format!("labels of {id} set"));
        }
        Some(HostsAdd::Remove { id, force }) => {
            client.call(ApiCall::HostRemove {
                host: id.clone(),
                force,
            })?;
            return done(format!("host {id} removed, its keys revoked"));
        }
        Some(HostsAdd::Release { id }) => {
            client.call(ApiCall::HostRelease { host: id.clone() })?;
            return done(format!("the queue of {id} moves on"));
        }
        Some(HostsAdd::Revoke { id }) => {
            client.call(ApiCall::KeyRevoke { host: id.clone() })?;
            return done(format!("the key of {id} is revoked: its agent is cut off"));
        }
        None => {}
    }
    let ApiAnswer::Hosts(hosts) = client.call(ApiCall::Hosts)? else {
        anyhow::bail!("unexpected answer");
    };
    for h in hosts {
        if a.conn.json {
            print_json(&h)?;
        } else {
            let labels: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let state = match (h.online, h.held) {
                (_, true) => "held",
                (true, false) => "online",
                (false, false) => "offline",
            };
            let flight = h.in_flight.unwrap_or_else(|| "-".into());
            // What the host says of itself is shown apart: never trusted.
            let reported = if h.reported.is_empty() || h.reported == h.labels {
                String::new()
            } else {
                let r: Vec<String> = h.reported.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(" (reported: {})", r.join(","))
            };
            println!(
                "{:<16} {:<8} queued {:<4} running {:<8} {}{reported}",
                h.id,
                state,
                h.queued,
                flight,
                labels.join(",")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
