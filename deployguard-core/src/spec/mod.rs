//! [`GuardSpec`]: a whole guard as data — the policy a team keeps in YAML next to its manifests,
//! or the spec of a `RolloutGuard` resource. Durations read as people write them (`30s`, `10m`,
//! `1h 30m`), everything optional has a default, an unknown field is refused, and every error
//! names where in the document it is (`checks[1].interval: invalid duration "10 fortnights"`).
//!
//! A spec builds through the same validating builders as code ([`GuardSpec::checks`],
//! [`GuardSpec::guard_builder`]), so a spec and a program cannot disagree on what is valid.
//! Probes are data here ([`ProbeSpec`]); the program that runs the guard turns each into a
//! probe of its backend crates ([`ProbeResolver`]).
//!
//! ```
//! use deployguard_core::spec::GuardSpec;
//!
//! let spec = GuardSpec::from_yaml(r#"
//! target: {deployment: app-deployment, namespace: shop}
//! probes:
//!   - {name: http, kind: prometheus, url: "http://prometheus:9090", errorRatio: {service: app}}
//! checks:
//!   - name: error-rate
//!     probe: http
//!     metric: error_rate
//!     judge: {kind: sequential}
//!     success: {max: 0.01}
//!     interval: 30s
//! bake: 10m
//! "#)?;
//! assert_eq!(spec.checks()?[0].interval, std::time::Duration::from_secs(30));
//!
//! let err = GuardSpec::from_yaml("target: {deployment: app}\nchecks:\n  - {name: x, probe: p, metric: m, success: {max: 1}, interval: 10 fortnights}\n")
//!     .unwrap_err();
//! assert!(err.to_string().contains("checks[0].interval: invalid duration \"10 fortnights\""), "{err}");
//! # Ok::<(), deployguard_core::Error>(())
//! ```

mod duration;
mod probes;
mod routers;

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analysis::{AnalysisCheck, Judge, NoDataPolicy, SharedCausePolicy, Threshold};
use crate::engine::{BlueGreen, Canary, CanaryStep, GuardBuilder, MigrationPolicy, Strategy};
use crate::error::{Error, Result};
use crate::traits::{DeploymentBackend, HealthProbe};

pub use probes::{
    AlbTargetHealthSpec, ErrorRatioSpec, LatencySpec, PodReadinessSpec, ProbeResolver, ProbeSpec,
    PrometheusSpec, SimulatedTrafficSpec, WebSpec,
};
pub use routers::RouterSpec;

/// A whole guard as data. See the [module](self) for an example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct GuardSpec {
    /// The Deployment guarded.
    pub target: TargetSpec,
    /// How the rollout moves (default: rolling).
    #[serde(default)]
    pub strategy: StrategySpec,
    /// What moves a blue-green's or canary's traffic (required for them, refused otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<RouterSpec>,
    /// The probes the checks read, each named once.
    #[serde(default)]
    pub probes: Vec<ProbeSpec>,
    /// The checks: which probe, which metric, how it is judged.
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    /// How long a completed rolling or recreate rollout is still judged before it is promoted
    /// (default 5m; 0s turns it off).
    #[serde(default = "defaults::bake", with = "duration")]
    #[schemars(with = "duration::Schema")]
    pub bake: Duration,
    /// How long a failing or unready pod of the new version is given.
    #[serde(default)]
    pub patience: PatienceSpec,
    /// The database migration gate.
    #[serde(default)]
    pub migrations: MigrationsSpec,
    /// How long a recovery and each of its steps may take, and how often the guard looks.
    #[serde(default)]
    pub deadlines: DeadlinesSpec,
    /// Who is told what the guard decided.
    #[serde(default)]
    pub notifications: NotificationsSpec,
    /// Observe, judge and plan; write nothing (default false).
    #[serde(default)]
    pub dry_run: bool,
}

/// The Deployment guarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct TargetSpec {
    /// Its name.
    pub deployment: String,
    /// Its namespace (default: `default`; a RolloutGuard's own namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The stable side's Deployment, for blue-green (the active side) and canary: scaled up
    /// and awaited before traffic goes back to it. `deployment` is then the new side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<String>,
}

