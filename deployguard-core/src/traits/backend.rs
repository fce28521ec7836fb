//! [`DeploymentBackend`]: one deployment on one platform.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::model::{Revision, RevisionId, RolloutSnapshot};

/// One deployment on one platform: observe it, read its history, roll it back.
///
/// An instance is bound to one deployment when it is built (like a store bound to a bucket), so
/// no method names the target. Every write is conditional on what the backend last read: a
/// concurrent change by a human or another guard surfaces as [`ErrorKind::Conflict`], never as
/// a silent overwrite.
///
/// Implementations must pass the conformance suite in `deployguard-testkit`.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait DeploymentBackend: fmt::Debug + Send + Sync + 'static {
    /// What this instance is bound to, for messages (`"deployment default/web"`).
    fn target(&self) -> String;

    /// The deployment's own name as its platform spells it (`"web"`), without kind or
    /// namespace: what the kubectl rollout-status ladder prints.
    fn name(&self) -> String;

    /// What this backend can do.
    fn capabilities(&self) -> BackendCapabilities;

    /// The rollout as it is now.
    async fn observe(&self) -> Result<RolloutSnapshot>;

    /// Every revision the platform keeps, oldest first by current number.
    ///
    /// A backend may answer from its latest [`observe`](Self::observe) rather than read again
    /// (the Kubernetes backend does while the deployment's generation is the one it listed
    /// under): a decision made from it reaches the platform only through a conditional write,
    /// which refuses it with [`ErrorKind::Conflict`] if anything changed since.
    async fn history(&self) -> Result<Vec<Revision>>;

    /// Waits until the rollout is complete ([`RolloutSnapshot::is_complete`]) and returns the
    /// status that said so, sending each status it sees on the way to `seen`;
    /// [`ErrorKind::Timeout`] after `timeout` (tokio's clock).
    ///
    /// The default looks with [`observe`](Self::observe) every `poll` and looks past a
    /// transient error until the deadline. A backend that can be told about changes follows
    /// them instead, as `kubectl rollout status` follows a watch: it returns as soon as the
    /// platform says the rollout is complete, and its statuses may carry only what the
    /// platform object itself reports (counts, conditions, the current revision; no pods or
    /// events).
    async fn await_complete(
        &self,
        timeout: Duration,
        poll: Duration,
        seen: StatusSender,
    ) -> Result<RolloutSnapshot> {
        poll_until_complete(self, timeout, poll, seen).await
    }

    /// Puts back what `revision` ran.
    ///
    /// `revision` may be a current number or one the revision had before it was renumbered
    /// (see [`Revision::answers_to`]), so calling this twice is harmless: the second call returns
    /// [`RollbackOutcome::AlreadyCurrent`] — whatever `options.expected_current` says, since
    /// what runs is already what was asked (a retry after a lost answer lands here). A revision that is not in the history is
    /// [`ErrorKind::NotFound`] and nothing is written.
    async fn rollback_to(
        &self,
        revision: RevisionId,
        options: RollbackOptions,
    ) -> Result<RollbackOutcome>;

    /// Pauses or resumes the rollout.
    async fn set_paused(&self, paused: bool) -> Result<()>;

    /// Sets the desired replica count.
    async fn scale(&self, replicas: u32) -> Result<()>;

    /// Records that `revision` was verified healthy, so later rollbacks can prefer it.
    async fn mark_verified(&self, revision: RevisionId) -> Result<()>;

    /// The guard's markers kept on the platform object (Kubernetes: annotations): what a
    /// restarted guard needs to finish the job. Only keys under [`MARKER_PREFIX`] are returned.
    async fn markers(&self) -> Result<BTreeMap<String, String>>;

    /// Sets (`Some`) or removes (`None`) one marker. A key that does not start with
    /// [`MARKER_PREFIX`] or names nothing after it is [`ErrorKind::InvalidInput`], and nothing
    /// is written; [`check_marker_key`] is that rule. Setting a marker to the value it has, or
    /// removing one that is absent, writes nothing.
    async fn set_marker(&self, key: &str, value: Option<String>) -> Result<()>;
}

