//! [`KubeDeployment`]: a [`DeploymentBackend`] for one apps/v1 Deployment.

mod cache;
mod watch;

use cache::{Seen, Source};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use deployguard_core::{
    BackendCapabilities, DeploymentBackend, Error, ErrorKind, Result, Revision, RevisionId,
    RollbackOptions, RollbackOutcome, RolloutSnapshot, StatusSender, not_complete,
};
use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams, Patch, WatchEvent, WatchParams};
use serde_json::{Value, json};

use crate::annotations::{MARKER_PREFIX, REVISION, REVISION_HISTORY, VERIFIED};
use crate::convert::{
    Read, annotation, answers_to, current_of, needs_evidence, owned_by, revision_of, rs_template,
    snapshot_of, templates_equal, to_revision, without_hash,
};
use crate::error::from_kube;
use crate::names::{check_label, check_subdomain};
use crate::patch::{Precondition, annotation_ops, conditional_patch, refused_patch};

/// Deployment annotations kubectl never copies from a ReplicaSet on rollback.
const ROLLBACK_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// A [`DeploymentBackend`] for one apps/v1 Deployment.
///
/// Pods are found through the deployment's own ReplicaSets by owner reference, never by an
/// assumed `app=<name>` label. Events are listed with a field selector (warnings about pods,
/// the only events diagnosis reads) and kept only when they are about this deployment's pods.
///
/// Each object is read once per step: [`observe`](DeploymentBackend::observe) always reads;
/// the history, the markers and every write start from the newest state the backend has seen
/// (a read, a write's answer, a watch event), and the ReplicaSets listed while the
/// deployment's generation is unchanged (the backend's own marker writes keep them). What
/// changed since surfaces through the writes' preconditions as a
/// [`ErrorKind::Conflict`]; the backend then forgets what it saw and reads afresh.
/// [`await_complete`](DeploymentBackend::await_complete) follows a watch on the deployment, as
/// `kubectl rollout status` does. Every write is a JSON patch whose first operation tests the
/// generation that was read, so a concurrent edit of spec or annotations is a
/// [`ErrorKind::Conflict`] and nothing is clobbered, while status updates by the controller
/// (constant during a rollout) do not get in the way. Rollback does what `kubectl rollout undo` does.
///
/// ```no_run
/// use deployguard_core::DeploymentBackend;
/// use deployguard_k8s::KubeDeployment;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = kube::Client::try_default().await?;
/// let backend = KubeDeployment::new(client, "default", "app-deployment");
/// let snapshot = backend.observe().await?;
/// println!("{}/{} ready", snapshot.ready, snapshot.desired);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct KubeDeployment {
    namespace: String,
    name: String,
    deployments: Api<Deployment>,
    replica_sets: Api<ReplicaSet>,
    pods: Api<Pod>,
    events: Api<Event>,
    log_lines: i64,
    /// What this backend last saw, shared by its clones.
    seen: Arc<Mutex<Option<Seen>>>,
    /// Why the names given to `new` cannot be used, if they cannot: every call then fails with
    /// it before any request.
    invalid: Option<Error>,
}

impl std::fmt::Debug for KubeDeployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeDeployment")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish()
    }
}

impl KubeDeployment {
    /// A backend for deployment `name` in `namespace`, refused at once (`InvalidInput` naming
    /// the field) if either is not a valid Kubernetes name.
    ///
    /// ```
    /// # async fn doc(client: deployguard_k8s::kube::Client) {
    /// use deployguard_k8s::KubeDeployment;
    ///
    /// let err = KubeDeployment::try_new(client, "default", "Web_App").unwrap_err();
    /// assert!(err.to_string().contains("deployment"), "{err}");
    /// # }
    /// ```
    pub fn try_new(client: kube::Client, namespace: &str, name: &str) -> Result<Self> {
        let backend = Self::new(client, namespace, name);
        backend.validate()?;
        Ok(backend)
    }

