//! The testkit from outside: its fakes and conformance suites, its light build, and (feature
//! `cluster`) the simulated cluster with traffic and scenarios. One test binary, a module per
//! concern.

mod conformance;
mod fakes;
mod light;

#[cfg(feature = "cluster")]
mod cluster_controllers;
#[cfg(feature = "cluster")]
mod cluster_rollout;
#[cfg(feature = "bin")]
mod fake_cluster_bin;
