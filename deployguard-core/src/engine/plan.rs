//! Recovery plans: ordered, idempotent steps built by a pure function.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::decide::Phase;
use super::gate::GateVerdict;
use super::strategy::Strategy;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Fingerprint, Revision, RevisionId, TrafficSplit};

/// One recovery step. Every step is idempotent: running it again after it took effect changes
/// nothing, so a restarted guard can run a plan from the top.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Writes the recovery marker on the platform, so a restarted guard finishes the job.
    RecordIntent {
        /// What is failing.
        failing: Fingerprint,
        /// Where the rollback goes, when it rolls back.
        target: Option<RevisionId>,
        /// Why.
        reason: String,
    },
    /// Pauses the candidate's rollout.
    Freeze,
    /// Scales the stable side to `replicas` and waits until it is available — before any
    /// traffic goes to it.
    EnsureStableReady {
        /// Replicas the stable side had before the rollout.
        replicas: u32,
    },
    /// Configures the router (a fresh read, then a write conditional on it).
    ShiftTraffic {
        /// The split to restore.
        split: TrafficSplit,
    },
    /// Waits until the router reports `split` routed.
    VerifyTraffic {
        /// The split that must be routed.
        split: TrafficSplit,
    },
    /// Re-reads the schema and refuses to go on if `target` cannot run on it.
    GateMigrations {
        /// The revision that will run after recovery.
        target: Revision,
    },
    /// Rolls the candidate deployment back, conditional on it still running `expected_current`.
    RollBack {
        /// The revision to restore.
        to: RevisionId,
        /// The revision the plan was made against.
        expected_current: Option<RevisionId>,
    },
    /// Waits until the candidate deployment has rolled out completely.
    AwaitAvailable,
    /// Checks the rollout-status ladder says done and the deployment runs `fingerprint`.
    Validate {
        /// What must run.
        fingerprint: Fingerprint,
    },
    /// Waits `after`, then scales the candidate to `replicas`.
    ScaleDownCandidate {
        /// Replicas to keep.
        replicas: u32,
        /// Delay first (requests in flight drain, a quick undo stays cheap).
        #[serde(with = "secs")]
        after: Duration,
    },
    /// Writes the finished-recovery marker.
    RecordOutcome {
        /// What was failing.
        failing: Fingerprint,
        /// What runs now, where known.
        restored: Option<Fingerprint>,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RecordIntent {
                failing, target, ..
            } => match target {
                Some(target) => {
                    write!(f, "record intent: roll back {failing} to revision {target}")
                }
                None => write!(f, "record intent: recover from {failing}"),
            },
            Self::Freeze => f.write_str("freeze the rollout"),
            Self::EnsureStableReady { replicas } => {
                write!(f, "scale stable to {replicas} and wait until available")
            }
            Self::ShiftTraffic { split } => write!(f, "shift traffic to {split}"),
            Self::VerifyTraffic { split } => write!(f, "verify traffic is {split}"),
            Self::GateMigrations { target } => {
                write!(f, "check the schema allows revision {}", target.id)
            }
            Self::RollBack { to, .. } => write!(f, "roll back to revision {to}"),
            Self::AwaitAvailable => f.write_str("wait until the rollout is available"),
            Self::Validate { fingerprint } => write!(f, "validate {fingerprint} is rolled out"),
            Self::ScaleDownCandidate { replicas, after } => {
                write!(
                    f,
                    "after {}s scale the candidate to {replicas}",
                    after.as_secs()
                )
            }
            Self::RecordOutcome { .. } => f.write_str("record the outcome"),
        }
    }
}

/// A recovery plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Plan {
    /// Why recovery is needed.
    pub reason: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Set when the plan only freezes: the reason recovery is refused (the migration gate).
    pub blocked: Option<String>,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "recovery plan ({})", self.reason)?;
        if let Some(why) = &self.blocked {
            writeln!(f, "  blocked: {why}")?;
        }
        for (index, step) in self.steps.iter().enumerate() {
            writeln!(f, "  {}. {step}", index + 1)?;
        }
        Ok(())
    }
}

