//! [`KubeDeployment`]: a [`DeploymentBackend`] for one apps/v1 Deployment.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use deployguard_core::{
    BackendCapabilities, Condition, DeploymentBackend, Error, ErrorKind, EventRecord, Fingerprint,
    PodState, Result, Revision, RevisionId, RollbackOptions, RollbackOutcome, RolloutSnapshot,
    SchemaVersion,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod, PodTemplateSpec};
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::annotations::{
    MARKER_PREFIX, POD_TEMPLATE_HASH, REQUIRES_SCHEMA, REVISION, REVISION_HISTORY, VERIFIED,
};
use crate::error::from_kube;

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
/// assumed `app=<name>` label. Every write is a JSON patch whose first operation tests the
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
}

impl std::fmt::Debug for KubeDeployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeDeployment")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish()
    }
}

/// What one read of the deployment found.
pub(crate) struct Read {
    deployment: Deployment,
    /// ReplicaSets the deployment controls, oldest revision first.
    owned: Vec<ReplicaSet>,
}

impl Read {
    /// The generation read: what the write is conditional on. Unlike the resourceVersion it
    /// moves only when spec or annotations change — what a decision was made from — not when a
    /// controller writes status, which it does all through a rollout.
    fn generation(&self) -> i64 {
        self.deployment.metadata.generation.unwrap_or(0)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.deployment.spec.as_ref().map(|s| &s.template)
    }

    /// The ReplicaSet whose template is the deployment's (ignoring the hash label).
    fn current(&self) -> Option<&ReplicaSet> {
        let template = self.template()?;
        self.owned
            .iter()
            .find(|rs| rs_template(rs).is_some_and(|t| templates_equal(t, template)))
    }

    fn paused(&self) -> bool {
        self.deployment
            .spec
            .as_ref()
            .and_then(|s| s.paused)
            .unwrap_or(false)
    }
}

fn rs_template(rs: &ReplicaSet) -> Option<&PodTemplateSpec> {
    rs.spec.as_ref().and_then(|s| s.template.as_ref())
}

/// A template as JSON without the pod-template-hash label.
fn without_hash(template: &PodTemplateSpec) -> Value {
    let mut value = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(labels) = value
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH);
        if labels.is_empty() {
            value["metadata"]
                .as_object_mut()
                .map(|m| m.remove("labels"));
        }
    }
    value
}

fn templates_equal(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

fn annotation(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<String> {
    meta.annotations.as_ref().and_then(|a| a.get(key)).cloned()
}

fn revision_of(rs: &ReplicaSet) -> Option<RevisionId> {
    annotation(&rs.metadata, REVISION)
        .and_then(|r| r.parse().ok())
        .map(RevisionId)
}

fn fingerprint_of(rs: &ReplicaSet) -> Fingerprint {
    let hash = rs
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_TEMPLATE_HASH))
        .cloned();
    Fingerprint::new(hash.unwrap_or_else(|| rs.metadata.name.clone().unwrap_or_default()))
}

pub(crate) fn to_revision(rs: &ReplicaSet) -> Option<Revision> {
    let id = revision_of(rs)?;
    let previous = annotation(&rs.metadata, REVISION_HISTORY)
        .map(|h| {
            h.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .map(RevisionId)
                .collect()
        })
        .unwrap_or_default();
    let template = rs_template(rs);
    let images = template
        .and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default();
    let schema = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| annotation(m, REQUIRES_SCHEMA))
        .and_then(|v| v.parse().ok())
        .map(SchemaVersion);
    let mut revision = Revision::new(id, fingerprint_of(rs), images)
        .with_previous_ids(previous)
        .with_verified(annotation(&rs.metadata, VERIFIED).as_deref() == Some("true"))
        .with_requires_schema(schema);
    revision.created_unix_seconds = rs
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second());
    Some(revision)
}

fn answers_to(rs: &ReplicaSet, id: RevisionId) -> bool {
    to_revision(rs).is_some_and(|r| r.answers_to(id))
}

