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
    Assessment, EarlierRecovery, EventKind, Guard, JournalEvent, JournalSink, Plan, RECOVERY,
    Report, Strategy,
};
use deployguard_core::{
    ActorLock, DeploymentBackend, Error, ErrorKind, LockState, TrafficRouter, TrafficSplit,
    Verification,
};
use deployguard_k8s::{JobMigrationInspector, KubeDeployment, LeaseLock, ServiceSelectorRouter};
use serde_json::json;

/// Which recovery to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Roll back only when the deployment is failing.
    Auto,
    /// Roll back even a deployment that looks healthy (after confirmation).
    Manual,
    /// Switch a Service selector back to the stable side.
    #[value(name = "blue-green")]
    BlueGreen,
}

/// The command line.
#[derive(Debug, Clone, PartialEq, clap::Parser)]
#[command(
    name = "emergency-rollback",
    about = "Roll a failing Kubernetes Deployment back to its last good revision, safely.",
    long_about = "Roll a failing Kubernetes Deployment back to its last good revision, safely.\n\n\
        Uses the current kubeconfig (KUBECONFIG, or ~/.kube/config) and its current context. \
        The command first assesses the rollout and prints what it found and the recovery plan. \
        On a terminal it asks before writing anything; without a terminal it writes nothing \
        unless --yes is given. A rollback the database schema cannot take (a failed or \
        incompatible migration) is refused.",
    after_help = "Exit codes: 0 recovered or nothing to do, 1 recovery failed, 2 bad usage or \
        no such deployment, 3 refused (migration gate, no consent).\n\n\
        Examples:\n  emergency-rollback app-deployment --dry-run\n  \
        emergency-rollback app-deployment -n shop --yes --max-rollback-time 5m\n  \
        emergency-rollback myapp-green --strategy blue-green --service myapp-service \
        --stable blue --candidate green"
)]
pub struct Options {
    /// The Deployment to recover (a DNS-1123 name, as Kubernetes requires).
    #[arg(value_parser = parse_name)]
    pub deployment: String,
    /// Its namespace.
    #[arg(short, long, default_value = "default", value_parser = parse_name)]
    pub namespace: String,
    /// auto: roll back only a failing rollout; manual: roll back even a healthy one;
    /// blue-green: switch a Service selector back to the stable side.
    #[arg(long = "strategy", value_enum, default_value = "auto")]
    pub mode: Mode,
    /// The whole recovery's deadline, assessment included (e.g. 90s, 10m, 1h; at most 24h).
    #[arg(long, default_value = "600s", value_parser = parse_deadline)]
    pub max_rollback_time: Duration,
    /// Assess and print the plan; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Act without asking (needed when there is no terminal to ask on).
    #[arg(short, long)]
    pub yes: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// blue-green: the Service whose selector picks the live side.
    #[arg(long, value_parser = parse_name, required_if_eq("mode", "blue-green"))]
    pub service: Option<String>,
    /// blue-green: the selector key that tells the sides apart.
    #[arg(long, default_value = "version")]
    pub selector_key: String,
    /// blue-green: the stable side's value of the selector key.
    #[arg(long, required_if_eq("mode", "blue-green"))]
    pub stable: Option<String>,
    /// blue-green: the candidate side's value of the selector key.
    #[arg(long, required_if_eq("mode", "blue-green"))]
    pub candidate: Option<String>,
    /// How long the deployment's lease lasts without a renewal: another actor that crashed
    /// holding it is waited for at most this long (renewed every third of it; 1s to 5m).
    #[arg(long, default_value = "15s", value_parser = parse_lease_ttl)]
    pub lease_ttl: Duration,
    /// Resume a paused deployment to roll it back (a paused rollout was paused by someone, on
    /// purpose: without this the command refuses, as `kubectl rollout undo` does).
    #[arg(long)]
    pub resume_paused: bool,
    /// The API server, for messages (the binary sets it from the kubeconfig).
    #[arg(skip)]
    pub server: Option<String>,
    /// Show progress as a spinner line with the rollout's state (the binary sets it when stderr
    /// is a terminal); otherwise one plain line per event.
    #[arg(skip)]
    pub spinner: bool,
}

/// How the command ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Recovered, or nothing to do.
    Ok = 0,
    /// Recovery failed.
    Failed = 1,
    /// Bad usage, or no such deployment.
    Usage = 2,
    /// Refused: the migration gate, or no consent to write.
    Refused = 3,
}

/// The longest deadline accepted: an emergency command that may run for days is a mistake.
const MAX_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// A DNS-1123 label, as Kubernetes validates Deployment, Namespace and Service names: at most 63
/// lowercase letters, digits and '-', starting and ending with a letter or digit.
pub fn parse_name(text: &str) -> Result<String, String> {
    let valid_chars = text
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let valid_ends = text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric());
    if text.is_empty() || text.len() > 63 || !valid_chars || !valid_ends {
        return Err(format!(
            "{text:?} is not a valid name: a lowercase RFC 1123 label must consist of lower case \
             alphanumeric characters or '-', start and end with an alphanumeric character, and be \
             at most 63 characters"
        ));
    }
    Ok(text.to_owned())
}

