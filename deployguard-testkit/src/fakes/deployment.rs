//! [`FakeDeployment`]: a deployment with Kubernetes revision semantics, in memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deployguard_core::{
    BackendCapabilities, Condition, DeploymentBackend, Error, ErrorKind, Fingerprint, Patience,
    PodState, Result, Revision, RevisionId, RollbackOptions, RollbackOutcome, RolloutSnapshot,
    SchemaVersion,
};
use tokio::time::Instant;

use crate::controls::{Controls, handle_controls, lock};

/// How the pods of one revision behave.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behaviour {
    /// Pods become ready `startup` after the rollout to this revision began.
    Healthy {
        /// Time from rollout start to ready.
        startup: Duration,
    },
    /// Pods never become ready; each waits with `reason` (`None`: running but failing readiness).
    NeverReady {
        /// The container waiting reason (`CrashLoopBackOff`, `ImagePullBackOff`, …).
        reason: Option<String>,
        /// The message that goes with it.
        message: String,
    },
}

impl Behaviour {
    /// Ready at once.
    pub fn healthy() -> Self {
        Self::Healthy {
            startup: Duration::ZERO,
        }
    }

    /// Ready `startup` after the rollout began.
    pub fn healthy_after(startup: Duration) -> Self {
        Self::Healthy { startup }
    }

    /// Running but never passing readiness.
    pub fn failing_readiness() -> Self {
        Self::NeverReady {
            reason: None,
            message: "Readiness probe failed: HTTP probe failed with statuscode: 503".into(),
        }
    }

    /// Waiting forever with `reason` and `message`.
    pub fn waiting(reason: &str, message: &str) -> Self {
        Self::NeverReady {
            reason: Some(reason.into()),
            message: message.into(),
        }
    }
}

#[derive(Debug)]
struct State {
    name: String,
    /// Ordered by current revision number.
    revisions: Vec<(Revision, Behaviour)>,
    current: Fingerprint,
    desired: u32,
    paused: bool,
    markers: BTreeMap<String, String>,
    rollout_started: Instant,
    progress_deadline: Duration,
}

impl State {
    fn position(&self, id: RevisionId) -> Option<usize> {
        self.revisions.iter().position(|(r, _)| r.answers_to(id))
    }

    fn current_index(&self) -> Option<usize> {
        self.revisions
            .iter()
            .position(|(r, _)| r.fingerprint == self.current)
    }

    fn max_id(&self) -> u64 {
        self.revisions
            .iter()
            .map(|(r, _)| r.id.0)
            .max()
            .unwrap_or(0)
    }

    /// Makes `index` current the way the Deployment controller does: the revision gets number
    /// max+1 and remembers its old number in its history.
    fn make_current(&mut self, index: usize) {
        let max_old = self
            .revisions
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .map(|(_, (r, _))| r.id.0)
            .max()
            .unwrap_or(0);
        let (revision, _) = &mut self.revisions[index];
        if revision.id.0 <= max_old {
            revision.previous_ids.push(revision.id);
            revision.id = RevisionId(max_old + 1);
        }
        self.current = revision.fingerprint.clone();
        self.revisions.sort_by_key(|(r, _)| r.id);
        self.rollout_started = Instant::now();
    }

