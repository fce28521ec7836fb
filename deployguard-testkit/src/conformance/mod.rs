//! Conformance suites: the behaviour every implementation of a deployguard trait must show.
//!
//! Each suite is a set of public async functions over `&dyn Trait`, plus one function that runs
//! them all in order. They return a [`ConformanceFailure`] naming the check and what was seen,
//! instead of panicking, so a test can also prove that a broken implementation fails them.
//!
//! The suites change the state of what they test (they roll back, apply splits): run them against
//! a fake, the simulated cluster or a scratch environment, never production.
//!
//! ```
//! use deployguard_testkit::{Behaviour, FakeDeployment, conformance};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (backend, _handle) = FakeDeployment::builder("web")
//!     .revision(["app:v1"], Behaviour::healthy())
//!     .revision(["app:v2"], Behaviour::healthy())
//!     .build();
//! conformance::backend_suite(&backend).await.expect("the fake conforms");
//! # }
//! ```

mod backend;
mod migrations;
mod probe;
mod router;

use std::fmt;

pub use backend::{
    backend_suite, conditional_rollback_refuses_stale_expectation, history_is_ordered,
    mark_verified_is_visible_in_history, marker_keys_outside_the_prefix_are_refused,
    markers_round_trip, observe_after_rollback_shows_target, rollback_is_idempotent,
    rollback_to_missing_revision_is_not_found,
};
pub use migrations::{inspection_is_consistent, migrations_suite};
pub use probe::{probe_suite, samples_are_well_formed};
pub use router::{
    router_apply_current_verify_round_trip, router_apply_is_conditional_on_the_version_read,
    router_refuses_inexpressible_split, router_suite, router_verify_reports_difference,
};

/// A conformance check that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceFailure {
    /// The check's function name.
    pub check: &'static str,
    /// What was expected and what was seen.
    pub message: String,
}

impl fmt::Display for ConformanceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conformance check {} failed: {}",
            self.check, self.message
        )
    }
}

impl std::error::Error for ConformanceFailure {}

/// The result of one check.
pub type CheckResult = Result<(), ConformanceFailure>;

/// Fails `check` with `message` unless `condition` holds.
fn ensure(check: &'static str, condition: bool, message: impl FnOnce() -> String) -> CheckResult {
    if condition {
        Ok(())
    } else {
        Err(ConformanceFailure {
            check,
            message: message(),
        })
    }
}

/// Turns an unexpected error of the implementation into a failure of `check`.
fn call<T>(
    check: &'static str,
    what: &str,
    result: deployguard_core::Result<T>,
) -> Result<T, ConformanceFailure> {
    result.map_err(|err| ConformanceFailure {
        check,
        message: format!("{what} failed: {err}"),
    })
}