/// A duration as humantime reads it (`90s`, `10m`, `1h 30m`), greater than zero and at most 24 h.
pub fn parse_deadline(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|err| format!("{text:?} is not a duration like 90s, 10m or 1h ({err})"))?;
    if duration.is_zero() {
        return Err("must be greater than zero".into());
    }
    if duration > MAX_DEADLINE {
        return Err(format!(
            "{} is longer than the 24h this command accepts",
            humantime::format_duration(duration)
        ));
    }
    Ok(duration)
}

fn parse_lease_ttl(text: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(text)
        .map_err(|err| format!("{text:?} is not a duration like 15s ({err})"))?;
    if !(Duration::from_secs(1)..=Duration::from_secs(300)).contains(&ttl) {
        return Err("must be between 1s and 5m".into());
    }
    Ok(ttl)
}

/// Parses the arguments after the program name; the error is clap's, worded for a person.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, clap::Error> {
    <Options as clap::Parser>::try_parse_from(
        std::iter::once("emergency-rollback".to_owned()).chain(args),
    )
}

/// Shows the recovery as it runs, on the progress stream: one plain line per event, or on a
/// terminal a spinner line that carries the current step and the rollout's state.
struct Progress {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    /// The spinner's text and since when it shows, when a spinner runs; `None` prints plain
    /// lines.
    spinner: Option<Arc<Mutex<(String, tokio::time::Instant)>>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// The spinner's frames and how often it turns.
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const TURN: Duration = Duration::from_millis(100);

impl Progress {
    fn new(out: Arc<Mutex<Box<dyn Write + Send>>>, spinner: bool) -> Self {
        let spinner =
            spinner.then(|| Arc::new(Mutex::new((String::new(), tokio::time::Instant::now()))));
        if let Some(text) = &spinner {
            // Redraws the spinner line until the last handle to its text is dropped.
            let text = Arc::downgrade(text);
            let out = Arc::clone(&out);
            tokio::spawn(async move {
                for frame in FRAMES.iter().cycle() {
                    tokio::time::sleep(TURN).await;
                    let Some(text) = text.upgrade() else { break };
                    let Ok((line, since)) = text.lock().map(|t| t.clone()) else {
                        break;
                    };
                    if let (false, Ok(mut out)) = (line.is_empty(), out.lock()) {
                        let elapsed = since.elapsed().as_secs();
                        let _ = write!(out, "\r\x1b[2K{frame} {line} [{elapsed}s]");
                        let _ = out.flush();
                    }
                }
            });
        }
        Self { out, spinner }
    }

    /// A line that stays: clears the spinner's line first.
    fn line(&self, text: &str) {
        if let Ok(mut out) = self.out.lock() {
            let clear = if self.spinner.is_some() {
                "\r\x1b[2K"
            } else {
                ""
            };
            let _ = writeln!(out, "{clear}{text}");
        }
    }

