//! The emergency-rollback command: the seed runbook's `emergency_rollback.sh`, done right on the
//! library.
//!
//! | the script's defect | here |
//! |---|---|
//! | target = current revision − 1 | `rollback_target`: the newest older verified revision, else the newest older one that exists |
//! | log lines captured into the revision variable | typed values; nothing is parsed from output |
//! | division by zero with no pods | `healthy_fraction` is `None` with no pods |
//! | pods assumed to carry `app=<deployment>` | pods found through the deployment's own ReplicaSets |
//! | Istio weights not summing to 100 | a `TrafficSplit` that does not sum to 100 cannot be built |
//! | a Service selector patched to a value that selects nothing | the router refuses a side with no ready pods |
//! | an unpinned curl image pulled into the cluster to test health | validation reads status and EndpointSlices; nothing is created |
//! | a log path that needs root | progress goes to stderr, the report to stdout; no files |
//! | positional arguments ignored | `emergency-rollback DEPLOYMENT [options]` |
//! | a database check that never gates | the migration gate refuses a rollback the schema cannot take |

mod client;
mod options;
mod progress;
mod switch;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deployguard_aws::AlbRouter;
use deployguard_core::analysis::RolloutStatus;
use deployguard_core::engine::{
    Assessment, EarlierRecovery, ExecutionOutcome, Guard, Plan, RECOVERY, Report, Strategy,
};
use deployguard_core::{ActorLock, DeploymentBackend, ErrorKind, LockState};
use deployguard_istio::IstioRouter;
use deployguard_k8s::GatewayRouter;
use deployguard_k8s::{JobMigrationInspector, KubeDeployment, LeaseLock, ServiceSelectorRouter};
use serde_json::json;

pub use client::{ClientOptions, aws_config, client, client_from, client_with, redacted};
pub use options::{
    Exit, Mode, Options, arn_region, parse, parse_deadline, parse_listener_arn, parse_name,
    parse_rule_arn,
};
use progress::Progress;
pub use progress::{Confirm, Terminal};
use switch::{Words, switch_back};

fn describe(assessment: &Assessment) -> Vec<String> {
    let mut lines = Vec::new();
    lines.push(format!("status: {}", assessment.status));
    let s = &assessment.snapshot;
    let health = assessment
        .healthy_fraction
        .map_or("no pods desired".to_owned(), |f| {
            format!("{:.0}%", f * 100.0)
        });
    lines.push(format!(
        "replicas: {} desired, {} updated, {} ready, {} available ({health} healthy)",
        s.desired, s.updated, s.ready, s.available
    ));
    if let Some(current) = &assessment.current {
        lines.push(format!(
            "current revision: {} ({})",
            current.id,
            current.images.join(", ")
        ));
    }
    for diagnosis in &assessment.failure_modes {
        lines.push(format!("failure: {}", diagnosis.mode.name()));
        for evidence in diagnosis.evidence.iter().take(3) {
            lines.push(format!("  evidence: {evidence}"));
        }
    }
    if let Some(starting) = &assessment.starting {
        lines.push(starting.to_string());
    }
    match (&assessment.rollback_target, &assessment.no_target_reason) {
        // A finished recovery's target is history: what runs now is what it restored.
        _ if matches!(assessment.earlier, EarlierRecovery::Finished { .. }) => {
            if let Some(current) = &assessment.current {
                lines.push(format!(
                    "restored: revision {} ({})",
                    current.id,
                    current.images.join(", ")
                ));
            }
        }
        (Some(target), _) => lines.push(format!(
            "rollback target: revision {} ({})",
            target.id,
            target.images.join(", ")
        )),
        (None, Some(why)) => lines.push(format!("rollback target: none ({why})")),
        _ => {}
    }
    if assessment.earlier != EarlierRecovery::None {
        lines.push(format!("earlier run: {}", assessment.earlier));
    }
    if assessment.snapshot.paused {
        lines.push("paused: yes (kubectl rollout pause)".to_owned());
    }
    if let Some(state) = &assessment.migrations {
        let version = state
            .current
            .map_or("unknown version".to_owned(), |v| format!("version {}", v.0));
        lines.push(format!("schema: {version}, {}", state.status));
    }
    lines
}

