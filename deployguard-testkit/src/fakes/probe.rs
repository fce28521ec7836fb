//! [`ScriptedProbe`]: a health probe that answers from a script.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deployguard_core::{Error, ErrorKind, HealthProbe, Measurement, Result, Sample};

use crate::controls::{Controls, handle_controls, lock};

/// One answer of a [`ScriptedProbe`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProbeStep {
    /// A sample.
    Sample(Sample),
    /// The probe fails to fetch a measurement.
    Error(ErrorKind),
}

#[derive(Debug)]
struct State {
    name: String,
    metrics: Vec<String>,
    script: VecDeque<ProbeStep>,
    last: Option<ProbeStep>,
}

/// A [`HealthProbe`] that answers from a script, one step per call; when the script runs out it
/// repeats its last step, so a long-running guard sees a steady state.
///
/// ```
/// use deployguard_core::HealthProbe;
/// use deployguard_testkit::ScriptedProbe;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> deployguard_core::Result<()> {
/// let (probe, handle) = ScriptedProbe::new("error-rate")
///     .value("error_rate", 0.01)
///     .no_data("error_rate")
///     .value("error_rate", 0.15)
///     .build();
/// assert_eq!(probe.sample().await?.measurements[0].value, Some(0.01));
/// assert_eq!(probe.sample().await?.measurements[0].value, None);
/// assert_eq!(probe.sample().await?.measurements[0].value, Some(0.15));
/// handle.assert_finished();
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ScriptedProbe {
    state: Arc<Mutex<State>>,
    controls: Arc<Controls>,
}

/// Builds a [`ScriptedProbe`].
#[derive(Debug)]
pub struct ScriptedProbeBuilder {
    name: String,
    metrics: Vec<String>,
    script: VecDeque<ProbeStep>,
}

impl ScriptedProbeBuilder {
    /// Declares the metrics the probe reports ([`HealthProbe::metrics`]), as a real probe
    /// with a fixed set of measurements does; undeclared by default.
    pub fn reports<'a>(mut self, metrics: impl IntoIterator<Item = &'a str>) -> Self {
        self.metrics = metrics.into_iter().map(str::to_owned).collect();
        self
    }

    /// Next, a sample with one measured value.
    pub fn value(self, metric: &str, value: f64) -> Self {
        self.sample(Sample::new(
            vec![Measurement::value(metric, value)],
            format!("{metric}={value}"),
        ))
    }

    /// Next, a sample whose measurement has no data.
    pub fn no_data(self, metric: &str) -> Self {
        self.sample(Sample::new(
            vec![Measurement::no_data(metric)],
            format!("{metric}: no data"),
        ))
    }

    /// Next, `sample` as it is.
    pub fn sample(mut self, sample: Sample) -> Self {
        self.script.push_back(ProbeStep::Sample(sample));
        self
    }

    /// Next, an error of `kind` fetching the sample.
    pub fn error(mut self, kind: ErrorKind) -> Self {
        self.script.push_back(ProbeStep::Error(kind));
        self
    }

    /// `count` copies of a value.
    pub fn values(mut self, metric: &str, value: f64, count: usize) -> Self {
        for _ in 0..count {
            self = self.value(metric, value);
        }
        self
    }

    /// The probe and its handle.
    pub fn build(self) -> (ScriptedProbe, ScriptedProbeHandle) {
        let state = Arc::new(Mutex::new(State {
            name: self.name,
            metrics: self.metrics,
            script: self.script,
            last: None,
        }));
        let controls = Arc::new(Controls::default());
        let probe = ScriptedProbe {
            state: Arc::clone(&state),
            controls: Arc::clone(&controls),
        };
        (probe, ScriptedProbeHandle { state, controls })
    }
}

impl ScriptedProbe {
    /// Starts a script for a probe called `name`.
    // A builder entry point, not a constructor of `Self`: the script is written before the probe
    // exists.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: &str) -> ScriptedProbeBuilder {
        ScriptedProbeBuilder {
            name: name.into(),
            metrics: Vec::new(),
            script: VecDeque::new(),
        }
    }
}

#[async_trait]
impl HealthProbe for ScriptedProbe {
    fn name(&self) -> String {
        lock(&self.state).name.clone()
    }

    fn metrics(&self) -> Vec<String> {
        lock(&self.state).metrics.clone()
    }

    async fn sample(&self) -> Result<Sample> {
        self.controls
            .call(crate::Op::Sample, "", || {
                let mut state = lock(&self.state);
                let step = match state.script.pop_front() {
                    Some(step) => {
                        state.last = Some(step.clone());
                        step
                    }
                    None => state.last.clone().ok_or_else(|| {
                        Error::new(ErrorKind::Unexpected, "the probe's script is empty")
                    })?,
                };
                match step {
                    ProbeStep::Sample(sample) => Ok((sample, false)),
                    ProbeStep::Error(kind) => Err(Error::new(kind, "scripted probe error")
                        .with_operation("sample")
                        .with_object(state.name.clone())),
                }
            })
            .await
    }
}

/// Controls a [`ScriptedProbe`].
#[derive(Debug, Clone)]
pub struct ScriptedProbeHandle {
    state: Arc<Mutex<State>>,
    controls: Arc<Controls>,
}

impl ScriptedProbeHandle {
    handle_controls!("ScriptedProbe");

    /// Appends a step to the script.
    pub fn push(&self, step: ProbeStep) {
        lock(&self.state).script.push_back(step);
    }

    /// Replaces what is left of the script with a steady value.
    pub fn set_value(&self, metric: &str, value: f64) {
        let mut state = lock(&self.state);
        state.script.clear();
        state.script.push_back(ProbeStep::Sample(Sample::new(
            vec![Measurement::value(metric, value)],
            format!("{metric}={value}"),
        )));
    }

    /// Steps not yet answered.
    pub fn remaining(&self) -> usize {
        lock(&self.state).script.len()
    }

    /// Panics unless the whole script was answered and the controls' expectations are met.
    #[track_caller]
    pub fn assert_script_consumed(&self) {
        let remaining = self.remaining();
        assert!(
            remaining == 0,
            "ScriptedProbe: {remaining} scripted step(s) never answered"
        );
        self.assert_finished();
    }
}
