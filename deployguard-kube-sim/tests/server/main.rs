//! The simulated API server from outside: kube-rs in process and the real kubectl over
//! loopback HTTP(S). One test binary, a module per concern.

mod auth;
mod daily;
mod extras;
mod fidelity;
mod kube;
mod kubectl;
mod lifecycle;
mod probes;
mod watches;
mod workloads;