/// Runs the command against `client`. Progress goes to `progress`, the report to `out`.
pub async fn run(
    client: kube::Client,
    options: &Options,
    confirm: &mut (dyn Confirm + Send),
    out: &mut (dyn Write + Send),
    progress: Box<dyn Write + Send>,
) -> Exit {
    let progress = Arc::new(Mutex::new(progress));
    let note = |text: &str| {
        if let Ok(mut p) = progress.lock() {
            let _ = writeln!(p, "{text}");
        }
    };
    let started = tokio::time::Instant::now();
    let backend = KubeDeployment::new(client.clone(), &options.namespace, &options.deployment);
    let guard = match Guard::builder(Strategy::Rolling, Arc::new(backend.clone()))
        .migrations(Arc::new(JobMigrationInspector::new(
            client.clone(),
            &options.namespace,
        )))
        .journal(Arc::new(Progress::new(
            Arc::clone(&progress),
            options.spinner,
            started,
        )))
        .recovery_deadline(options.max_rollback_time)
        .dry_run(options.dry_run)
        .resume_paused(options.resume_paused)
        .poll_interval(Duration::from_secs(2))
        .build()
    {
        Ok(guard) => guard,
        Err(err) => {
            note(&format!("error: {err}"));
            return error_report(out, options, Exit::Usage, &err.to_string());
        }
    };
    let server = options.server.as_deref().unwrap_or("the API server");
    let out_of_time = |what: &str| {
        format!(
            "gave up after {} (--max-rollback-time) while {what}: {server} did not answer in time",
            humantime::format_duration(options.max_rollback_time)
        )
    };
    // The deadline covers the assessment too: a server that accepts and never answers ends the
    // command at the deadline, naming the server.
    let assessed =
        tokio::time::timeout_at(started + options.max_rollback_time, guard.assess()).await;
    let assessment = match assessed {
        // The reads' own retries ran out of the same deadline.
        Err(_) => {
            let text = out_of_time("assessing the deployment");
            note(&format!("error: {text}"));
            return error_report(out, options, Exit::Failed, &text);
        }
        Ok(Err(err)) if err.kind() == ErrorKind::Timeout => {
            let text = format!("{} ({err})", out_of_time("assessing the deployment"));
            note(&format!("error: {text}"));
            return error_report(out, options, Exit::Failed, &text);
        }
        Ok(Ok(a)) => a,
        Ok(Err(err)) => {
            note(&format!("error: {err}"));
            let exit = if err.kind() == ErrorKind::NotFound {
                Exit::Usage
            } else {
                Exit::Failed
            };
            return error_report(out, options, exit, &err.to_string());
        }
    };
    let mut assessment = assessment;
    if let EarlierRecovery::Finished { .. } = &assessment.earlier {
        // What the library would roll back to now is the revision the recovery rolled back
        // from: after a finished recovery the report names what it restored, never that.
        assessment.rollback_target = None;
        assessment.no_target_reason = Some(format!("nothing to roll back: {}", assessment.earlier));
    }
    let assessment = assessment;
    for line in describe(&assessment) {
        note(&line);
    }
    let finish = |out: &mut dyn Write,
                  outcome: &str,
                  plan: Option<&Plan>,
                  execution: Option<&Report>,
                  exit: Exit| {
        if options.json {
            let report = json!({"deployment": options.deployment, "namespace": options.namespace, "outcome": outcome,
                "dry_run": options.dry_run, "assessment": assessment, "plan": plan, "execution": execution});
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
        } else {
            let _ = writeln!(out, "{outcome}");
            if let Some(plan) = plan.filter(|_| options.dry_run || execution.is_none()) {
                let _ = write!(out, "{plan}");
            }
        }
        exit
    };

    if options.mode == Mode::BlueGreen {
        return blue_green(
            client,
            options,
            confirm,
            out,
            &format!("{}/{}", options.namespace, options.deployment),
        )
        .await;
    }
    if let EarlierRecovery::Finished { .. } = &assessment.earlier {
        let text = format!("nothing to do: {}", assessment.earlier);
        return finish(out, &text, None, None, Exit::Ok);
    }
    if assessment.snapshot.paused && !options.resume_paused && !assessment.recovery_under_way() {
        let text = format!(
            "refusing: deployment {}/{} is paused (kubectl rollout pause); resume it first, or pass --resume-paused to resume and roll it back",
            options.namespace, options.deployment
        );
        return finish(out, &text, None, None, Exit::Refused);
    }
    // In progress is not failing: only a rollout with a failure (or a recovery under way) is
    // rolled back without being asked to by --strategy manual.
    let failing = assessment.is_failing() || assessment.recovery_under_way();
    if !failing {
        let state = if matches!(assessment.status, RolloutStatus::Done(_)) {
            "healthy".to_owned()
        } else if let Some(starting) = &assessment.starting {
            // A pod that is starting is not failing: say for how long it may.
            format!("in progress and not failing ({starting})")
        } else {
            "in progress and not failing".to_owned()
        };
        match options.mode {
            Mode::Manual if !options.yes => {
                match confirm.confirm(&format!("The deployment is {state}. Roll back anyway?")) {
                    Some(true) => {}
                    _ => {
                        let text = format!("{state}; nothing rolled back");
                        return finish(out, &text, None, None, Exit::Ok);
                    }
                }
            }
            Mode::Manual => {}
            _ => {
                let text = format!("{state}; nothing to roll back");
                return finish(out, &text, None, None, Exit::Ok);
            }
        }
    }
    let plan = match guard.plan(&assessment).await {
        Ok(plan) => plan,
        Err(err) => {
            return finish(
                out,
                &format!("cannot recover: {err}"),
                None,
                None,
                Exit::Failed,
            );
        }
    };
    if let Some(why) = &plan.blocked {
        return finish(
            out,
            &format!("refusing to roll back: {why}"),
            Some(&plan),
            None,
            Exit::Refused,
        );
    }
    if options.dry_run {
        return finish(
            out,
            "dry run: this plan would run; nothing was written",
            Some(&plan),
            None,
            Exit::Ok,
        );
    }
    let asked_at = tokio::time::Instant::now();
    if !options.yes {
        match confirm.confirm(&format!(
            "Recovery plan for {}/{}:\n{plan}Run this plan?",
            options.namespace, options.deployment
        )) {
            Some(true) => {}
            Some(false) => {
                return finish(
                    out,
                    "cancelled; nothing was written",
                    Some(&plan),
                    None,
                    Exit::Refused,
                );
            }
            None => {
                return finish(
                    out,
                    "refusing to write: there is no terminal to confirm on; run again with --yes to execute this plan (or --dry-run to only show it)",
                    Some(&plan),
                    None,
                    Exit::Refused,
                );
            }
        }
    }
    // The whole command ends by --max-rollback-time; the time spent asking a person is not the
    // recovery's, so the deadline moves by it. Everything after this point — the lease, the
    // plan, releasing, the last look — is bounded by it.
    let deadline = started + options.max_rollback_time + asked_at.elapsed();
    // One actor per deployment: the deployment's Lease is held while writing. Another holder
    // (a guard, another run of this command) is waited for, and its outcome reported.
    let lease = LeaseLock::new(client.clone(), &options.namespace, &options.deployment);
    let holder = format!("emergency-rollback/{}", std::process::id());
    let mut waited = false;
    let retry = deployguard_core::engine::RetryPolicy::default();
    let mut attempts = 0;
    loop {
        let acquired = tokio::time::timeout_at(deadline, lease.acquire(&holder, options.lease_ttl))
            .await
            .unwrap_or_else(|_| {
                Err(deployguard_core::Error::new(
                    ErrorKind::Timeout,
                    out_of_time("taking the deployment's lease"),
                ))
            });
        match acquired {
            Ok(LockState::HeldBy {
                holder: other,
                expires_in,
            }) => {
                if !waited {
                    note(&format!(
                        "waiting: {other} holds the deployment's lease and is acting on it"
                    ));
                }
                waited = true;
                if tokio::time::Instant::now() >= deadline {
                    return finish(
                        out,
                        &format!("gave up waiting for {other}, which holds the deployment's lease"),
                        Some(&plan),
                        None,
                        Exit::Failed,
                    );
                }
                tokio::time::sleep(
                    expires_in.clamp(Duration::from_millis(100), Duration::from_secs(1)),
                )
                .await;
            }
            Ok(_) => break,
            Err(err)
                if err.is_retryable()
                    && tokio::time::Instant::now() + retry.backoff(attempts + 1) < deadline =>
            {
                attempts += 1;
                let wait = retry.backoff(attempts);
                note(&format!(
                    "[+{}s] taking the deployment's lease: attempt {attempts} failed ({err}); trying again in {:.1}s",
                    started.elapsed().as_secs(),
                    wait.as_secs_f64()
                ));
                tokio::time::sleep(wait).await;
            }
            Err(err) => {
                return finish(
                    out,
                    &format!("cannot take the deployment's lease: {err}"),
                    Some(&plan),
                    None,
                    Exit::Failed,
                );
            }
        }
    }
    if waited {
        // What the other actor did decides what is left to do.
        match tokio::time::timeout_at(deadline, guard.assess()).await {
            Ok(Ok(after)) if !after.recovery_under_way() && !after.is_failing() => {
                let _ = tokio::time::timeout_at(deadline, lease.release(&holder)).await;
                let text = match &after.earlier {
                    EarlierRecovery::Finished { .. } => format!("nothing to do: {}", after.earlier),
                    _ => "nothing to do: the deployment is no longer failing".to_owned(),
                };
                return finish(out, &text, None, None, Exit::Ok);
            }
            _ => {}
        }
    }
    if let EarlierRecovery::Stale { .. } = &assessment.earlier {
        // Reported above; cleared now that writing is allowed, never acted on.
        if let Err(err) = backend.set_marker(RECOVERY, None).await {
            note(&format!(
                "warning: clearing the stale recovery marker: {err}"
            ));
        }
    }
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    let renew = async {
        loop {
            tokio::time::sleep(options.lease_ttl / 3).await;
            if let Ok(LockState::HeldBy { holder: other, .. }) =
                lease.acquire(&holder, options.lease_ttl).await
            {
                return other;
            }
        }
    };
    let report = tokio::select! {
        report = guard.execute(&plan, remaining) => Some(report),
        other = renew => {
            note(&format!("error: lost the deployment's lease to {other}; stopped"));
            None
        }
    };
    // Released if the server answers in time; otherwise the lease expires by itself.
    let _ = tokio::time::timeout_at(deadline, lease.release(&holder)).await;
    let Some(report) = report else {
        return finish(
            out,
            "rollback FAILED: lost the deployment's lease",
            Some(&plan),
            None,
            Exit::Failed,
        );
    };
    if let ExecutionOutcome::Failed {
        kind: ErrorKind::Conflict,
        error,
        ..
    } = &report.outcome
    {
        // Someone else changed the deployment: their change stands, and nothing more is
        // written; a new run assesses what is there now (and asks before writing).
        return finish(
            out,
            &format!(
                "stopped: {error}; nothing more was written. Run the command again to re-assess."
            ),
            Some(&plan),
            Some(&report),
            Exit::Interfered,
        );
    }
    if !report.is_complete() {
        return finish(
            out,
            "rollback FAILED",
            Some(&plan),
            Some(&report),
            Exit::Failed,
        );
    }
    // The status the rollback's wait ended on (a watch event a moment ago); read only if
    // there is none.
    let after = match backend.last_seen() {
        Some(seen) => Ok(Ok(seen)),
        None => tokio::time::timeout_at(deadline, backend.observe()).await,
    };
    let summary = match after {
        Ok(Ok(s)) => format!(
            "rolled back: {}/{} ready, {} available",
            s.ready, s.desired, s.available
        ),
        Ok(Err(err)) => format!("rolled back; final observation failed: {err}"),
        Err(_) => format!(
            "rolled back; {server} did not answer the final observation before the deadline"
        ),
    };
    finish(out, &summary, Some(&plan), Some(&report), Exit::Ok)
}

