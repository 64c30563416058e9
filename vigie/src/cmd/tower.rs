//! The operator's commands: submit, status, watch, queue, cancel, audit,
//! hosts. Text tables by default, `--json` for scripts (one JSON object per
//! line, see `json.rs`). Exit status is non-zero when a change did not
//! succeed. Steps are numbered from 1 everywhere.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use vigie_client::calls;
use vigie_wire::tower::{ChangeState, ChangeView, StepStatus};

use super::change_text::{seconds, state_text};
use super::conn::{Conn, Tower};
use super::escape;
use super::json::{self, ChangeJson};
use super::out::{self, Format, Table};
use super::progress::Progress;

/// Changes as a table (text) or one object a line (JSON).
pub(super) fn print_changes(views: &[ChangeView], format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        for v in views {
            out::json(&ChangeJson::from(v))?;
        }
        return Ok(());
    }
    let mut t = Table::new(&["ID", "HOST", "SEQ", "STATE", "TITLE"]);
    for v in views {
        t.row(vec![
            v.id.clone(),
            v.host.clone(),
            v.seq.to_string(),
            state_text(&v.state),
            v.title.clone(),
        ]);
    }
    if !t.is_empty() {
        t.print()?;
    }
    Ok(())
}

/// What queued changes wait for, for humans (`--json` has it in each
/// change's `waiting`).
pub(super) fn print_waiting(views: &[ChangeView], format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        return Ok(());
    }
    for v in views {
        if let Some(w) = &v.waiting {
            out::line(&format!(
                "{} {}: waiting: {}",
                escape::field(&v.id),
                escape::field(&v.host),
                escape::field(&w.text(&v.host))
            ))?;
        }
    }
    Ok(())
}

/// Follows changes until all are final, printing their progress: each
/// step as it moves, or, for many changes on a terminal, one live line of
/// counts and each change's end. Returns the final views.
pub fn follow(
    format: Format,
    tower: &mut Tower,
    ids: &[String],
    timeout: Option<Duration>,
) -> anyhow::Result<Vec<ChangeView>> {
    let mut shown = Progress::new(format, ids.len());
    let views = tower.follow(ids, timeout, |prev, v| shown.view(prev, v))?;
    shown.finish()?;
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
    /// The change request (YAML); `-` reads it from stdin.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Hosts: an id, a list (a,b), a glob (web-*), or labels (role=web).
    #[arg(long, value_name = "SELECTOR")]
    target: String,
    /// Follow the changes until they end; exit non-zero unless all succeeded.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up waiting after this long (e.g. 30m); the
    /// changes go on. Waits until they end when not given.
    #[arg(long, value_name = "DURATION", requires = "wait",
          value_parser = humantime::parse_duration)]
    wait_timeout: Option<Duration>,
    #[command(flatten)]
    pub(super) conn: Conn,
}

pub fn submit(a: SubmitArgs, format: Format) -> anyhow::Result<ExitCode> {
    let spec = match read_change(&a.file) {
        Ok(s) => s,
        Err(e) => {
            out::warn(&format!("vigie submit: {e}"));
            return Ok(ExitCode::from(crate::runtime::EXIT_CONFIG));
        }
    };
    let mut tower = a.conn.client()?;
    let views = tower.ask(calls::Submit {
        spec,
        target: a.target,
    })?;
    print_changes(&views, format)?;
    print_waiting(&views, format)?;
    if !a.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    let done = follow(format, &mut tower, &ids, a.wait_timeout)?;
    if format == Format::Text {
        // What failed, said where the operator waited for it.
        let failed: Vec<&ChangeView> = done
            .iter()
            .filter(|v| {
                v.steps.iter().any(|s| {
                    [&s.result, &s.undo]
                        .iter()
                        .any(|r| r.as_ref().is_some_and(|r| !r.ok))
                })
            })
            .collect();
        for v in failed.iter().take(MAX_FAILED_SHOWN) {
            out::line(&format!("\n{} on {}:", v.id, escape::field(&v.host)))?;
            print_failed_steps(v)?;
        }
        if failed.len() > MAX_FAILED_SHOWN {
            out::line(&format!(
                "\n{} more failed: `vigie status ID` shows each",
                failed.len() - MAX_FAILED_SHOWN
            ))?;
        }
    }
    Ok(outcome(&done))
}

/// Failed changes whose output `submit --wait` shows.
const MAX_FAILED_SHOWN: usize = 5;