fn owned_by(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, uid: &str) -> bool {
    meta.owner_references.as_ref().is_some_and(|refs| {
        refs.iter()
            .any(|r| r.uid == uid && r.controller == Some(true))
    })
}

/// A JSON patch from `ops`, first testing that the object is still at `generation`.
fn conditional_patch(generation: i64, ops: Vec<Value>) -> Result<json_patch::Patch> {
    let mut all = vec![json!({"op": "test", "path": "/metadata/generation", "value": generation})];
    all.extend(ops);
    serde_json::from_value(Value::Array(all))
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("building a JSON patch: {e}")))
}

/// The JSON-pointer form of an annotation key (`/` and `~` escaped).
fn annotation_path(key: &str) -> String {
    format!(
        "/metadata/annotations/{}",
        key.replace('~', "~0").replace('/', "~1")
    )
}

/// Operations setting (`Some`) or removing (`None`) annotation `key` on an object whose
/// annotations are `current`.
fn annotation_ops(
    current: Option<&BTreeMap<String, String>>,
    key: &str,
    value: Option<&str>,
) -> Vec<Value> {
    match (current, value) {
        (None, Some(value)) => {
            vec![json!({"op": "add", "path": "/metadata/annotations", "value": {key: value}})]
        }
        (Some(_), Some(value)) => {
            vec![json!({"op": "add", "path": annotation_path(key), "value": value})]
        }
        (Some(map), None) if map.contains_key(key) => {
            vec![json!({"op": "remove", "path": annotation_path(key)})]
        }
        _ => Vec::new(),
    }
}

impl KubeDeployment {
    /// A backend for deployment `name` in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            deployments: Api::namespaced(client.clone(), namespace),
            replica_sets: Api::namespaced(client.clone(), namespace),
            pods: Api::namespaced(client.clone(), namespace),
            events: Api::namespaced(client, namespace),
            log_lines: 20,
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

