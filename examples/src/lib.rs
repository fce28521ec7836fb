//! Runnable programs that show deployguard at work (`cargo run --example NAME`), and the code
//! they share, kept here so that it is tested:
//!
//! - [`replay`]: the incident replay — the seed incident on the embedded simulated cluster,
//!   unguarded and guarded, side by side.
//! - [`picture`]: the replay drawn as an SVG or PNG picture.
//!
//! The command-line tools (`emergency-rollback`, `prometheus-guard`) are the
//! `deployguard-cli` package's.

pub mod picture;
pub mod replay;
