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

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deployguard_core::analysis::RolloutStatus;
use deployguard_core::engine::{
    Assessment, EventKind, Guard, GuardConfig, JournalEvent, JournalSink, Plan, Report, Strategy,
};
use deployguard_core::{
    DeploymentBackend, Error, ErrorKind, TrafficRouter, TrafficRouterExt, TrafficSplit,
};
use deployguard_k8s::{JobMigrationInspector, KubeDeployment, ServiceSelectorRouter};
use serde_json::json;

/// Which recovery to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Roll back when the deployment is failing.
    Auto,
    /// Ask before rolling back (a terminal, or `--yes`).
    Manual,
    /// Switch a Service selector back to the stable side.
    BlueGreen,
}

/// Parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The deployment to recover.
    pub deployment: String,
    /// Its namespace.
    pub namespace: String,
    /// The recovery mode.
    pub mode: Mode,
    /// The whole recovery's deadline.
    pub max_rollback_time: Duration,
    /// Show the plan, write nothing.
    pub dry_run: bool,
    /// Do not ask.
    pub yes: bool,
    /// Print the report as JSON.
    pub json: bool,
    /// Blue-green: the Service, its selector key and the stable and candidate values.
    pub service: Option<String>,
    /// Blue-green: the selector key (default `version`).
    pub selector_key: String,
    /// Blue-green: the stable side's label value.
    pub stable: Option<String>,
    /// Blue-green: the candidate side's label value.
    pub candidate: Option<String>,
}

/// How the command ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Recovered, or nothing to do.
    Ok = 0,
    /// Recovery failed.
    Failed = 1,
    /// Bad usage.
    Usage = 2,
    /// Refused: the migration gate, or no confirmation.
    Refused = 3,
}

/// The usage text.
pub const USAGE: &str = "usage: emergency-rollback DEPLOYMENT [--namespace NS] [--strategy auto|manual|blue-green] \
[--max-rollback-time 600s] [--dry-run] [--yes] [--json] [--service SVC --selector-key KEY --stable VALUE --candidate VALUE]";

fn duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("--max-rollback-time: {text:?} is not a duration like 600s or 10m"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => {
            return Err(format!(
                "--max-rollback-time: unknown unit {unit:?} (s, m, h)"
            ));
        }
    };
    if seconds == 0 {
        return Err("--max-rollback-time: must be greater than zero".into());
    }
    Ok(Duration::from_secs(seconds))
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        deployment: String::new(),
        namespace: "default".into(),
        mode: Mode::Auto,
        max_rollback_time: Duration::from_secs(600),
        dry_run: false,
        yes: false,
        json: false,
        service: None,
        selector_key: "version".into(),
        stable: None,
        candidate: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--namespace" | "-n" => options.namespace = value("--namespace")?,
            "--strategy" => {
                options.mode = match value("--strategy")?.as_str() {
                    "auto" => Mode::Auto,
                    "manual" => Mode::Manual,
                    "blue-green" => Mode::BlueGreen,
                    other => {
                        return Err(format!(
                            "--strategy: {other:?} is not auto, manual or blue-green"
                        ));
                    }
                }
            }
            "--max-rollback-time" => {
                options.max_rollback_time = duration(&value("--max-rollback-time")?)?
            }
            "--dry-run" => options.dry_run = true,
            "--yes" | "-y" => options.yes = true,
            "--json" => options.json = true,
            "--service" => options.service = Some(value("--service")?),
            "--selector-key" => options.selector_key = value("--selector-key")?,
            "--stable" => options.stable = Some(value("--stable")?),
            "--candidate" => options.candidate = Some(value("--candidate")?),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag:?}")),
            name if options.deployment.is_empty() => options.deployment = name.to_owned(),
            extra => {
                return Err(format!(
                    "unexpected argument {extra:?}: one DEPLOYMENT only"
                ));
            }
        }
    }
    if options.deployment.is_empty() {
        return Err("DEPLOYMENT is required".into());
    }
    if options.mode == Mode::BlueGreen
        && (options.service.is_none() || options.stable.is_none() || options.candidate.is_none())
    {
        return Err("--strategy blue-green needs --service, --stable and --candidate".into());
    }
    Ok(options)
}

