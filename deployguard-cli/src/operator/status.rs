//! A RolloutGuard's status: what the operator decided, where `kubectl get` and `describe` show
//! it. Written as merge patches of the status subresource, only when something changed.

use std::sync::{Arc, Mutex, PoisonError};

use deployguard_core::Error;
use deployguard_core::engine::{EventKind, JournalEvent, JournalSink};
use deployguard_core::spec::GuardSpec;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::api_resource;

/// Writes one RolloutGuard's status; as a journal sink, its last decision.
#[derive(Clone)]
pub struct StatusJournal {
    api: Api<DynamicObject>,
    name: String,
    generation: Option<i64>,
    /// The status as last read or written, so that nothing is written twice.
    seen: Arc<Mutex<Value>>,
}

impl std::fmt::Debug for StatusJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusJournal")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl StatusJournal {
    /// The status of RolloutGuard `namespace/name` at `generation`, as it was read.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        generation: Option<i64>,
        status: Option<Value>,
    ) -> Self {
        Self {
            api: Api::namespaced_with(client, namespace, &api_resource()),
            name: name.to_owned(),
            generation,
            seen: Arc::new(Mutex::new(status.unwrap_or_else(|| json!({})))),
        }
    }

    fn seen(&self) -> Value {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Merges `change` into the status, unless it is there already.
    async fn merge(&self, change: Value) {
        let before = self.seen();
        let mut after = before.clone();
        merge(&mut after, &change);
        if after == before {
            return;
        }
        let patch = json!({ "status": change });
        match self
            .api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = after;
            }
            Err(err) => tracing::warn!(rolloutguard = %self.name, "writing its status: {err}"),
        }
    }

    fn ready(&self, ready: bool, reason: &str, message: &str) -> Value {
        let current = self.seen();
        let same = current["conditions"].as_array().and_then(|cs| {
            cs.iter().find(|c| {
                c["type"] == "Ready"
                    && c["status"] == if ready { "True" } else { "False" }
                    && c["reason"] == reason
                    && c["message"] == message
                    && c["observedGeneration"] == json!(self.generation)
            })
        });
        match same {
            Some(condition) => json!([condition]),
            None => json!([{
                "type": "Ready",
                "status": if ready { "True" } else { "False" },
                "reason": reason,
                "message": message,
                "observedGeneration": self.generation,
                "lastTransitionTime": now(),
            }]),
        }
    }

    /// The spec cannot be used: `Ready=False, reason=InvalidSpec`, the error naming the field.
    pub async fn invalid(&self, err: &Error) {
        let message = err.message().to_owned();
        self.merge(json!({
            "phase": "Invalid",
            "observedGeneration": self.generation,
            "conditions": self.ready(false, "InvalidSpec", &message),
        }))
        .await;
    }

    /// The spec is read: `Ready=True`.
    pub async fn valid(&self, spec: &GuardSpec) {
        let message = format!(
            "guarding deployment {}/{}",
            spec.namespace(),
            spec.target.deployment
        );
        let phase = match self.seen()["phase"].as_str() {
            None | Some("Invalid") => "Waiting",
            Some(phase) => phase,
        }
        .to_owned();
        self.merge(json!({
            "phase": phase,
            "observedGeneration": self.generation,
            "conditions": self.ready(true, "SpecRead", &message),
        }))
        .await;
    }

    /// The phase, and why.
    pub async fn phase(&self, phase: &str, message: &str) {
        self.merge(json!({"phase": phase, "message": message}))
            .await;
    }

    /// A guard's outcome.
    pub async fn finished(&self, phase: &str, outcome: &str) {
        self.merge(json!({
            "phase": phase,
            "message": outcome,
            "lastOutcome": outcome,
            "lastOutcomeTime": now(),
        }))
        .await;
    }
}

impl JournalSink for StatusJournal {
    fn record(&self, event: &JournalEvent) {
        let EventKind::Decision { decision, .. } = &event.kind else {
            return;
        };
        let decision = decision.to_string();
        if self.seen()["lastDecision"] == decision.as_str() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            this.merge(json!({"lastDecision": decision, "lastDecisionTime": now()}))
                .await;
        });
    }
}

/// JSON merge patch semantics (RFC 7386), for comparing before writing.
fn merge(target: &mut Value, change: &Value) {
    match (target, change) {
        (Value::Object(target), Value::Object(change)) => {
            for (key, value) in change {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, change) => *target = change.clone(),
    }
}
