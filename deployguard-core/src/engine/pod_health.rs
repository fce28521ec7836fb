//! [`PodHealth`]: the candidate's pods as evidence. A version whose pods crash, cannot be
//! pulled or configured, or never become ready serves no traffic, so no traffic check can blame
//! it; its pods can. A pod that is starting is not failing (see [`StartBudget`]); a failure
//! counts once it has lasted its allowance, so a pod that restarts once while it starts is not
//! a rollback.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::config::GuardConfig;
use super::diagnose::diagnose_within;
use super::starting::StartBudget;
use crate::model::{Diagnosis, FailureMode, RolloutSnapshot};

/// When each failure mode of the candidate's pods was first seen, without a gap.
#[derive(Debug, Default)]
pub(crate) struct PodHealth {
    since: BTreeMap<&'static str, Instant>,
}

impl PodHealth {
    /// Records what `snapshot` shows; returns the first failure that has lasted its allowance,
    /// with the reason in words.
    pub(crate) fn observe(
        &mut self,
        snapshot: &RolloutSnapshot,
        config: &GuardConfig,
    ) -> Option<(Diagnosis, String)> {
        let now = Instant::now();
        let found = diagnose_within(snapshot, &StartBudget::of(snapshot, config.unready_after));
        self.since
            .retain(|name, _| found.iter().any(|d| d.mode.name() == *name));
        for diagnosis in found {
            let Some(allowance) = allowance(&diagnosis.mode, config) else {
                continue;
            };
            let since = *self.since.entry(diagnosis.mode.name()).or_insert(now);
            if now.duration_since(since) >= allowance {
                let evidence: Vec<&str> = diagnosis
                    .evidence
                    .iter()
                    .take(2)
                    .map(String::as_str)
                    .collect();
                let reason = format!(
                    "the new version's pods have failed for {}s: {}: {}",
                    now.duration_since(since).as_secs(),
                    describe(&diagnosis.mode),
                    evidence.join("; ")
                );
                return Some((diagnosis, reason));
            }
        }
        None
    }
}

/// How long `mode` may last; `None`: not this room's to judge.
fn allowance(mode: &FailureMode, config: &GuardConfig) -> Option<Duration> {
    match mode {
        // Each is hard evidence: the diagnosis has already allowed a start its time (a pod that
        // runs unready is failing only past its start budget), so each counts once it lasts.
        FailureMode::ImagePull { .. }
        | FailureMode::CrashLoop { .. }
        | FailureMode::ConfigError { .. }
        | FailureMode::OomKilled
        | FailureMode::ReadinessFailing
        | FailureMode::Unschedulable { .. } => config.pod_failure_after,
        _ => None,
    }
}

fn describe(mode: &FailureMode) -> String {
    match mode {
        FailureMode::ImagePull { image } if !image.is_empty() => {
            format!("image {image} cannot be pulled")
        }
        FailureMode::ImagePull { .. } => "the image cannot be pulled".into(),
        FailureMode::CrashLoop { restarts } => {
            format!("CrashLoopBackOff, {restarts} restarts")
        }
        FailureMode::ConfigError { missing } => format!("{missing} is missing"),
        FailureMode::OomKilled => "OOMKilled".into(),
        FailureMode::ReadinessFailing => "running but not ready".into(),
        FailureMode::Unschedulable {
            resource: Some(resource),
        } => format!("unschedulable, not enough {resource}"),
        FailureMode::Unschedulable { resource: None } => "unschedulable".into(),
        other => other.name().to_owned(),
    }
}