/// A change file, or stdin for `-` (bounded like a file).
fn read_change(file: &std::path::Path) -> Result<vigie_wire::change::ChangeSpec, String> {
    if file.as_os_str() != "-" {
        return vigie_changes::load_change(file).map_err(|e| e.to_string());
    }
    use std::io::Read;
    let mut text = String::new();
    let max = vigie_changes::MAX_CHANGE_FILE as u64;
    std::io::stdin()
        .take(max + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("<stdin>: {e}"))?;
    vigie_changes::parse_change("<stdin>", &text).map_err(|e| e.to_string())
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A change id: its steps, and the failing step's error output; without
    /// it, the latest changes.
    #[arg(value_name = "ID")]
    id: Option<String>,
    /// How many of the latest changes to list (a page, at most 1000; the
    /// older ones are counted, with the `--before` to reach them).
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: u32,
    /// Page back: the changes before this cursor (the `--before X` a page
    /// ended with).
    #[arg(long, value_name = "CURSOR")]
    before: Option<String>,
    /// Page forward: the changes after this cursor.
    #[arg(long, value_name = "CURSOR")]
    after: Option<String>,
    #[command(flatten)]
    pub(super) conn: Conn,
}

/// One change in full: its line, then its steps, then the error output of
/// the step that failed (and of an undo that failed).
fn print_detail(v: &ChangeView) -> anyhow::Result<()> {
    print_changes(std::slice::from_ref(v), Format::Text)?;
    out::line("")?;
    let mut t = Table::new(&["STEP", "NAME", "KIND", "STATUS", "RESULT"]);
    for (i, s) in v.steps.iter().enumerate() {
        let r = match s.status {
            StepStatus::Undone | StepStatus::UndoFailed => s.undo.as_ref(),
            _ => s.result.as_ref(),
        };
        t.row(vec![
            (i + 1).to_string(),
            s.name.clone(),
            s.kind.clone(),
            json::status_word(s.status).to_owned(),
            r.map(|r| format!("{} ({})", r.summary, seconds(r.duration_ms)))
                .unwrap_or_default(),
        ]);
    }
    t.print()?;
    print_failed_steps(v)
}

/// The step that failed (and an undo that failed): its summary and the
/// tail of its output.
fn print_failed_steps(v: &ChangeView) -> anyhow::Result<()> {
    for (i, s) in v.steps.iter().enumerate() {
        for (what, r) in [("failed", &s.result), ("undo failed", &s.undo)] {
            let Some(r) = r.as_ref().filter(|r| !r.ok) else {
                continue;
            };
            out::line(&format!(
                "\nstep {} ({}) {what}: {}",
                i + 1,
                escape::field(&s.name),
                escape::field(&r.summary)
            ))?;
            for (name, tail) in [("stderr", &r.stderr_tail), ("stdout", &r.stdout_tail)] {
                if tail.trim().is_empty() {
                    continue;
                }
                out::line(&format!("  {name}:"))?;
                for l in tail.lines() {
                    out::line(&format!("    {l}"))?;
                }
            }
        }
    }
    Ok(())
}

pub fn status(a: StatusArgs, format: Format) -> anyhow::Result<ExitCode> {
    let mut tower = a.conn.client()?;
    if a.id.is_none() {
        let ask = vigie_wire::page::PageAsk {
            limit: a.limit,
            after: a.after,
            before: a.before,
            newest: true,
        };
        let call = calls::Status {
            change: None,
            limit: a.limit,
        };
        let (views, info) = super::page::call(&mut tower, call, ask)?;
        print_changes(&views, format)?;
        print_waiting(&views, format)?;
        super::page::footer(&info, format, "changes")?;
        return Ok(ExitCode::SUCCESS);
    }
    let views = tower.ask(calls::Status {
        change: a.id.clone(),
        limit: a.limit,
    })?;
    match (&a.id, format) {
        (Some(_), Format::Text) => {
            for v in &views {
                print_detail(v)?;
            }
        }
        _ => print_changes(&views, format)?,
    }
    print_waiting(&views, format)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Change ids to follow until they end.
    #[arg(required = true, value_name = "ID")]
    ids: Vec<String>,
    /// Give up watching after this long (e.g. 30m); the changes go on.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    wait_timeout: Option<Duration>,
    #[command(flatten)]
    pub(super) conn: Conn,
}

