//! Kubernetes objects → deployguard's model: pure functions, no I/O. [`KubeDeployment`] and the
//! fleet's caches both build their snapshots and histories here.
//!
//! [`KubeDeployment`]: crate::KubeDeployment

use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use deployguard_core::{
    Condition, EventRecord, Fingerprint, PodState, Revision, RevisionId, RolloutSnapshot,
    SchemaVersion,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::annotations::{
    POD_TEMPLATE_HASH, REQUIRES_SCHEMA, REVISION, REVISION_HISTORY, VERIFIED,
};

/// What one read of the deployment found.
pub(crate) struct Read {
    pub(crate) deployment: Deployment,
    /// ReplicaSets the deployment controls, oldest revision first.
    pub(crate) owned: Vec<ReplicaSet>,
}

impl Read {
    /// The generation read: what the write is conditional on. Unlike the resourceVersion it
    /// moves only when spec or annotations change — what a decision was made from — not when a
    /// controller writes status, which it does all through a rollout.
    pub(crate) fn generation(&self) -> i64 {
        self.deployment.metadata.generation.unwrap_or(0)
    }

    pub(crate) fn template(&self) -> Option<&PodTemplateSpec> {
        self.deployment.spec.as_ref().map(|s| &s.template)
    }

    /// The ReplicaSet whose template is the deployment's (ignoring the hash label).
    pub(crate) fn current(&self) -> Option<&ReplicaSet> {
        current_of(&self.deployment, &self.owned)
    }

    pub(crate) fn paused(&self) -> bool {
        paused(&self.deployment)
    }
}

/// The ReplicaSet of `owned` whose template is the deployment's (ignoring the hash label).
pub(crate) fn current_of<'a>(
    deployment: &Deployment,
    owned: &'a [ReplicaSet],
) -> Option<&'a ReplicaSet> {
    let template = without_hash(&deployment.spec.as_ref()?.template);
    owned
        .iter()
        .find(|rs| rs_template(rs).is_some_and(|t| without_hash(t) == template))
}

fn paused(deployment: &Deployment) -> bool {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.paused)
        .unwrap_or(false)
}

pub(crate) fn rs_template(rs: &ReplicaSet) -> Option<&PodTemplateSpec> {
    rs.spec.as_ref().and_then(|s| s.template.as_ref())
}

/// A template as JSON without the pod-template-hash label.
pub(crate) fn without_hash(template: &PodTemplateSpec) -> Value {
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

pub(crate) fn templates_equal(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

pub(crate) fn annotation(meta: &ObjectMeta, key: &str) -> Option<String> {
    meta.annotations.as_ref().and_then(|a| a.get(key)).cloned()
}

pub(crate) fn revision_of(rs: &ReplicaSet) -> Option<RevisionId> {
    annotation(&rs.metadata, REVISION)
        .and_then(|r| r.parse().ok())
        .map(RevisionId)
}

pub(crate) fn fingerprint_of(rs: &ReplicaSet) -> Fingerprint {
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
    let images = template.map(images_of).unwrap_or_default();
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

pub(crate) fn answers_to(rs: &ReplicaSet, id: RevisionId) -> bool {
    to_revision(rs).is_some_and(|r| r.answers_to(id))
}

pub(crate) fn owned_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references.as_ref().is_some_and(|refs| {
        refs.iter()
            .any(|r| r.uid == uid && r.controller == Some(true))
    })
}

pub(crate) fn needs_evidence(snapshot: &RolloutSnapshot) -> bool {
    snapshot.progress_deadline_exceeded || snapshot.pods.iter().any(|p| !p.ready)
}

/// The snapshot of `deployment` from its owned ReplicaSets (`current` among them: the one
/// running its template, see [`current_of`]), the pods they own, and `events` (only those about
/// these pods or the deployment are kept), at `now` on the API server's clock when known (pod
/// ages need it). Pure: the fleet cache and the direct backend share it.
pub(crate) fn snapshot_of(
    deployment: &Deployment,
    owned: &[ReplicaSet],
    current: Option<&ReplicaSet>,
    pods: &[Pod],
    events: &[Event],
    now: Option<SystemTime>,
) -> RolloutSnapshot {
    let status = deployment.status.clone().unwrap_or_default();
    let count = |v: Option<i32>| u32::try_from(v.unwrap_or(0)).unwrap_or(0);
    let replicas = deployment.spec.as_ref().and_then(|s| s.replicas);
    let mut snapshot = RolloutSnapshot::new(count(replicas.or(Some(1))));
    snapshot.total = count(status.replicas);
    snapshot.updated = count(status.updated_replicas);
    snapshot.ready = count(status.ready_replicas);
    snapshot.available = count(status.available_replicas);
    snapshot.paused = paused(deployment);
    snapshot.observed_at = now;
    snapshot.patience = crate::patience::declared(deployment);
    snapshot.template_changed_by = crate::writes::changed_elsewhere(deployment);
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
    if let Some(current) = current {
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
        let mut state = pod_state(pod, revision);
        (state.age, state.ready_after) = crate::patience::ages(pod, now);
        snapshot.pods.push(state);
    }
    let mut records: Vec<(Option<k8s_openapi::jiff::Timestamp>, EventRecord)> = events
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
            record.count = times_seen(e);
            (last_seen(e), record)
        })
        .collect();
    // Oldest first by time, not by text (RFC 3339 with and without fractions misorder as text).
    records.sort_by_key(|(at, _)| *at);
    snapshot.events = records.into_iter().map(|(_, r)| r).collect();
    // Each pod's latest readiness probe failure, as the kubelet reported it.
    for pod in &mut snapshot.pods {
        let object = format!("pod/{}", pod.name);
        pod.probe_failure = snapshot
            .events
            .iter()
            .rev()
            .find(|e| {
                e.object == object
                    && e.reason == "Unhealthy"
                    && e.message.starts_with("Readiness probe failed")
            })
            .map(|e| e.message.clone());
    }
    snapshot
}