    /// The snapshot a rolling update with 25% surge and 25% unavailability shows now.
    fn snapshot(&self) -> RolloutSnapshot {
        let desired = self.desired;
        let mut snapshot = RolloutSnapshot::new(desired);
        snapshot.paused = self.paused;
        let Some(index) = self.current_index() else {
            return snapshot;
        };
        let (current, behaviour) = &self.revisions[index];
        snapshot.current_revision = Some(current.id);
        snapshot.current_fingerprint = Some(current.fingerprint.clone());
        let elapsed = self.rollout_started.elapsed();
        let ready_now = matches!(behaviour, Behaviour::Healthy { startup } if elapsed >= *startup);
        let previous = self.revisions[..index].last().map(|(r, _)| r.id);

        let (new_pods, old_pods) = if ready_now || previous.is_none() {
            (desired, 0)
        } else {
            let surge = desired.div_ceil(4);
            let mut unavailable = desired / 4;
            if surge == 0 && unavailable == 0 {
                unavailable = 1;
            }
            (
                (surge + unavailable).min(desired),
                desired.saturating_sub(unavailable),
            )
        };
        for i in 0..new_pods {
            let mut pod = PodState::running(
                format!("{}-{}-{i}", self.name, current.fingerprint),
                current.id,
                ready_now,
            );
            if let Behaviour::NeverReady { reason, message } = behaviour {
                if let Some(reason) = reason {
                    pod = pod.with_waiting(reason.clone(), message.clone());
                    pod.phase = "Pending".into();
                } else {
                    // Running: its app answers the readiness probe, with an error.
                    pod.probe_failure = Some(message.clone());
                }
            }
            pod.age = Some(elapsed);
            snapshot.pods.push(pod);
        }
        if let Some(previous) = previous {
            for i in 0..old_pods {
                snapshot.pods.push(PodState::running(
                    format!("{}-old-{previous}-{i}", self.name),
                    previous,
                    true,
                ));
            }
        }
        snapshot.total = new_pods + old_pods;
        snapshot.updated = new_pods;
        snapshot.ready = snapshot.pods.iter().filter(|p| p.ready).count() as u32;
        snapshot.available = snapshot.ready;
        snapshot.patience = Patience::new(Duration::ZERO, Some(self.progress_deadline));
        if !snapshot.is_complete() && elapsed > self.progress_deadline {
            snapshot.progress_deadline_exceeded = true;
            snapshot.conditions.push(Condition::new(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!(
                    "ReplicaSet \"{}-{}\" has timed out progressing.",
                    self.name, current.fingerprint
                ),
            ));
        }
        snapshot
    }
}

/// A [`DeploymentBackend`] in memory with the revision semantics of a Kubernetes Deployment:
/// rolling back renumbers the restored revision to max+1 and remembers its old number, so
/// `current - 1` arithmetic breaks here exactly as it breaks on a cluster.
///
/// ```
/// use deployguard_core::{DeploymentBackend, RevisionId, RollbackOptions};
/// use deployguard_testkit::{Behaviour, FakeDeployment};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> deployguard_core::Result<()> {
/// let (backend, handle) = FakeDeployment::builder("web")
///     .replicas(6)
///     .revision(["app:v1"], Behaviour::healthy())
///     .revision(["app:v2"], Behaviour::healthy())
///     .revision(["app:v3"], Behaviour::failing_readiness())
///     .build();
/// backend.rollback_to(RevisionId(2), RollbackOptions::default()).await?;
/// let ids: Vec<u64> = backend.history().await?.iter().map(|r| r.id.0).collect();
/// assert_eq!(ids, [1, 3, 4]); // revision 2 came back as revision 4
/// assert_eq!(handle.writes().len(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FakeDeployment {
    state: Arc<Mutex<State>>,
    controls: Arc<Controls>,
}

/// Builds a [`FakeDeployment`].
#[derive(Debug)]
pub struct FakeDeploymentBuilder {
    name: String,
    replicas: u32,
    revisions: Vec<(Vec<String>, Behaviour, bool, Option<SchemaVersion>)>,
    progress_deadline: Duration,
}

impl FakeDeploymentBuilder {
    /// Desired replicas (default 3).
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// Adds the next revision; the last one added is current and its rollout starts at build.
    pub fn revision<S: Into<String>>(
        mut self,
        images: impl IntoIterator<Item = S>,
        behaviour: Behaviour,
    ) -> Self {
        self.revisions.push((
            images.into_iter().map(Into::into).collect(),
            behaviour,
            false,
            None,
        ));
        self
    }

    /// Adds the next revision, already marked verified.
    pub fn verified_revision<S: Into<String>>(
        self,
        images: impl IntoIterator<Item = S>,
        behaviour: Behaviour,
    ) -> Self {
        let mut this = self.revision(images, behaviour);
        if let Some(last) = this.revisions.last_mut() {
            last.2 = true;
        }
        this
    }

    /// Declares the schema the revision added last needs.
    pub fn requires_schema(mut self, version: SchemaVersion) -> Self {
        if let Some(last) = self.revisions.last_mut() {
            last.3 = Some(version);
        }
        self
    }

    /// How long a rollout may make no progress before it is reported stalled (default 600 s).
    pub fn progress_deadline(mut self, deadline: Duration) -> Self {
        self.progress_deadline = deadline;
        self
    }