/// Every marker key starts with this prefix (`deployguard.io/rollout`, …), on every backend.
pub const MARKER_PREFIX: &str = "deployguard.io/";

/// The marker-key rule every [`DeploymentBackend::set_marker`] applies: `InvalidInput` naming
/// the key unless it is [`MARKER_PREFIX`] followed by a name of letters, digits, `-`, `_` or `.`.
///
/// ```
/// use deployguard_core::check_marker_key;
/// assert!(check_marker_key("deployguard.io/rollout").is_ok());
/// assert!(check_marker_key("rollout").is_err());
/// assert!(check_marker_key("deployguard.io/").is_err());
/// ```
pub fn check_marker_key(key: &str) -> Result<()> {
    let name = key.strip_prefix(MARKER_PREFIX).unwrap_or_default();
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "marker key",
            format!(
                "{key:?} must be {MARKER_PREFIX:?} followed by a name of letters, digits, '-', '_' or '.'"
            ),
        ))
    }
}

/// What a [`DeploymentBackend`] can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BackendCapabilities {
    /// Whether [`DeploymentBackend::set_paused`] works.
    pub pause: bool,
    /// Whether [`DeploymentBackend::scale`] works.
    pub scale: bool,
    /// Whether revisions report the schema they need.
    pub schema_requirements: bool,
}

impl BackendCapabilities {
    /// Everything supported.
    pub fn full() -> Self {
        Self {
            pause: true,
            scale: true,
            schema_requirements: true,
        }
    }
}

/// How to roll back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RollbackOptions {
    /// Resume a paused deployment as part of the rollback. Without it a paused deployment is
    /// refused, as `kubectl rollout undo` refuses it.
    pub resume_if_paused: bool,
    /// Roll back only if the deployment still runs this revision: the write is conditional on
    /// what the caller decided from. A different current revision is [`ErrorKind::Conflict`].
    pub expected_current: Option<RevisionId>,
}

impl RollbackOptions {
    /// Resume a paused deployment as part of the rollback.
    pub fn with_resume_if_paused(mut self, resume: bool) -> Self {
        self.resume_if_paused = resume;
        self
    }

    /// Only roll back if the deployment still runs `current`.
    pub fn with_expected_current(mut self, current: RevisionId) -> Self {
        self.expected_current = Some(current);
        self
    }
}

/// What a rollback did.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RollbackOutcome {
    /// The template of `to` was put back; the platform may give it a new number.
    RolledBack {
        /// The revision that ran before.
        from: Option<RevisionId>,
        /// The revision asked for.
        to: RevisionId,
    },
    /// The deployment already runs what `revision` ran; nothing was written.
    AlreadyCurrent {
        /// The revision asked for.
        revision: RevisionId,
    },
}

/// Conveniences over any [`DeploymentBackend`]. Implemented for every backend; do not implement
/// it yourself.
#[async_trait]
pub trait DeploymentBackendExt: DeploymentBackend {
    /// The revision `id` names (now or before renumbering), or [`ErrorKind::NotFound`].
    async fn revision(&self, id: RevisionId) -> Result<Revision> {
        self.history()
            .await?
            .into_iter()
            .find(|r| r.answers_to(id))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("revision {id} is not in the history"),
                )
                .with_operation("revision")
                .with_object(self.target())
            })
    }

    /// The revision the deployment runs now, if it has one.
    async fn current_revision(&self) -> Result<Option<Revision>> {
        let snapshot = self.observe().await?;
        let Some(fingerprint) = snapshot.current_fingerprint else {
            return Ok(None);
        };
        Ok(self
            .history()
            .await?
            .into_iter()
            .find(|r| r.fingerprint == fingerprint))
    }

    /// [`await_complete`](DeploymentBackend::await_complete) with nobody told about the
    /// statuses on the way.
    async fn wait_until_complete(
        &self,
        timeout: Duration,
        poll: Duration,
    ) -> Result<RolloutSnapshot> {
        let (seen, _) = tokio::sync::mpsc::unbounded_channel();
        self.await_complete(timeout, poll, seen).await
    }
}

