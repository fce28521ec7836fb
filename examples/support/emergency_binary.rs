//! The `emergency-rollback` example binary, built on demand in the profile of whoever includes
//! this file (the safety tests run it as a user would; the benchmark times it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the example now (a filtered test run does not build examples, and a stale binary would
/// test old code; a no-op when it is up to date) and returns its path beside this test's or
/// benchmark's own executable.
pub fn emergency_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args([
        "build",
        "-q",
        "-p",
        "deployguard-examples",
        "--example",
        "emergency-rollback",
    ]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let status = build.status().expect("running cargo");
    assert!(status.success(), "building the emergency-rollback example");
    let exe = std::env::current_exe().expect("this executable's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join("examples/emergency-rollback")
}
