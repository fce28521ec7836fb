//! The engine: strategies, decisions, recovery plans, their execution, and the guard that runs
//! them.
//!
//! ```text
//! observe (traits) ──► analysis (pure) ──► decide (pure) ──► plan (pure) ──► execute (traits, deadline)
//!         ▲                                                                        │
//!         └──────────────────── journal events, re-observe ◄───────────────────────┘
//! ```
//!
//! [`decide`] and [`plan_recovery`] are pure functions; [`Guard`] does the I/O, through the four
//! traits and tokio's clock only.

mod builder;
mod config;
mod decide;
mod diagnose;
mod execute;
mod gate;
mod guard;
mod journal;
mod markers;
mod outcome;
mod plan;
mod pod_health;
mod recover;
mod report;
mod retry;
mod starting;
mod strategy;
mod target;

pub use builder::GuardBuilder;
pub use config::GuardConfig;
pub use decide::{Decision, DecisionInput, Phase, decide};
pub use diagnose::{diagnose, diagnose_within};
pub use gate::{GateVerdict, MigrationPolicy, migration_gate};
pub use guard::Guard;
pub use journal::{EventKind, JournalEvent, JournalSink, MemoryJournal, TracingJournal};
pub use markers::{EarlierRecovery, PROMOTE, RECOVERY, ROLLOUT};
pub use outcome::{GuardOutcome, GuardReport};
pub use plan::{Plan, RecoveryContext, Step, plan_recovery};
pub use recover::{Assessment, Recovery};
pub use report::{ExecutionOutcome, Report, StepReport, StepStatus};
pub use retry::RetryPolicy;
pub use starting::{PodProgress, StartBudget, Starting};
pub use strategy::{BlueGreen, Canary, CanaryStep, Strategy, StrategyKind};
pub use target::rollback_target;
