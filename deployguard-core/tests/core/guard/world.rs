//! A small world per strategy: fakes wired into a guard, and a rendering of what happened.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use deployguard_core::analysis::{AnalysisCheck, NoDataPolicy, Threshold};
use deployguard_core::engine::{
    BlueGreen, Canary, CanaryStep, Guard, GuardBuilder, GuardReport, JournalSink, MemoryJournal,
    Strategy,
};
use deployguard_core::{
    AppliedMigration, ErrorKind, MigrationState, RouterCapabilities, SchemaVersion,
};
use deployguard_testkit::{
    Behaviour, Call, FakeDeployment, FakeDeploymentHandle, FakeMigrations, FakeRouter,
    FakeRouterHandle, Op, ScriptedProbe,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rolling,
    Recreate,
    BlueGreen,
    Canary,
}

pub const ALL: [Kind; 4] = [Kind::Rolling, Kind::Recreate, Kind::BlueGreen, Kind::Canary];

/// What the probe answers, each every 10 s.
#[derive(Debug, Clone)]
pub enum Script {
    Healthy,
    Failing,
    /// Healthy for this many samples, failing after.
    FailingAfter(usize),
    ErrorsThenHealthy(usize),
    Inconclusive,
    NoData(NoDataPolicy),
}

/// The schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schema {
    Compatible,
    /// Migration 43 after the old code's 42 is not backward compatible.
    Incompatible,
}

pub struct World {
    pub candidate: FakeDeploymentHandle,
    pub stable: Option<FakeDeploymentHandle>,
    pub router: Option<FakeRouterHandle>,
    builder: Option<GuardBuilder>,
}

pub fn error_rate_check(no_data: NoDataPolicy, count: Option<u32>) -> AnalysisCheck {
    let mut builder = AnalysisCheck::builder("error-rate", "http", "error_rate")
        .success(Threshold::at_most(0.01))
        .inconclusive_within(Threshold::at_most(0.05))
        .interval(Duration::from_secs(10))
        .no_data(no_data);
    if let Some(count) = count {
        builder = builder.count(count);
    }
    builder.build().unwrap()
}

impl World {
    pub fn new(kind: Kind, script: &Script, schema: Schema) -> Self {
        let failing = matches!(script, Script::Failing);
        let mut probe = ScriptedProbe::new("http");
        let mut no_data = NoDataPolicy::Pause;
        probe = match script {
            Script::Healthy => probe.value("error_rate", 0.001),
            Script::Failing => probe.value("error_rate", 0.15),
            Script::FailingAfter(n) => probe
                .values("error_rate", 0.001, *n)
                .value("error_rate", 0.15),
            Script::ErrorsThenHealthy(n) => {
                for _ in 0..*n {
                    probe = probe.error(ErrorKind::Unavailable);
                }
                probe.value("error_rate", 0.001)
            }
            Script::Inconclusive => probe.value("error_rate", 0.03),
            Script::NoData(policy) => {
                no_data = *policy;
                probe.no_data("error_rate")
            }
        };
        let (probe, _) = probe.build();
        let applied = vec![
            AppliedMigration::new(SchemaVersion(42), "add_currency").with_backward_compatible(true),
            AppliedMigration::new(SchemaVersion(43), "drop_legacy_price")
                .with_backward_compatible(schema == Schema::Compatible),
        ];
        let (migrations, _) =
            FakeMigrations::new(MigrationState::idle(Some(SchemaVersion(43)), applied));
        let bad = if failing {
            Behaviour::failing_readiness()
        } else {
            Behaviour::healthy()
        };

        let (strategy, candidate, stable, router) = match kind {
            Kind::Rolling | Kind::Recreate => {
                let (backend, handle) = FakeDeployment::builder("app-deployment")
                    .replicas(6)
                    .verified_revision(["app:v2.3.1"], Behaviour::healthy())
                    .requires_schema(SchemaVersion(42))
                    .revision(["app:v2.4.0"], bad)
                    .requires_schema(SchemaVersion(43))
                    .build();
                let strategy = if kind == Kind::Rolling {
                    Strategy::Rolling
                } else {
                    Strategy::Recreate
                };
                (strategy, (backend, handle), None, None)
            }
            Kind::BlueGreen => {
                let green = FakeDeployment::builder("myapp-green")
                    .replicas(6)
                    .revision(
                        ["app:v2.4.0"],
                        Behaviour::healthy_after(Duration::from_secs(20)),
                    )
                    .build();
                let blue = FakeDeployment::builder("myapp-blue")
                    .replicas(6)
                    .verified_revision(["app:v2.3.1"], Behaviour::healthy())
                    .requires_schema(SchemaVersion(42))
                    .build();
                let router = FakeRouter::all_or_nothing("svc/myapp-service", ["blue", "green"]);
                let strategy = Strategy::BlueGreen(
                    BlueGreen::new("blue", "green")
                        .with_post_promotion(error_rate_check(no_data, Some(3))),
                );
                (strategy, green, Some(blue), Some(router))
            }
            Kind::Canary => {
                let canary = FakeDeployment::builder("web-canary")
                    .replicas(2)
                    .revision(
                        ["app:v2.4.0"],
                        Behaviour::healthy_after(Duration::from_secs(15)),
                    )
                    .build();
                let stable = FakeDeployment::builder("web")
                    .replicas(6)
                    .verified_revision(["app:v2.3.1"], Behaviour::healthy())
                    .requires_schema(SchemaVersion(42))
                    .build();
                let router =
                    FakeRouter::new("vs/web", RouterCapabilities::weighted(["stable", "canary"]))
                        .unwrap();
                let steps = vec![
                    CanaryStep::SetWeight(20),
                    CanaryStep::Pause(Some(Duration::from_secs(30))),
                    CanaryStep::SetWeight(50),
                    CanaryStep::Analysis,
                ];
                (
                    Strategy::Canary(Canary::new("stable", "canary", steps)),
                    canary,
                    Some(stable),
                    Some(router),
                )
            }
        };
        let mut builder = Guard::builder(strategy, Arc::new(candidate.0))
            .probe(Arc::new(probe))
            .migrations(Arc::new(migrations))
            .journal(Arc::new(MemoryJournal::new()) as Arc<dyn JournalSink>);
        if kind != Kind::BlueGreen {
            builder = builder.check(error_rate_check(
                no_data,
                if kind == Kind::Canary { Some(3) } else { None },
            ));
        }
        if let Some((stable, _)) = &stable {
            builder = builder.stable(Arc::new(stable.clone()));
        }
        if let Some((router, _)) = &router {
            builder = builder.router(Arc::new(router.clone()));
        }
        Self {
            candidate: candidate.1,
            stable: stable.map(|s| s.1),
            router: router.map(|r| r.1),
            builder: Some(builder),
        }
    }