/// Prints each plan step as it runs, on the progress stream.
struct Progress(Arc<Mutex<Box<dyn Write + Send>>>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

impl JournalSink for Progress {
    fn record(&self, event: &JournalEvent) {
        let line = match &event.kind {
            EventKind::StepStarted { index, step } => {
                format!("[+{}s] step {}: {step} ...", event.at.as_secs(), index + 1)
            }
            EventKind::StepFinished {
                index,
                took,
                attempts,
            } => {
                format!(
                    "[+{}s] step {} done in {:.1}s ({attempts} attempt(s))",
                    event.at.as_secs(),
                    index + 1,
                    took.as_secs_f64()
                )
            }
            EventKind::StepFailed { index, error } => format!(
                "[+{}s] step {} FAILED: {error}",
                event.at.as_secs(),
                index + 1
            ),
            _ => return,
        };
        if let Ok(mut out) = self.0.lock() {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// Asks the operator; `None` when there is no terminal to ask on.
pub trait Confirm {
    /// Asks `question`; `None` when nobody can answer.
    fn confirm(&mut self, question: &str) -> Option<bool>;
}

/// Asks on the terminal, if stdin is one.
#[derive(Debug, Default)]
pub struct Terminal;

impl Confirm for Terminal {
    fn confirm(&mut self, question: &str) -> Option<bool> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        eprint!("{question} [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).ok()?;
        Some(matches!(answer.trim(), "y" | "Y" | "yes"))
    }
}

fn describe(assessment: &Assessment) -> Vec<String> {
    let mut lines = Vec::new();
    let status = match &assessment.status {
        RolloutStatus::Waiting(m) | RolloutStatus::Done(m) | RolloutStatus::Failed(m) => m.clone(),
        other => format!("{other:?}"),
    };
    lines.push(format!("status: {status}"));
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
    match (&assessment.rollback_target, &assessment.no_target_reason) {
        (Some(target), _) => lines.push(format!(
            "rollback target: revision {} ({})",
            target.id,
            target.images.join(", ")
        )),
        (None, Some(why)) => lines.push(format!("rollback target: none ({why})")),
        _ => {}
    }
    if let Some(state) = &assessment.migrations {
        lines.push(format!(
            "schema: {:?}, {:?}",
            state.current.map(|v| v.0),
            state.status
        ));
    }
    lines
}

/// Runs the command against `client`. Progress goes to `progress`, the report to `out`.
pub async fn run(
    client: kube::Client,
    options: &Options,
    confirm: &mut dyn Confirm,
    out: &mut dyn Write,
    progress: Box<dyn Write + Send>,
) -> Exit {
    let progress = Arc::new(Mutex::new(progress));
    let note = |text: &str| {
        if let Ok(mut p) = progress.lock() {
            let _ = writeln!(p, "{text}");
        }
    };
    let backend = KubeDeployment::new(client.clone(), &options.namespace, &options.deployment);
    let config = GuardConfig::default()
        .with_recovery_deadline(options.max_rollback_time)
        .with_dry_run(options.dry_run)
        .with_poll_interval(Duration::from_secs(2));
    let guard = match Guard::builder(Strategy::Rolling, Arc::new(backend.clone()))
        .migrations(Arc::new(JobMigrationInspector::new(
            client.clone(),
            &options.namespace,
        )))
        .journal(Arc::new(Progress(Arc::clone(&progress))))
        .config(config)
        .build()
    {
        Ok(guard) => guard,
        Err(err) => {
            note(&format!("error: {err}"));
            return Exit::Usage;
        }
    };
    let assessment = match guard.assess().await {
        Ok(a) => a,
        Err(err) => {
            note(&format!("error: {err}"));
            return if err.kind() == ErrorKind::NotFound {
                Exit::Usage
            } else {
                Exit::Failed
            };
        }
    };
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
            out,
            &format!("{}/{}", options.namespace, options.deployment),
        )
        .await;
    }
    let healthy = !assessment.is_failing() && matches!(assessment.status, RolloutStatus::Done(_));
    if healthy {
        match options.mode {
            Mode::Manual if !options.yes => {
                match confirm.confirm("The deployment looks healthy. Roll back anyway?") {
                    Some(true) => {}
                    _ => return finish(out, "healthy; nothing rolled back", None, None, Exit::Ok),
                }
            }
            Mode::Manual => {}
            _ => return finish(out, "healthy; nothing to roll back", None, None, Exit::Ok),
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
    if options.mode == Mode::Manual && !options.yes {
        match confirm.confirm(&format!("Run this plan?\n{plan}")) {
            Some(true) => {}
            Some(false) => return finish(out, "cancelled", Some(&plan), None, Exit::Refused),
            None => {
                return finish(
                    out,
                    "refusing: --strategy manual needs a terminal to confirm on, or --yes",
                    Some(&plan),
                    None,
                    Exit::Refused,
                );
            }
        }
    }
    let report = guard.execute(&plan, options.max_rollback_time).await;
    if !report.is_complete() {
        return finish(
            out,
            "rollback FAILED",
            Some(&plan),
            Some(&report),
            Exit::Failed,
        );
    }
    let after = backend.observe().await;
    let summary = match after {
        Ok(s) => format!(
            "rolled back: {}/{} ready, {} available",
            s.ready, s.desired, s.available
        ),
        Err(err) => format!("rolled back; final observation failed: {err}"),
    };
    finish(out, &summary, Some(&plan), Some(&report), Exit::Ok)
}

async fn blue_green(
    client: kube::Client,
    options: &Options,
    out: &mut dyn Write,
    what: &str,
) -> Exit {
    let (Some(service), Some(stable), Some(candidate)) =
        (&options.service, &options.stable, &options.candidate)
    else {
        return Exit::Usage;
    };
    let router = match ServiceSelectorRouter::new(
        client,
        &options.namespace,
        service,
        &options.selector_key,
        [
            ("stable", stable.as_str()),
            ("candidate", candidate.as_str()),
        ],
    ) {
        Ok(router) => router,
        Err(err) => {
            let _ = writeln!(out, "error: {err}");
            return Exit::Usage;
        }
    };
    let wanted = match TrafficSplit::all_to("stable", &["candidate"]) {
        Ok(split) => split,
        Err(err) => {
            let _ = writeln!(out, "error: {err}");
            return Exit::Failed;
        }
    };
    let current = match router.current().await {
        Ok(c) => c,
        Err(err) => {
            let _ = writeln!(out, "error: {err}");
            return Exit::Failed;
        }
    };
    if current == wanted {
        let _ = writeln!(
            out,
            "{what}: traffic is already on the stable side ({}={stable})",
            options.selector_key
        );
        return Exit::Ok;
    }
    if options.dry_run {
        let _ = writeln!(
            out,
            "dry run: would switch {service} to {}={stable}; nothing was written",
            options.selector_key
        );
        return Exit::Ok;
    }
    match router.apply_verified(&wanted).await {
        Ok(_) => {
            let _ = writeln!(
                out,
                "switched {service} back to {}={stable}",
                options.selector_key
            );
            Exit::Ok
        }
        Err(err) if err.kind() == ErrorKind::Refused => {
            let _ = writeln!(out, "refusing: {err}");
            Exit::Refused
        }
        Err(err) => {
            let _ = writeln!(out, "blue-green rollback FAILED: {err}");
            Exit::Failed
        }
    }
}

/// Builds a client from the current kubeconfig (`KUBECONFIG`, `~/.kube/config`).
pub async fn client() -> Result<kube::Client, Error> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("kubeconfig: {e}")))?;
    kube::Client::try_from(config).map_err(|e| Error::new(ErrorKind::Unavailable, e.to_string()))
}
