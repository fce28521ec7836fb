//! deployguard-istio's integration tests: one test binary, a module per concern.

mod guard;
mod kubectl;
mod router;
