//! Every fake passes its conformance suite, concretely and through `Box<dyn _>`/`Arc<dyn _>`,
//! and each suite fails for an implementation that breaks its contract.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deployguard_core::{
    AppliedMigration, BackendCapabilities, DeploymentBackend, HealthProbe, Measurement,
    MigrationInspector, MigrationState, Result, Revision, RevisionId, RollbackOptions,
    RollbackOutcome, RolloutSnapshot, RouteVersion, Routed, RouterCapabilities, Sample,
    SchemaVersion, TrafficRouter, TrafficSplit, Verification,
};
use deployguard_testkit::conformance::{self, ConformanceFailure};
use deployguard_testkit::{Behaviour, FakeDeployment, FakeMigrations, FakeRouter, ScriptedProbe};

fn deployment() -> FakeDeployment {
    FakeDeployment::builder("web")
        .replicas(6)
        .revision(["app:v2.2.0"], Behaviour::healthy())
        .revision(["app:v2.3.1"], Behaviour::healthy())
        .revision(["app:v2.4.0"], Behaviour::failing_readiness())
        .build()
        .0
}

fn migrations() -> FakeMigrations {
    let applied = vec![
        AppliedMigration::new(SchemaVersion(1), "init"),
        AppliedMigration::new(SchemaVersion(2), "add_currency").with_backward_compatible(true),
    ];
    FakeMigrations::new(MigrationState::idle(Some(SchemaVersion(2)), applied)).0
}

fn probe() -> ScriptedProbe {
    ScriptedProbe::new("http")
        .value("error_rate", 0.01)
        .no_data("error_rate")
        .build()
        .0
}

#[tokio::test]
async fn backend_suite_passes_for_fake_deployment_concrete_boxed_and_shared() {
    conformance::backend_suite(&deployment()).await.unwrap();
    let boxed: Box<dyn DeploymentBackend> = Box::new(deployment());
    conformance::backend_suite(&boxed).await.unwrap();
    let shared: Arc<dyn DeploymentBackend> = Arc::new(deployment());
    conformance::backend_suite(&shared).await.unwrap();
}

#[tokio::test]
async fn router_suite_passes_for_every_kind_of_fake_router() {
    let weighted = FakeRouter::weighted("vs/web", ["stable", "canary"]).0;
    let selector = FakeRouter::all_or_nothing("svc/web", ["blue", "green"]).0;
    let coarse = FakeRouter::new(
        "alb/web",
        RouterCapabilities::weighted(["stable", "canary"]).with_granularity(5),
    )
    .unwrap()
    .0;
    for router in [weighted, selector, coarse] {
        conformance::router_suite(&router).await.unwrap();
        let boxed: Box<dyn TrafficRouter> = Box::new(router.clone());
        conformance::router_suite(&boxed).await.unwrap();
    }
}

#[tokio::test]
async fn probe_and_migrations_suites_pass_for_their_fakes() {
    conformance::probe_suite(&probe()).await.unwrap();
    let boxed: Box<dyn HealthProbe> = Box::new(probe());
    conformance::probe_suite(&boxed).await.unwrap();
    conformance::migrations_suite(&migrations()).await.unwrap();
    let boxed: Box<dyn MigrationInspector> = Box::new(migrations());
    conformance::migrations_suite(&boxed).await.unwrap();
}

fn failed_check(result: std::result::Result<(), ConformanceFailure>) -> &'static str {
    match result {
        Ok(()) => "passed",
        Err(failure) => failure.check,
    }
}

/// A backend that gets one thing wrong, the rest delegated to a correct fake.
#[derive(Debug)]
struct BrokenBackend {
    inner: FakeDeployment,
    flaw: BackendFlaw,
}