/// What the planner knows. Built from observations; the planner itself does no I/O.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecoveryContext {
    /// The strategy.
    pub strategy: Strategy,
    /// The phase the rollout reached.
    pub phase: Phase,
    /// Why recovery is needed.
    pub reason: String,
    /// What the failing rollout runs.
    pub failing: Fingerprint,
    /// What the candidate deployment runs now, and its number (differs from `failing` when a
    /// restarted guard finds the rollback already applied).
    pub current: Option<(RevisionId, Fingerprint)>,
    /// Where a rollback goes (rolling, recreate).
    pub target: Option<Revision>,
    /// The migration gate's verdict on what will run after recovery.
    pub gate: GateVerdict,
    /// The split before the rollout touched the router.
    pub original_split: Option<TrafficSplit>,
    /// Replicas the stable side should have, and whether it has them available now.
    pub stable: Option<(u32, bool)>,
    /// Whether the candidate's backend can pause a rollout (its capabilities): a plan lists
    /// only steps that will be done.
    pub can_pause: bool,
    /// Whether someone else paused the deployment (`kubectl rollout pause`) and resuming it was
    /// not asked for: a rollback is refused then, as `kubectl rollout undo` refuses it.
    pub paused_by_someone: bool,
}

impl RecoveryContext {
    /// A context for `strategy` in `phase`, recovering from `failing` for `reason`.
    pub fn new(
        strategy: Strategy,
        phase: Phase,
        failing: Fingerprint,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            strategy,
            phase,
            reason: reason.into(),
            failing,
            current: None,
            target: None,
            gate: GateVerdict::Pass,
            original_split: None,
            stable: None,
            can_pause: true,
            paused_by_someone: false,
        }
    }
}