pub fn watch(a: WatchArgs, format: Format) -> anyhow::Result<ExitCode> {
    let mut tower = a.conn.client()?;
    let done = follow(format, &mut tower, &a.ids, a.wait_timeout)?;
    Ok(outcome(&done))
}

#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    /// The host whose queue to show.
    #[arg(value_name = "HOST")]
    host: String,
    #[command(flatten)]
    page: super::page::PageArgs,
    #[command(flatten)]
    pub(super) conn: Conn,
}

pub fn queue(a: QueueArgs, format: Format) -> anyhow::Result<ExitCode> {
    let call = calls::Queue {
        host: a.host.clone(),
    };
    let (views, info) = super::page::call(&mut a.conn.client()?, call, a.page.ask())?;
    if views.is_empty() && format == Format::Text {
        out::line(&format!("no change queued for {}", escape::field(&a.host)))?;
        return Ok(ExitCode::SUCCESS);
    }
    print_changes(&views, format)?;
    super::page::footer(&info, format, "changes queued")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The queued change to cancel.
    #[arg(value_name = "ID")]
    id: String,
    #[command(flatten)]
    pub(super) conn: Conn,
}

pub fn cancel(a: CancelArgs, format: Format) -> anyhow::Result<ExitCode> {
    let views = a.conn.client()?.ask(calls::Cancel { change: a.id })?;
    print_changes(&views, format)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    verify: Option<AuditVerify>,
    /// Only the records of this host.
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// Only the records of this change.
    #[arg(long, value_name = "ID")]
    change: Option<String>,
    /// Only this operator's records.
    #[arg(long, value_name = "NAME")]
    operator: Option<String>,
    /// From this time: RFC 3339 (`2026-01-31T12:00:00Z`) or a duration ago (`2h`).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<u64>,
    /// Before this time (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<u64>,
    /// Page back: records numbered below N (the SEQ column, each tenant's
    /// own numbers).
    #[arg(long, value_name = "N")]
    before: Option<u64>,
    /// Page forward: records numbered above N.
    #[arg(long, value_name = "N")]
    after: Option<u64>,
    /// How many records, the latest last.
    #[arg(long, default_value_t = 100, value_name = "N")]
    limit: u32,
    #[command(flatten)]
    pub(super) conn: Conn,
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

pub fn audit(a: AuditArgs, format: Format) -> anyhow::Result<ExitCode> {
    let mut tower = a.conn.client()?;
    if a.verify.is_some() {
        return match tower.ask_raw(calls::AuditVerify) {
            Ok(calls::Verified { records, head }) => {
                if format == Format::Json {
                    out::json(
                        &serde_json::json!({ "ok": true, "records": records, "head": head }),
                    )?;
                } else {
                    out::line(&format!("audit intact: {records} records, head {head}"))?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(vigie_client::ClientError::Refused(f)) => {
                if format == Format::Json {
                    out::json(&serde_json::json!({ "ok": false, "error": f.message }))?;
                } else {
                    out::line(&format!("AUDIT BROKEN: {}", escape::field(&f.message)))?;
                }
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(tower.explain(e)),
        };
    }
    let call = calls::Audit {
        host: a.host,
        change: a.change,
        limit: a.limit,
        filter: Box::new(vigie_wire::tower::AuditFilter {
            operator: a.operator,
            since_ms: a.since,
            until_ms: a.until,
            before: None,
            after: None,
        }),
    };
    let ask = vigie_wire::page::PageAsk {
        limit: a.limit,
        after: a.after.map(|n| n.to_string()),
        before: a.before.map(|n| n.to_string()),
        newest: true,
    };
    let (records, info) = super::page::call(&mut tower, call, ask)?;
    if format == Format::Json {
        for r in &records {
            out::json(&json::AuditJson::from(r))?;
        }
        super::page::footer(&info, format, "audit records")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&[
        "SEQ", "TIME", "OPERATOR", "HOST", "CHANGE", "STEP", "ACTION", "SUMMARY",
    ]);
    for r in records {
        t.row(vec![
            r.tenant_seq.to_string(),
            json::rfc3339(r.at_ms),
            format!("{}/{}", r.tenant, r.operator),
            r.host,
            r.change,
            r.step
                .map(|s| json::step_number(s).to_string())
                .unwrap_or_default(),
            r.action,
            r.summary,
        ]);
    }
    if !t.is_empty() {
        t.print()?;
    }
    super::page::footer(&info, format, "audit records")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct HostsArgs {
    #[command(subcommand)]
    add: Option<HostsAdd>,
    /// Show each host's latest metrics (CPU, load, memory, disk, uptime,
    /// services) instead of its queue.
    #[arg(long)]
    metrics: bool,
    /// Listing: a page at a time.
    #[command(flatten)]
    page: super::page::PageArgs,
    #[command(flatten)]
    pub(super) conn: Conn,
}

#[derive(Debug, Subcommand)]
enum HostsAdd {
    /// Register a host (its changes queue until its plug comes online);
    /// with `--key`, pre-authorise its agent's public key.
    Add {
        /// The host's id.
        #[arg(value_name = "HOST")]
        id: String,
        /// A label, `KEY=VALUE`; repeat for several.
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = super::plug::parse_label)]
        labels: Vec<(String, String)>,
        /// The agent's public key: @FILE (the .pub the agent printed), 64
        /// hex digits, or Z85.
        #[arg(long, allow_hyphen_values = true, value_name = "KEY",
              value_parser = super::key_arg::parse_key)]
        key: Option<String>,
    },
    /// Keys that knocked at the majordomo and wait for an operator.
    Pending,
    /// Accept a pending key as this host's agent key (check it against the
    /// key the agent printed when it started).
    Accept {
        /// The host the key is for.
        #[arg(value_name = "HOST")]
        id: String,
        /// The pending key: @FILE, 64 hex digits, or Z85.
        #[arg(long, allow_hyphen_values = true, value_name = "KEY",
              value_parser = super::key_arg::parse_key)]
        key: String,
        /// Accept again a key that was revoked for this host.
        #[arg(long)]
        readmit: bool,
    },
    /// Revoke this host's key: its agent is cut off at once; its queue stays.
    Revoke {
        /// The host whose key to revoke.
        #[arg(value_name = "HOST")]
        id: String,
    },
    /// Set labels and remove labels; audited.
    Label {
        /// The host whose labels to change.
        #[arg(value_name = "HOST")]
        id: String,
        /// A label to set, `KEY=VALUE`; repeat for several.
        #[arg(value_name = "KEY=VALUE", value_parser = super::plug::parse_label)]
        set: Vec<(String, String)>,
        /// A label to remove, by its key; repeat for several.
        #[arg(long, value_name = "KEY")]
        remove: Vec<String>,
    },
    /// Forget a host and revoke its keys; refused while changes wait for
    /// it unless `--force` (cancels the queued, abandons the one in flight).
    Remove {
        /// The host to forget.
        #[arg(value_name = "HOST")]
        id: String,
        /// Remove it even with changes queued or in flight.
        #[arg(long)]
        force: bool,
    },
    /// Let a held queue move on (see `vigie abandon --hold`).
    Release {
        /// The host whose queue to release.
        #[arg(value_name = "HOST")]
        id: String,
    },
}