/// How the rollout moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum StrategySpec {
    /// The Deployment's own rolling update; recovery rolls back.
    #[default]
    Rolling,
    /// All pods replaced at once; recovery rolls back.
    Recreate,
    /// Two sides, traffic switched at once.
    #[serde(rename_all = "camelCase")]
    BlueGreen {
        /// The side serving now.
        active: String,
        /// The side being promoted.
        preview: String,
        /// Promote when the pre-promotion checks pass (default true; false waits for a person).
        #[serde(default = "defaults::yes")]
        auto_promote: bool,
        /// Checks (by name, from `checks`) that must pass before traffic moves.
        #[serde(default)]
        pre_promotion: Vec<String>,
        /// Checks (by name) that must pass after traffic moved.
        #[serde(default)]
        post_promotion: Vec<String>,
        /// How long the old side keeps its pods after a promotion (default 30s).
        #[serde(default = "defaults::thirty_seconds", with = "duration")]
        #[schemars(with = "duration::Schema")]
        scale_down_delay: Duration,
    },
    /// Traffic moved to the new version in steps.
    #[serde(rename_all = "camelCase")]
    Canary {
        /// The stable side's backend name.
        stable: String,
        /// The canary side's backend name.
        canary: String,
        /// The steps, in order.
        steps: Vec<StepSpec>,
        /// How long the canary keeps its pods after an abort (default 30s).
        #[serde(default = "defaults::thirty_seconds", with = "duration")]
        #[schemars(with = "duration::Schema")]
        abort_scale_down_delay: Duration,
        /// How long the old side keeps its pods after a promotion (default 30s).
        #[serde(default = "defaults::thirty_seconds", with = "duration")]
        #[schemars(with = "duration::Schema")]
        scale_down_delay: Duration,
    },
}

/// One canary step: `{setWeight: 20}`, `{pause: {duration: 5m}}` (no duration: until a person
/// promotes), or `analysis` (the checks run until they finish).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum StepSpec {
    /// Send this percentage of traffic to the canary.
    SetWeight(u8),
    /// Wait.
    Pause(PauseSpec),
    /// Run the checks until they finish.
    Analysis,
}

/// A pause: for `duration`, or until promoted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PauseSpec {
    /// How long (none: until a person promotes).
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<duration::Schema>")]
    pub duration: Option<Duration>,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct CheckSpec {
    /// Its name, unique within the guard.
    pub name: String,
    /// The probe it reads (a name from `probes`).
    pub probe: String,
    /// The measurement it reads (`error_rate`, `latency_p99`, `ready_fraction`, …).
    pub metric: String,
    /// How the new version is judged (default: against the ranges alone).
    #[serde(default)]
    pub judge: JudgeSpec,
    /// Values that pass.
    pub success: RangeSpec,
    /// Values outside `success` but here are inconclusive (a pause for a person); outside both
    /// they fail. Without it, everything outside `success` fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<RangeSpec>,
    /// Time between measurements (default 1m).
    #[serde(default = "defaults::minute", with = "duration")]
    #[schemars(with = "duration::Schema")]
    pub interval: Duration,
    /// Measurements to take (default: until the rollout ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Wait before the first measurement (default 0s).
    #[serde(default, with = "duration")]
    #[schemars(with = "duration::Schema")]
    pub initial_delay: Duration,
    /// Failed measurements tolerated (default 0).
    #[serde(default)]
    pub failure_limit: u32,
    /// Consecutive probe errors tolerated (default 4).
    #[serde(default = "defaults::four")]
    pub consecutive_error_limit: u32,
    /// Inconclusive measurements tolerated before a pause (default 0).
    #[serde(default)]
    pub inconclusive_limit: u32,
    /// Consecutive successes that pass the check early (default 0: off).
    #[serde(default)]
    pub consecutive_success_limit: u32,
    /// What no data means (default pause).
    #[serde(default)]
    pub no_data: NoDataSpec,
    /// How long no data is expected at the start (default 1m).
    #[serde(default = "defaults::minute", with = "duration")]
    #[schemars(with = "duration::Schema")]
    pub no_data_grace: Duration,
    /// What both versions out of range means (default pause).
    #[serde(default)]
    pub shared_cause: SharedCauseSpec,
    /// Judge everything each version served since the new version first served (default false;
    /// the sequential judge always does).
    #[serde(default)]
    pub pooled: bool,
    /// Evaluate and journal, never act (default false).
    #[serde(default)]
    pub dry_run: bool,
}

/// A range: `{max: 0.01}`, `{min: 0.99}`, `{min: 0, max: 0.5}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RangeSpec {
    /// The least value in range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The greatest value in range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// How a check judges the new version: `{kind: threshold}` (the default), `{kind: compare,
