//! deployguard-aws's integration tests: one test binary, a module per concern.

mod moto;
mod recorded;
mod support;