pub fn hosts(a: HostsArgs, format: Format) -> anyhow::Result<ExitCode> {
    let mut tower = a.conn.client()?;
    if let Some(action) = a.add {
        return host_admin(&mut tower, action, format);
    }
    if a.metrics {
        return super::observe::host_metrics(&mut tower, format, &a.page);
    }
    let (hosts, info) = super::page::call(&mut tower, calls::Hosts, a.page.ask())?;
    if format == Format::Json {
        for h in &hosts {
            out::json(&json::HostJson::from(h))?;
        }
    } else {
        print_hosts(&hosts)?;
    }
    super::page::footer(&info, format, "hosts")?;
    Ok(ExitCode::SUCCESS)
}

/// `hosts add|pending|accept|label|remove|release|revoke`.
fn host_admin(tower: &mut Tower, action: HostsAdd, format: Format) -> anyhow::Result<ExitCode> {
    match action {
        HostsAdd::Add { id, labels, key } => {
            // A key alone registers the host if needed, and may be for a
            // host the setup already declared.
            if key.is_none() || !labels.is_empty() {
                tower.ask(calls::HostAdd {
                    host: id.clone(),
                    labels: labels.into_iter().collect(),
                })?;
            }
            if let Some(public) = key {
                tower.ask(calls::KeyAdd {
                    host: id.clone(),
                    public,
                })?;
                return super::json::done(
                    format,
                    "hosts add",
                    format!("host {id} registered, its agent key authorised"),
                );
            }
            super::json::done(format, "hosts add", format!("host {id} registered"))
        }
        HostsAdd::Pending => pending(tower, format),
        HostsAdd::Accept { id, key, readmit } => {
            let host = id.clone();
            if readmit {
                tower.ask(calls::KeyReadmit { host, public: key })?;
            } else {
                tower.ask(calls::KeyAccept { host, public: key })?;
            }
            super::json::done(
                format,
                "hosts accept",
                format!("the key of {id} is accepted"),
            )
        }
        HostsAdd::Label { id, set, remove } => {
            tower.ask(calls::HostLabel {
                host: id.clone(),
                set: set.into_iter().collect(),
                remove,
            })?;
            super::json::done(format, "hosts label", format!("labels of {id} set"))
        }
        HostsAdd::Remove { id, force } => {
            tower.ask(calls::HostRemove {
                host: id.clone(),
                force,
            })?;
            super::json::done(
                format,
                "hosts remove",
                format!("host {id} removed, its keys revoked"),
            )
        }
        HostsAdd::Release { id } => {
            tower.ask(calls::HostRelease { host: id.clone() })?;
            super::json::done(
                format,
                "hosts release",
                format!("the queue of {id} moves on"),
            )
        }
        HostsAdd::Revoke { id } => {
            tower.ask(calls::KeyRevoke { host: id.clone() })?;
            super::json::done(
                format,
                "hosts revoke",
                format!("the key of {id} is revoked: its agent is cut off"),
            )
        }
    }
}

