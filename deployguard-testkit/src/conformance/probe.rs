//! The [`HealthProbe`] suite.

use std::collections::HashSet;

use deployguard_core::HealthProbe;

use super::{CheckResult, call, ensure};

/// Runs every probe check.
pub async fn probe_suite(probe: &dyn HealthProbe) -> CheckResult {
    samples_are_well_formed(probe).await
}

/// A probe has a name; its samples name each measurement once per set of labels (one per
/// version, say), only measurements it declares (when it declares any), and a value is never
/// NaN or infinite: a probe that cannot measure reports no data instead.
pub async fn samples_are_well_formed(probe: &dyn HealthProbe) -> CheckResult {
    const CHECK: &str = "samples_are_well_formed";
    ensure(CHECK, !probe.name().trim().is_empty(), || {
        "the probe's name is empty".into()
    })?;
    for _ in 0..2 {
        let sample = call(CHECK, "sample", probe.sample().await)?;
        let mut seen = HashSet::new();
        for m in &sample.measurements {
            ensure(CHECK, !m.name.trim().is_empty(), || {
                "a measurement has an empty name".into()
            })?;
            ensure(
                CHECK,
                seen.insert((m.name.clone(), m.labels.clone())),
                || format!("measurement {:?} {:?} appears twice", m.name, m.labels),
            )?;
            let declared = probe.metrics();
            ensure(
                CHECK,
                declared.is_empty() || declared.contains(&m.name),
                || {
                    format!(
                        "measurement {:?} is not among the metrics the probe declares: {}",
                        m.name,
                        declared.join(", ")
                    )
                },
            )?;
            ensure(CHECK, m.value.is_none_or(f64::is_finite), || {
                format!(
                    "measurement {:?} is {:?}; report no data instead",
                    m.name, m.value
                )
            })?;
        }
    }
    Ok(())
}
