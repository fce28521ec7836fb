//! [`TargetHealthProbe`]: the health of each target group's targets, as measurements.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;
use deployguard_core::model::VERSION_LABEL;
use deployguard_core::{Error, HealthProbe, Measurement, Result, Sample};
use tokio::sync::OnceCell;

use crate::error::from_sdk;
use crate::router::resolve_target_groups;

/// The metrics a [`TargetHealthProbe`] reports, each labelled with the version and the target
/// group's ARN.
pub const METRICS: [&str; 7] = [
    "healthy_fraction",
    "healthy_targets",
    "unhealthy_targets",
    "draining_targets",
    "initial_targets",
    "unavailable_targets",
    "unhealthy_reason",
];

/// `DescribeTargetHealth` for each target group as measurements per version: how many targets
/// are healthy, unhealthy, draining, initial (registration or first checks under way) and
/// unavailable or unused, the healthy fraction (0 for a target group without targets: it serves
/// nothing), and
/// `unhealthy_reason` counts labelled with each reason code (`Target.Timeout`,
/// `Target.ResponseCodeMismatch`, …).
///
/// ```no_run
/// use deployguard_aws::TargetHealthProbe;
///
/// # fn run(sdk: aws_types::SdkConfig) -> deployguard_core::Result<()> {
/// let probe = TargetHealthProbe::builder(&sdk)
///     .target_group("v2.3.1", "shop-blue")
///     .target_group("v2.4.0", "shop-green")
///     .build()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TargetHealthProbe {
    client: Client,
    name: String,
    groups: BTreeMap<String, String>,
    arns: OnceCell<BTreeMap<String, String>>,
}

/// Builds a [`TargetHealthProbe`].
#[derive(Debug)]
#[must_use]
pub struct TargetHealthProbeBuilder {
    client: Client,
    name: String,
    groups: Vec<(String, String)>,
}

impl TargetHealthProbeBuilder {
    /// The probe's name (default `alb-target-health`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    /// Measures target group `target_group` (ARN or name) as version `version` (the label a
    /// check's judge matches against the candidate and the baseline: an image, its tag).
    pub fn target_group(mut self, version: &str, target_group: &str) -> Self {
        self.groups.push((version.into(), target_group.into()));
        self
    }

    /// The probe; [`deployguard_core::ErrorKind::InvalidInput`] without a target group, with a
    /// version named twice, or with an empty name.
    pub fn build(self) -> Result<TargetHealthProbe> {
        if self.name.trim().is_empty() {
            return Err(Error::invalid_input("name", "is empty"));
        }
        if self.groups.is_empty() {
            return Err(Error::invalid_input("target groups", "none given"));
        }
        let mut groups = BTreeMap::new();
        for (version, group) in self.groups {
            if version.trim().is_empty() || group.trim().is_empty() {
                return Err(Error::invalid_input(
                    "target groups",
                    "a version or target group is empty",
                ));
            }
            if groups.insert(version.clone(), group).is_some() {
                return Err(Error::invalid_input(
                    "target groups",
                    format!("version {version:?} is named twice"),
                ));
            }
        }
        Ok(TargetHealthProbe {
            client: self.client,
            name: self.name,
            groups,
            arns: OnceCell::new(),
        })
    }
}

impl TargetHealthProbe {
    /// A builder whose client is made from `sdk`.
    pub fn builder(sdk: &aws_types::SdkConfig) -> TargetHealthProbeBuilder {
        Self::builder_with_client(Client::new(sdk))
    }

    /// A builder over an ELBv2 client of your own.
    pub fn builder_with_client(client: Client) -> TargetHealthProbeBuilder {
        TargetHealthProbeBuilder {
            client,
            name: "alb-target-health".into(),
            groups: Vec::new(),
        }
    }
}

#[async_trait]
impl HealthProbe for TargetHealthProbe {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn metrics(&self) -> Vec<String> {
        METRICS.iter().map(|m| (*m).to_owned()).collect()
    }

    async fn sample(&self) -> Result<Sample> {
        let arns = self
            .arns
            .get_or_try_init(|| resolve_target_groups(&self.client, &self.groups))
            .await?;
        let mut measurements = Vec::new();
        let mut evidence = Vec::new();
        for (version, arn) in arns {
            let answer = self
                .client
                .describe_target_health()
                .target_group_arn(arn)
                .send()
                .await
                .map_err(|e| from_sdk(e, "sample", arn))?;
            let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
            let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
            let targets = answer.target_health_descriptions();
            for description in targets {
                let health = description.target_health();
                let state = health.and_then(|h| h.state());
                let bucket = match state {
                    Some(TargetHealthStateEnum::Healthy) => "healthy_targets",
                    Some(
                        TargetHealthStateEnum::Unhealthy | TargetHealthStateEnum::UnhealthyDraining,
                    ) => "unhealthy_targets",
                    Some(TargetHealthStateEnum::Draining) => "draining_targets",
                    Some(TargetHealthStateEnum::Initial) => "initial_targets",
                    _ => "unavailable_targets",
                };
                *counts.entry(bucket).or_default() += 1;
                if bucket == "unhealthy_targets" {
                    let reason = health
                        .and_then(|h| h.reason())
                        .map_or("unknown", |r| r.as_str())
                        .to_owned();
                    *reasons.entry(reason).or_default() += 1;
                }
            }
            let labelled = |m: Measurement| {
                m.with_label(VERSION_LABEL, version.as_str())
                    .with_label("target_group", arn.as_str())
            };
            let total = targets.len() as u64;
            let healthy = counts.get("healthy_targets").copied().unwrap_or(0);
            measurements.push(labelled(if total == 0 {
                // Measured, not missing: a target group with no targets serves nothing.
                Measurement::value("healthy_fraction", 0.0)
            } else {
                Measurement::proportion("healthy_fraction", healthy, total)
            }));
            for bucket in &METRICS[1..6] {
                measurements.push(labelled(Measurement::value(
                    *bucket,
                    counts.get(bucket).copied().unwrap_or(0) as f64,
                )));
            }
            for (reason, count) in &reasons {
                measurements.push(labelled(
                    Measurement::value("unhealthy_reason", *count as f64)
                        .with_label("reason", reason.as_str()),
                ));
            }
            let mut words = format!("{version}: {healthy}/{total} healthy");
            if !reasons.is_empty() {
                let why: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
                words.push_str(&format!(" ({})", why.join(", ")));
            }
            for bucket in ["draining_targets", "initial_targets"] {
                if let Some(n) = counts.get(bucket) {
                    words.push_str(&format!(", {n} {}", bucket.trim_end_matches("_targets")));
                }
            }
            evidence.push(words);
        }
        Ok(Sample::new(measurements, evidence.join("; ")))
    }
}
