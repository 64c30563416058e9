//! Deployments: every environment the deployer recorded (its instances,
//! hosts and history), its current or last rollout followed live, and
//! the deploy verbs as buttons — each shown only when the door would let
//! the operator make its call, each behind a confirmation page.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use vigie_client::calls::{
    DeployCommand, DeployList, DeployRollout, DeployStart, DeployVerb as VerbCall, Submit,
};
use vigie_deployer::{compile_check, EnvRecord};
use vigie_wire::deploy::{EnvVerb, Rollout, RolloutCommand};
use vigie_wire::front::OperatorRecord;
use vigie_wire::tower::{ApiCall, ApiFault, ApiFaultKind};

use super::{layout, refused, respond, signed};
use crate::app::Shared;
use crate::auth::Signed;
use crate::referee::Referee;

/// How often a rollout's page asks for its new lines (as `vigie
/// deployments watch` does).
const ROLLOUT_EVERY: Duration = Duration::from_millis(500);

/// A deploy verb the console offers. New verbs are new entries of
/// [`DeployVerb::ALL`]: the buttons, confirmation pages and routes follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployVerb {
    /// `vigie deployments check`: a read-only change per host.
    Check,
    /// `vigie deploy --force-unlock` of the last rollout's own file.
    ForceUnlock,
    /// The verbs the tower runs on a deployed environment (`vigie
    /// deployments restart|rollback|maintenance|stop|start|clean|undeploy`).
    Restart,
    Rollback,
    MaintenanceOn,
    MaintenanceOff,
    Stop,
    Start,
    Clean,
    Undeploy,
    /// The word a rollout waiting after its canary takes.
    Continue,
    Abort,
}