#[derive(Debug, Clone, Copy)]
enum BackendFlaw {
    /// Looks revisions up by current number only, so a second rollback after renumbering fails.
    ForgetsRenumbering,
    /// On an unknown revision, rolls back to the oldest one "to be safe" before failing.
    WritesOnMissingRevision,
    /// Ignores `expected_current`.
    UnconditionalWrites,
    /// Reports success without doing anything.
    PretendsToRollBack,
}

#[async_trait]
impl DeploymentBackend for BrokenBackend {
    fn target(&self) -> String {
        self.inner.target()
    }
    fn name(&self) -> String {
        self.inner.name()
    }
    fn capabilities(&self) -> BackendCapabilities {
        self.inner.capabilities()
    }
    async fn observe(&self) -> Result<RolloutSnapshot> {
        self.inner.observe().await
    }
    async fn history(&self) -> Result<Vec<Revision>> {
        self.inner.history().await
    }
    async fn rollback_to(
        &self,
        revision: RevisionId,
        options: RollbackOptions,
    ) -> Result<RollbackOutcome> {
        let history = self.inner.history().await?;
        match self.flaw {
            BackendFlaw::ForgetsRenumbering if !history.iter().any(|r| r.id == revision) => Err(
                deployguard_core::Error::not_found(format!("revision {revision}")),
            ),
            BackendFlaw::WritesOnMissingRevision
                if !history.iter().any(|r| r.answers_to(revision)) =>
            {
                let _ = self
                    .inner
                    .rollback_to(history[0].id, RollbackOptions::default())
                    .await;
                Err(deployguard_core::Error::not_found(format!(
                    "revision {revision}"
                )))
            }
            BackendFlaw::UnconditionalWrites => {
                let options =
                    RollbackOptions::default().with_resume_if_paused(options.resume_if_paused);
                self.inner.rollback_to(revision, options).await
            }
            BackendFlaw::PretendsToRollBack
                if options.expected_current.is_none()
                    && history.iter().any(|r| r.id == revision) =>
            {
                let from = self.inner.observe().await?.current_revision;
                Ok(RollbackOutcome::RolledBack { from, to: revision })
            }
            _ => self.inner.rollback_to(revision, options).await,
        }
    }
    async fn set_paused(&self, paused: bool) -> Result<()> {
        self.inner.set_paused(paused).await
    }
    async fn scale(&self, replicas: u32) -> Result<()> {
        self.inner.scale(replicas).await
    }
    async fn mark_verified(&self, revision: RevisionId) -> Result<()> {
        self.inner.mark_verified(revision).await
    }
    async fn markers(&self) -> Result<BTreeMap<String, String>> {
        self.inner.markers().await
    }
    async fn set_marker(&self, key: &str, value: Option<String>) -> Result<()> {
        self.inner.set_marker(key, value).await
    }
}

#[tokio::test]
async fn backend_suite_fails_each_broken_backend_at_the_check_it_breaks() {
    let cases = [
        (BackendFlaw::ForgetsRenumbering, "rollback_is_idempotent"),
        (
            BackendFlaw::WritesOnMissingRevision,
            "rollback_to_missing_revision_is_not_found",
        ),
        (
            BackendFlaw::UnconditionalWrites,
            "conditional_rollback_refuses_stale_expectation",
        ),
        (
            BackendFlaw::PretendsToRollBack,
            "observe_after_rollback_shows_target",
        ),
    ];
    for (flaw, check) in cases {
        let broken = BrokenBackend {
            inner: deployment(),
            flaw,
        };
        assert_eq!(
            failed_check(conformance::backend_suite(&broken).await),
            check,
            "{flaw:?}"
        );
    }
}