/// maxRatio: 2}`, `{kind: statistical}`, `{kind: sequential}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum JudgeSpec {
    /// Against the ranges alone.
    #[default]
    Threshold,
    /// Against the previous version's value.
    #[serde(rename_all = "camelCase")]
    Compare {
        /// How many times the baseline's value the new version's may be.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_ratio: Option<f64>,
        /// How far above the baseline's value it may be.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_increase: Option<f64>,
        /// Observations each side needs (default 50).
        #[serde(default = "defaults::fifty")]
        min_observations: u64,
    },
    /// Fisher's exact test on errors, Mann-Whitney U on latencies, as Kayenta judges.
    #[serde(rename_all = "camelCase")]
    Statistical {
        /// The confidence it is worse (default 0.99).
        #[serde(default = "defaults::confidence")]
        confidence: f64,
        /// How much worse is still acceptable (default 0.01).
        #[serde(default = "defaults::margin")]
        margin: f64,
        /// Observations each side needs (default 50).
        #[serde(default = "defaults::fifty")]
        min_observations: u64,
    },
    /// Anytime-valid e-values, valid however often the guard looks (deployguard's default
    /// judge for counts).
    #[serde(rename_all = "camelCase")]
    Sequential {
        /// The false-alarm bound over the whole rollout (default 0.01).
        #[serde(default = "defaults::alpha")]
        alpha: f64,
        /// How many times the baseline's rate the new version's may be (default 1.5).
        #[serde(default = "defaults::tolerated_ratio")]
        tolerated_ratio: f64,
        /// Observations the new version needs before it is judged (default 50).
        #[serde(default = "defaults::fifty")]
        min_observations: u64,
    },
}

/// What no data means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum NoDataSpec {
    /// A failed measurement.
    Fail,
    /// A pause for a person.
    #[default]
    Pause,
    /// Nothing.
    Ignore,
}

/// What both versions out of range means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum SharedCauseSpec {
    /// Pause for a person: the cause is not the new version's.
    #[default]
    Pause,
    /// Go on.
    Continue,
}

/// How long a failing or unready pod of the new version is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct PatienceSpec {
    /// How long a definite pod failure (CrashLoopBackOff, an image that cannot be pulled,
    /// OOMKilled, …) may last before the guard aborts (default 20s; `off` leaves pod failures
    /// to the checks).
    #[serde(default = "defaults::pod_failure_after", with = "duration::or_off")]
    #[schemars(with = "duration::Schema")]
    pub pod_failure_after: Option<Duration>,
    /// How long pods may run unready while their app answers nothing (default `off`: the
    /// workload's progress deadline).
    #[serde(default, with = "duration::or_off")]
    #[schemars(with = "duration::Schema")]
    pub unready_after: Option<Duration>,
}

impl Default for PatienceSpec {
    fn default() -> Self {
        Self {
            pod_failure_after: defaults::pod_failure_after(),
            unready_after: None,
        }
    }
}

/// The database migration gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct MigrationsSpec {
    /// What a rollback the schema cannot take does (default block).
    #[serde(default)]
    pub policy: MigrationPolicySpec,
    /// Read migration Jobs in the namespace (default true).
    #[serde(default = "defaults::yes")]
    pub inspect_jobs: bool,
}

impl Default for MigrationsSpec {
    fn default() -> Self {
        Self {
            policy: MigrationPolicySpec::default(),
            inspect_jobs: true,
        }
    }
}

/// What a rollback the schema cannot take does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum MigrationPolicySpec {
    /// Refuse it: freeze the rollout, keep traffic where it is, report.
    #[default]
    Block,
    /// Roll back, and say why it may be unsafe.
    Warn,
    /// Do not look.
    Ignore,
}

/// How long a recovery and each step may take, and how often the guard looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeadlinesSpec {
    /// The whole recovery, its assessment included (default 10m).
    #[serde(default = "defaults::ten_minutes", with = "duration")]
    #[schemars(with = "duration::Schema")]
    pub recovery: Duration,
    /// One step of it (default 5m).
    #[serde(default = "defaults::five_minutes", with = "duration")]
    #[schemars(with = "duration::Schema")]
    pub step: Duration,
    /// How often the guard looks at the rollout (default 5s).
    #[serde(default = "defaults::five_seconds", with = "duration")]
    #[schemars(with = "duration::Schema")]
    pub poll: Duration,
}