async fn blue_green(
    client: kube::Client,
    options: &Options,
    confirm: &mut (dyn Confirm + Send),
    out: &mut (dyn Write + Send),
    what: &str,
) -> Exit {
    if !options.json {
        return switch_traffic(client, options, confirm, out, what).await;
    }
    let mut words = Vec::new();
    let exit = switch_traffic(client, options, confirm, &mut words, what).await;
    as_json(out, options, &words, exit)
}

/// With `--json`, what a traffic switch said in words, as a JSON object: its lines, the first
/// as the outcome, and the exit code.
fn as_json(out: &mut (dyn Write + Send), options: &Options, words: &[u8], exit: Exit) -> Exit {
    let text = String::from_utf8_lossy(words);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let outcome = lines
        .iter()
        .rev()
        .find(|l| !l.starts_with(' '))
        .copied()
        .unwrap_or_default();
    let report = json!({
        "deployment": options.deployment,
        "namespace": options.namespace,
        "outcome": outcome,
        "lines": lines,
        "dry_run": options.dry_run,
        "exit_code": exit as u8,
    });
    print_json(out, &report);
    exit
}

fn print_json(out: &mut (dyn Write + Send), report: &serde_json::Value) {
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(report).unwrap_or_default()
    );
}

async fn switch_traffic(
    client: kube::Client,
    options: &Options,
    confirm: &mut (dyn Confirm + Send),
    out: &mut (dyn Write + Send),
    what: &str,
) -> Exit {
    if options.virtual_service.is_some() {
        return istio(client, options, confirm, out, what).await;
    }
    if options.http_route.is_some() {
        return gateway(client, options, confirm, out, what).await;
    }
    let (Some(service), Some(stable), Some(candidate)) =
        (&options.service, &options.stable, &options.candidate)
    else {
        let _ = writeln!(
            out,
            "error: --strategy blue-green needs --service, --stable and --candidate (a Service selector), --virtual-service and --stable (an Istio route), or --http-route and --stable (a Gateway API route)"
        );
        return Exit::Usage;
    };
    // The backends are named by their selector values, so splits read as the sides do.
    let router = match ServiceSelectorRouter::new(
        client,
        &options.namespace,
        service,
        &options.selector_key,
        [
            (stable.as_str(), stable.as_str()),
            (candidate.as_str(), candidate.as_str()),
        ],
    ) {
        Ok(router) => router,
        Err(err) => {
            let _ = writeln!(out, "error: {err}");
            return Exit::Usage;
        }
    };
    let words = Words {
        target: format!("service {}/{service}", options.namespace),
        stable: format!("{}={stable}", options.selector_key),
        platform: "blue-green",
        applied: "the endpoints follow",
    };
    switch_back(&router, stable, &words, options, confirm, out, what).await
}

