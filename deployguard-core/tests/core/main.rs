//! deployguard-core's integration tests: one test binary, a module per concern.

mod guard;
#[cfg(feature = "mock")]
mod mock;
mod properties;
#[cfg(feature = "spec")]
mod spec;