impl Default for DeadlinesSpec {
    fn default() -> Self {
        Self {
            recovery: defaults::ten_minutes(),
            step: defaults::five_minutes(),
            poll: defaults::five_seconds(),
        }
    }
}

/// Who is told what the guard decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct NotificationsSpec {
    /// POST each abort, pause and outcome as JSON (with a Slack-compatible `text`) here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Write each abort, pause and outcome as a Kubernetes Event on the Deployment (default
    /// true).
    #[serde(default = "defaults::yes")]
    pub events: bool,
}

impl Default for NotificationsSpec {
    fn default() -> Self {
        Self {
            webhook: None,
            events: true,
        }
    }
}

mod defaults {
    use std::time::Duration;

    pub(super) fn yes() -> bool {
        true
    }
    pub(super) fn four() -> u32 {
        4
    }
    pub(super) fn fifty() -> u64 {
        50
    }
    pub(super) fn confidence() -> f64 {
        0.99
    }
    pub(super) fn margin() -> f64 {
        0.01
    }
    pub(super) fn alpha() -> f64 {
        0.01
    }
    pub(super) fn tolerated_ratio() -> f64 {
        1.5
    }
    pub(super) fn bake() -> Duration {
        Duration::from_secs(300)
    }
    pub(super) fn minute() -> Duration {
        Duration::from_secs(60)
    }
    pub(super) fn thirty_seconds() -> Duration {
        Duration::from_secs(30)
    }
    pub(super) fn five_seconds() -> Duration {
        Duration::from_secs(5)
    }
    pub(super) fn five_minutes() -> Duration {
        Duration::from_secs(300)
    }
    pub(super) fn ten_minutes() -> Duration {
        Duration::from_secs(600)
    }
    pub(super) fn pod_failure_after() -> Option<Duration> {
        Some(Duration::from_secs(20))
    }
}