/// Puts all of an Istio route's traffic on the stable subset: the same steps as the selector
/// switch (read, readiness, dry run, consent, a write conditional on the read, verification).
async fn istio(
    client: kube::Client,
    options: &Options,
    confirm: &mut (dyn Confirm + Send),
    out: &mut (dyn Write + Send),
    what: &str,
) -> Exit {
    let (Some(virtual_service), Some(stable)) = (&options.virtual_service, &options.stable) else {
        return Exit::Usage;
    };
    let mut builder =
        IstioRouter::builder(client, &options.namespace, virtual_service).subset(stable);
    if let Some(route) = &options.route {
        builder = builder.route(route);
    }
    if let Some(candidate) = &options.candidate {
        builder = builder.subset(candidate);
    }
    let router = match router_or_exit(
        builder.subsets_of_route().await.and_then(|b| b.build()),
        out,
    ) {
        Ok(router) => router,
        Err(exit) => return exit,
    };
    let words = Words {
        target: format!("virtualservice {}/{virtual_service}", options.namespace),
        stable: format!("subset {stable}"),
        platform: "Istio",
        applied: "applied by the mesh",
    };
    switch_back(&router, stable, &words, options, confirm, out, what).await
}

/// The router built, or the exit its error means (a bad name or a route that is not there is
/// usage), said on `out`.
fn router_or_exit<R>(
    built: deployguard_core::Result<R>,
    out: &mut (dyn Write + Send),
) -> Result<R, Exit> {
    built.map_err(|err| {
        let _ = writeln!(out, "error: {err}");
        match err.kind() {
            ErrorKind::InvalidInput | ErrorKind::NotFound => Exit::Usage,
            _ => Exit::Failed,
        }
    })
}

