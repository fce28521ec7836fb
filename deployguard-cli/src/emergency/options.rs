//! The command line: options, exit codes, and the parsers that check what a person typed.

use std::time::Duration;

/// Which recovery to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Roll back only when the deployment is failing.
    Auto,
    /// Roll back even a deployment that looks healthy (after confirmation).
    Manual,
    /// Put traffic back on the stable side: a Service selector, an Istio route, an AWS ALB.
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
        no such deployment, 3 refused (migration gate, no consent), 4 stopped: another writer \
        changed the deployment during the recovery (run again to re-assess).\n\n\
        Examples:\n  emergency-rollback app-deployment --dry-run\n  \
        emergency-rollback app-deployment -n shop --yes --max-rollback-time 5m\n  \
        emergency-rollback myapp-green --strategy blue-green --service myapp-service \
        --stable blue --candidate green\n  \
        emergency-rollback app-canary --strategy blue-green --virtual-service myapp \
        --route primary --stable stable --dry-run\n  \
        emergency-rollback app-canary --strategy blue-green --http-route myapp --rule primary \
        --stable app-stable\n  \
        emergency-rollback shop --strategy blue-green --alb-listener arn:aws:elasticloadbalancing:… \
        --stable shop-blue --candidate shop-green"
)]
pub struct Options {
    /// The Deployment to recover (a DNS-1123 name, as Kubernetes requires; with --alb-listener
    /// or --alb-rule, the service's name for messages).
    #[arg(value_parser = parse_name)]
    pub deployment: String,
    /// Its namespace.
    #[arg(short, long, default_value = "default", value_parser = parse_name)]
    pub namespace: String,
    /// auto: roll back only a failing rollout; manual: roll back even a healthy one;
    /// blue-green: put traffic back on the stable side (a Service selector, an Istio route, an
    /// AWS ALB listener or rule).
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
    /// Print the report as JSON on stdout (an error too, as {"error": …}).
    #[arg(long)]
    pub json: bool,
    /// The kubeconfig file (default: KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Send the kubeconfig's credentials to a plain http:// server (a local test cluster);
    /// without it they go only over TLS.
    #[arg(long)]
    pub allow_plain_http: bool,
    /// blue-green: the Service whose selector picks the live side.
    #[arg(long, value_parser = parse_name, conflicts_with = "virtual_service")]
    pub service: Option<String>,
    /// blue-green (Istio): the VirtualService whose route's weights pick the live subset; all
    /// traffic goes to the --stable subset, every other destination of the route to 0.
    #[arg(long, value_parser = parse_name)]
    pub virtual_service: Option<String>,
    /// blue-green (Istio): the HTTP route of the VirtualService, by name (needed when it has
    /// several).
    #[arg(long, requires = "virtual_service")]
    pub route: Option<String>,
    /// blue-green (Gateway API): the HTTPRoute whose rule's backendRefs weigh the Services;
    /// all traffic goes to the --stable Service, every other backendRef of the rule to 0.
    #[arg(long, value_name = "NAME", value_parser = parse_name, conflicts_with_all = ["service", "virtual_service"])]
    pub http_route: Option<String>,
    /// blue-green (Gateway API): the rule of the HTTPRoute, by index or name (needed when it
    /// has several).
    #[arg(long, value_name = "N", requires = "http_route")]
    pub rule: Option<String>,
    /// blue-green (AWS ALB): the listener whose default action forwards to the target groups
    /// (an ARN); --stable and --candidate are then target groups (names or ARNs). Uses the
    /// standard AWS configuration (environment, profile, region), not the kubeconfig.
    #[arg(long, value_name = "ARN", value_parser = parse_listener_arn, conflicts_with_all = ["service", "virtual_service", "http_route", "alb_rule"])]
    pub alb_listener: Option<String>,
    /// blue-green (AWS ALB): the listener rule whose action forwards to the target groups.
    #[arg(long, value_name = "ARN", value_parser = parse_rule_arn, conflicts_with_all = ["service", "virtual_service", "http_route"])]
    pub alb_rule: Option<String>,
    /// blue-green: the selector key that tells the sides apart.
    #[arg(long, default_value = "version")]
    pub selector_key: String,
    /// blue-green: the stable side's value of the selector key (with --virtual-service: the
    /// stable subset; with --alb-*: the stable target group).
    #[arg(long, required_if_eq("mode", "blue-green"))]
    pub stable: Option<String>,
    /// blue-green: the candidate side's value of the selector key (with --virtual-service:
    /// optional, every other subset of the route is set to 0; with --alb-*: the candidate target
    /// group).
    #[arg(long)]
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
    /// Stopped: another writer changed the deployment during the recovery; nothing more was
    /// written (a new run re-assesses).
    Interfered = 4,
}

/// The longest deadline accepted: an emergency command that may run for days is a mistake.
const MAX_DEADLINE: Duration = Duration::from_secs(24 * 3600);
/// The shortest: below a second no server can be read and acted on, and a deadline that runs
/// out before the first answer would blame the server for the command's own limit.
const MIN_DEADLINE: Duration = Duration::from_secs(1);

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