    /// A backend for deployment `name` in `namespace`. Invalid names are refused by every call
    /// (and by [`validate`](Self::validate)), never sent; [`try_new`](Self::try_new) refuses
    /// them here.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            deployments: Api::namespaced(client.clone(), namespace),
            replica_sets: Api::namespaced(client.clone(), namespace),
            pods: Api::namespaced(client.clone(), namespace),
            events: Api::namespaced(client, namespace),
            log_lines: 20,
            seen: Arc::default(),
            invalid: check_label("namespace", namespace)
                .and_then(|()| check_subdomain("deployment", name))
                .err(),
        }
    }

    /// `InvalidInput` when the names given to [`new`](Self::new) are not valid Kubernetes names
    /// (nothing is ever sent for them).
    pub fn validate(&self) -> Result<()> {
        match &self.invalid {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// How many log lines of a failing pod `observe` keeps (default 20).
    pub fn with_log_lines(mut self, lines: i64) -> Self {
        self.log_lines = lines;
        self
    }

    fn object(&self) -> String {
        format!("deployment {}/{}", self.namespace, self.name)
    }

    /// Lists pods as `Api::list` does, and reads the API server's clock from the answer's
    /// `Date` header: pod ages are counted on the server's clock, never this process's (which
    /// may be skewed, or, under a test's paused clock, stopped).
    async fn pods_dated(
        &self,
        params: &ListParams,
    ) -> std::result::Result<(kube::core::ObjectList<Pod>, Option<SystemTime>), kube::Error> {
        let request =
            kube::core::Request::new(format!("/api/v1/namespaces/{}/pods", self.namespace))
                .list(params)
                .map_err(kube::Error::BuildRequest)?;
        let client: kube::Client = self.pods.clone().into();
        let response = client.send(request.map(kube::client::Body::from)).await?;
        if !response.status().is_success() {
            // The typed call reads the server's Status into the error every other read gives.
            return self.pods.list(params).await.map(|list| (list, None));
        }
        let now = response
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::patience::http_date);
        let body = response.into_body().collect_bytes().await?;
        let list = serde_json::from_slice(&body).map_err(kube::Error::SerdeError)?;
        Ok((list, now))
    }

    fn err(&self, operation: &'static str) -> impl Fn(kube::Error) -> Error + '_ {
        move |e| from_kube(e, operation, &self.object())
    }

    /// The Deployment's label selector as a list query: `matchLabels` and `matchExpressions`
    /// both (kube's `Selector`). One that selects everything, or that cannot be read, is refused
    /// rather than listing the whole namespace as this deployment's.
    fn selector(&self, deployment: &Deployment, operation: &'static str) -> Result<String> {
        let refused = |why: String| {
            Error::invalid_input("spec.selector", why)
                .with_operation(operation)
                .with_object(self.object())
        };
        let selector = deployment
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        let selector = kube::core::Selector::try_from(selector)
            .map_err(|e| refused(format!("cannot be read: {e}")))?;
        if selector.selects_all() {
            return Err(refused("selects every pod of the namespace".into()));
        }
        Ok(selector.to_string())
    }

    /// Sends a conditional JSON patch; a failed precondition becomes a Conflict. The answer is
    /// remembered; after any failure nothing is, so the next call reads afresh.
    async fn patch_deployment(
        &self,
        operation: &'static str,
        read: &Read,
        ops: Vec<Value>,
        source: Source,
    ) -> Result<Deployment> {
        let result = self.send_patch(operation, read, ops).await;
        match &result {
            Ok(updated) => self.remember_deployment(updated.clone(), source),
            Err(_) => self.remember(None),
        }
        result
    }

    async fn send_patch(
        &self,
        operation: &'static str,
        read: &Read,
        ops: Vec<Value>,
    ) -> Result<Deployment> {
        let patch = conditional_patch(Precondition::Generation(read.generation()), ops)?;
        match self
            .deployments
            .patch(
                &self.name,
                &crate::writes::patch_params(),
                &Patch::<()>::Json(patch),
            )
            .await
        {
            Ok(updated) => Ok(updated),
            Err(kube::Error::Api(status)) if status.code == 422 => {
                let err = kube::Error::Api(status);
                // Either our generation test failed (someone changed spec or annotations in
                // between) or the patch itself was refused; a fresh read tells which.
                let now = self
                    .deployments
                    .get(&self.name)
                    .await
                    .ok()
                    .map(|d| (d.metadata.generation, d.metadata.resource_version));
                Err(refused_patch(
                    err,
                    Precondition::Generation(read.generation()),
                    now,
                    operation,
                    &self.object(),
                ))
            }
            Err(err) => Err(from_kube(err, operation, &self.object())),
        }
    }

    /// Attaches the last log lines of up to three crashing pods: the evidence diagnosis quotes.
    pub(crate) async fn attach_logs(&self, snapshot: &mut RolloutSnapshot) {
        let crashing: Vec<usize> = (0..snapshot.pods.len())
            .filter(|i| !snapshot.pods[*i].ready && snapshot.pods[*i].restarts > 0)
            .take(3)
            .collect();
        for index in crashing {
            let name = snapshot.pods[index].name.clone();
            // The API server wants the container named when a pod has more than one (a mesh
            // sidecar): the one that restarted most is the one crashing.
            let container = match self.pods.get(&name).await {
                Ok(pod) => crashing_container(&pod),
                Err(_) => None,
            };
            let params = LogParams {
                tail_lines: Some(self.log_lines),
                container,
                ..LogParams::default()
            };
            // Logs are evidence, never a reason to stop; a failure to read them (a missing
            // `pods/log` permission) is said where the logs would be.
            snapshot.pods[index].log_tail = match self.pods.logs(&name, &params).await {
                Ok(text) => text.lines().map(str::to_owned).collect(),
                Err(err) => vec![format!(
                    "(logs unavailable: {})",
                    from_kube(err, "read_logs", &format!("pod {name}"))
                )],
            };
        }
    }
}

/// Whether a snapshot shows trouble worth collecting events and logs for.
#[async_trait]
impl DeploymentBackend for KubeDeployment {
    fn target(&self) -> String {
        self.object()
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn capabilities(&self) -> BackendCapabilities {
        BackendCapabilities::full()
    }

    async fn observe(&self) -> Result<RolloutSnapshot> {
        self.validate()?;
        let read = match self.read("observe").await {
            Ok(read) => read,
            Err(err) => {
                self.remember(None);
                return Err(err);
            }
        };
        self.remember_read(&read);
        let selector = self.selector(&read.deployment, "observe")?;
        let (pods, now) = self
            .pods_dated(&ListParams::default().labels(&selector))
            .await
            .map_err(self.err("observe"))?;
        let mut snapshot = snapshot_of(
            &read.deployment,
            &read.owned,
            read.current(),
            &pods.items,
            &[],
            now,
        );
        if needs_evidence(&snapshot) {
            // Warnings about pods are all diagnosis reads; the rest of a busy namespace's
            // events stay on the server.
            let events = self
                .events
                .list(&ListParams::default().fields(EVENT_FIELDS))
                .await
                .map_err(self.err("observe"))?;
            snapshot = snapshot_of(
                &read.deployment,
                &read.owned,
                read.current(),
                &pods.items,
                &events.items,
                now,
            );
            self.attach_logs(&mut snapshot).await;
        }
        Ok(snapshot)
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        self.validate()?;
        let read = self.recent_read("history").await?;
        Ok(read.owned.iter().filter_map(to_revision).collect())
    }

    async fn await_complete(
        &self,
        timeout: Duration,
        poll: Duration,
        seen: StatusSender,
    ) -> Result<RolloutSnapshot> {
        self.validate()?;
        let deadline = tokio::time::Instant::now() + timeout;
        let (mut deployment, remembered) = self.recent_deployment("await_complete").await?;
        let owned = self.seen_now().map(|s| s.owned).unwrap_or_default();
        if remembered && status_of(&deployment, &owned).is_complete() {
            // "Complete" as last seen may be old news (someone has rolled out since): only a
            // read says it is still so. Anything else is followed from where it was seen: the
            // watch replays every change after it.
            deployment = self
                .deployments
                .get(&self.name)
                .await
                .map_err(self.err("await_complete"))?;
            self.remember_deployment(deployment.clone(), Source::Other);
        }
        match tokio::time::timeout_at(deadline, self.follow(deployment, &seen, deadline, poll))
            .await
        {
            Ok(done) => done,
            Err(_) => {
                let last = self.last_seen().unwrap_or_else(|| RolloutSnapshot::new(0));
                Err(not_complete(self, &last))
            }
        }
    }

    async fn rollback_to(
        &self,
        revision: RevisionId,
        options: RollbackOptions,
    ) -> Result<RollbackOutcome> {
        self.validate()?;
        let read = self.recent_read("rollback_to").await?;
        let current = read.current().and_then(revision_of);
        let target = read
            .owned
            .iter()
            .find(|rs| answers_to(rs, revision))
            .ok_or_else(|| {
                Error::not_found(format!(
                    "unable to find specified revision {revision} in history"
                ))
                .with_operation("rollback_to")
                .with_object(self.object())
            })?;
        let (Some(template), Some(desired)) = (rs_template(target), read.template()) else {
            return Err(Error::new(
                ErrorKind::Unexpected,
                "a ReplicaSet or the deployment has no pod template",
            )
            .with_object(self.object()));
        };
        // Already there: after our own write whose answer was lost (or another deployguard's
        // under the same lease), nothing to write. Put there by someone else since the caller
        // planned (`kubectl rollout undo`, a CI job): their write, not ours — stop and say so
        // rather than carry on as if we had done it.
        if templates_equal(template, desired) {
            if let Some(expected) = options.expected_current
                && current != Some(expected)
                && let Some(writer) = crate::writes::changed_elsewhere(&read.deployment)
            {
                return Err(Error::conflict(changed_under_us(desired, current, &writer))
                    .with_retryable(false)
                    .with_operation("rollback_to")
                    .with_object(self.object()));
            }
            return Ok(RollbackOutcome::AlreadyCurrent { revision });
        }
        if let Some(expected) = options.expected_current
            && current != Some(expected)
        {
            return Err(Error::conflict(format!(
                "expected revision {expected} to be current, found {}",
                current.map_or("none".into(), |c| c.to_string())
            ))
            .with_operation("rollback_to")
            .with_object(self.object()));
        }
        if read.paused() && !options.resume_if_paused {
            return Err(Error::new(
                ErrorKind::Refused,
                "you cannot rollback a paused deployment; resume it first or roll back with resume_if_paused",
            )
            .with_operation("rollback_to")
            .with_object(self.object()));
        }
        // kubectl's rollback: the ReplicaSet's template without its hash label, and the
        // annotations a rollback carries.
        let mut annotations: BTreeMap<String, String> = BTreeMap::new();
        for key in ROLLBACK_SKIP {
            if let Some(value) = annotation(&read.deployment.metadata, key) {
                annotations.insert(key.to_owned(), value);
            }
        }
        for (key, value) in target.metadata.annotations.clone().unwrap_or_default() {
            if !ROLLBACK_SKIP.contains(&key.as_str()) {
                annotations.insert(key, value);
            }
        }
        for (key, value) in read
            .deployment
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
        {
            if key.starts_with(MARKER_PREFIX) {
                annotations.insert(key, value);
            }
        }
        let mut ops = vec![
            json!({"op": "replace", "path": "/spec/template", "value": without_hash(template)}),
            json!({"op": "add", "path": "/metadata/annotations", "value": annotations}),
        ];
        if read.paused() {
            ops.push(json!({"op": "add", "path": "/spec/paused", "value": false}));
        }
        self.patch_deployment("rollback_to", &read, ops, Source::Other)
            .await?;
        Ok(RollbackOutcome::RolledBack {
            from: current,
            to: revision,
        })
    }

    async fn set_paused(&self, paused: bool) -> Result<()> {
        self.validate()?;
        let read = self.recent_read("set_paused").await?;
        if read.paused() == paused {
            return Ok(());
        }
        self.patch_deployment(
            "set_paused",
            &read,
            vec![json!({"op": "add", "path": "/spec/paused", "value": paused})],
            Source::Other,
        )
        .await
        .map(drop)
    }

    async fn scale(&self, replicas: u32) -> Result<()> {
        self.validate()?;
        let (deployment, _) = self.recent_deployment("scale").await?;
        let read = Read {
            deployment,
            owned: Vec::new(),
        };
        self.patch_deployment(
            "scale",
            &read,
            vec![json!({"op": "add", "path": "/spec/replicas", "value": replicas})],
            Source::Other,
        )
        .await
        .map(drop)
    }

    async fn mark_verified(&self, revision: RevisionId) -> Result<()> {
        self.validate()?;
        let read = self.recent_read("mark_verified").await?;
        let rs = read
            .owned
            .iter()
            .find(|rs| answers_to(rs, revision))
            .ok_or_else(|| {
                Error::not_found(format!("revision {revision} is not in the history"))
                    .with_operation("mark_verified")
                    .with_object(self.object())
            })?;
        if annotation(&rs.metadata, VERIFIED).as_deref() == Some("true") {
            return Ok(());
        }
        let name = rs.metadata.name.clone().unwrap_or_default();
        let ops = annotation_ops(rs.metadata.annotations.as_ref(), VERIFIED, Some("true"));
        let patch = conditional_patch(
            Precondition::Generation(rs.metadata.generation.unwrap_or(0)),
            ops,
        )?;
        let result = self
            .replica_sets
            .patch(
                &name,
                &crate::writes::patch_params(),
                &Patch::<()>::Json(patch),
            )
            .await;
        match result {
            Ok(marked) => {
                // The listing stays true with the marked ReplicaSet in it.
                let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(seen) = seen.as_mut()
                    && let Some(slot) = seen
                        .owned
                        .iter_mut()
                        .find(|rs| rs.metadata.uid == marked.metadata.uid)
                {
                    *slot = marked;
                }
                Ok(())
            }
            Err(e) => {
                self.remember(None);
                Err(from_kube(
                    e,
                    "mark_verified",
                    &format!("replicaset {}/{name}", self.namespace),
                ))
            }
        }
    }

    async fn markers(&self) -> Result<BTreeMap<String, String>> {
        self.validate()?;
        let (deployment, _) = self.recent_deployment("markers").await?;
        Ok(deployment
            .metadata
            .annotations
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k.starts_with(MARKER_PREFIX))
            .collect())
    }

    async fn set_marker(&self, key: &str, value: Option<String>) -> Result<()> {
        self.validate()?;
        deployguard_core::check_marker_key(key)?;
        loop {
            let (deployment, remembered) = self.recent_deployment("set_marker").await?;
            if annotation(&deployment.metadata, key) == value {
                return Ok(());
            }
            let ops = annotation_ops(
                deployment.metadata.annotations.as_ref(),
                key,
                value.as_deref(),
            );
            let read = Read {
                deployment,
                owned: Vec::new(),
            };
            match self
                .patch_deployment("set_marker", &read, ops, Source::OurMarkers)
                .await
            {
                // A marker is one annotation of ours: when the deployment moved on since it
                // was last seen, the write is made again on a fresh read (conditional on it).
                Err(err) if remembered && err.kind() == ErrorKind::Conflict => continue,
                result => return result.map(drop),
            }
        }
    }
}

/// The events diagnosis reads: warnings about pods.
const EVENT_FIELDS: &str = "involvedObject.kind=Pod,type=Warning";

/// The rollout's status from the deployment object alone (the ReplicaSets name what runs): what
/// a watch on it says, as `kubectl rollout status` reads it.
fn status_of(deployment: &Deployment, owned: &[ReplicaSet]) -> RolloutSnapshot {
    let mut snapshot = snapshot_of(
        deployment,
        owned,
        current_of(deployment, owned),
        &[],
        &[],
        None,
    );
    // After a rollback the ReplicaSet listed earlier still carries its old number; the
    // deployment's own annotation has the new one once the controller has seen the change.
    if snapshot.generation_observed
        && let Some(revision) = annotation(&deployment.metadata, REVISION)
            .and_then(|r| r.parse().ok())
            .map(RevisionId)
        && snapshot.current_fingerprint.is_some()
    {
        snapshot.current_revision = Some(revision);
    }
    snapshot
}

/// The words for a template someone else changed: what it runs now, as which revision, and
/// who wrote it.
pub(crate) fn changed_under_us(
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    revision: Option<RevisionId>,
    writer: &str,
) -> String {
    let images = crate::convert::images_of(template);
    let revision = revision.map_or(String::new(), |r| format!(" (revision {r})"));
    format!(
        "the deployment's template changed under us: now {}{revision}, written by {writer}",
        images.join(", ")
    )
}

/// The name of the container of `pod` that restarted most (the first on a tie), when it has
/// more than one.
fn crashing_container(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    if statuses.len() < 2 {
        return None;
    }
    statuses
        .iter()
        .enumerate()
        .max_by_key(|(i, c)| (c.restart_count, std::cmp::Reverse(*i)))
        .map(|(_, c)| c.name.clone())
}