impl GuardSpec {
    /// Reads a spec from YAML (JSON is YAML too). Errors name the path of what was wrong.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| {
            // The first line says where and what; the rest quotes the document.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default().to_owned();
            Error::invalid_input("spec", format!("is not valid YAML: {first}"))
        })?;
        Self::from_value(value)
    }

    /// Reads a spec from a JSON value (a custom resource's spec). Errors name the path.
    pub fn from_value(value: serde_json::Value) -> Result<Self> {
        let spec: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { "spec".to_owned() } else { path };
            Error::invalid_input(&path, e.into_inner().to_string())
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// The spec's JSON Schema (what a CRD's `openAPIV3Schema` and an editor check against).
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(GuardSpec)).unwrap_or_default()
    }

    /// Checks what serde cannot: names unique and referred to, each check valid through its
    /// builder, the strategy valid. Errors name the path (`checks[1].probe`).
    pub fn validate(&self) -> Result<()> {
        if self.target.deployment.trim().is_empty() {
            return Err(Error::invalid_input("target.deployment", "is empty"));
        }
        for (index, probe) in self.probes.iter().enumerate() {
            if self.probes[..index]
                .iter()
                .any(|p| p.name() == probe.name())
            {
                return Err(Error::invalid_input(
                    &format!("probes[{index}].name"),
                    format!("{:?} names two probes", probe.name()),
                ));
            }
        }
        self.checks().map(drop)?;
        self.strategy().map(drop)?;
        self.validate_router()
    }

    /// A traffic-moving strategy has a router holding each of its sides; the others have none.
    fn validate_router(&self) -> Result<()> {
        let sides: Vec<(&str, &String)> = match &self.strategy {
            StrategySpec::BlueGreen {
                active, preview, ..
            } => vec![("active", active), ("preview", preview)],
            StrategySpec::Canary { stable, canary, .. } => {
                vec![("stable", stable), ("canary", canary)]
            }
            _ => Vec::new(),
        };
        if self.target.stable.as_ref() == Some(&self.target.deployment) {
            return Err(Error::invalid_input(
                "target.stable",
                "is the target deployment itself: name the other side's Deployment",
            ));
        }
        let Some(router) = &self.router else {
            if sides.is_empty() {
                return Ok(());
            }
            return Err(Error::invalid_input(
                "router",
                "is missing: a blueGreen or canary strategy moves traffic through one (kind service, istio, httpRoute or alb)",
            ));
        };
        if sides.is_empty() {
            return Err(Error::invalid_input(
                "router",
                "moves traffic, which a rolling or recreate strategy does not: remove it or choose blueGreen or canary",
            ));
        }
        for (role, side) in sides {
            if !router.backends().contains_key(side) {
                let known: Vec<&String> = router.backends().keys().collect();
                return Err(Error::invalid_input(
                    "router.backends",
                    format!(
                        "has no backend {side:?} (the strategy's {role} side); it has {known:?}"
                    ),
                ));
            }
        }
        match router {
            RouterSpec::Service { .. } if matches!(self.strategy, StrategySpec::Canary { .. }) => {
                Err(Error::invalid_input(
                    "router.kind",
                    "a Service selector switches all traffic at once and cannot split it for a canary: use istio or alb, or a blueGreen strategy",
                ))
            }
            RouterSpec::Alb {
                listener_arn,
                rule_arn,
                ..
            } if listener_arn.is_some() == rule_arn.is_some() => Err(Error::invalid_input(
                "router",
                "needs exactly one of listenerArn and ruleArn",
            )),
            _ => Ok(()),
        }
    }

    /// The namespace: the target's, else `default`.
    pub fn namespace(&self) -> &str {
        self.target.namespace.as_deref().unwrap_or("default")
    }

    /// Every check, built and validated through [`AnalysisCheck::builder`].
    pub fn checks(&self) -> Result<Vec<AnalysisCheck>> {
        self.checks
            .iter()
            .enumerate()
            .map(|(index, check)| {
                let at = |field: &str| format!("checks[{index}].{field}");
                if self.checks[..index].iter().any(|c| c.name == check.name) {
                    return Err(Error::invalid_input(
                        &at("name"),
                        format!("{:?} names two checks", check.name),
                    ));
                }
                if !self.probes.iter().any(|p| p.name() == check.probe) {
                    return Err(Error::invalid_input(
                        &at("probe"),
                        format!("{:?} is not among the probes", check.probe),
                    ));
                }
                check.build().map_err(|err| {
                    Error::invalid_input(&format!("checks[{index}]"), err.message().to_owned())
                })
            })
            .collect()
    }

    /// The strategy, with its promotion checks built.
    pub fn strategy(&self) -> Result<Strategy> {
        let by_name = |field: &str, names: &[String]| -> Result<Vec<AnalysisCheck>> {
            let checks = self.checks()?;
            names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    checks
                        .iter()
                        .find(|c| &c.name == name)
                        .cloned()
                        .ok_or_else(|| {
                            Error::invalid_input(
                                &format!("strategy.{field}[{i}]"),
                                format!("{name:?} is not among the checks"),
                            )
                        })
                })
                .collect()
        };
        Ok(match &self.strategy {
            StrategySpec::Rolling => Strategy::Rolling,
            StrategySpec::Recreate => Strategy::Recreate,
            StrategySpec::BlueGreen {
                active,
                preview,
                auto_promote,
                pre_promotion,
                post_promotion,
                scale_down_delay,
            } => {
                let mut blue_green =
                    BlueGreen::new(active, preview).with_scale_down_delay(*scale_down_delay);
                if !auto_promote {
                    blue_green = blue_green.with_manual_promotion();
                }
                for check in by_name("prePromotion", pre_promotion)? {
                    blue_green = blue_green.with_pre_promotion(check);
                }
                for check in by_name("postPromotion", post_promotion)? {
                    blue_green = blue_green.with_post_promotion(check);
                }
                Strategy::BlueGreen(blue_green)
            }
            StrategySpec::Canary {
                stable,
                canary,
                steps,
                abort_scale_down_delay,
                scale_down_delay,
            } => {
                let steps = steps
                    .iter()
                    .enumerate()
                    .map(|(index, step)| match step {
                        StepSpec::SetWeight(weight) if *weight > 100 => Err(Error::invalid_input(
                            &format!("strategy.steps[{index}].setWeight"),
                            format!("{weight} is over 100"),
                        )),
                        StepSpec::SetWeight(weight) => Ok(CanaryStep::SetWeight(*weight)),
                        StepSpec::Pause(pause) => Ok(CanaryStep::Pause(pause.duration)),
                        StepSpec::Analysis => Ok(CanaryStep::Analysis),
                    })
                    .collect::<Result<Vec<_>>>()?;
                if steps.is_empty() {
                    return Err(Error::invalid_input("strategy.steps", "is empty"));
                }
                let mut canary_strategy = Canary::new(stable, canary, steps);
                canary_strategy.abort_scale_down_delay = *abort_scale_down_delay;
                canary_strategy.scale_down_delay = *scale_down_delay;
                Strategy::Canary(canary_strategy)
            }
        })
    }

    /// A [`GuardBuilder`] for `backend` with everything the spec says: strategy, probes
    /// (through `resolver`), checks, bake, patience, migration policy, deadlines, dry run. The
    /// program adds what the spec names but cannot build itself: the migration inspector, the
    /// router, the notifications. Validated as [`GuardBuilder::build`] validates, errors
    /// naming the spec's fields.
    pub fn guard_builder(
        &self,
        backend: Arc<dyn DeploymentBackend>,
        resolver: &dyn ProbeResolver,
    ) -> Result<GuardBuilder> {
        self.validate()?;
        let strategy = self.strategy()?;
        let promotion_checks: Vec<&String> = match &self.strategy {
            StrategySpec::BlueGreen {
                pre_promotion,
                post_promotion,
                ..
            } => pre_promotion.iter().chain(post_promotion).collect(),
            _ => Vec::new(),
        };
        let mut builder = crate::engine::Guard::builder(strategy, backend)
            .bake(self.bake)
            .pod_failure_after(self.patience.pod_failure_after)
            .unready_after(self.patience.unready_after)
            .migration_policy(match self.migrations.policy {
                MigrationPolicySpec::Block => MigrationPolicy::Block,
                MigrationPolicySpec::Warn => MigrationPolicy::Warn,
                MigrationPolicySpec::Ignore => MigrationPolicy::Ignore,
            })
            .recovery_deadline(self.deadlines.recovery)
            .step_timeout(self.deadlines.step)
            .poll_interval(self.deadlines.poll)
            .dry_run(self.dry_run);
        for (index, probe) in self.probes.iter().enumerate() {
            let resolved: Arc<dyn HealthProbe> = resolver.resolve(probe).map_err(|err| {
                Error::invalid_input(&format!("probes[{index}]"), err.to_string())
            })?;
            builder = builder.probe(resolved);
        }
        for check in self.checks()? {
            if !promotion_checks.contains(&&check.name) {
                builder = builder.check(check);
            }
        }
        Ok(builder)
    }
}