/// A duration as humantime reads it (`90s`, `10m`, `1h 30m`), at least 1 s and at most 24 h.
pub fn parse_deadline(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|err| format!("{text:?} is not a duration like 90s, 10m or 1h ({err})"))?;
    if duration < MIN_DEADLINE {
        return Err(format!(
            "{} is too short: a recovery needs at least {} to read the deployment and act",
            humantime::format_duration(duration),
            humantime::format_duration(MIN_DEADLINE)
        ));
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
    let mut command = <Options as clap::CommandFactory>::command();
    let matches = command
        .try_get_matches_from_mut(std::iter::once("emergency-rollback".to_owned()).chain(args))?;
    let options = <Options as clap::FromArgMatches>::from_arg_matches(&matches)?;
    // Flags of one strategy are refused under another, never silently ignored.
    let given = |id: &str| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    let alb = options.alb_listener.is_some() || options.alb_rule.is_some();
    if alb && (options.mode != Mode::BlueGreen || options.candidate.is_none()) {
        return Err(command.error(
            clap::error::ErrorKind::MissingRequiredArgument,
            "--alb-listener/--alb-rule switch traffic between target groups: they need --strategy blue-green --stable <TG> --candidate <TG>",
        ));
    }
    let traffic_flags = [
        ("service", "--service"),
        ("virtual_service", "--virtual-service"),
        ("route", "--route"),
        ("http_route", "--http-route"),
        ("rule", "--rule"),
        ("stable", "--stable"),
        ("candidate", "--candidate"),
        ("selector_key", "--selector-key"),
        ("alb_listener", "--alb-listener"),
        ("alb_rule", "--alb-rule"),
    ];
    if options.mode != Mode::BlueGreen
        && let Some((_, flag)) = traffic_flags.iter().find(|(id, _)| given(id))
    {
        return Err(command.error(
            clap::error::ErrorKind::ArgumentConflict,
            format!(
                "{flag} switches traffic, which only --strategy blue-green does; with --strategy {} it would be ignored",
                options.mode.name()
            ),
        ));
    }
    if options.mode == Mode::BlueGreen {
        let rollback_flags = [
            ("resume_paused", "--resume-paused"),
            ("lease_ttl", "--lease-ttl"),
        ];
        if let Some((_, flag)) = rollback_flags.iter().find(|(id, _)| given(id)) {
            return Err(command.error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "{flag} applies to rolling a deployment back (--strategy auto or manual); --strategy blue-green switches traffic and would ignore it"
                ),
            ));
        }
    }
    if alb && (given("kubeconfig") || given("allow_plain_http") || given("namespace")) {
        return Err(command.error(
            clap::error::ErrorKind::ArgumentConflict,
            "--alb-listener/--alb-rule use the AWS configuration, not a kubeconfig: --kubeconfig, --allow-plain-http and --namespace would be ignored",
        ));
    }
    // What clap cannot say alone: blue-green needs a Service (and both of its selector values)
    // or a VirtualService.
    if options.mode == Mode::BlueGreen
        && options.virtual_service.is_none()
        && options.http_route.is_none()
        && !alb
    {
        let missing = match (&options.service, &options.candidate) {
            (None, _) => Some(
                "--service <SERVICE> (a Service selector), --virtual-service <NAME> (an Istio route), --http-route <NAME> (a Gateway API route) or --alb-listener/--alb-rule <ARN> (an AWS ALB)",
            ),
            (Some(_), None) => {
                Some("--candidate <CANDIDATE> (the selector value of the candidate side)")
            }
            _ => None,
        };
        if let Some(missing) = missing {
            return Err(command.error(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!("--strategy blue-green needs {missing}"),
            ));
        }
    }
    Ok(options)
}

impl Mode {
    /// The name `--strategy` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Manual => "manual",
            Self::BlueGreen => "blue-green",
        }
    }
}

/// An ALB listener's ARN: `arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID`.
pub fn parse_listener_arn(text: &str) -> Result<String, String> {
    parse_alb_arn(text, "listener", 3)
}

/// An ALB listener rule's ARN: `…:listener-rule/app/NAME/ID/ID/ID`.
pub fn parse_rule_arn(text: &str) -> Result<String, String> {
    parse_alb_arn(text, "listener-rule", 4)
}

/// Checked before any AWS call: a malformed ARN is a typing mistake, not something to ask AWS
/// (or the instance metadata service, for a region) about.
fn parse_alb_arn(text: &str, kind: &str, ids: usize) -> Result<String, String> {
    let example = format!(
        "arn:aws:elasticloadbalancing:REGION:ACCOUNT:{kind}/app/NAME/{}",
        vec!["ID"; ids - 1].join("/")
    );
    let wrong = |what: &str| {
        Err(format!(
            "{text:?} is not an ALB {kind} ARN ({what}); expected {example}"
        ))
    };
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return wrong("it has fewer than six ':'-separated parts");
    };
    if *arn != "arn" || !matches!(*partition, "aws" | "aws-cn" | "aws-us-gov") {
        return wrong("it must start with arn:aws:, arn:aws-cn: or arn:aws-us-gov:");
    }
    if *service != "elasticloadbalancing" {
        return wrong("its service is not elasticloadbalancing");
    }
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.contains('-');
    if !region_ok {
        return wrong("its region is not like eu-west-1");
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return wrong("its account is not 12 digits");
    }
    let segments: Vec<&str> = resource.split('/').collect();
    let shape_ok = segments.len() == 3 + ids - 1
        && segments[0] == kind
        && segments[1] == "app"
        && !segments[2].is_empty()
        && segments[3..]
            .iter()
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()));
    if !shape_ok {
        return wrong(&format!(
            "its resource is not {kind}/app/NAME/ followed by hexadecimal IDs"
        ));
    }
    Ok(text.to_owned())
}

/// The region an ARN names.
pub fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}