impl DeployVerb {
    pub const ALL: [DeployVerb; 12] = [
        DeployVerb::Check,
        DeployVerb::ForceUnlock,
        DeployVerb::Continue,
        DeployVerb::Abort,
        DeployVerb::Restart,
        DeployVerb::Rollback,
        DeployVerb::MaintenanceOn,
        DeployVerb::MaintenanceOff,
        DeployVerb::Stop,
        DeployVerb::Start,
        DeployVerb::Clean,
        DeployVerb::Undeploy,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            DeployVerb::Check => "check",
            DeployVerb::ForceUnlock => "force-unlock",
            DeployVerb::Restart => "restart",
            DeployVerb::Rollback => "rollback",
            DeployVerb::MaintenanceOn => "maintenance-on",
            DeployVerb::MaintenanceOff => "maintenance-off",
            DeployVerb::Stop => "stop",
            DeployVerb::Start => "start",
            DeployVerb::Clean => "clean",
            DeployVerb::Undeploy => "undeploy",
            DeployVerb::Continue => "continue",
            DeployVerb::Abort => "abort",
        }
    }

    fn label(self) -> &'static str {
        match self {
            DeployVerb::Check => "Check what runs",
            DeployVerb::ForceUnlock => "Force unlock and deploy again",
            DeployVerb::Restart => "Restart",
            DeployVerb::Rollback => "Roll back",
            DeployVerb::MaintenanceOn => "Maintenance on",
            DeployVerb::MaintenanceOff => "Maintenance off",
            DeployVerb::Stop => "Stop",
            DeployVerb::Start => "Start",
            DeployVerb::Clean => "Clean",
            DeployVerb::Undeploy => "Undeploy",
            DeployVerb::Continue => "Continue after the canary",
            DeployVerb::Abort => "Abort the canary",
        }
    }

    fn confirm(self) -> &'static str {
        match self {
            DeployVerb::Check => "Sends each host of the environment a change that only reads: instance directories, supervisors, ports, the proxy site.",
            DeployVerb::ForceUnlock => "Takes the environment from the rollout that holds it (audited) and deploys the same environment file again.",
            DeployVerb::Restart => "Restarts every service, one replica at a time, each out of the proxy until its health check passes again.",
            DeployVerb::Rollback => "Starts the previous instance kept on disk on fresh ports, switches the proxy to it, then stops the current one. Nothing is fetched.",
            DeployVerb::MaintenanceOn => "Every host answers the maintenance page (503, Retry-After) until maintenance is switched off or the next deploy.",
            DeployVerb::MaintenanceOff => "The proxy routes to the replicas again.",
            DeployVerb::Stop => "Stops every service's replicas; the proxy answers 502 until they are started.",
            DeployVerb::Start => "Starts every service's replicas again, each checked.",
            DeployVerb::Clean => "Removes from each host what the inventory does not own (never an instance that runs).",
            DeployVerb::Undeploy => "Removes the replicas, the proxy site and the instance directories from every host. Databases are kept (dropping them needs the CLI, with the environment's name typed again).",
            DeployVerb::Continue => "Deploys the hosts the canary left, wave by wave.",
            DeployVerb::Abort => "Takes the canary hosts back to the instance they ran before; the deploy ends rolled back.",
        }
    }

    fn of(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.slug() == slug)
    }

    /// The verb a deployed environment's rollout carries out.
    fn env_verb(self) -> Option<EnvVerb> {
        Some(match self {
            DeployVerb::Restart => EnvVerb::Restart { service: None },
            DeployVerb::Rollback => EnvVerb::Rollback,
            DeployVerb::MaintenanceOn => EnvVerb::Maintenance { on: true },
            DeployVerb::MaintenanceOff => EnvVerb::Maintenance { on: false },
            DeployVerb::Stop => EnvVerb::Stop { service: None },
            DeployVerb::Start => EnvVerb::Start { service: None },
            DeployVerb::Clean => EnvVerb::Clean { dry_run: false },
            DeployVerb::Undeploy => EnvVerb::Undeploy { drop_data: None },
            _ => return None,
        })
    }

    /// The word for a rollout waiting after its canary.
    fn command(self) -> Option<RolloutCommand> {
        match self {
            DeployVerb::Continue => Some(RolloutCommand::Continue),
            DeployVerb::Abort => Some(RolloutCommand::Abort),
            _ => None,
        }
    }

    /// A verb or a word as its typed call, when the environment's state
    /// lets it act: a verb while no rollout holds the environment, a
    /// word while its rollout waits after its canary, told nothing yet.
    fn tower_call(self, env: &Env) -> Option<ApiCall> {
        let (app, environment) = (
            env.record.key.app.to_string(),
            env.record.key.environment.to_string(),
        );
        let running = env.rollout.as_ref().filter(|r| r.end.is_none());
        if let Some(verb) = self.env_verb() {
            return running.is_none().then(|| {
                VerbCall {
                    app,
                    environment,
                    verb,
                    force_unlock: false,
                }
                .into()
            });
        }
        let command = self.command()?;
        running.filter(|r| r.waiting && r.command.is_none())?;
        Some(
            DeployCommand {
                app,
                environment,
                command,
            }
            .into(),
        )
    }

    /// The call the verb makes first, to ask the door whether to offer
    /// it; `None` when it has nothing to act on here.
    fn call(self, env: &Env) -> Option<ApiCall> {
        match self {
            DeployVerb::Check => {
                let host = env.record.hosts.keys().next()?;
                let spec = compile_check(&env.record, host)?;
                Some(
                    Submit {
                        spec,
                        target: host.clone(),
                    }
                    .into(),
                )
            }
            DeployVerb::ForceUnlock => {
                let r = env.rollout.as_ref().filter(|r| r.end.is_none())?;
                Some(redeploy(r).into())
            }
            v => v.tower_call(env),
        }
    }

    /// Makes the verb's calls: where to go after.
    async fn run(
        self,
        referee: &Referee,
        op: &OperatorRecord,
        env: &Env,
    ) -> Result<String, ApiFault> {
        let back = format!(
            "/deployments/{}/{}",
            env.record.key.app, env.record.key.environment
        );
        match self {
            DeployVerb::Check => {
                let mut ids = Vec::new();
                for host in env.record.hosts.keys() {
                    let Some(spec) = compile_check(&env.record, host) else {
                        continue;
                    };
                    let call = Submit {
                        spec,
                        target: host.clone(),
                    };
                    ids.extend(referee.ask(op, call).await?.into_iter().map(|v| v.id));
                }
                Ok(ids.first().map_or(back, |id| format!("/changes/{id}")))
            }
            DeployVerb::ForceUnlock => {
                let r = env
                    .rollout
                    .as_ref()
                    .filter(|r| r.end.is_none())
                    .ok_or_else(|| {
                        ApiFault::new(
                            ApiFaultKind::Conflict,
                            "no rollout holds this environment now",
                        )
                    })?;
                referee.ask(op, redeploy(r)).await?;
                Ok(back)
            }
            v => {
                let not_now = || {
                    ApiFault::new(
                        ApiFaultKind::Conflict,
                        "not now: a rollout holds this environment, or none waits for a word",
                    )
                };
                let call = v.tower_call(env).ok_or_else(not_now)?;
                referee.as_operator(op, call, None).await?;
                Ok(back)
            }
        }
    }
}

fn redeploy(r: &Rollout) -> DeployStart {
    DeployStart {
        file: r.file.clone(),
        text: r.text.clone(),
        parallel: r.parallel,
        from_maintenance: r.from_maintenance,
        force_unlock: true,
        canary: r.canary,
    }
}

/// One environment: its record and its current or last rollout.
pub struct Env {
    pub record: EnvRecord,
    pub rollout: Option<Box<Rollout>>,
}

