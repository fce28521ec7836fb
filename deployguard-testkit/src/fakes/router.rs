//! [`FakeRouter`]: a traffic router with versions and conflicts, in memory.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deployguard_core::{
    Error, Result, RouteVersion, Routed, RouterCapabilities, TrafficRouter, TrafficSplit,
    Verification,
};

use crate::controls::{Controls, handle_controls, lock};

#[derive(Debug)]
struct State {
    name: String,
    capabilities: RouterCapabilities,
    split: TrafficSplit,
    /// Bumped by every write, ours or someone else's; a write is conditional on it.
    version: u64,
    /// What the data plane routes when it differs from the configuration (propagation lag).
    data_plane: Option<TrafficSplit>,
    /// Set when the data plane cannot be asked.
    unverifiable: Option<String>,
    applied: Vec<TrafficSplit>,
}

/// A [`TrafficRouter`] in memory with real semantics: every write is conditional on the version
/// the caller read, so a change made behind its back (see [`FakeRouterHandle::external_write`])
/// makes an `apply` with the old version fail with a conflict; splits the capabilities cannot
/// express are refused.
///
/// ```
/// use deployguard_core::{TrafficRouter, TrafficSplit};
/// use deployguard_testkit::FakeRouter;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> deployguard_core::Result<()> {
/// let (router, handle) = FakeRouter::weighted("vs/web", ["stable", "canary"]);
/// let read = router.current().await?;
/// let version = router.apply(&TrafficSplit::two_way("stable", "canary", 20)?, &read.version).await?;
/// handle.external_write(TrafficSplit::two_way("stable", "canary", 50)?);
/// let err = router
///     .apply(&TrafficSplit::two_way("stable", "canary", 40)?, &version)
///     .await
///     .unwrap_err();
/// assert_eq!(err.kind(), deployguard_core::ErrorKind::Conflict);
/// assert_eq!(handle.applied().len(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FakeRouter {
    state: Arc<Mutex<State>>,
    controls: Arc<Controls>,
}

impl FakeRouter {
    /// A router with `capabilities`, starting with all traffic on its first backend.
    ///
    /// Fails with `InvalidInput` when the capabilities name no backend.
    pub fn new(name: &str, capabilities: RouterCapabilities) -> Result<(Self, FakeRouterHandle)> {
        let names: Vec<&str> = capabilities.backends.iter().map(String::as_str).collect();
        let Some((first, rest)) = names.split_first() else {
            return Err(Error::invalid_input("router capabilities", "no backends"));
        };
        let split = TrafficSplit::all_to(first, rest)?;
        let state = Arc::new(Mutex::new(State {
            name: name.into(),
            capabilities,
            split,
            version: 1,
            data_plane: None,
            unverifiable: None,
            applied: Vec::new(),
        }));
        let controls = Arc::new(Controls::default());
        let router = Self {
            state: Arc::clone(&state),
            controls: Arc::clone(&controls),
        };
        Ok((router, FakeRouterHandle { state, controls }))
    }

    /// A weighted router over two backends, all traffic on the first.
    pub fn weighted(name: &str, backends: [&str; 2]) -> (Self, FakeRouterHandle) {
        Self::two_backends(name, RouterCapabilities::weighted(backends))
    }

    /// An all-or-nothing router over two backends (a Service selector), all traffic on the first.
    pub fn all_or_nothing(name: &str, backends: [&str; 2]) -> (Self, FakeRouterHandle) {
        Self::two_backends(name, RouterCapabilities::all_or_nothing(backends))
    }

    fn two_backends(name: &str, capabilities: RouterCapabilities) -> (Self, FakeRouterHandle) {
        match Self::new(name, capabilities) {
            Ok(pair) => pair,
            // Two named backends always make a valid split; an empty name is a test bug.
            Err(err) => panic!("FakeRouter over two backends: {err}"),
        }
    }
}

#[async_trait]
impl TrafficRouter for FakeRouter {
    fn target(&self) -> String {
        format!("fake router {}", lock(&self.state).name)
    }

    fn capabilities(&self) -> RouterCapabilities {
        lock(&self.state).capabilities.clone()
    }

    async fn current(&self) -> Result<Routed> {
        self.controls
            .call(crate::Op::Current, "", || {
                let state = lock(&self.state);
                let version = RouteVersion(state.version.to_string());
                Ok((Routed::new(state.split.clone(), version), false))
            })
            .await
    }

    async fn apply(&self, split: &TrafficSplit, expected: &RouteVersion) -> Result<RouteVersion> {
        self.controls
            .call(crate::Op::Apply, split.to_string(), || {
                let mut state = lock(&self.state);
                let object = format!("fake router {}", state.name);
                state
                    .capabilities
                    .check(split)
                    .map_err(|e| e.with_operation("apply").with_object(object.clone()))?;
                if expected.0 != state.version.to_string() {
                    return Err(Error::conflict(format!(
                        "the route changed since it was read (version {expected}, now {})",
                        state.version
                    ))
                    .with_operation("apply")
                    .with_object(object));
                }
                if state.split == *split {
                    return Ok((expected.clone(), false));
                }
                state.split = split.clone();
                state.version += 1;
                state.applied.push(split.clone());
                Ok((RouteVersion(state.version.to_string()), true))
            })
            .await
    }

    async fn verify(&self, split: &TrafficSplit) -> Result<Verification> {
        self.controls
            .call(crate::Op::Verify, split.to_string(), || {
                let state = lock(&self.state);
                if let Some(reason) = &state.unverifiable {
                    return Ok((Verification::Unknown(reason.clone()), false));
                }
                let routed = state.data_plane.as_ref().unwrap_or(&state.split);
                let verdict = if routed == split {
                    Verification::Matches
                } else {
                    Verification::Differs(routed.clone())
                };
                Ok((verdict, false))
            })
            .await
    }
}

/// Controls a [`FakeRouter`].
#[derive(Debug, Clone)]
pub struct FakeRouterHandle {
    state: Arc<Mutex<State>>,
    controls: Arc<Controls>,
}

impl FakeRouterHandle {
    handle_controls!("FakeRouter");

    /// The configured split now.
    pub fn split(&self) -> TrafficSplit {
        lock(&self.state).split.clone()
    }

    /// Every split the router applied, in order.
    pub fn applied(&self) -> Vec<TrafficSplit> {
        lock(&self.state).applied.clone()
    }

    /// Someone else changes the route: the router's next write conflicts until it reads again.
    pub fn external_write(&self, split: TrafficSplit) {
        let mut state = lock(&self.state);
        state.split = split;
        state.version += 1;
    }

    /// The data plane routes `split` whatever is configured (`None`: it follows the
    /// configuration).
    pub fn set_data_plane(&self, split: Option<TrafficSplit>) {
        lock(&self.state).data_plane = split;
    }

    /// `verify` answers `Unknown(reason)` (`None`: it can tell again).
    pub fn set_unverifiable(&self, reason: Option<&str>) {
        lock(&self.state).unverifiable = reason.map(Into::into);
    }
}