    fn err(&self, operation: &'static str) -> impl Fn(kube::Error) -> Error + '_ {
        move |e| from_kube(e, operation, &self.object())
    }

    fn selector(deployment: &Deployment) -> String {
        deployment
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.as_ref())
            .map(|labels| {
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    }

    async fn read(&self, operation: &'static str) -> Result<Read> {
        let deployment = self
            .deployments
            .get(&self.name)
            .await
            .map_err(self.err(operation))?;
        let uid = deployment.metadata.uid.clone().unwrap_or_default();
        let list = self
            .replica_sets
            .list(&ListParams::default().labels(&Self::selector(&deployment)))
            .await
            .map_err(self.err(operation))?;
        let mut owned: Vec<ReplicaSet> = list
            .items
            .into_iter()
            .filter(|rs| owned_by(&rs.metadata, &uid))
            .collect();
        owned.sort_by_key(|rs| revision_of(rs).unwrap_or(RevisionId(0)));
        Ok(Read { deployment, owned })
    }

    /// Sends a conditional JSON patch; a failed precondition becomes a Conflict.
    async fn patch_deployment(
        &self,
        operation: &'static str,
        read: &Read,
        ops: Vec<Value>,
    ) -> Result<Deployment> {
        let patch = conditional_patch(read.generation(), ops)?;
        match self
            .deployments
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::<()>::Json(patch),
            )
            .await
        {
            Ok(updated) => Ok(updated),
            Err(kube::Error::Api(status)) if status.code == 422 => {
                // Either our generation test failed (someone changed spec or annotations in
                // between) or the patch itself was refused; a fresh read tells which.
                let now = self
                    .deployments
                    .get(&self.name)
                    .await
                    .map_err(self.err(operation))?;
                if now.metadata.generation.unwrap_or(0) != read.generation() {
                    Err(Error::conflict(format!(
                        "the deployment changed since it was read (generation {} is now {})",
                        read.generation(),
                        now.metadata.generation.unwrap_or(0)
                    ))
                    .with_operation(operation)
                    .with_object(self.object()))
                } else {
                    Err(from_kube(
                        kube::Error::Api(status),
                        operation,
                        &self.object(),
                    ))
                }
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
            let params = LogParams {
                tail_lines: Some(self.log_lines),
                ..LogParams::default()
            };
            if let Ok(text) = self.pods.logs(&name, &params).await {
                snapshot.pods[index].log_tail = text.lines().map(str::to_owned).collect();
            }
        }
    }
}

/// Whether a snapshot shows trouble worth collecting events and logs for.
pub(crate) fn needs_evidence(snapshot: &RolloutSnapshot) -> bool {
    snapshot.progress_deadline_exceeded || snapshot.pods.iter().any(|p| !p.ready)
}

/// The snapshot of `deployment` from its owned ReplicaSets, the pods they own, and `events`
/// (only those about these pods or the deployment are kept). Pure: the fleet cache and the
/// direct backend share it.
pub(crate) fn snapshot_of(
    deployment: &Deployment,
    owned: &[ReplicaSet],
    pods: &[Pod],
    events: &[Event],
) -> RolloutSnapshot {
    let read = Read {
        deployment: deployment.clone(),
        owned: owned.to_vec(),
    };
    let spec = deployment.spec.clone().unwrap_or_default();
    let status = deployment.status.clone().unwrap_or_default();
    let count = |v: Option<i32>| u32::try_from(v.unwrap_or(0)).unwrap_or(0);
    let mut snapshot = RolloutSnapshot::new(count(spec.replicas.or(Some(1))));
    snapshot.total = count(status.replicas);
    snapshot.updated = count(status.updated_replicas);
    snapshot.ready = count(status.ready_replicas);
    snapshot.available = count(status.available_replicas);
    snapshot.paused = read.paused();
    snapshot.generation_observed = status.observed_generation >= deployment.metadata.generation;
    let conditions = status.conditions.unwrap_or_default();
    snapshot.progress_deadline_exceeded = conditions.iter().any(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    snapshot.conditions = conditions
        .iter()
        .map(|c| {
            Condition::new(
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
        .collect();
    if let Some(current) = read.current() {
        snapshot.current_revision = revision_of(current);
        snapshot.current_fingerprint = Some(fingerprint_of(current));
    }
    let revisions: BTreeMap<String, Option<RevisionId>> = owned
        .iter()
        .map(|rs| (rs.metadata.uid.clone().unwrap_or_default(), revision_of(rs)))
        .collect();
    let mut uids: HashSet<String> = HashSet::new();
    uids.insert(deployment.metadata.uid.clone().unwrap_or_default());
    for pod in pods {
        let owner = pod
            .metadata
            .owner_references
            .as_ref()
            .and_then(|refs| refs.iter().find(|r| r.controller == Some(true)))
            .map(|r| r.uid.clone());
        let Some(revision) = owner.and_then(|uid| revisions.get(&uid).copied()) else {
            continue;
        };
        uids.insert(pod.metadata.uid.clone().unwrap_or_default());
        snapshot.pods.push(pod_state(pod, revision));
    }
    let mut records: Vec<(String, EventRecord)> = events
        .iter()
        .filter(|e| {
            e.involved_object
                .uid
                .as_ref()
                .is_some_and(|u| uids.contains(u))
        })
        .map(|e| {
            let object = format!(
                "{}/{}",
                e.involved_object
                    .kind
                    .clone()
                    .unwrap_or_default()
                    .to_lowercase(),
                e.involved_object.name.clone().unwrap_or_default()
            );
            let mut record = EventRecord::warning(
                object,
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default(),
            );
            record.kind = e.type_.clone().unwrap_or_default();
            record.count = u32::try_from(e.count.unwrap_or(1)).unwrap_or(1);
            let at = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default();
            (at, record)
        })
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    snapshot.events = records.into_iter().map(|(_, r)| r).collect();
    snapshot
}

fn pod_state(pod: &Pod, revision: Option<RevisionId>) -> PodState {
    let status = pod.status.clone().unwrap_or_default();
    let containers = status.container_statuses.unwrap_or_default();
    let ready = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let mut state = PodState::default();
    state.name = pod.metadata.name.clone().unwrap_or_default();
    state.revision = revision;
    state.phase = status.phase.unwrap_or_default();
    state.ready = ready;
    state.restarts = containers
        .iter()
        .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
        .sum();
    if let Some(waiting) = containers
        .iter()
        .find_map(|c| c.state.as_ref().and_then(|s| s.waiting.clone()))
    {
        state.waiting_reason = waiting.reason;
        state.message = waiting.message;
    }
    state.last_termination_reason = containers
        .iter()
        .find_map(|c| {
            c.last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.reason.clone())
        })
        .or_else(|| {
            containers.iter().find_map(|c| {
                c.state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .and_then(|t| t.reason.clone())
            })
        });
    if state.message.is_none() && !ready {
        state.message = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            })
            .and_then(|c| c.message.clone());
    }
    state
}

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
        let read = self.read("observe").await?;
        let pods = self
            .pods
            .list(&ListParams::default().labels(&Self::selector(&read.deployment)))
            .await
            .map_err(self.err("observe"))?;
        let mut snapshot = snapshot_of(&read.deployment, &read.owned, &pods.items, &[]);
        if needs_evidence(&snapshot) {
            let events = self
                .events
                .list(&ListParams::default())
                .await
                .map_err(self.err("observe"))?;
            snapshot = snapshot_of(&read.deployment, &read.owned, &pods.items, &events.items);
            self.attach_logs(&mut snapshot).await;
        }
        Ok(snapshot)
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        let read = self.read("history").await?;
        Ok(read.owned.iter().filter_map(to_revision).collect())
    }

    async fn rollback_to(
        &self,
        revision: RevisionId,
        options: RollbackOptions,
    ) -> Result<RollbackOutcome> {
        let read = self.read("rollback_to").await?;
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
        let (Some(template), Some(desired)) = (rs_template(target), read.template()) else {
            return Err(Error::new(
                ErrorKind::Unexpected,
                "a ReplicaSet or the deployment has no pod template",
            )
            .with_object(self.object()));
        };
        if templates_equal(template, desired) {
            return Ok(RollbackOutcome::AlreadyCurrent { revision });
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
        self.patch_deployment("rollback_to", &read, ops).await?;
        Ok(RollbackOutcome::RolledBack {
            from: current,
            to: revision,
        })
    }

    async fn set_paused(&self, paused: bool) -> Result<()> {
        let read = self.read("set_paused").await?;
        if read.paused() == paused {
            return Ok(());
        }
        self.patch_deployment(
            "set_paused",
            &read,
            vec![json!({"op": "add", "path": "/spec/paused", "value": paused})],
        )
        .await
        .map(drop)
    }

    async fn scale(&self, replicas: u32) -> Result<()> {
        let deployment = self
            .deployments
            .get(&self.name)
            .await
            .map_err(self.err("scale"))?;
        let read = Read {
            deployment,
            owned: Vec::new(),
        };
        self.patch_deployment(
            "scale",
            &read,
            vec![json!({"op": "add", "path": "/spec/replicas", "value": replicas})],
        )
        .await
        .map(drop)
    }

    async fn mark_verified(&self, revision: RevisionId) -> Result<()> {
        let read = self.read("mark_verified").await?;
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
        let patch = conditional_patch(rs.metadata.generation.unwrap_or(0), ops)?;
        self.replica_sets
            .patch(&name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
            .map(drop)
            .map_err(|e| {
                from_kube(
                    e,
                    "mark_verified",
                    &format!("replicaset {}/{name}", self.namespace),
                )
            })
    }

    async fn markers(&self) -> Result<BTreeMap<String, String>> {
        let deployment = self
            .deployments
            .get(&self.name)
            .await
            .map_err(self.err("markers"))?;
        Ok(deployment
            .metadata
            .annotations
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k.starts_with(MARKER_PREFIX))
            .collect())
    }

    async fn set_marker(&self, key: &str, value: Option<String>) -> Result<()> {
        deployguard_core::check_marker_key(key)?;
        let deployment = self
            .deployments
            .get(&self.name)
            .await
            .map_err(self.err("set_marker"))?;
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
        self.patch_deployment("set_marker", &read, ops)
            .await
            .map(drop)
    }
}