/// Puts all of a Gateway API route rule's traffic on the stable Service: the same steps as the
/// Istio route (read, readiness, dry run, consent, a write conditional on the read,
/// verification through the route's status).
async fn gateway(
    client: kube::Client,
    options: &Options,
    confirm: &mut (dyn Confirm + Send),
    out: &mut (dyn Write + Send),
    what: &str,
) -> Exit {
    let (Some(http_route), Some(stable)) = (&options.http_route, &options.stable) else {
        return Exit::Usage;
    };
    let mut builder =
        GatewayRouter::builder(client, &options.namespace, http_route).service(stable);
    match options
        .rule
        .as_deref()
        .map(|rule| (rule, rule.parse::<usize>()))
    {
        Some((_, Ok(index))) => builder = builder.rule(index),
        Some((name, Err(_))) => builder = builder.rule_named(name),
        None => {}
    }
    if let Some(candidate) = &options.candidate {
        builder = builder.service(candidate);
    }
    let router = match router_or_exit(
        builder.services_of_rule().await.and_then(|b| b.build()),
        out,
    ) {
        Ok(router) => router,
        Err(exit) => return exit,
    };
    let words = Words {
        target: format!("httproute {}/{http_route}", options.namespace),
        stable: format!("Service {stable}"),
        platform: "Gateway API",
        applied: "accepted by the gateway",
    };
    switch_back(&router, stable, &words, options, confirm, out, what).await
}

