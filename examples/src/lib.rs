//! Runnable programs that show deployguard at work (`cargo run --example NAME`), and the code
//! they share, kept here so that it is tested:
//!
//! - [`replay`]: the incident replay — the seed incident on the embedded simulated cluster,
//!   unguarded and guarded, side by side.
//! - [`picture`]: the replay drawn as an SVG or PNG picture.
//! - [`emergency`]: the emergency-rollback command, the seed runbook's script done right.

pub mod emergency;
pub mod picture;
pub mod replay;

/// The README's Rust blocks, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