    /// What the spinner shows from now on (a plain line without a spinner).
    fn status(&self, text: String) {
        match &self.spinner {
            Some(spinner) => {
                if let Ok(mut current) = spinner.lock() {
                    *current = (text, tokio::time::Instant::now());
                }
            }
            None => self.line(&text),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Leave no half-drawn spinner line behind.
        if let (Some(_), Ok(mut out)) = (&self.spinner, self.out.lock()) {
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
        }
    }
}

impl JournalSink for Progress {
    fn record(&self, event: &JournalEvent) {
        let at = event.at.as_secs();
        match &event.kind {
            EventKind::StepStarted { index, step } => {
                self.status(format!("[+{at}s] step {}: {step} ...", index + 1))
            }
            EventKind::StepFinished {
                index,
                took,
                attempts,
            } => {
                let tries = if *attempts == 1 {
                    String::new()
                } else {
                    format!(", {attempts} attempts")
                };
                self.line(&format!(
                    "[+{at}s] step {} done in {:.1}s{tries}",
                    index + 1,
                    took.as_secs_f64()
                ));
            }
            EventKind::StepFailed { index, error } => {
                self.line(&format!("[+{at}s] step {} FAILED: {error}", index + 1))
            }
            EventKind::Observed { status, .. } => {
                self.status(format!("[+{at}s] rollout: {status}"))
            }
            _ => {}
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
    match (&assessment.rollback_target, &assessment.no_target_reason) {
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
    let backend = KubeDeployment::new(client.clone(), &options.namespace, &options.deployment);
    let guard = match Guard::builder(Strategy::Rolling, Arc::new(backend.clone()))
        .migrations(Arc::new(JobMigrationInspector::new(
            client.clone(),
            &options.namespace,
        )))
        .journal(Arc::new(Progress::new(
            Arc::clone(&progress),
            options.spinner,
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
            return Exit::Usage;
        }
    };
    let started = tokio::time::Instant::now();
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
        Err(_) => {
            note(&format!(
                "error: {}",
                out_of_time("assessing the deployment")
            ));
            return Exit::Failed;
        }
        Ok(Ok(a)) => a,
        // The reads' own retries ran out of the same deadline.
        Ok(Err(err)) if err.kind() == ErrorKind::Timeout => {
            note(&format!(
                "error: {}",
                out_of_time("assessing the deployment")
            ));
            return Exit::Failed;
        }
        Ok(Err(err)) => {
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
            "healthy"
        } else {
            "in progress and not failing"
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
    // One actor per deployment: the deployment's Lease is held while writing. Another holder
    // (a guard, another run of this command) is waited for, and its outcome reported.
    let lease = LeaseLock::new(client.clone(), &options.namespace, &options.deployment);
    let holder = format!("emergency-rollback/{}", std::process::id());
    let lease_deadline = tokio::time::Instant::now() + options.max_rollback_time;
    let mut waited = false;
    loop {
        match lease.acquire(&holder, options.lease_ttl).await {
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
                if tokio::time::Instant::now() >= lease_deadline {
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
            Err(err) if err.is_retryable() && tokio::time::Instant::now() < lease_deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
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
        match guard.assess().await {
            Ok(after) if !after.recovery_under_way() && !after.is_failing() => {
                let _ = lease.release(&holder).await;
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
    // The time spent asking a person is not the recovery's: the deadline moves by it.
    let remaining = options
        .max_rollback_time
        .saturating_sub(asked_at.duration_since(started));
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
    let _ = lease.release(&holder).await;
    let Some(report) = report else {
        return finish(
            out,
            "rollback FAILED: lost the deployment's lease",
            Some(&plan),
            None,
            Exit::Failed,
        );
    };
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
    confirm: &mut (dyn Confirm + Send),
    out: &mut (dyn Write + Send),
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
    if current.split == wanted {
        let _ = writeln!(
            out,
            "{what}: traffic is already on the stable side ({}={stable})",
            options.selector_key
        );
        return Exit::Ok;
    }
    // The dry run asks what the real switch asks: a stable side with no ready pods is refused
    // in both.
    if let Err(err) = router.check_ready("stable").await {
        let _ = writeln!(out, "refusing: {err}");
        return if err.kind() == ErrorKind::Refused {
            Exit::Refused
        } else {
            Exit::Failed
        };
    }
    if options.dry_run {
        let _ = writeln!(
            out,
            "dry run: would switch {service} to {}={stable}; nothing was written",
            options.selector_key
        );
        return Exit::Ok;
    }
    if !options.yes {
        let question = format!(
            "Switch Service {service} back to {}={stable}?",
            options.selector_key
        );
        match confirm.confirm(&question) {
            Some(true) => {}
            Some(false) => {
                let _ = writeln!(out, "cancelled; nothing was written");
                return Exit::Refused;
            }
            None => {
                let _ = writeln!(
                    out,
                    "refusing to write: there is no terminal to confirm on; run again with --yes to switch {service} to {}={stable}",
                    options.selector_key
                );
                return Exit::Refused;
            }
        }
    }
    // Conditional on the read the person consented to: a change since is a conflict.
    let switched = match router.apply(&wanted, &current.version).await {
        Ok(_) => router.verify(&wanted).await,
        Err(err) => Err(err),
    };
    match switched {
        Ok(Verification::Differs(actual)) => {
            let _ = writeln!(
                out,
                "blue-green rollback FAILED: switched {service}, but the endpoints route {actual}"
            );
            Exit::Failed
        }
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

/// How long connecting to the API server may take, and reading one answer: a server that
/// accepts and never answers is given up on, and named.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A client from the current kubeconfig (`KUBECONFIG`, `~/.kube/config`), with connect and read
/// timeouts, and the API server's address for messages. Errors never quote the kubeconfig: a
/// parse error can carry a token from the file, so only where it failed is said.
pub async fn client() -> Result<(kube::Client, String), Error> {
    let config = kube::Config::infer().await.map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("kubeconfig: {}", redacted(&e.to_string())),
        )
    })?;
    client_with(config)
}

/// [`client`] from the kubeconfig file at `path` and its current context.
pub async fn client_from(path: &std::path::Path) -> Result<(kube::Client, String), Error> {
    let invalid = |e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "kubeconfig {}: {}",
                path.display(),
                redacted(&e.to_string())
            ),
        )
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| invalid(&e))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| invalid(&e))?;
    client_with(config)
}

fn client_with(mut config: kube::Config) -> Result<(kube::Client, String), Error> {
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "cannot build a client for {server}: {}",
                redacted(&e.to_string())
            ),
        )
    })?;
    Ok((client, server))
}

/// A configuration error's message without anything it quotes from the file: the words before
/// the first quote or detail, and the line and column where it failed.
pub fn redacted(message: &str) -> String {
    let head = message
        .split([':', '\'', '"', '`'])
        .next()
        .unwrap_or_default()
        .trim();
    let location = message.find("line ").and_then(|start| {
        let words: Vec<&str> = message[start..].split_whitespace().take(4).collect();
        let digits = |w: &str| {
            w.trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse::<u32>()
        };
        match words.as_slice() {
            ["line", line, "column", column] => Some(format!(
                " at line {} column {}",
                digits(line).ok()?,
                digits(column).ok()?
            )),
            _ => None,
        }
    });
    format!("{head}{}", location.unwrap_or_default())
}