/// Puts everything on the ALB listener's or rule's stable target group: the same steps as the
/// Istio route (read, health, dry run, consent, a write checked against the read, verification),
/// with no Kubernetes involved.
pub async fn run_alb(
    sdk: &aws_types::SdkConfig,
    options: &Options,
    confirm: &mut (dyn Confirm + Send),
    out: &mut (dyn Write + Send),
) -> Exit {
    if !options.json {
        return switch_alb(sdk, options, confirm, out).await;
    }
    let mut words = Vec::new();
    let exit = switch_alb(sdk, options, confirm, &mut words).await;
    as_json(out, options, &words, exit)
}

async fn switch_alb(
    sdk: &aws_types::SdkConfig,
    options: &Options,
    confirm: &mut (dyn Confirm + Send),
    out: &mut (dyn Write + Send),
) -> Exit {
    let (Some(stable), Some(candidate)) = (&options.stable, &options.candidate) else {
        return Exit::Usage;
    };
    let builder = AlbRouter::builder(sdk)
        .backend(stable, stable)
        .backend(candidate, candidate);
    let builder = match (&options.alb_listener, &options.alb_rule) {
        (Some(listener), _) => builder.listener(listener),
        (_, Some(rule)) => builder.rule(rule),
        _ => return Exit::Usage,
    };
    let router = match builder.build() {
        Ok(router) => router,
        Err(err) => {
            let _ = writeln!(out, "error: {err}");
            return Exit::Usage;
        }
    };
    let words = Words {
        target: router.alb_target().to_string(),
        stable: format!("target group {stable}"),
        platform: "ALB",
        applied: "verified",
    };
    switch_back(
        &router,
        stable,
        &words,
        options,
        confirm,
        out,
        &options.deployment,
    )
    .await
}

/// Ends a run that failed before it had a report: with `--json`, the error as a JSON object on
/// the report's stream (the progress stream has it in words either way).
pub fn error_report(
    out: &mut (dyn Write + Send),
    options: &Options,
    exit: Exit,
    message: &str,
) -> Exit {
    if options.json {
        let report = json!({
            "deployment": options.deployment,
            "namespace": options.namespace,
            "outcome": "error",
            "error": message,
            "exit_code": exit as u8,
        });
        print_json(out, &report);
    }
    exit
}

/// Asks `question` unless `--yes` was given; `Some(exit)` when the person said no or there is
/// no terminal to ask on (then `action` is what `--yes` would do), and nothing may be written.
fn consent(
    options: &Options,
    confirm: &mut (dyn Confirm + Send),
    out: &mut (dyn Write + Send),
    question: &str,
    action: &str,
) -> Option<Exit> {
    if options.yes {
        return None;
    }
    match confirm.confirm(question) {
        Some(true) => None,
        Some(false) => {
            let _ = writeln!(out, "cancelled; nothing was written");
            Some(Exit::Refused)
        }
        None => {
            let _ = writeln!(
                out,
                "refusing to write: there is no terminal to confirm on; run again with --yes to {action}"
            );
            Some(Exit::Refused)
        }
    }
}