    /// Changes the guard's builder (its settings, its journal, …) before the guard is built.
    pub fn configure(mut self, change: impl FnOnce(GuardBuilder) -> GuardBuilder) -> Self {
        self.builder = self.builder.take().map(change);
        self
    }

    pub fn with_journal(mut self, journal: Arc<dyn JournalSink>) -> Self {
        self.builder = self.builder.take().map(|b| b.journal(journal));
        self
    }

    /// Every fake call takes a millisecond, so a guard yields between calls and a test can
    /// drop it at any point, as a crash would.
    pub fn slow_calls(&self) {
        let ops = [
            Op::Observe,
            Op::History,
            Op::RollbackTo,
            Op::SetPaused,
            Op::Scale,
            Op::MarkVerified,
            Op::Markers,
            Op::SetMarker,
            Op::Current,
            Op::Apply,
            Op::Verify,
        ];
        for op in ops {
            self.candidate.set_latency(op, Duration::from_millis(1));
            if let Some(stable) = &self.stable {
                stable.set_latency(op, Duration::from_millis(1));
            }
            if let Some(router) = &self.router {
                router.set_latency(op, Duration::from_millis(1));
            }
        }
    }

    pub fn guard(&mut self) -> Guard {
        self.builder
            .take()
            .expect("guard built once")
            .build()
            .unwrap()
    }

    /// Every call that changed something, in every fake.
    pub fn writes(&self) -> Vec<Call> {
        let mut writes = self.candidate.writes();
        writes.extend(self.stable.iter().flat_map(|s| s.writes()));
        writes.extend(self.router.iter().flat_map(|r| r.writes()));
        writes
    }

    /// Effective recoveries: rollbacks that changed the deployment, or router writes that took
    /// traffic off the candidate.
    pub fn effective_recoveries(&self) -> usize {
        let rollbacks = self
            .candidate
            .writes()
            .iter()
            .filter(|c| c.op == Op::RollbackTo)
            .count();
        let restores = self.router.as_ref().map_or(0, |r| {
            r.applied()
                .iter()
                .filter(|s| s.weight("canary").or(s.weight("green")) == Some(0))
                .count()
        });
        rollbacks + restores
    }

    /// The outcome and the state the world is left in, one line each.
    pub fn render(&self, report: &GuardReport) -> String {
        let mut out = String::new();
        // In words, as a person reads it.
        let outcome = report.outcome.to_string();
        writeln!(
            out,
            "outcome: {}",
            outcome.chars().take(150).collect::<String>().trim_end()
        )
        .unwrap();
        writeln!(
            out,
            "candidate runs {:?}, {} replicas",
            self.candidate.current_images(),
            self.candidate.replicas()
        )
        .unwrap();
        if let Some(stable) = &self.stable {
            writeln!(
                out,
                "stable runs {:?}, {} replicas",
                stable.current_images(),
                stable.replicas()
            )
            .unwrap();
        }
        if let Some(router) = &self.router {
            writeln!(out, "traffic {}", router.split()).unwrap();
        }
        let mut writes = Vec::new();
        let mut add = |who: &str, calls: Vec<Call>| {
            for call in calls.into_iter().filter(|c| c.op != Op::SetMarker) {
                writes.push(format!("{who}.{:?}({})", call.op, call.detail));
            }
        };
        add("candidate", self.candidate.writes());
        if let Some(stable) = &self.stable {
            add("stable", stable.writes());
        }
        if let Some(router) = &self.router {
            add("router", router.writes());
        }
        writeln!(
            out,
            "writes: {}",
            if writes.is_empty() {
                "none".into()
            } else {
                writes.join(", ")
            }
        )
        .unwrap();
        out
    }
}
