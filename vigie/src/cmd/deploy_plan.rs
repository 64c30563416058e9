//! `vigie deploy --plan`: a deploy's plan in words — the migrations
//! check, the components bumped, each host's services and, asked for,
//! the steps each host would run.

use vigie_deployer::{
    compile_enter, compile_host, compile_upgrade, migration_check, DeployPlan, Duties, Environment,
    HostPlan, MigrationCheck,
};
use vigie_wire::change::Action;

use super::out::sayio;

pub(super) fn print_plan(env: &Environment, plan: &DeployPlan, steps: bool) -> std::io::Result<()> {
    sayio!("deploy {} #{}", env.key, plan.number);
    let first = plan.busy_hosts().next().map_or("-", |h| h.host.as_str());
    match migration_check(env, plan) {
        MigrationCheck::NotNeeded => {}
        MigrationCheck::FirstDeploy => sayio!("  migrations: run on {first} before anything starts"),
        MigrationCheck::Probe => sayio!(
            "  migrations: {first} is asked whether any are pending; if so, maintenance on every host and migrations on {first}"
        ),
        MigrationCheck::Pending => sayio!(
            "  migrations: pending (a new database): maintenance on every host and migrations on {first}"
        ),
    }
    if plan.bumps.is_empty() {
        sayio!("  no component changed");
    }
    for bump in &plan.bumps {
        match bump.from {
            Some(from) => sayio!("  {}: instance {from} → {}", bump.component, bump.to),
            None => sayio!("  {}: instance {} (new)", bump.component, bump.to),
        }
    }
    for host in &plan.hosts {
        if print_host(host)? && steps {
            print_steps(env, plan, host)?;
        }
    }
    Ok(())
}

/// One host's line and its services; whether the deploy touches it.
fn print_host(host: &HostPlan) -> std::io::Result<bool> {
    if host.services.is_empty() && !host.maintenance {
        sayio!(
            "  {}: up to date (proxy {}:{})",
            host.host,
            host.address,
            host.proxy_port
        );
        return Ok(false);
    }
    sayio!(
        "  {}: proxy {}:{}{}",
        host.host,
        host.address,
        host.proxy_port,
        if host.maintenance {
            ", in maintenance: its replicas start again"
        } else {
            ""
        }
    );
    for s in &host.services {
        let was = s
            .previous
            .as_ref()
            .map_or("new".to_string(), |p| format!("replaces #{}", p.instance));
        sayio!(
            "    {} #{} ({}), {} replica(s), ports {}, {was}",
            s.name,
            s.instance,
            s.spec.revision,
            s.spec.replicas,
            super::deployments::ports_text(&s.ports)
        );
    }
    for o in &host.overrides {
        sayio!("    override {o}");
    }
    Ok(true)
}

/// The steps `host` would run.
fn print_steps(env: &Environment, plan: &DeployPlan, host: &HostPlan) -> std::io::Result<()> {
    let index = plan
        .busy_hosts()
        .position(|h| h.host == host.host)
        .unwrap_or(0);
    let check = migration_check(env, plan);
    let spec = if matches!(check, MigrationCheck::Probe | MigrationCheck::Pending) {
        // What a maintenance deploy sends this host (when pending).
        let mut upgrade = compile_enter(env, plan, host);
        upgrade
            .steps
            .extend(compile_upgrade(env, plan, host, Duties::of_host(env, index, true)).steps);
        if check == MigrationCheck::Probe {
            sayio!("      if migrations are pending (else a rolling update):");
        }
        upgrade
    } else {
        let first_deploy = check == MigrationCheck::FirstDeploy;
        compile_host(env, plan, host, Duties::of_host(env, index, first_deploy))
    };
    for (i, step) in spec.steps.iter().enumerate() {
        let kind = match &step.action {
            Action::Run { .. } => "run",
            Action::File { .. } => "file",
            Action::Remove { .. } => "remove",
            Action::Check { .. } => "check",
        };
        sayio!("      {:>3}. {kind:<6} {}", i + 1, step.name);
    }
    Ok(())
}