pub(crate) fn pod_state(pod: &Pod, revision: Option<RevisionId>) -> PodState {
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

/// When an event last happened, whichever API wrote it: a `core/v1` writer sets
/// `lastTimestamp`; an `events.k8s.io/v1` writer (the kubelet and controllers since 1.25) sets
/// `eventTime` and, once it repeats, `series.lastObservedTime`, leaving `lastTimestamp` empty.
pub(crate) fn last_seen(e: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    e.series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| t.0)
        .or(e.last_timestamp.as_ref().map(|t| t.0))
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.first_timestamp.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// How many times an event happened: `series.count` (`events.k8s.io/v1`) or `count` (core/v1).
pub(crate) fn times_seen(e: &Event) -> u32 {
    let count = e
        .series
        .as_ref()
        .and_then(|s| s.count)
        .or(e.count)
        .unwrap_or(1);
    u32::try_from(count).unwrap_or(1).max(1)
}

/// The images a pod template runs, container by container.
pub(crate) fn images_of(template: &k8s_openapi::api::core::v1::PodTemplateSpec) -> Vec<String> {
    template
        .spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod event_tests {
    use super::*;
    use k8s_openapi::api::core::v1::EventSeries;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

    fn at(text: &str) -> k8s_openapi::jiff::Timestamp {
        text.parse().unwrap()
    }

    /// An `events.k8s.io/v1` event read through core/v1 has no `lastTimestamp` or `count`: its
    /// series says how often and when last.
    #[test]
    fn both_event_apis_are_read_for_time_and_count() {
        let legacy = Event {
            count: Some(4),
            last_timestamp: Some(Time(at("2026-12-04T10:00:05Z"))),
            ..Event::default()
        };
        let new_api = Event {
            event_time: Some(MicroTime(at("2026-12-04T10:00:01.250000Z"))),
            series: Some(EventSeries {
                count: Some(7),
                last_observed_time: Some(MicroTime(at("2026-12-04T10:00:05.500000Z"))),
            }),
            ..Event::default()
        };
        let single = Event {
            event_time: Some(MicroTime(at("2026-12-04T09:59:59.000001Z"))),
            ..Event::default()
        };
        assert_eq!(times_seen(&legacy), 4);
        assert_eq!(times_seen(&new_api), 7);
        assert_eq!(times_seen(&single), 1);
        let mut events = [&new_api, &single, &legacy];
        events.sort_by_key(|e| last_seen(e));
        let order: Vec<u32> = events.iter().map(|e| times_seen(e)).collect();
        // 09:59:59.000001, 10:00:05, 10:00:05.5: as time orders them, not as text would.
        assert_eq!(order, [1, 4, 7]);
    }
}
