//! The guard, per strategy, against the testkit fakes under a paused clock.

mod recovery;
mod world;

use std::fmt::Write as _;

use deployguard_core::analysis::NoDataPolicy;
use expect_test::{Expect, expect};

use world::{ALL, Schema, Script, World};

/// Runs the guard in a fresh world for every strategy and renders what it did.
async fn check(script: Script, schema: Schema, dry_run: bool, expect: Expect) {
    let mut out = String::new();
    for kind in ALL {
        let mut world = World::new(kind, &script, schema).configure(|b| b.dry_run(dry_run));
        let guard = world.guard();
        let report = guard.run().await;
        writeln!(out, "== {kind:?}").unwrap();
        out.push_str(&world.render(&report));
        if dry_run {
            assert!(
                world.writes().is_empty(),
                "{kind:?}: a dry run wrote {:?}",
                world.writes()
            );
        }
    }
    expect.assert_eq(&out);
}

#[tokio::test(start_paused = true)]
async fn a_healthy_rollout_is_promoted() {
    check(Script::Healthy, Schema::Compatible, false, expect![[r#"
        == Rolling
        outcome: promoted app:v2.4.0
        candidate runs ["app:v2.4.0"], 6 replicas
        writes: candidate.MarkVerified(2)
        == Recreate
        outcome: promoted app:v2.4.0
        candidate runs ["app:v2.4.0"], 6 replicas
        writes: candidate.MarkVerified(2)
        == BlueGreen
        outcome: promoted app:v2.4.0
        candidate runs ["app:v2.4.0"], 6 replicas
        stable runs ["app:v2.3.1"], 0 replicas
        traffic blue=0%, green=100%
        writes: candidate.MarkVerified(1), stable.Scale(0), router.Apply(blue=0%, green=100%)
        == Canary
        outcome: promoted app:v2.4.0
        candidate runs ["app:v2.4.0"], 6 replicas
        stable runs ["app:v2.3.1"], 0 replicas
        traffic canary=100%, stable=0%
        writes: candidate.MarkVerified(1), candidate.Scale(6), stable.Scale(0), router.Apply(canary=20%, stable=80%), router.Apply(canary=50%, stable=50%), router.Apply(canary=100%, stable=0%)
    "#]]).await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_rollout_is_detected_and_recovered() {
    check(Script::Failing, Schema::Compatible, false, expect![[r#"
        == Rolling
        outcome: rolled back app:v2.4.0 to app:v2.3.1: check error-rate: error_rate 15.0% is not at most 1.0% (1 failed, limit 0)
        candidate runs ["app:v2.3.1"], 6 replicas
        writes: candidate.RollbackTo(to 1)
        == Recreate
        outcome: rolled back app:v2.4.0 to app:v2.3.1: check error-rate: error_rate 15.0% is not at most 1.0% (1 failed, limit 0)
        candidate runs ["app:v2.3.1"], 6 replicas
        writes: candidate.RollbackTo(to 1)
        == BlueGreen
        outcome: recovered from app:v2.4.0: check error-rate: error_rate 15.0% is not at most 1.0% (1 failed, limit 0)
        candidate runs ["app:v2.4.0"], 0 replicas
        stable runs ["app:v2.3.1"], 6 replicas
        traffic blue=100%, green=0%
        writes: candidate.Scale(0), router.Apply(blue=0%, green=100%), router.Apply(blue=100%, green=0%)
        == Canary
        outcome: recovered from app:v2.4.0: check error-rate: error_rate 15.0% is not at most 1.0% (1 failed, limit 0)
        candidate runs ["app:v2.4.0"], 0 replicas
        stable runs ["app:v2.3.1"], 6 replicas
        traffic canary=0%, stable=100%
        writes: candidate.Scale(0)
    "#]]).await;
}

#[tokio::test(start_paused = true)]
async fn probe_errors_are_not_failures() {
    check(Script::ErrorsThenHealthy(4), Schema::Compatible, false, expect![[r#"
        == Rolling
        outcome: promoted app:v2.4.0
        candidate runs ["app:v2.4.0"], 6 replicas
        writes: candidate.MarkVerified(2)
        == Recreate
        outcome: promoted app:v2.4.0
        candidate runs ["app:v2.4.0"], 6 replicas
        writes: candidate.MarkVerified(2)
        == BlueGreen
        outcome: promoted app:v2.4.0
        candidate runs ["app:v2.4.0"], 6 replicas
        stable runs ["app:v2.3.1"], 0 replicas
        traffic blue=0%, green=100%
        writes: candidate.MarkVerified(1), stable.Scale(0), router.Apply(blue=0%, green=100%)
        == Canary
        outcome: promoted app:v2.4.0
        candidate runs ["app:v2.4.0"], 6 replicas
        stable runs ["app:v2.3.1"], 0 replicas
        traffic canary=100%, stable=0%
        writes: candidate.MarkVerified(1), candidate.Scale(6), stable.Scale(0), router.Apply(canary=20%, stable=80%), router.Apply(canary=50%, stable=50%), router.Apply(canary=100%, stable=0%)
    "#]]).await;
}

#[tokio::test(start_paused = true)]
async fn an_inconclusive_measurement_pauses_for_a_human() {
    check(Script::Inconclusive, Schema::Compatible, false, expect![[r#"
        == Rolling
        outcome: paused: check error-rate: error_rate 3.0% is not at most 1.0% is neither passing nor failing (1 inconclusive, limit 0)
        candidate runs ["app:v2.4.0"], 6 replicas
        writes: none
        == Recreate
        outcome: paused: check error-rate: error_rate 3.0% is not at most 1.0% is neither passing nor failing (1 inconclusive, limit 0)
        candidate runs ["app:v2.4.0"], 6 replicas
        writes: none
        == BlueGreen
        outcome: paused: check error-rate: error_rate 3.0% is not at most 1.0% is neither passing nor failing (1 inconclusive, limit 0)
        candidate runs ["app:v2.4.0"], 6 replicas
        stable runs ["app:v2.3.1"], 6 replicas
        traffic blue=0%, green=100%
        writes: router.Apply(blue=0%, green=100%)
        == Canary
        outcome: paused: check error-rate: error_rate 3.0% is not at most 1.0% is neither passing nor failing (1 inconclusive, limit 0)
        candidate runs ["app:v2.4.0"], 2 replicas
        stable runs ["app:v2.3.1"], 6 replicas
        traffic canary=0%, stable=100%
        writes: none
    "#]]).await;
}

#[tokio::test(start_paused = true)]
async fn no_data_follows_its_policy() {
    check(Script::NoData(NoDataPolicy::Fail), Schema::Compatible, false, expect![[r#"
        == Rolling
        outcome: rolled back app:v2.4.0 to app:v2.3.1: check error-rate: no data for error_rate (1 failed, limit 0)
        candidate runs ["app:v2.3.1"], 6 replicas
        writes: candidate.RollbackTo(to 1)
        == Recreate
        outcome: rolled back app:v2.4.0 to app:v2.3.1: check error-rate: no data for error_rate (1 failed, limit 0)
        candidate runs ["app:v2.3.1"], 6 replicas
        writes: candidate.RollbackTo(to 1)
        == BlueGreen
        outcome: recovered from app:v2.4.0: check error-rate: no data for error_rate (1 failed, limit 0)
        candidate runs ["app:v2.4.0"], 0 replicas
        stable runs ["app:v2.3.1"], 6 replicas
        traffic blue=100%, green=0%
        writes: candidate.Scale(0), router.Apply(blue=0%, green=100%), router.Apply(blue=100%, green=0%)
        == Canary
        outcome: recovered from app:v2.4.0: check error-rate: no data for error_rate (1 failed, limit 0)
        candidate runs ["app:v2.4.0"], 0 replicas
        stable runs ["app:v2.3.1"], 6 replicas
        traffic canary=0%, stable=100%
        writes: candidate.Scale(0), router.Apply(canary=20%, stable=80%), router.Apply(canary=50%, stable=50%), router.Apply(canary=0%, stable=100%)
    "#]]).await;
    check(
        Script::NoData(NoDataPolicy::Pause),
        Schema::Compatible,
        false,
        expect![[r#"
            == Rolling
            outcome: paused: check error-rate: no data for error_rate
            candidate runs ["app:v2.4.0"], 6 replicas
            writes: none
            == Recreate
            outcome: paused: check error-rate: no data for error_rate
            candidate runs ["app:v2.4.0"], 6 replicas
            writes: none
            == BlueGreen
            outcome: paused: check error-rate: no data for error_rate
            candidate runs ["app:v2.4.0"], 6 replicas
            stable runs ["app:v2.3.1"], 6 replicas
            traffic blue=0%, green=100%
            writes: router.Apply(blue=0%, green=100%)
            == Canary
            outcome: paused: check error-rate: no data for error_rate
            candidate runs ["app:v2.4.0"], 2 replicas
            stable runs ["app:v2.3.1"], 6 replicas
            traffic canary=50%, stable=50%
            writes: router.Apply(canary=20%, stable=80%), router.Apply(canary=50%, stable=50%)
        "#]],
    )
    .await;
    check(
        Script::NoData(NoDataPolicy::Ignore),
        Schema::Compatible,
        false,
        expect![[r#"
            == Rolling
            outcome: promoted app:v2.4.0
            candidate runs ["app:v2.4.0"], 6 replicas
            writes: candidate.MarkVerified(2)
            == Recreate
            outcome: promoted app:v2.4.0
            candidate runs ["app:v2.4.0"], 6 replicas
            writes: candidate.MarkVerified(2)
            == BlueGreen
            outcome: promoted app:v2.4.0
            candidate runs ["app:v2.4.0"], 6 replicas
            stable runs ["app:v2.3.1"], 0 replicas
            traffic blue=0%, green=100%
            writes: candidate.MarkVerified(1), stable.Scale(0), router.Apply(blue=0%, green=100%)
            == Canary
            outcome: promoted app:v2.4.0
            candidate runs ["app:v2.4.0"], 6 replicas
            stable runs ["app:v2.3.1"], 0 replicas
            traffic canary=100%, stable=0%
            writes: candidate.MarkVerified(1), candidate.Scale(6), stable.Scale(0), router.Apply(canary=20%, stable=80%), router.Apply(canary=50%, stable=50%), router.Apply(canary=100%, stable=0%)
        "#]],
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_incompatible_migration_blocks_the_rollback() {
    check(Script::Failing, Schema::Incompatible, false, expect![[r#"
        == Rolling
        outcome: paused: migration gate: revision 1 needs schema 42; migrations applied since are not known to be backward compatible: 43 (drop_legacy_price)
        candidate runs ["app:v2.4.0"], 6 replicas
        writes: candidate.SetPaused(true)
        == Recreate
        outcome: paused: migration gate: revision 1 needs schema 42; migrations applied since are not known to be backward compatible: 43 (drop_legacy_price)
        candidate runs ["app:v2.4.0"], 6 replicas
        writes: candidate.SetPaused(true)
        == BlueGreen
        outcome: paused: migration gate: revision 1 needs schema 42; migrations applied since are not known to be backward compatible: 43 (drop_legacy_price)
        candidate runs ["app:v2.4.0"], 6 replicas
        stable runs ["app:v2.3.1"], 6 replicas
        traffic blue=0%, green=100%
        writes: candidate.SetPaused(true), router.Apply(blue=0%, green=100%)
        == Canary
        outcome: paused: migration gate: revision 1 needs schema 42; migrations applied since are not known to be backward compatible: 43 (drop_legacy_price)
        candidate runs ["app:v2.4.0"], 2 replicas
        stable runs ["app:v2.3.1"], 6 replicas
        traffic canary=0%, stable=100%
        writes: candidate.SetPaused(true)
    "#]]).await;
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_writes_nothing_and_shows_the_plan() {
    check(Script::Failing, Schema::Compatible, true, expect![[r#"
        == Rolling
        outcome: rolled back app:v2.4.0 to app:v2.3.1: check error-rate: error_rate 15.0% is not at most 1.0% (1 failed, limit 0)
        candidate runs ["app:v2.4.0"], 6 replicas
        writes: none
        == Recreate
        outcome: rolled back app:v2.4.0 to app:v2.3.1: check error-rate: error_rate 15.0% is not at most 1.0% (1 failed, limit 0)
        candidate runs ["app:v2.4.0"], 6 replicas
        writes: none
        == BlueGreen
        outcome: recovered from app:v2.4.0: check error-rate: error_rate 15.0% is not at most 1.0% (1 failed, limit 0)
        candidate runs ["app:v2.4.0"], 6 replicas
        stable runs ["app:v2.3.1"], 6 replicas
        traffic blue=100%, green=0%
        writes: none
        == Canary
        outcome: recovered from app:v2.4.0: check error-rate: error_rate 15.0% is not at most 1.0% (1 failed, limit 0)
        candidate runs ["app:v2.4.0"], 2 replicas
        stable runs ["app:v2.3.1"], 6 replicas
        traffic canary=0%, stable=100%
        writes: none
    "#]]).await;
}

/// What a team's logs show: a `guard` span with the deployment, strategy and revision, a
/// `recovery` span inside it, and the journal's decisions as structured events.
#[tokio::test(start_paused = true)]
async fn the_guard_traces_its_spans_and_decisions() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new("deployguard=debug"))
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let mut world = World::new(world::Kind::Rolling, &Script::Failing, Schema::Compatible);
    let report = world.guard().run().await;
    assert!(world.render(&report).contains("rolled back"));
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for wanted in [
        "guard{target=",
        "strategy=Rolling",
        "revision=",
        "recovery{target=",
        "kind=\"decision\"",
        "kind=\"finished\"",
    ] {
        assert!(logs.contains(wanted), "{wanted} is not in:\n{logs}");
    }
}
