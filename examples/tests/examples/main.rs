//! examples's integration tests: one test binary, a module per concern.

mod judgement;
mod replay;
