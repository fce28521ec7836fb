//! Decisions: pure functions of phase, observations and verdicts.

use std::fmt;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::strategy::{CanaryStep, Strategy};
use crate::analysis::{RolloutStatus, Verdict};

/// Where a guarded rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", content = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Rolling or recreate: the platform replaces pods.
    Progressing,
    /// Canary: at step `index` (past the last step: all steps done).
    CanaryStep(usize),
    /// Blue-green: the preview runs, production traffic is on the active side.
    PrePromotion,
    /// Blue-green: production traffic has been switched to the preview. Promotion is under way.
    PostPromotion,
    /// Rolling or recreate: the rollout has completed, and the guard keeps judging the new
    /// version for the bake period before it promotes (a failure now still rolls back: the
    /// old ReplicaSet is still there).
    Baking,
}

impl Phase {
    /// The phase a strategy starts in.
    pub fn initial(strategy: &Strategy) -> Self {
        match strategy {
            Strategy::Canary(_) => Self::CanaryStep(0),
            Strategy::BlueGreen(_) => Self::PrePromotion,
            _ => Self::Progressing,
        }
    }
}

/// What the decision reads.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionInput<'a> {
    /// The strategy.
    pub strategy: &'a Strategy,
    /// The phase.
    pub phase: Phase,
    /// The candidate's rollout status (the kubectl ladder).
    pub rollout: &'a RolloutStatus,
    /// The combined verdict of the checks that apply now.
    pub verdict: &'a Verdict,
    /// Whether every check that applies now is satisfied (finished and passed, or, for checks
    /// that run until the rollout ends, passed at least once).
    pub checks_satisfied: bool,
    /// Time spent in this phase.
    pub phase_elapsed: Duration,
    /// Whether a human asked to promote.
    pub promote_requested: bool,
    /// How long a completed rolling or recreate rollout is judged before it is promoted
    /// (zero: promoted once complete and its checks are satisfied).
    pub bake: Duration,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", content = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Decision {
    /// Keep observing.
    Wait,
    /// Go to the next phase or step.
    Advance,
    /// The rollout succeeded.
    Promote,
    /// The rollout fails: recover.
    Abort(String),
    /// Stop and wait for a human.
    Pause(String),
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Progressing => f.write_str("progressing"),
            Self::CanaryStep(index) => write!(f, "canary step {}", index + 1),
            Self::PrePromotion => f.write_str("before promotion"),
            Self::PostPromotion => f.write_str("after promotion"),
            Self::Baking => f.write_str("baking"),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Wait => f.write_str("keep observing"),
            Self::Advance => f.write_str("advance"),
            Self::Promote => f.write_str("promote"),
            Self::Abort(why) => write!(f, "abort: {why}"),
            Self::Pause(why) => write!(f, "pause: {why}"),
        }
    }
}

