//! [`KubeEvents`]: what a guard decided, as Kubernetes Events on the guarded Deployment, so that
//! `kubectl describe deployment` and every dashboard that shows Events say it: "deployguard:
//! rolled back app:v2.4.0 (86dc4c94cb) to app:v2.3.1 (5b98b594d6): …". A journal sink that never
//! blocks its guard: Events wait in a bounded queue for a task that writes them (best effort:
//! one that cannot be written is logged and dropped, never retried past the next).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use deployguard_core::engine::{Decision, EventKind, GuardOutcome, JournalEvent, JournalSink};
use deployguard_core::{Error, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::Api;
use tokio::sync::mpsc;

use crate::names::{check_label, check_subdomain};

/// Events waiting to be written; more are dropped (and counted).
const QUEUE: usize = 64;

/// The component Events name as their source.
pub const COMPONENT: &str = "deployguard";

/// One Event to write: its reason, whether it is a warning, and its message.
#[derive(Debug)]
struct Notice {
    reason: &'static str,
    warning: bool,
    message: String,
}

/// Writes Events on Deployment `name` in `namespace` for each abort, pause and outcome of the
/// guard whose journal it is given. Clones share the queue.
#[derive(Debug, Clone)]
pub struct KubeEvents {
    sender: mpsc::Sender<Notice>,
    dropped: Arc<AtomicU64>,
}

impl KubeEvents {
    /// Events on Deployment `namespace/name`, written with `client` (which needs `create` on
    /// `events`: see [`rbac`](crate::rbac)). Must be called inside a tokio runtime: it starts
    /// the task that writes.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Result<Self> {
        check_label("namespace", namespace)?;
        check_subdomain("deployment", name)?;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        let involved = ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("Deployment".into()),
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectReference::default()
        };
        Self::start(client, involved, Some(deployments))
    }

    /// Events on any object (a custom resource that configures the guard: `kubectl describe`
    /// shows them on it). `involved` names it: API version, kind, namespace, name and uid.
    pub fn on_object(client: kube::Client, involved: ObjectReference) -> Result<Self> {
        let namespace = involved.namespace.clone().unwrap_or_default();
        check_label("namespace", &namespace)?;
        check_subdomain("object", involved.name.as_deref().unwrap_or_default())?;
        Self::start(client, involved, None)
    }

    /// Starts the task that writes; a Deployment's uid is read once, when the first Event goes.
    fn start(
        client: kube::Client,
        mut involved: ObjectReference,
        uid_of: Option<Api<Deployment>>,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::invalid_input("kubernetes events", "must be made inside a tokio runtime")
        })?;
        let (sender, mut receiver) = mpsc::channel::<Notice>(QUEUE);
        let namespace = involved.namespace.clone().unwrap_or_default();
        let events: Api<Event> = Api::namespaced(client, &namespace);
        runtime.spawn(async move {
            let name = involved.name.clone().unwrap_or_default();
            while let Some(notice) = receiver.recv().await {
                if involved.uid.is_none()
                    && let Some(deployments) = &uid_of
                {
                    involved.uid = deployments
                        .get(&name)
                        .await
                        .ok()
                        .and_then(|d| d.metadata.uid);
                }
                let event = event(&involved, notice);
                if let Err(err) = events.create(&crate::writes::post_params(), &event).await {
                    tracing::warn!(
                        target: "deployguard::k8s",
                        object = %name,
                        error = %err,
                        "could not write the Kubernetes Event"
                    );
                }
            }
        });
        Ok(Self {
            sender,
            dropped: Arc::default(),
        })
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn event(involved: &ObjectReference, notice: Notice) -> Event {
    let now = k8s_openapi::jiff::Timestamp::now();
    let name = involved.name.clone().unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}.deployguard.")),
            namespace: involved.namespace.clone(),
            ..ObjectMeta::default()
        },
        involved_object: involved.clone(),
        reason: Some(notice.reason.into()),
        message: Some(notice.message),
        type_: Some(if notice.warning { "Warning" } else { "Normal" }.into()),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(COMPONENT.into()),
        action: Some(notice.reason.into()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        ..Event::default()
    }
}

impl JournalSink for KubeEvents {
    fn record(&self, event: &JournalEvent) {
        let notice = match &event.kind {
            EventKind::Decision {
                decision: Decision::Abort(reason),
                ..
            } => Notice {
                reason: "Recovering",
                warning: true,
                message: format!("deployguard: recovering: {reason}"),
            },
            EventKind::Decision {
                decision: Decision::Pause(reason),
                ..
            } => Notice {
                reason: "Paused",
                warning: true,
                message: format!("deployguard: paused: {reason}"),
            },
            EventKind::Finished { outcome } => {
                let (reason, warning) = match outcome {
                    GuardOutcome::Promoted { .. } => ("Promoted", false),
                    GuardOutcome::RolledBack { .. } => ("RolledBack", true),
                    GuardOutcome::Paused { .. } => ("Paused", true),
                    _ => ("GuardFailed", true),
                };
                Notice {
                    reason,
                    warning,
                    message: format!("deployguard: {outcome}"),
                }
            }
            _ => return,
        };
        if self.sender.try_send(notice).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