async fn records(app: &Shared, op: &OperatorRecord) -> Result<Vec<EnvRecord>, ApiFault> {
    let all = app.referee.ask(op, DeployList).await?;
    all.iter()
        .map(|d| {
            EnvRecord::from_json(&d.record).map_err(|e| {
                ApiFault::new(
                    ApiFaultKind::Unavailable,
                    format!("the record of {}/{}: {e}", d.app, d.environment),
                )
            })
        })
        .collect()
}

async fn env(app: &Shared, op: &OperatorRecord, a: &str, e: &str) -> Result<Env, ApiFault> {
    let record = records(app, op)
        .await?
        .into_iter()
        .find(|r| r.key.app.to_string() == a && r.key.environment.to_string() == e)
        .ok_or_else(|| ApiFault::new(ApiFaultKind::NotFound, format!("no environment {a}/{e}")))?;
    let rollout = app.referee.ask(op, rollout_call(a, e)).await?;
    Ok(Env { record, rollout })
}

fn rollout_call(a: &str, e: &str) -> DeployRollout {
    DeployRollout {
        app: a.to_owned(),
        environment: e.to_owned(),
    }
}

pub async fn list(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let all = match records(&app, &who.operator).await {
        Ok(v) => v,
        Err(f) => return refused(&who, &f),
    };
    let body = html! {
        p { (all.len()) " environments" }
        table #deployments {
            thead { tr { th { "Environment" } th { "Components" } th { "Hosts" } th { "Deploys" } th { "Last" } } }
            tbody {
                @for r in &all {
                    tr {
                        td { a href={ "/deployments/" (r.key.app) "/" (r.key.environment) } { (r.key.to_string()) } }
                        td { @for (c, s) in &r.components { span.label { (c.to_string()) " #" (s.instance) } } }
                        td { (r.hosts.len()) @if !r.in_maintenance().is_empty() { " (" (r.in_maintenance().len()) " in maintenance)" } }
                        td { (r.history.len()) }
                        td { @if let Some(d) = r.history.last() { (outcome(d)) } }
                    }
                }
            }
        }
    };
    respond(
        StatusCode::OK,
        layout::page("Deployments", Some(&who), body),
    )
}

fn outcome(d: &vigie_deployer::DeployRecord) -> &'static str {
    use vigie_deployer::Outcome;
    match d.outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::RolledBack => "rolled back",
        Outcome::InMaintenance => "in maintenance",
        Outcome::InProgress => "in progress",
    }
}

/// The rollout's part of the page, replaced live while it runs.
pub fn rollout(r: Option<&Rollout>) -> Markup {
    html! {
        @match r {
            None => p { "No rollout run by the tower yet." },
            Some(r) => {
                p { "Rollout " code { (r.id) } " by " (r.operator) " from " (r.file) ", started " (super::when(r.started_ms)) ": "
                    strong #state { @match r.end { Some(e) => (e.word()), None => "running" } }
                    @if let Some(u) = &r.unlocked_by { " (unlocked by " (u) ")" } }
                pre #rollout-lines { @for l in &r.lines { (l.text) "\n" } }
            }
        }
    }
}

fn instances(r: &EnvRecord) -> Markup {
    html! {
        h2 { "Instances" }
        table #instances {
            thead { tr { th { "Host" } th { "Service" } th { "Instance" } th { "Replicas" } th { "Ports" } } }
            tbody {
                @for (host, s) in &r.hosts {
                    @for (part, p) in &s.services {
                        tr {
                            td { a href={ "/hosts/" (host) } { (host) } @if s.maintenance { " (maintenance)" } }
                            td { (part.to_string()) }
                            td { (p.instance) }
                            td { (p.replicas) }
                            td { @for port in &p.ports { (port) " " } }
                        }
                    }
                }
            }
        }
        h2 { "History" }
        table #history {
            thead { tr { th { "#" } th { "At" } th { "By" } th { "Bumped" } th { "Outcome" } th { "Changes" } } }
            tbody {
                @for d in r.history.iter().rev() {
                    tr {
                        td { (d.number) }
                        td { @if let Some(t) = d.at_ms { (super::when(t)) } }
                        td { (d.operator.as_deref().unwrap_or("")) }
                        td { @for (c, n) in &d.bumped { span.label { (c.to_string()) " #" (n) } } }
                        td { (outcome(d)) }
                        td { @for id in d.changes.values() { a href={ "/changes/" (id) } { (id) } " " } }
                    }
                }
            }
        }
    }
}