impl CheckSpec {
    /// The check, through [`AnalysisCheck::builder`]'s validation.
    pub fn build(&self) -> Result<AnalysisCheck> {
        let mut builder = AnalysisCheck::builder(&self.name, self.probe.as_str(), &self.metric)
            .judge(match self.judge {
                JudgeSpec::Threshold => Judge::Threshold,
                JudgeSpec::Compare {
                    max_ratio,
                    max_increase,
                    min_observations,
                } => Judge::Compare {
                    max_ratio,
                    max_increase,
                    min_observations,
                },
                JudgeSpec::Statistical {
                    confidence,
                    margin,
                    min_observations,
                } => Judge::Statistical {
                    confidence,
                    margin,
                    min_observations,
                },
                JudgeSpec::Sequential {
                    alpha,
                    tolerated_ratio,
                    min_observations,
                } => Judge::Sequential {
                    alpha,
                    tolerated_ratio,
                    min_observations,
                },
            })
            .success(range(self.success))
            .interval(self.interval)
            .initial_delay(self.initial_delay)
            .failure_limit(self.failure_limit)
            .consecutive_error_limit(self.consecutive_error_limit)
            .inconclusive_limit(self.inconclusive_limit)
            .consecutive_success_limit(self.consecutive_success_limit)
            .no_data(match self.no_data {
                NoDataSpec::Fail => NoDataPolicy::Fail,
                NoDataSpec::Pause => NoDataPolicy::Pause,
                NoDataSpec::Ignore => NoDataPolicy::Ignore,
            })
            .no_data_grace(self.no_data_grace)
            .shared_cause(match self.shared_cause {
                SharedCauseSpec::Pause => SharedCausePolicy::Pause,
                SharedCauseSpec::Continue => SharedCausePolicy::Continue,
            })
            .pooled(self.pooled)
            .dry_run(self.dry_run);
        if let Some(inconclusive) = self.inconclusive {
            builder = builder.inconclusive_within(range(inconclusive));
        }
        if let Some(count) = self.count {
            builder = builder.count(count);
        }
        builder.build()
    }
}

fn range(spec: RangeSpec) -> Threshold {
    match (spec.min, spec.max) {
        (Some(min), Some(max)) => Threshold::between(min, max),
        (Some(min), None) => Threshold::at_least(min),
        (None, Some(max)) => Threshold::at_most(max),
        (None, None) => Threshold {
            min: None,
            max: None,
        },
    }
}
