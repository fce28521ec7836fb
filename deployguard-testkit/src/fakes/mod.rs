//! Fakes of the four traits, each with a control handle.

mod deployment;
mod migrations;
mod probe;
mod router;

pub use deployment::{
    Behaviour, FakeDeployment, FakeDeploymentBuilder, FakeDeploymentHandle, fingerprint_of,
};
pub use migrations::{FakeMigrations, FakeMigrationsHandle};
pub use probe::{ProbeStep, ScriptedProbe, ScriptedProbeBuilder, ScriptedProbeHandle};
pub use router::{FakeRouter, FakeRouterHandle};
