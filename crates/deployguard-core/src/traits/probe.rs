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
    /// The probe's name, for the journal.
    fn name(&self) -> String;

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
            async fn sample(&self) -> Result<Sample> {
                (**self).sample().await
            }
        }
    };
}

forward_probe!(Arc);
forward_probe!(Box);