fn print_hosts(hosts: &[vigie_wire::tower::HostView]) -> anyhow::Result<()> {
    let labels = |l: &vigie_wire::tower::Labels| {
        l.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut t = Table::new(&[
        "HOST", "STATE", "QUEUED", "RUNNING", "LABELS", "REPORTED", "REFUSING",
    ]);
    for h in hosts {
        // What the host says of itself is shown apart: never trusted.
        let reported = if h.reported == h.labels {
            String::new()
        } else {
            labels(&h.reported)
        };
        t.row(vec![
            h.id.clone(),
            host_state(h).into_owned(),
            json::waiting(h).to_string(),
            h.in_flight.clone().unwrap_or_else(|| "-".into()),
            labels(&h.labels),
            reported,
            h.refusing.clone().unwrap_or_default(),
        ]);
    }
    if !t.is_empty() {
        t.print()?;
    }
    Ok(())
}

/// A host's state in one word: its queue held by an operator, its plug
/// refusing orders (the REFUSING column says why), online or offline —
/// with why when the launcher says its plug is not running.
fn host_state(h: &vigie_wire::tower::HostView) -> std::borrow::Cow<'static, str> {
    match (h.held, h.online, h.refusing.is_some(), &h.plug_down) {
        (true, ..) => "held".into(),
        (false, true, true, _) => "refusing".into(),
        (false, true, false, _) => "online".into(),
        (false, false, _, Some(why)) => format!("offline ({why})").into(),
        (false, false, _, None) => "offline".into(),
    }
}

/// Every key the tower knows, page after page (pending keys are bounded
/// by the referee's `MAX_PENDING`; the accepted ones are one per host).
fn all_keys(tower: &mut Tower) -> anyhow::Result<Vec<vigie_wire::front::KeyRecord>> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let ask = vigie_wire::page::PageAsk {
            limit: vigie_wire::page::MAX_PAGE,
            after,
            ..Default::default()
        };
        let (keys, info) = super::page::call(tower, calls::Keys, ask)?;
        all.extend(keys);
        match info.next {
            Some(n) => after = Some(n),
            None => return Ok(all),
        }
    }
}

/// Keys that wait for an operator, and only those: all of them.
fn pending(tower: &mut Tower, format: Format) -> anyhow::Result<ExitCode> {
    let keys = all_keys(tower)?;
    let waiting = keys
        .iter()
        .filter(|k| k.state == vigie_wire::front::KeyState::Pending);
    if format == Format::Json {
        for k in waiting {
            out::json(&json::KeyJson::from(k))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&["KEY", "FROM"]);
    for k in waiting {
        t.row(vec![k.public.clone(), k.address.clone()]);
    }
    if t.is_empty() {
        out::line("no key is waiting")?;
    } else {
        t.print()?;
    }
    Ok(ExitCode::SUCCESS)
}