/// Builds the recovery plan. The order encodes what the peers learned the hard way:
///
/// - traffic moves back before anything scales down;
/// - the stable side is scaled up and available before traffic is sent to it;
/// - abort sends the candidate 0%, whatever replica floors say;
/// - the router is restored to the split it had before the rollout, every backend of it;
/// - once promotion is under way, traffic goes back only after the stable side is ready, so
///   recovery never routes everything to a side that cannot serve;
/// - a blocked migration gate freezes and reports instead of rolling back.
///
/// Fails with `NotFound` when a rollback has no target and `InvalidInput` when a traffic
/// strategy has no router split to restore; nothing is planned then.
pub fn plan_recovery(ctx: &RecoveryContext) -> Result<Plan> {
    let mut steps = Vec::new();
    if let GateVerdict::Block(why) = &ctx.gate {
        if ctx.can_pause {
            steps.push(Step::Freeze);
        }
        return Ok(Plan {
            reason: ctx.reason.clone(),
            steps,
            blocked: Some(format!("migration gate: {why}")),
        });
    }
    if ctx.paused_by_someone && ctx.strategy.recovers_by_rollback() {
        return Ok(Plan {
            reason: ctx.reason.clone(),
            steps,
            blocked: Some(
                "the deployment is paused (kubectl rollout pause): someone paused it on purpose; resume it, or allow the guard to resume paused deployments"
                    .to_owned(),
            ),
        });
    }
    let intent = |target| Step::RecordIntent {
        failing: ctx.failing.clone(),
        target,
        reason: ctx.reason.clone(),
    };
    let outcome = |restored| Step::RecordOutcome {
        failing: ctx.failing.clone(),
        restored,
    };
    match &ctx.strategy {
        Strategy::Rolling | Strategy::Recreate => {
            let target = ctx.target.as_ref().ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("no revision to roll back to from {}", ctx.failing),
                )
                .with_operation("plan_recovery")
            })?;
            steps.push(intent(Some(target.id)));
            let already_rolled_back = ctx
                .current
                .as_ref()
                .is_some_and(|(_, fp)| *fp == target.fingerprint);
            if !already_rolled_back {
                steps.push(Step::GateMigrations {
                    target: target.clone(),
                });
                steps.push(Step::RollBack {
                    to: target.id,
                    expected_current: ctx.current.as_ref().map(|(id, _)| *id),
                });
            }
            steps.push(Step::AwaitAvailable);
            steps.push(Step::Validate {
                fingerprint: target.fingerprint.clone(),
            });
            steps.push(outcome(Some(target.fingerprint.clone())));
        }
        Strategy::Canary(canary) => {
            let split = restore_split(ctx, &canary.stable, &canary.canary)?;
            steps.push(intent(None));
            if let Some((replicas, false)) = ctx.stable {
                steps.push(Step::EnsureStableReady { replicas });
            }
            steps.push(Step::ShiftTraffic {
                split: split.clone(),
            });
            steps.push(Step::VerifyTraffic { split });
            steps.push(Step::ScaleDownCandidate {
                replicas: 0,
                after: canary.abort_scale_down_delay,
            });
            steps.push(outcome(None));
        }
        Strategy::BlueGreen(bg) => {
            let split = restore_split(ctx, &bg.active, &bg.preview)?;
            steps.push(intent(None));
            // Once promotion is under way production is on the preview, and only a ready stable
            // side may take it back; before it, a stable side that is not ready is made ready
            // too: no plan sends traffic to a side that cannot serve it.
            match ctx.stable {
                Some((replicas, ready)) if ctx.phase == Phase::PostPromotion || !ready => {
                    steps.push(Step::EnsureStableReady { replicas });
                }
                _ => {}
            }
            steps.push(Step::ShiftTraffic {
                split: split.clone(),
            });
            steps.push(Step::VerifyTraffic { split });
            steps.push(Step::ScaleDownCandidate {
                replicas: 0,
                after: bg.scale_down_delay,
            });
            steps.push(outcome(None));
        }
    }
    Ok(Plan {
        reason: ctx.reason.clone(),
        steps,
        blocked: None,
    })
}

