//! What every fake shares: a record of calls, injected errors and latency, and expectations to
//! assert at the end of a test.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use deployguard_core::{Error, ErrorKind, Result};
use tokio::time::Instant;

/// A trait method a fake can be asked to fail, slow down or expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// `DeploymentBackend::observe`
    Observe,
    /// `DeploymentBackend::history`
    History,
    /// `DeploymentBackend::rollback_to`
    RollbackTo,
    /// `DeploymentBackend::set_paused`
    SetPaused,
    /// `DeploymentBackend::scale`
    Scale,
    /// `DeploymentBackend::mark_verified`
    MarkVerified,
    /// `DeploymentBackend::markers`
    Markers,
    /// `DeploymentBackend::set_marker`
    SetMarker,
    /// `TrafficRouter::current`
    Current,
    /// `TrafficRouter::apply`
    Apply,
    /// `TrafficRouter::verify`
    Verify,
    /// `HealthProbe::sample`
    Sample,
    /// `MigrationInspector::inspect`
    Inspect,
}

impl Op {
    /// Whether the operation may change the platform.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::RollbackTo
                | Self::SetPaused
                | Self::Scale
                | Self::MarkVerified
                | Self::SetMarker
                | Self::Apply
        )
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Which method.
    pub op: Op,
    /// Its arguments, in words.
    pub detail: String,
    /// Whether the call changed the fake's state. A write that failed, was refused or found
    /// nothing to change has `changed == false`.
    pub changed: bool,
    /// `None` on success, else the kind of error returned.
    pub error: Option<ErrorKind>,
    /// When the call returned (tokio's clock).
    pub at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    calls: Vec<Call>,
    errors: HashMap<Op, VecDeque<Error>>,
    latency: HashMap<Op, Duration>,
    expected: Vec<Op>,
}

/// The recorder and fault plan of one fake; shared by the fake and its handle.
#[derive(Debug, Default)]
pub(crate) struct Controls {
    inner: Mutex<Inner>,
}

impl Controls {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in a test thread must not hide the record from the assertion that follows.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one call of the fake: waits the injected latency, returns an injected error if one
    /// is queued, else runs `work`, which returns the value and whether it changed state.
    pub(crate) async fn call<T>(
        &self,
        op: Op,
        detail: impl Into<String>,
        work: impl FnOnce() -> Result<(T, bool)>,
    ) -> Result<T> {
        let latency = self.lock().latency.get(&op).copied();
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        let injected = self
            .lock()
            .errors
            .get_mut(&op)
            .and_then(VecDeque::pop_front);
        let (result, changed) = match injected {
            Some(err) => (Err(err), false),
            None => match work() {
                Ok((value, changed)) => (Ok(value), changed),
                Err(err) => (Err(err), false),
            },
        };
        self.lock().calls.push(Call {
            op,
            detail: detail.into(),
            changed,
            error: result.as_ref().err().map(Error::kind),
            at: Instant::now(),
        });
        result
    }

    pub(crate) fn fail_next(&self, op: Op, error: Error) {
        self.lock().errors.entry(op).or_default().push_back(error);
    }

    pub(crate) fn set_latency(&self, op: Op, latency: Duration) {
        self.lock().latency.insert(op, latency);
    }

    pub(crate) fn expect(&self, op: Op) {
        self.lock().expected.push(op);
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Problems that make a test's premise false: expected calls that never came and injected
    /// errors that never fired.
    pub(crate) fn unmet(&self) -> Vec<String> {
        let inner = self.lock();
        let mut problems = Vec::new();
        for op in &inner.expected {
            if !inner.calls.iter().any(|c| c.op == *op) {
                problems.push(format!("expected a call to {op:?}, none came"));
            }
        }
        for (op, queued) in &inner.errors {
            if !queued.is_empty() {
                problems.push(format!(
                    "{} injected error(s) for {op:?} never fired",
                    queued.len()
                ));
            }
        }
        problems.sort();
        problems
    }
}

/// Panics with every unmet expectation of `what`; used by the handles' `assert_finished`.
pub(crate) fn assert_no_problems(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}: {}", problems.join("; "));
}

/// Locks a fake's state, recovering from a poisoned lock (a panicking test thread must not hide
/// the state from the assertions that follow).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The methods every handle shares.
macro_rules! handle_controls {
    ($name:literal) => {
        /// Makes the next call of `op` fail with `error`, before it touches any state.
        pub fn fail_next(&self, op: $crate::Op, error: deployguard_core::Error) {
            self.controls.fail_next(op, error);
        }

        /// Makes every call of `op` take `latency` of tokio's clock.
        pub fn set_latency(&self, op: $crate::Op, latency: std::time::Duration) {
            self.controls.set_latency(op, latency);
        }

        /// Expects at least one call of `op` before [`assert_finished`](Self::assert_finished).
        pub fn expect_call(&self, op: $crate::Op) {
            self.controls.expect(op);
        }

        /// Every call so far, in order.
        pub fn calls(&self) -> Vec<$crate::Call> {
            self.controls.calls()
        }

        /// The calls that changed state, in order. Empty after a dry run.
        pub fn writes(&self) -> Vec<$crate::Call> {
            self.calls().into_iter().filter(|c| c.changed).collect()
        }

        /// How many times `op` was called.
        pub fn count(&self, op: $crate::Op) -> usize {
            self.calls().iter().filter(|c| c.op == op).count()
        }

        /// Panics unless every expected call came and every injected error fired.
        #[track_caller]
        pub fn assert_finished(&self) {
            $crate::controls::assert_no_problems($name, self.controls.unmet());
        }
    };
}

pub(crate) use handle_controls;

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