/// Where a [`DeploymentBackend::await_complete`] sends each status it sees on the way. A
/// receiver that has gone away is not an error: the wait goes on.
pub type StatusSender = tokio::sync::mpsc::UnboundedSender<RolloutSnapshot>;

/// What [`DeploymentBackend::await_complete`] does by default: [`observe`] every `poll` until
/// the rollout is complete, looking past transient errors until `timeout`. A backend that
/// overrides `await_complete` can fall back on it.
///
/// [`observe`]: DeploymentBackend::observe
pub async fn poll_until_complete<B: DeploymentBackend + ?Sized>(
    backend: &B,
    timeout: Duration,
    poll: Duration,
    seen: StatusSender,
) -> Result<RolloutSnapshot> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let snapshot = match backend.observe().await {
            Ok(snapshot) => snapshot,
            Err(err) if err.is_retryable() && tokio::time::Instant::now() + poll < deadline => {
                tokio::time::sleep(poll).await;
                continue;
            }
            Err(err) => return Err(err),
        };
        let _ = seen.send(snapshot.clone());
        if snapshot.is_complete() {
            return Ok(snapshot);
        }
        if tokio::time::Instant::now() + poll > deadline {
            return Err(not_complete(backend, &snapshot));
        }
        tokio::time::sleep(poll).await;
    }
}

/// The [`ErrorKind::Timeout`] of a wait that ended with `last` not complete.
pub fn not_complete<B: DeploymentBackend + ?Sized>(backend: &B, last: &RolloutSnapshot) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "rollout not complete: {}/{} updated, {} available",
            last.updated, last.desired, last.available
        ),
    )
    .with_operation("await_complete")
    .with_object(backend.target())
}

impl<T: DeploymentBackend + ?Sized> DeploymentBackendExt for T {}

macro_rules! forward_backend {
    ($wrapper:ident) => {
        #[async_trait]
        impl<T: DeploymentBackend + ?Sized> DeploymentBackend for $wrapper<T> {
            fn target(&self) -> String {
                (**self).target()
            }
            fn name(&self) -> String {
                (**self).name()
            }
            fn capabilities(&self) -> BackendCapabilities {
                (**self).capabilities()
            }
            async fn observe(&self) -> Result<RolloutSnapshot> {
                (**self).observe().await
            }
            async fn history(&self) -> Result<Vec<Revision>> {
                (**self).history().await
            }
            async fn await_complete(
                &self,
                timeout: Duration,
                poll: Duration,
                seen: StatusSender,
            ) -> Result<RolloutSnapshot> {
                (**self).await_complete(timeout, poll, seen).await
            }
            async fn rollback_to(
                &self,
                revision: RevisionId,
                options: RollbackOptions,
            ) -> Result<RollbackOutcome> {
                (**self).rollback_to(revision, options).await
            }
            async fn set_paused(&self, paused: bool) -> Result<()> {
                (**self).set_paused(paused).await
            }
            async fn scale(&self, replicas: u32) -> Result<()> {
                (**self).scale(replicas).await
            }
            async fn mark_verified(&self, revision: RevisionId) -> Result<()> {
                (**self).mark_verified(revision).await
            }
            async fn markers(&self) -> Result<BTreeMap<String, String>> {
                (**self).markers().await
            }
            async fn set_marker(&self, key: &str, value: Option<String>) -> Result<()> {
                (**self).set_marker(key, value).await
            }
        }
    };
}

forward_backend!(Arc);
forward_backend!(Box);
