//! Strategies: how a rollout moves from the old version to the new one.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::analysis::AnalysisCheck;
use crate::error::{Error, Result};

/// How the guarded rollout proceeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Strategy {
    /// The platform replaces pods gradually (Kubernetes RollingUpdate); recovery rolls back.
    Rolling,
    /// The platform stops every old pod before starting new ones; recovery rolls back.
    Recreate,
    /// Two full environments behind an all-or-nothing router.
    BlueGreen(BlueGreen),
    /// A candidate gets a growing share of traffic, step by step.
    Canary(Canary),
}

/// What kind of strategy, without its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StrategyKind {
    /// [`Strategy::Rolling`]
    Rolling,
    /// [`Strategy::Recreate`]
    Recreate,
    /// [`Strategy::BlueGreen`]
    BlueGreen,
    /// [`Strategy::Canary`]
    Canary,
}

impl Strategy {
    /// The kind of this strategy.
    pub fn kind(&self) -> StrategyKind {
        match self {
            Self::Rolling => StrategyKind::Rolling,
            Self::Recreate => StrategyKind::Recreate,
            Self::BlueGreen(_) => StrategyKind::BlueGreen,
            Self::Canary(_) => StrategyKind::Canary,
        }
    }

    /// Whether recovery rolls the guarded deployment back (rather than moving traffic).
    pub fn recovers_by_rollback(&self) -> bool {
        matches!(self, Self::Rolling | Self::Recreate)
    }

    pub(crate) fn validate(&self, background_checks: &[AnalysisCheck]) -> Result<()> {
        match self {
            Self::Rolling | Self::Recreate => Ok(()),
            Self::BlueGreen(bg) => {
                names("blue_green", &bg.active, &bg.preview)?;
                for check in bg.pre_promotion.iter().chain(&bg.post_promotion) {
                    must_finish("blue_green", check)?;
                }
                Ok(())
            }
            Self::Canary(canary) => {
                names("canary", &canary.stable, &canary.canary)?;
                if canary.steps.is_empty() {
                    return Err(Error::invalid_input("canary.steps", "is empty"));
                }
                for (index, step) in canary.steps.iter().enumerate() {
                    if let CanaryStep::SetWeight(weight) = step
                        && *weight > 100
                    {
                        return Err(Error::invalid_input(
                            &format!("canary.steps[{index}]"),
                            format!("weight {weight} is over 100"),
                        ));
                    }
                    if matches!(step, CanaryStep::Analysis) {
                        for check in background_checks {
                            must_finish("canary analysis step", check)?;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

fn names(field: &str, stable: &str, candidate: &str) -> Result<()> {
    if stable.trim().is_empty() || candidate.trim().is_empty() {
        return Err(Error::invalid_input(
            &format!("{field} backend names"),
            "a name is empty",
        ));
    }
    if stable == candidate {
        return Err(Error::invalid_input(
            &format!("{field} backend names"),
            format!("stable and candidate are both {stable:?}"),
        ));
    }
    Ok(())
}

fn must_finish(field: &str, check: &AnalysisCheck) -> Result<()> {
    if check.count.is_none() && check.consecutive_success_limit == 0 {
        return Err(Error::invalid_input(
            &format!("{field}: check {}", check.name),
            "needs a count or a consecutive-success limit, or it never finishes",
        ));
    }
    Ok(())
}

/// Blue-green settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BlueGreen {
    /// The router backend that serves production now ("blue").
    pub active: String,
    /// The router backend of the new version ("green").
    pub preview: String,
    /// Switch as soon as pre-promotion analysis passes; otherwise wait for a human.
    pub auto_promote: bool,
    /// Checks on the preview before the switch.
    pub pre_promotion: Vec<AnalysisCheck>,
    /// Checks after the switch; failing them switches back.
    pub post_promotion: Vec<AnalysisCheck>,
    /// How long the old side keeps running after promotion (default 30 s).
    pub scale_down_delay: Duration,
}

impl BlueGreen {
    /// Blue-green between `active` and `preview`, auto-promoting, 30 s scale-down delay.
    pub fn new(active: &str, preview: &str) -> Self {
        Self {
            active: active.into(),
            preview: preview.into(),
            auto_promote: true,
            pre_promotion: Vec::new(),
            post_promotion: Vec::new(),
            scale_down_delay: Duration::from_secs(30),
        }
    }

    /// Waits for [`Guard::promote`](crate::engine::Guard::promote) instead of auto-promoting.
    pub fn with_manual_promotion(mut self) -> Self {
        self.auto_promote = false;
        self
    }

    /// Adds a pre-promotion check.
    pub fn with_pre_promotion(mut self, check: AnalysisCheck) -> Self {
        self.pre_promotion.push(check);
        self
    }

    /// Adds a post-promotion check.
    pub fn with_post_promotion(mut self, check: AnalysisCheck) -> Self {
        self.post_promotion.push(check);
        self
    }

    /// Sets the scale-down delay.
    pub fn with_scale_down_delay(mut self, delay: Duration) -> Self {
        self.scale_down_delay = delay;
        self
    }
}

/// Canary settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Canary {
    /// The router backend of the stable version.
    pub stable: String,
    /// The router backend of the candidate.
    pub canary: String,
    /// The steps, in order.
    pub steps: Vec<CanaryStep>,
    /// How long the candidate keeps running after an abort (default 30 s).
    pub abort_scale_down_delay: Duration,
    /// How long the old side keeps running after a promotion moved all traffic off it
    /// (default 30 s).
    pub scale_down_delay: Duration,
}

impl Canary {
    /// A canary between `stable` and `canary` with `steps`.
    pub fn new(stable: &str, canary: &str, steps: Vec<CanaryStep>) -> Self {
        Self {
            stable: stable.into(),
            canary: canary.into(),
            steps,
            abort_scale_down_delay: Duration::from_secs(30),
            scale_down_delay: Duration::from_secs(30),
        }
    }
}

/// One canary step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CanaryStep {
    /// Send this percentage to the candidate.
    SetWeight(u8),
    /// Wait this long (`None`: until promoted), analysing all the while.
    Pause(Option<Duration>),
    /// Run the checks to completion before going on.
    Analysis,
}