pub async fn one(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((a, e)): Path<(String, String)>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let env = match env(&app, &who.operator, &a, &e).await {
        Ok(v) => v,
        Err(f) => return refused(&who, &f),
    };
    let verbs: Vec<DeployVerb> = DeployVerb::ALL
        .into_iter()
        .filter(|v| {
            v.call(&env)
                .is_some_and(|c| Referee::may(&who.operator, &c))
        })
        .collect();
    let body = html! {
        p #verbs { @for v in &verbs { a.button href={ "/deployments/" (a) "/" (e) "/" (v.slug()) } { (v.label()) } " " } }
        div #live data-events={ "/deployments/" (a) "/" (e) "/events" } { (rollout(env.rollout.as_deref())) }
        (instances(&env.record))
    };
    respond(
        StatusCode::OK,
        layout::page(&format!("Deployment {a}/{e}"), Some(&who), body),
    )
}

fn verb_of(who: &Signed, slug: &str) -> Result<DeployVerb, Response> {
    DeployVerb::of(slug).ok_or_else(|| {
        refused(
            who,
            &ApiFault::new(ApiFaultKind::NotFound, format!("no deploy verb {slug}")),
        )
    })
}

/// The confirmation page of a verb: what it does, and its form.
pub async fn confirm(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((a, e, slug)): Path<(String, String, String)>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let verb = match verb_of(&who, &slug) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body = html! {
        p { (verb.confirm()) }
        p { (layout::action(&format!("/deployments/{a}/{e}/{slug}"), &who.csrf, verb.label()))
            " " a href={ "/deployments/" (a) "/" (e) } { "Back" } }
    };
    respond(
        StatusCode::OK,
        layout::page(&format!("{} — {a}/{e}", verb.label()), Some(&who), body),
    )
}

pub async fn act(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((a, e, slug)): Path<(String, String, String)>,
    Form(f): Form<super::change::CsrfForm>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if !app.csrf.check(&who.credential.id, &f.csrf) {
        return super::csrf_refused(&who);
    }
    let verb = match verb_of(&who, &slug) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let env = match env(&app, &who.operator, &a, &e).await {
        Ok(v) => v,
        Err(f) => return refused(&who, &f),
    };
    match verb.run(&app.referee, &who.operator, &env).await {
        Ok(to) => axum::response::Redirect::to(&to).into_response(),
        Err(f) => refused(&who, &f),
    }
}

/// The rollout's part as it moves (`view` events of its HTML as a JSON
/// string), then `end` once it ended.
pub async fn events(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((a, e)): Path<(String, String)>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let first = match app.referee.ask(&who.operator, rollout_call(&a, &e)).await {
        Ok(r) => r,
        Err(f) => return refused(&who, &f),
    };
    let shown = rollout(first.as_deref()).into_string();
    let done = first.as_ref().is_none_or(|r| r.end.is_some());
    let op = who.operator.clone();
    let stream = futures_util::stream::unfold((shown, done), move |(mut shown, done)| {
        let (app, op, a, e) = (app.clone(), op.clone(), a.clone(), e.clone());
        async move {
            if done {
                return None;
            }
            let (html, ended) = loop {
                tokio::time::sleep(ROLLOUT_EVERY).await;
                let r = app.referee.ask(&op, rollout_call(&a, &e)).await.ok()?;
                let html = rollout(r.as_deref()).into_string();
                if html != shown {
                    break (html, r.as_ref().is_none_or(|r| r.end.is_some()));
                }
            };
            shown.clone_from(&html);
            let data = serde_json::to_string(&html).unwrap_or_default();
            let mut events = vec![Ok::<Event, Infallible>(
                Event::default().event("view").data(data),
            )];
            if ended {
                events.push(Ok(Event::default().event("end").data("{}")));
            }
            Some((futures_util::stream::iter(events), (shown, ended)))
        }
    });
    use futures_util::StreamExt;
    Sse::new(stream.flatten())
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use vigie_wire::deploy::{Rollout, RolloutLine};

    /// A rollout's lines and file name come from hosts and files: text.
    #[test]
    fn a_rollout_s_lines_are_text() {
        let probe = "<script>alert(1)</script>";
        let r = Rollout {
            id: "d1".into(),
            tenant: "t".into(),
            app: "shop".into(),
            environment: "prod".into(),
            operator: "ann".into(),
            started_ms: 0,
            file: probe.into(),
            text: String::new(),
            parallel: 1,
            from_maintenance: false,
            state: Vec::new(),
            lines: vec![RolloutLine {
                at_ms: 0,
                text: probe.into(),
            }],
            said: 1,
            end: None,
            ended_ms: None,
            unlocked_by: Some(probe.into()),
            version: None,
            canary: 0,
            waiting: false,
            command: None,
            verb: None,
        };
        let html = super::rollout(Some(&r)).into_string();
        assert!(!html.contains(probe), "{html}");
        assert_eq!(html.matches("&lt;script&gt;").count(), 3, "{html}");
    }
}
