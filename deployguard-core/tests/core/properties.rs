//! Properties of the pure engine, over generated strategies, phases, splits and stable-side
//! states: whatever the input, a split sums to 100, an abort leaves the candidate at 0%, no
//! traffic goes to a stable side before it is ready, and nothing scales down before traffic has
//! moved.

use deployguard_core::engine::{
    BlueGreen, Canary, CanaryStep, Phase, Plan, RecoveryContext, Step, Strategy as Rollout,
    plan_recovery,
};
use deployguard_core::{Fingerprint, TrafficSplit};
use proptest::prelude::*;

/// Weights over up to four backends, any sum.
fn weights() -> impl Strategy<Value = Vec<(String, u8)>> {
    prop::collection::vec(0u8..=100, 1..=4).prop_map(|ws| {
        ws.into_iter()
            .enumerate()
            .map(|(i, w)| (["stable", "canary", "mirror", "other"][i].to_owned(), w))
            .collect()
    })
}

/// A split the router could have had before the rollout (sums to 100).
fn original_split() -> impl Strategy<Value = Option<TrafficSplit>> {
    prop::option::of((0u8..=100, 0u8..=100).prop_map(|(a, b)| {
        let (a, b) = (a.min(100 - b.min(100)), b.min(100));
        TrafficSplit::new([
            ("stable".to_owned(), a),
            ("canary".to_owned(), b),
            ("other".to_owned(), 100 - a - b),
        ])
        .expect("sums to 100")
    }))
}

fn context() -> impl Strategy<Value = RecoveryContext> {
    (
        0usize..2,
        0usize..5,
        original_split(),
        prop::option::of((1u32..10, any::<bool>())),
        any::<bool>(),
    )
        .prop_map(|(kind, step, split, stable, post)| {
            let (strategy, phase) = if kind == 0 {
                (
                    Rollout::Canary(Canary::new(
                        "stable",
                        "canary",
                        vec![CanaryStep::SetWeight(20), CanaryStep::SetWeight(50)],
                    )),
                    Phase::CanaryStep(step),
                )
            } else {
                let phase = if post {
                    Phase::PostPromotion
                } else {
                    Phase::PrePromotion
                };
                (
                    Rollout::BlueGreen(BlueGreen::new("stable", "canary")),
                    phase,
                )
            };
            let mut ctx = RecoveryContext::new(strategy, phase, Fingerprint::new("v2"), "failing");
            ctx.original_split = split;
            ctx.stable = stable;
            ctx
        })
}

fn position(plan: &Plan, wanted: impl Fn(&Step) -> bool) -> Option<usize> {
    plan.steps.iter().position(wanted)
}

proptest! {
    #[test]
    fn a_split_exists_only_when_it_sums_to_100(weights in weights()) {
        let sum: u32 = weights.iter().map(|(_, w)| u32::from(*w)).sum();
        let split = TrafficSplit::new(weights.clone());
        prop_assert_eq!(split.is_ok(), sum == 100);
        if let Ok(split) = split {
            prop_assert_eq!(split.iter().map(|(_, w)| u32::from(w)).sum::<u32>(), 100);
        }
    }

    #[test]
    fn recovery_plans_keep_the_ordering_rules(ctx in context()) {
        let plan = plan_recovery(&ctx).expect("a traffic strategy always has a plan");
        let shift = position(&plan, |s| matches!(s, Step::ShiftTraffic { .. }));
        let scale_down = position(&plan, |s| matches!(s, Step::ScaleDownCandidate { .. }));
        let ensure = position(&plan, |s| matches!(s, Step::EnsureStableReady { .. }));
        // An abort always ends with the candidate at 0%, every split summing to 100.
        for step in &plan.steps {
            if let Step::ShiftTraffic { split } | Step::VerifyTraffic { split } = step {
                prop_assert_eq!(split.weight("canary").unwrap_or(0), 0, "{}", plan);
                prop_assert_eq!(split.iter().map(|(_, w)| u32::from(w)).sum::<u32>(), 100);
                // Traffic goes to the stable side, unless it goes back exactly where it went
                // before the rollout (a route whose other backends served it all).
                let restores_original = ctx.original_split.as_ref() == Some(split);
                prop_assert!(
                    split.weight("stable").unwrap_or(0) > 0 || restores_original,
                    "{}",
                    plan
                );
            }
        }
        // Nothing scales down before traffic has moved.
        let shift = shift.expect("traffic moves back");
        prop_assert!(scale_down.is_none_or(|down| down > shift), "{}", plan);
        // Traffic never goes to a stable side that is not ready: it is made ready first.
        let stable_not_ready = matches!(ctx.stable, Some((_, false)));
        let serving_candidate = ctx.phase == Phase::PostPromotion;
        if stable_not_ready || serving_candidate && ctx.stable.is_some() {
            let ensure = ensure.expect("the stable side is made ready");
            prop_assert!(ensure < shift, "{}", plan);
        }
    }
}

#[test]
fn a_plan_lists_only_steps_the_backend_can_do() {
    use deployguard_core::engine::GateVerdict;
    let mut ctx = RecoveryContext::new(
        Rollout::Rolling,
        Phase::Progressing,
        Fingerprint::new("v2"),
        "failing",
    );
    ctx.gate = GateVerdict::Block("schema 43 is dirty".into());
    let plan = plan_recovery(&ctx).unwrap();
    assert_eq!(plan.steps, [Step::Freeze]);
    ctx.can_pause = false;
    let plan = plan_recovery(&ctx).unwrap();
    assert!(plan.steps.is_empty(), "{plan}");
    assert_eq!(
        plan.blocked.as_deref(),
        Some("migration gate: schema 43 is dirty")
    );
}
