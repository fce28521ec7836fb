//! deployguard-prometheus's integration tests: one test binary, a module per concern.

mod backfilled;
mod scraped;
mod support;
mod web;
