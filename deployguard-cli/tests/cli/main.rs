//! The command-line tools from outside: the emergency command in process against the simulated
//! cluster and as a user runs it (its binary), against faults, races, hostile input and an ALB
//! on moto. One test binary, a module per concern.

mod common;
mod emergency;
mod emergency_alb;
mod faults;
mod guard_metrics;
mod guard_spec;
mod hostile;
mod inputs;
mod operator;
mod races;
mod safety;
