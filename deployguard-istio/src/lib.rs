//! The Istio traffic router of deployguard.
//!
//! This crate will hold a [`TrafficRouter`](deployguard_core::TrafficRouter) over an Istio
//! `VirtualService` route and its `DestinationRule` subsets, restoring subsets as well as weights
//! when a rollout is aborted. It holds no code yet: the router lands with its issue, together
//! with its run of the testkit's conformance suite.
