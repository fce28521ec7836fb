//! Runnable programs that show deployguard at work; run one with
//! `cargo run --example NAME`. The library target is empty on purpose: everything lives in
//! `examples/`.
