//! Test support for deployguard: fakes of the four traits with control handles, and the
//! conformance suites every backend runs; with the `cluster` feature, the simulated Kubernetes
//! cluster with simulated traffic and named incidents (see `cluster`).
//!
//! # Features
//!
//! - none (the default): the fakes and the conformance suites alone, over `deployguard-core`,
//!   tokio and async-trait.
//! - `cluster`: the simulated Kubernetes cluster (the `deployguard-kube-sim` crate, re-exported
//!   as `cluster`), simulated traffic through it and the named scenarios; brings kube,
//!   k8s-openapi and hyper.
//! - `bin`: the `fake-cluster` binary (`cargo run -p deployguard-testkit --features bin --bin
//!   fake-cluster -- --help`).
//!
//! **Not semver-stable.** This crate follows the needs of deployguard's own tests; pin an exact
//! version if you build on it.
//!
//! Every fake comes with a handle: script what it answers, inject errors and latency
//! ([`Op`] names the method), read the record of [`Call`]s (and [`writes`](FakeRouterHandle::writes),
//! the calls that changed something), and [`assert_finished`](FakeRouterHandle::assert_finished)
//! at the end. Fakes keep real semantics — Kubernetes revision renumbering, conditional writes,
//! capabilities — so code that is wrong against a platform is wrong against them too. Latency
//! uses tokio's clock: tests run with a paused clock and never sleep for real.
//!
//! ```
//! use deployguard_core::{DeploymentBackend, ErrorKind, RevisionId, RollbackOptions};
//! use deployguard_testkit::{Behaviour, FakeDeployment, Op};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (backend, handle) = FakeDeployment::builder("web")
//!     .revision(["app:v1"], Behaviour::healthy())
//!     .revision(["app:v2"], Behaviour::failing_readiness())
//!     .build();
//! handle.fail_next(Op::RollbackTo, deployguard_core::Error::new(ErrorKind::Unavailable, "503"));
//! let err = backend.rollback_to(RevisionId(1), RollbackOptions::default()).await.unwrap_err();
//! assert!(err.is_retryable());
//! assert!(handle.writes().is_empty());
//! handle.assert_finished();
//! # }
//! ```

#![warn(clippy::unwrap_used)]

#[cfg(feature = "cluster")]
pub mod cluster;
pub mod conformance;
mod controls;
mod fakes;

pub use controls::{Call, Op};
pub use fakes::{
    Behaviour, FakeDeployment, FakeDeploymentBuilder, FakeDeploymentHandle, FakeMigrations,
    FakeMigrationsHandle, FakeRouter, FakeRouterHandle, ProbeStep, ScriptedProbe,
    ScriptedProbeBuilder, ScriptedProbeHandle, fingerprint_of,
};