/// The split to restore: the one before the rollout, with the candidate forced to 0.
fn restore_split(ctx: &RecoveryContext, stable: &str, candidate: &str) -> Result<TrafficSplit> {
    let original = match &ctx.original_split {
        Some(split) => split.clone(),
        None => TrafficSplit::all_to(stable, &[candidate])?,
    };
    let freed = original.weight(candidate).unwrap_or(0);
    let weights = original.iter().map(|(name, weight)| {
        let weight = if name == candidate {
            0
        } else if name == stable {
            weight.saturating_add(freed)
        } else {
            weight
        };
        (name.to_owned(), weight)
    });
    let mut split = TrafficSplit::new(weights)?;
    if split.weight(stable).is_none() {
        split = TrafficSplit::all_to(stable, &[candidate])?;
    }
    Ok(split)
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;
    use crate::engine::strategy::{BlueGreen, Canary, CanaryStep};

    fn check(ctx: RecoveryContext, expect: Expect) {
        let rendered = match plan_recovery(&ctx) {
            Ok(plan) => plan.to_string(),
            Err(err) => format!("error: {err}\n"),
        };
        expect.assert_eq(&rendered);
    }

    fn rolling() -> RecoveryContext {
        let mut ctx = RecoveryContext::new(
            Strategy::Rolling,
            Phase::Progressing,
            Fingerprint::new("v2.4.0"),
            "error rate 15%",
        );
        ctx.current = Some((RevisionId(3), Fingerprint::new("v2.4.0")));
        ctx.target = Some(Revision::new(
            RevisionId(2),
            Fingerprint::new("v2.3.1"),
            vec![],
        ));
        ctx
    }

    #[test]
    fn rolling_rolls_back_after_the_gate() {
        check(
            rolling(),
            expect![[r#"
            recovery plan (error rate 15%)
              1. record intent: roll back v2.4.0 to revision 2
              2. check the schema allows revision 2
              3. roll back to revision 2
              4. wait until the rollout is available
              5. validate v2.3.1 is rolled out
              6. record the outcome
        "#]],
        );
    }

    #[test]
    fn a_restarted_guard_does_not_roll_back_twice() {
        let mut ctx = rolling();
        ctx.current = Some((RevisionId(4), Fingerprint::new("v2.3.1")));
        check(
            ctx,
            expect![[r#"
            recovery plan (error rate 15%)
              1. record intent: roll back v2.4.0 to revision 2
              2. wait until the rollout is available
              3. validate v2.3.1 is rolled out
              4. record the outcome
        "#]],
        );
    }

    #[test]
    fn a_blocked_gate_only_freezes_and_no_target_is_an_error() {
        let mut ctx = rolling();
        ctx.gate = GateVerdict::Block("migration 43 is not backward compatible".into());
        check(
            ctx,
            expect![[r#"
            recovery plan (error rate 15%)
              blocked: migration gate: migration 43 is not backward compatible
              1. freeze the rollout
        "#]],
        );
        let mut ctx = rolling();
        ctx.target = None;
        check(
            ctx,
            expect![[r#"
            error: not found: no revision to roll back to from v2.4.0 (plan_recovery)
        "#]],
        );
    }

    #[test]
    fn canary_abort_moves_traffic_before_scaling_and_forces_zero() {
        let canary = Canary::new("stable", "canary", vec![CanaryStep::SetWeight(40)]);
        let mut ctx = RecoveryContext::new(
            Strategy::Canary(canary),
            Phase::CanaryStep(1),
            Fingerprint::new("v2"),
            "5xx",
        );
        ctx.stable = Some((4, false));
        check(
            ctx.clone(),
            expect![[r#"
            recovery plan (5xx)
              1. record intent: recover from v2
              2. scale stable to 4 and wait until available
              3. shift traffic to canary=0%, stable=100%
              4. verify traffic is canary=0%, stable=100%
              5. after 30s scale the candidate to 0
              6. record the outcome
        "#]],
        );
        // A three-way original split keeps the other backend's share; the canary's goes to stable.
        ctx.stable = Some((4, true));
        ctx.original_split =
            Some(TrafficSplit::new([("stable", 90), ("canary", 5), ("mirror", 5)]).unwrap());
        check(
            ctx,
            expect![[r#"
            recovery plan (5xx)
              1. record intent: recover from v2
              2. shift traffic to canary=0%, mirror=5%, stable=95%
              3. verify traffic is canary=0%, mirror=5%, stable=95%
              4. after 30s scale the candidate to 0
              5. record the outcome
        "#]],
        );
    }

    #[test]
    fn blue_green_after_promotion_readies_stable_before_switching_back() {
        let bg = Strategy::BlueGreen(BlueGreen::new("blue", "green"));
        let mut ctx = RecoveryContext::new(
            bg.clone(),
            Phase::PostPromotion,
            Fingerprint::new("v2"),
            "5xx",
        );
        ctx.stable = Some((6, false));
        check(
            ctx,
            expect![[r#"
            recovery plan (5xx)
              1. record intent: recover from v2
              2. scale stable to 6 and wait until available
              3. shift traffic to blue=100%, green=0%
              4. verify traffic is blue=100%, green=0%
              5. after 30s scale the candidate to 0
              6. record the outcome
        "#]],
        );
        let mut ctx = RecoveryContext::new(
            bg,
            Phase::PrePromotion,
            Fingerprint::new("v2"),
            "preview failing",
        );
        ctx.stable = Some((6, true));
        check(
            ctx,
            expect![[r#"
            recovery plan (preview failing)
              1. record intent: recover from v2
              2. shift traffic to blue=100%, green=0%
              3. verify traffic is blue=100%, green=0%
              4. after 30s scale the candidate to 0
              5. record the outcome
        "#]],
        );
    }
}
