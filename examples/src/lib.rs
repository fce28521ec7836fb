//! Runnable programs that show deployguard at work (`cargo run --example NAME`), and the code
//! they share, kept here so that it is tested:
//!
//! - [`replay`]: the incident replay — the seed incident on the embedded simulated cluster,
//!   unguarded and guarded, side by side.
//! - [`emergency`]: the emergency-rollback command, the seed runbook's script done right.

pub mod emergency;
pub mod replay;
