//! Command-line tools on deployguard, and the code they share, kept in a library so that it is
//! tested:
//!
//! - `emergency-rollback` ([`emergency`]): the seed runbook's emergency rollback script, done
//!   right — assess, plan, ask, recover, verify, record; safe to repeat and to race.
//! - `guard` ([`guard`]): one rollout guarded from a policy file (`GuardSpec`).
//! - `deployguard-operator` ([`operator`]): every rollout a `RolloutGuard` resource names,
//!   guarded; leader-elected replicas.
//! - `prometheus-guard`: a guard of one rollout in the current kubeconfig's cluster, judged on
//!   the metrics Prometheus keeps.
//!
//! `cargo run -p deployguard-cli --bin emergency-rollback -- --help`.

pub mod emergency;
pub mod guard;
pub mod operator;
pub mod serve;

/// The README's Rust blocks, compiled and run as doctests so that they stay true (this crate
/// depends on every backend the README shows).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
