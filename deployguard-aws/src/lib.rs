//! The AWS backends of deployguard.
//!
//! This crate will hold a [`TrafficRouter`](deployguard_core::TrafficRouter) over ALB listener
//! rules that forward to weighted target groups, and a target-health
//! [`HealthProbe`](deployguard_core::HealthProbe). It holds no code yet: both land with their
//! issue, tested against a local AWS API emulator.