    /// The fake and its control handle.
    pub fn build(self) -> (FakeDeployment, FakeDeploymentHandle) {
        let revisions: Vec<(Revision, Behaviour)> = self
            .revisions
            .into_iter()
            .enumerate()
            .map(|(i, (images, behaviour, verified, schema))| {
                let fingerprint = fingerprint_of(&images);
                let revision = Revision::new(RevisionId(i as u64 + 1), fingerprint, images)
                    .with_verified(verified)
                    .with_requires_schema(schema);
                (revision, behaviour)
            })
            .collect();
        let current = revisions
            .last()
            .map(|(r, _)| r.fingerprint.clone())
            .unwrap_or_else(|| Fingerprint::new(""));
        let state = Arc::new(Mutex::new(State {
            name: self.name,
            revisions,
            current,
            desired: self.replicas,
            paused: false,
            markers: BTreeMap::new(),
            rollout_started: Instant::now(),
            progress_deadline: self.progress_deadline,
        }));
        let controls = Arc::new(Controls::default());
        let fake = FakeDeployment {
            state: Arc::clone(&state),
            controls: Arc::clone(&controls),
        };
        (fake, FakeDeploymentHandle { state, controls })
    }
}

/// The fingerprint the fake gives a list of images (as a pod-template hash would).
pub fn fingerprint_of(images: &[String]) -> Fingerprint {
    Fingerprint::new(images.join(","))
}

impl FakeDeployment {
    /// Starts building a fake deployment called `name`.
    pub fn builder(name: &str) -> FakeDeploymentBuilder {
        FakeDeploymentBuilder {
            name: name.into(),
            replicas: 3,
            revisions: Vec::new(),
            progress_deadline: Duration::from_secs(600),
        }
    }
}

#[async_trait]
impl DeploymentBackend for FakeDeployment {
    fn target(&self) -> String {
        format!("fake deployment {}", lock(&self.state).name)
    }

    fn name(&self) -> String {
        lock(&self.state).name.clone()
    }

    fn capabilities(&self) -> BackendCapabilities {
        BackendCapabilities::full()
    }

    async fn observe(&self) -> Result<RolloutSnapshot> {
        self.controls
            .call(crate::Op::Observe, "", || {
                Ok((lock(&self.state).snapshot(), false))
            })
            .await
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        self.controls
            .call(crate::Op::History, "", || {
                let state = lock(&self.state);
                Ok((
                    state.revisions.iter().map(|(r, _)| r.clone()).collect(),
                    false,
                ))
            })
            .await
    }

    async fn rollback_to(
        &self,
        revision: RevisionId,
        options: RollbackOptions,
    ) -> Result<RollbackOutcome> {
        let detail = format!("to {revision}");
        self.controls
            .call(crate::Op::RollbackTo, detail, || {
                let mut state = lock(&self.state);
                let target = self.target_name(&state);
                let Some(index) = state.position(revision) else {
                    return Err(Error::not_found(format!("revision {revision} is not in the history"))
                        .with_operation("rollback_to")
                        .with_object(target));
                };
                let current_id = state.current_index().map(|i| state.revisions[i].0.id);
                // Already there: nothing to write, whatever ran when the caller planned.
                if state.revisions[index].0.fingerprint == state.current {
                    return Ok((RollbackOutcome::AlreadyCurrent { revision }, false));
                }
                if let Some(expected) = options.expected_current
                    && current_id != Some(expected)
                {
                        return Err(Error::conflict(format!(
                            "expected current revision {expected}, found {}",
                            current_id.map_or("none".into(), |id| id.to_string())
                        ))
                        .with_operation("rollback_to")
                        .with_object(target));
                }
                if state.paused {
                    if !options.resume_if_paused {
                        return Err(Error::new(
                            ErrorKind::Refused,
                            "the deployment is paused; resume it first or roll back with resume_if_paused",
                        )
                        .with_operation("rollback_to")
                        .with_object(target));
                    }
                    state.paused = false;
                }
                state.make_current(index);
                Ok((RollbackOutcome::RolledBack { from: current_id, to: revision }, true))
            })
            .await
    }

    async fn set_paused(&self, paused: bool) -> Result<()> {
        self.controls
            .call(crate::Op::SetPaused, format!("{paused}"), || {
                let mut state = lock(&self.state);
                let changed = state.paused != paused;
                state.paused = paused;
                Ok(((), changed))
            })
            .await
    }

