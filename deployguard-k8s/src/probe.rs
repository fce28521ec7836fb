//! [`PodReadinessProbe`]: the ready fraction of a deployment's pods, per revision.

use std::collections::BTreeMap;

use async_trait::async_trait;
use deployguard_core::{DeploymentBackend, HealthProbe, Measurement, Result, Sample};

use crate::KubeDeployment;

/// A [`HealthProbe`] over a deployment's pods, named `pod-readiness:<target>`. It reports:
///
/// | metric | what |
/// |---|---|
/// | `ready_fraction` | ready pods of the current revision over all its pods |
/// | `ready_fraction_rev<N>` | the same for revision N, for every revision with pods |
///
/// A revision with no pods is *no data*, never a division by zero. Checks take the probe itself,
/// so its name never needs copying: `AnalysisCheck::builder("ready", &probe, "ready_fraction")`.
#[derive(Debug, Clone)]
pub struct PodReadinessProbe {
    deployment: KubeDeployment,
    /// A name of the caller's (a policy file's), instead of `pod-readiness:<target>`.
    name: Option<String>,
}

impl PodReadinessProbe {
    /// A probe of `deployment`'s pods.
    pub fn new(deployment: KubeDeployment) -> Self {
        Self {
            deployment,
            name: None,
        }
    }

    /// The same probe under `name` (the name a policy's checks refer to it by).
    #[must_use]
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }
}

#[async_trait]
impl HealthProbe for PodReadinessProbe {
    fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("pod-readiness:{}", self.deployment.target()))
    }

    async fn sample(&self) -> Result<Sample> {
        let snapshot = self.deployment.observe().await?;
        let mut per_revision: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
        for pod in &snapshot.pods {
            if let Some(revision) = pod.revision {
                let entry = per_revision.entry(revision.0).or_default();
                entry.1 += 1;
                entry.0 += u32::from(pod.ready);
            }
        }
        let fraction =
            |(ready, total): (u32, u32)| (total > 0).then(|| f64::from(ready) / f64::from(total));
        let current = snapshot
            .current_revision
            .and_then(|r| per_revision.get(&r.0).copied())
            .and_then(fraction);
        let mut measurements = vec![match current {
            Some(value) => Measurement::value("ready_fraction", value),
            None => Measurement::no_data("ready_fraction"),
        }];
        for (revision, counts) in &per_revision {
            if let Some(value) = fraction(*counts) {
                measurements.push(Measurement::value(
                    format!("ready_fraction_rev{revision}"),
                    value,
                ));
            }
        }
        let evidence = per_revision
            .iter()
            .map(|(revision, (ready, total))| format!("revision {revision}: {ready}/{total} ready"))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Sample::new(
            measurements,
            if evidence.is_empty() {
                "no pods".to_owned()
            } else {
                evidence
            },
        ))
    }
}