/// A router that keeps its split in a mutex and gets one thing wrong.
#[derive(Debug)]
struct BrokenRouter {
    caps: RouterCapabilities,
    split: Mutex<(TrafficSplit, u64)>,
    flaw: RouterFlaw,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RouterFlaw {
    /// `apply` succeeds without applying.
    DropsWrites,
    /// `apply` writes whatever it is given.
    IgnoresCapabilities,
    /// `verify` always says it matches.
    AlwaysVerifies,
    /// `apply` ignores the version it is given (a blind last-writer-wins write).
    IgnoresVersion,
}

impl BrokenRouter {
    fn new(flaw: RouterFlaw) -> Self {
        Self {
            caps: RouterCapabilities::all_or_nothing(["blue", "green"]),
            split: Mutex::new((TrafficSplit::all_to("blue", &["green"]).unwrap(), 1)),
            flaw,
        }
    }
}

#[async_trait]
impl TrafficRouter for BrokenRouter {
    fn target(&self) -> String {
        "broken router".into()
    }
    fn capabilities(&self) -> RouterCapabilities {
        self.caps.clone()
    }
    async fn current(&self) -> Result<Routed> {
        let (split, version) = self.split.lock().unwrap().clone();
        Ok(Routed::new(split, RouteVersion(version.to_string())))
    }
    async fn apply(&self, split: &TrafficSplit, expected: &RouteVersion) -> Result<RouteVersion> {
        if self.flaw != RouterFlaw::IgnoresCapabilities {
            self.caps.check(split)?;
        }
        let mut state = self.split.lock().unwrap();
        if self.flaw != RouterFlaw::IgnoresVersion && expected.0 != state.1.to_string() {
            return Err(deployguard_core::Error::conflict("the route changed"));
        }
        if self.flaw != RouterFlaw::DropsWrites {
            *state = (split.clone(), state.1 + 1);
        }
        Ok(RouteVersion(state.1.to_string()))
    }
    async fn verify(&self, split: &TrafficSplit) -> Result<Verification> {
        let current = self.split.lock().unwrap().0.clone();
        Ok(
            if self.flaw == RouterFlaw::AlwaysVerifies || current == *split {
                Verification::Matches
            } else {
                Verification::Differs(current)
            },
        )
    }
}

#[tokio::test]
async fn router_suite_fails_each_broken_router_at_the_check_it_breaks() {
    let cases = [
        (
            RouterFlaw::DropsWrites,
            "router_apply_current_verify_round_trip",
        ),
        (
            RouterFlaw::IgnoresCapabilities,
            "router_refuses_inexpressible_split",
        ),
        (
            RouterFlaw::AlwaysVerifies,
            "router_verify_reports_difference",
        ),
        (
            RouterFlaw::IgnoresVersion,
            "router_apply_is_conditional_on_the_version_read",
        ),
    ];
    for (flaw, check) in cases {
        assert_eq!(
            failed_check(conformance::router_suite(&BrokenRouter::new(flaw)).await),
            check,
            "{flaw:?}"
        );
    }
}

#[derive(Debug)]
struct NanProbe;

#[async_trait]
impl HealthProbe for NanProbe {
    fn name(&self) -> String {
        "nan".into()
    }
    async fn sample(&self) -> Result<Sample> {
        Ok(Sample::new(
            vec![Measurement::value("error_rate", f64::NAN)],
            "0/0 requests",
        ))
    }
}

#[derive(Debug)]
struct UnorderedMigrations;

#[async_trait]
impl MigrationInspector for UnorderedMigrations {
    fn target(&self) -> String {
        "unordered".into()
    }
    async fn inspect(&self) -> Result<MigrationState> {
        let applied = vec![
            AppliedMigration::new(SchemaVersion(2), "b"),
            AppliedMigration::new(SchemaVersion(1), "a"),
        ];
        Ok(MigrationState::idle(Some(SchemaVersion(2)), applied))
    }
}

#[tokio::test]
async fn probe_and_migrations_suites_fail_broken_implementations() {
    assert_eq!(
        failed_check(conformance::probe_suite(&NanProbe).await),
        "samples_are_well_formed"
    );
    assert_eq!(
        failed_check(conformance::migrations_suite(&UnorderedMigrations).await),
        "inspection_is_consistent"
    );
}