    async fn scale(&self, replicas: u32) -> Result<()> {
        self.controls
            .call(crate::Op::Scale, format!("{replicas}"), || {
                let mut state = lock(&self.state);
                let changed = state.desired != replicas;
                state.desired = replicas;
                Ok(((), changed))
            })
            .await
    }

    async fn mark_verified(&self, revision: RevisionId) -> Result<()> {
        self.controls
            .call(crate::Op::MarkVerified, format!("{revision}"), || {
                let mut state = lock(&self.state);
                let target = self.target_name(&state);
                let index = state.position(revision).ok_or_else(|| {
                    Error::not_found(format!("revision {revision} is not in the history"))
                        .with_operation("mark_verified")
                        .with_object(target)
                })?;
                let entry = &mut state.revisions[index].0;
                let changed = !entry.verified;
                entry.verified = true;
                Ok(((), changed))
            })
            .await
    }

    async fn markers(&self) -> Result<BTreeMap<String, String>> {
        self.controls
            .call(crate::Op::Markers, "", || {
                Ok((lock(&self.state).markers.clone(), false))
            })
            .await
    }

    async fn set_marker(&self, key: &str, value: Option<String>) -> Result<()> {
        let detail = format!("{key}={value:?}");
        self.controls
            .call(crate::Op::SetMarker, detail, || {
                deployguard_core::check_marker_key(key)?;
                let mut state = lock(&self.state);
                let changed = match value {
                    Some(value) => {
                        state.markers.insert(key.to_owned(), value.clone()) != Some(value)
                    }
                    None => state.markers.remove(key).is_some(),
                };
                Ok(((), changed))
            })
            .await
    }
}

impl FakeDeployment {
    fn target_name(&self, state: &State) -> String {
        format!("fake deployment {}", state.name)
    }
}

/// Controls a [`FakeDeployment`]: start rollouts, change behaviours, inject faults, read the
/// record.
#[derive(Debug, Clone)]
pub struct FakeDeploymentHandle {
    state: Arc<Mutex<State>>,
    controls: Arc<Controls>,
}

impl FakeDeploymentHandle {
    handle_controls!("FakeDeployment");

    /// Starts a rollout to `images`, as `kubectl set image` would. Images that an earlier
    /// revision ran bring that revision back under a new number.
    pub fn deploy<S: Into<String>>(
        &self,
        images: impl IntoIterator<Item = S>,
        behaviour: Behaviour,
    ) -> RevisionId {
        let images: Vec<String> = images.into_iter().map(Into::into).collect();
        let fingerprint = fingerprint_of(&images);
        let mut state = lock(&self.state);
        let index = match state
            .revisions
            .iter()
            .position(|(r, _)| r.fingerprint == fingerprint)
        {
            Some(index) => {
                state.revisions[index].1 = behaviour;
                index
            }
            None => {
                let id = RevisionId(state.max_id() + 1);
                state
                    .revisions
                    .push((Revision::new(id, fingerprint, images), behaviour));
                state.revisions.len() - 1
            }
        };
        if state.revisions[index].0.fingerprint == state.current {
            return state.revisions[index].0.id;
        }
        state.make_current(index);
        let current = state.current_index().map(|i| state.revisions[i].0.id);
        current.unwrap_or(RevisionId(0))
    }

    /// Changes how the pods of revision `id` behave from now on.
    pub fn set_behaviour(&self, id: RevisionId, behaviour: Behaviour) {
        let mut state = lock(&self.state);
        if let Some(index) = state.position(id) {
            state.revisions[index].1 = behaviour;
        }
    }

    /// The images the deployment runs now.
    pub fn current_images(&self) -> Vec<String> {
        let state = lock(&self.state);
        state
            .current_index()
            .map(|i| state.revisions[i].0.images.clone())
            .unwrap_or_default()
    }

    /// Whether the deployment is paused.
    pub fn is_paused(&self) -> bool {
        lock(&self.state).paused
    }

    /// The desired replicas.
    pub fn replicas(&self) -> u32 {
        lock(&self.state).desired
    }

    /// Sets a marker behind the guard's back (a human, or a previous guard).
    pub fn set_marker(&self, key: &str, value: &str) {
        lock(&self.state).markers.insert(key.into(), value.into());
    }
}