/// Decides what to do next. Failure always wins: a failing check aborts whatever the phase;
/// an inconclusive one pauses.
pub fn decide(input: &DecisionInput<'_>) -> Decision {
    if let RolloutStatus::Failed(why) = input.rollout {
        return Decision::Abort(why.clone());
    }
    match input.verdict {
        Verdict::Failed(why) => return Decision::Abort(why.clone()),
        Verdict::Inconclusive(why) => return Decision::Pause(why.clone()),
        Verdict::SharedCause(why) => {
            return Decision::Pause(format!("not the new version: {why}"));
        }
        _ => {}
    }
    let rolled_out = matches!(input.rollout, RolloutStatus::Done(_));
    match (input.strategy, input.phase) {
        (Strategy::Canary(canary), Phase::CanaryStep(index)) => match canary.steps.get(index) {
            None if input.checks_satisfied || input.verdict == &Verdict::Running => {
                Decision::Promote
            }
            None => Decision::Wait,
            // A target is scaled up and ready before traffic is sent to it.
            Some(CanaryStep::SetWeight(weight)) if *weight > 0 && !rolled_out => Decision::Wait,
            Some(CanaryStep::SetWeight(_)) => Decision::Advance,
            Some(CanaryStep::Pause(Some(duration))) if input.phase_elapsed >= *duration => {
                Decision::Advance
            }
            Some(CanaryStep::Pause(Some(_))) => Decision::Wait,
            Some(CanaryStep::Pause(None)) if input.promote_requested => Decision::Advance,
            Some(CanaryStep::Pause(None)) => {
                Decision::Pause(format!("canary paused at step {index} until promoted"))
            }
            Some(CanaryStep::Analysis) if input.checks_satisfied => Decision::Advance,
            Some(CanaryStep::Analysis) => Decision::Wait,
        },
        (Strategy::BlueGreen(bg), Phase::PrePromotion) => {
            if !rolled_out || !input.checks_satisfied {
                Decision::Wait
            } else if bg.auto_promote || input.promote_requested {
                Decision::Advance
            } else {
                Decision::Pause(format!(
                    "preview {} is ready; awaiting promotion",
                    bg.preview
                ))
            }
        }
        (Strategy::BlueGreen(_), Phase::PostPromotion) if input.checks_satisfied => {
            Decision::Promote
        }
        // Complete: the bake begins, whatever the checks have concluded so far (the evidence
        // may still be coming in; the bake is when it does).
        (_, Phase::Progressing) if rolled_out && !input.bake.is_zero() => Decision::Advance,
        (_, Phase::Progressing) if rolled_out && input.checks_satisfied => Decision::Promote,
        // The bake's end promotes once the checks are satisfied: nothing failed in all that
        // time and the latest look passed (a probe that cannot be read is waited on until its
        // error limit pauses the guard).
        (_, Phase::Baking) if input.phase_elapsed >= input.bake && input.checks_satisfied => {
            Decision::Promote
        }
        _ => Decision::Wait,
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use expect_test::{Expect, expect};

    use super::*;
    use crate::engine::strategy::{BlueGreen, Canary};

    const DONE: &str = "done";
    const WAITING: &str = "waiting";
    const DEADLINE: &str = "deadline";

    /// One row per case: phase, rollout, verdict, checks satisfied, elapsed seconds, promote.
    fn check(strategy: Strategy, rows: &[(Phase, &str, Verdict, bool, u64, bool)], expect: Expect) {
        let mut out = String::new();
        for (phase, rollout, verdict, satisfied, elapsed, promote) in rows {
            let rollout = match *rollout {
                DONE => RolloutStatus::Done("rolled out".into()),
                DEADLINE => RolloutStatus::Failed("exceeded its progress deadline".into()),
                _ => RolloutStatus::Waiting("waiting".into()),
            };
            let input = DecisionInput {
                strategy: &strategy,
                phase: *phase,
                rollout: &rollout,
                verdict,
                checks_satisfied: *satisfied,
                phase_elapsed: Duration::from_secs(*elapsed),
                promote_requested: *promote,
                bake: Duration::ZERO,
            };
            writeln!(
                out,
                "{phase:?} {rollout:?} {verdict:?} -> {:?}",
                decide(&input)
            )
            .unwrap();
        }
        expect.assert_eq(&out);
    }

    use Verdict::{Failed, Inconclusive, Running, Successful};

    #[test]
    fn rolling() {
        let p = Phase::Progressing;
        check(
            Strategy::Rolling,
            &[
                (p, WAITING, Running, false, 0, false),
                (p, DONE, Running, false, 0, false),
                (p, DONE, Successful, true, 0, false),
                (p, WAITING, Failed("error rate".into()), false, 0, false),
                (p, DEADLINE, Running, false, 0, false),
                (p, DONE, Inconclusive("no data".into()), false, 0, false),
            ],
            expect![[r#"
                Progressing Waiting("waiting") Running -> Wait
                Progressing Done("rolled out") Running -> Wait
                Progressing Done("rolled out") Successful -> Promote
                Progressing Waiting("waiting") Failed("error rate") -> Abort("error rate")
                Progressing Failed("exceeded its progress deadline") Running -> Abort("exceeded its progress deadline")
                Progressing Done("rolled out") Inconclusive("no data") -> Pause("no data")
            "#]],
        );
    }

    #[test]
    fn a_completed_rollout_bakes_before_it_is_promoted() {
        let decide_at = |phase, rollout: RolloutStatus, verdict: Verdict, elapsed| {
            decide(&DecisionInput {
                strategy: &Strategy::Rolling,
                phase,
                rollout: &rollout,
                verdict: &verdict,
                // Satisfied, except at 301 s (a probe error in the latest look).
                checks_satisfied: elapsed != 301,
                phase_elapsed: Duration::from_secs(elapsed),
                promote_requested: false,
                bake: Duration::from_secs(300),
            })
        };
        let done = || RolloutStatus::Done("rolled out".into());
        // Complete, evidence still short: the bake begins.
        assert_eq!(
            decide_at(Phase::Progressing, done(), Running, 40),
            Decision::Advance
        );
        assert_eq!(
            decide_at(Phase::Baking, done(), Running, 299),
            Decision::Wait
        );
        assert_eq!(
            decide_at(Phase::Baking, done(), Failed("leak".into()), 200),
            Decision::Abort("leak".into())
        );
        assert_eq!(
            decide_at(Phase::Baking, done(), Running, 300),
            Decision::Promote
        );
        // The bake is over but the latest look did not pass: not yet.
        assert_eq!(
            decide_at(Phase::Baking, done(), Running, 301),
            Decision::Wait
        );
    }

    #[test]
    fn canary_steps() {
        let steps = vec![
            CanaryStep::SetWeight(20),
            CanaryStep::Pause(Some(Duration::from_secs(60))),
            CanaryStep::Analysis,
            CanaryStep::Pause(None),
        ];
        check(
            Strategy::Canary(Canary::new("stable", "canary", steps)),
            &[
                (Phase::CanaryStep(0), WAITING, Running, false, 0, false),
                (Phase::CanaryStep(0), DONE, Running, false, 0, false),
                (Phase::CanaryStep(1), DONE, Running, false, 59, false),
                (Phase::CanaryStep(1), DONE, Running, false, 60, false),
                (Phase::CanaryStep(2), DONE, Running, false, 0, false),
                (Phase::CanaryStep(2), DONE, Successful, true, 0, false),
                (Phase::CanaryStep(3), DONE, Successful, true, 0, false),
                (Phase::CanaryStep(3), DONE, Successful, true, 0, true),
                (Phase::CanaryStep(4), DONE, Successful, true, 0, false),
                (
                    Phase::CanaryStep(2),
                    DONE,
                    Failed("latency".into()),
                    false,
                    0,
                    false,
                ),
            ],
            expect![[r#"
                CanaryStep(0) Waiting("waiting") Running -> Wait
                CanaryStep(0) Done("rolled out") Running -> Advance
                CanaryStep(1) Done("rolled out") Running -> Wait
                CanaryStep(1) Done("rolled out") Running -> Advance
                CanaryStep(2) Done("rolled out") Running -> Wait
                CanaryStep(2) Done("rolled out") Successful -> Advance
                CanaryStep(3) Done("rolled out") Successful -> Pause("canary paused at step 3 until promoted")
                CanaryStep(3) Done("rolled out") Successful -> Advance
                CanaryStep(4) Done("rolled out") Successful -> Promote
                CanaryStep(2) Done("rolled out") Failed("latency") -> Abort("latency")
            "#]],
        );
    }

    #[test]
    fn blue_green_auto_and_manual() {
        let rows = [
            (Phase::PrePromotion, WAITING, Running, false, 0, false),
            (Phase::PrePromotion, DONE, Successful, true, 0, false),
            (Phase::PrePromotion, DONE, Successful, true, 0, true),
            (Phase::PostPromotion, DONE, Running, false, 0, false),
            (Phase::PostPromotion, DONE, Successful, true, 0, false),
            (
                Phase::PostPromotion,
                DONE,
                Failed("5xx".into()),
                false,
                0,
                false,
            ),
        ];
        check(
            Strategy::BlueGreen(BlueGreen::new("blue", "green")),
            &rows,
            expect![[r#"
                PrePromotion Waiting("waiting") Running -> Wait
                PrePromotion Done("rolled out") Successful -> Advance
                PrePromotion Done("rolled out") Successful -> Advance
                PostPromotion Done("rolled out") Running -> Wait
                PostPromotion Done("rolled out") Successful -> Promote
                PostPromotion Done("rolled out") Failed("5xx") -> Abort("5xx")
            "#]],
        );
        check(
            Strategy::BlueGreen(BlueGreen::new("blue", "green").with_manual_promotion()),
            &rows[1..3],
            expect![[r#"
                PrePromotion Done("rolled out") Successful -> Pause("preview green is ready; awaiting promotion")
                PrePromotion Done("rolled out") Successful -> Advance
            "#]],
        );
    }
}
