//! [`HealthProbe`]: measurements, never verdicts.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::model::Sample;

/// A source of health measurements (a metrics query, pod readiness, a synthetic check).
///
/// A probe only measures; analysis decides. An error fetching a sample is not a failing sample:
/// analysis counts it separately.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait HealthProbe: fmt::Debug + Send + Sync + 'static {
    /// The probe's name: how checks refer to it (see [`ProbeRef`]) and how the journal names it.
    fn name(&self) -> String;

    /// The names of the measurements this probe reports, when it knows them in advance. A guard
    /// refuses, at `build()`, a check that reads a metric not in a non-empty list, and says
    /// which metrics the probe does report. Empty (the default) means "not declared".
    fn metrics(&self) -> Vec<String> {
        Vec::new()
    }

    /// Takes one sample.
    async fn sample(&self) -> Result<Sample>;
}

macro_rules! forward_probe {
    ($wrapper:ident) => {
        #[async_trait]
        impl<T: HealthProbe + ?Sized> HealthProbe for $wrapper<T> {
            fn name(&self) -> String {
                (**self).name()
            }
            fn metrics(&self) -> Vec<String> {
                (**self).metrics()
            }
            async fn sample(&self) -> Result<Sample> {
                (**self).sample().await
            }
        }
    };
}

forward_probe!(Arc);
forward_probe!(Box);

/// How a check names the probe it reads: the probe itself (`&probe`, `&Arc<dyn HealthProbe>`),
/// so nobody copies a probe's name out of its source, or that name as a string.
///
/// ```
/// use std::sync::Arc;
/// use deployguard_core::analysis::{AnalysisCheck, Threshold};
/// use deployguard_core::HealthProbe;
/// use deployguard_testkit::ScriptedProbe;
///
/// let (probe, _) = ScriptedProbe::new("http").value("error_rate", 0.0).build();
/// let probe: Arc<dyn HealthProbe> = Arc::new(probe);
/// let check = AnalysisCheck::builder("error-rate", &probe, "error_rate")
///     .success(Threshold::at_most(0.01))
///     .build()?;
/// assert_eq!(check.probe, "http");
/// # Ok::<(), deployguard_core::Error>(())
/// ```
pub trait ProbeRef {
    /// The probe's name.
    fn probe_name(&self) -> String;
}

impl ProbeRef for str {
    fn probe_name(&self) -> String {
        self.to_owned()
    }
}

impl ProbeRef for String {
    fn probe_name(&self) -> String {
        self.clone()
    }
}

impl<P: HealthProbe + ?Sized> ProbeRef for P {
    fn probe_name(&self) -> String {
        self.name()
    }
}
