//! deployguard-k8s's integration tests: one test binary, a module per concern.

mod deployment;
#[cfg(feature = "fleet")]
mod fleet;
mod gateway;
mod lease;
mod others;
mod rbac;
mod transport;
