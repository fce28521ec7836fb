//! The operator: every Deployment a `RolloutGuard` resource (`deployguard.dev/v1alpha1`) names is
//! guarded whenever it starts a rollout, by the policy in the resource's spec ([`GuardSpec`]).
//! Several replicas run; one acts, by a Lease (client-go's leader election); another takes over
//! within the lease's time when it dies, and a recovery it finds half done is finished from the
//! Deployment's own markers, never started again.
//!
//! What it decided is in each RolloutGuard's status (phase, `Ready` condition, the last decision
//! and outcome, `observedGeneration`), on `kubectl get rolloutguards`, and as Events on the
//! Deployment. A spec the API server's schema cannot refuse but the guard cannot use is
//! reported as `Ready=False, reason=InvalidSpec` with the field named, and nothing is guarded.

mod manifests;
mod schema;
mod status;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deployguard_core::engine::{GuardOutcome, JournalSink};
use deployguard_core::spec::GuardSpec;
use deployguard_core::{ActorLock, Error, LockState};
use deployguard_k8s::{JobMigrationInspector, KubeDeployment, KubeEvents, LeaseLock};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::task::JoinHandle;

pub use manifests::{api_resource, crd, manifests};
pub use status::StatusJournal;

use crate::guard::SpecProbes;

/// The API group, version and kind of the resource.
pub const GROUP: &str = "deployguard.dev";
/// Its version.
pub const VERSION: &str = "v1alpha1";
/// Its kind.
pub const KIND: &str = "RolloutGuard";

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct OperatorOptions {
    /// Who this replica is (the leader lease's holder): the pod's name, by default.
    pub identity: String,
    /// Where the leader lease lives (the operator's own namespace).
    pub lease_namespace: String,
    /// How long leadership lasts without a renewal (renewed every third of it).
    pub lease_ttl: Duration,
    /// How often everything is looked at again, beside the watches' changes.
    pub resync: Duration,
    /// Only RolloutGuards in this namespace (a shard); `None`: every namespace.
    pub namespace: Option<String>,
    /// Only RolloutGuards with these labels (`team=shop`): a shard of a large cluster.
    pub selector: Option<String>,
}

impl Default for OperatorOptions {
    fn default() -> Self {
        Self {
            identity: format!("deployguard-operator-{}", std::process::id()),
            lease_namespace: "deployguard-system".into(),
            lease_ttl: Duration::from_secs(15),
            resync: Duration::from_secs(30),
            namespace: None,
            selector: None,
        }
    }
}

/// What the operator tells about itself: leadership, readiness.
#[derive(Debug, Default)]
pub struct OperatorState {
    /// Whether this replica leads.
    pub leading: AtomicBool,
    /// Whether it has read the resources once (`/readyz`).
    pub ready: AtomicBool,
}

/// A rollout as a guard was started for it: the Deployment's generation, and the recovery
/// marker.
type Seen = (Option<i64>, Option<String>);

/// One guard at work. Dropped (leadership lost, the operator stopped), it stops: a replica
/// that no longer leads must not act.
struct Guarding {
    task: JoinHandle<()>,
}

impl Drop for Guarding {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the operator until `shutdown` resolves: leads when it can, and while it leads guards
/// every rollout a RolloutGuard names. `journal` gets every guard's events too (metrics).
pub async fn run(
    client: kube::Client,
    options: OperatorOptions,
    state: Arc<OperatorState>,
    journal: Option<Arc<dyn JournalSink>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let leader = LeaseLock::new(
        client.clone(),
        &options.lease_namespace,
        "deployguard-operator",
    );
    let mut guarding: HashMap<(String, String), Guarding> = HashMap::new();
    // What each resource's rollout looked like when a guard last started for it.
    let mut guarded: HashMap<(String, String), Seen> = HashMap::new();
    // The RolloutGuards and Deployments, each kept current by one watch: a pass reads them
    // from memory and asks the API server nothing unless there is something to do.
    let watches = Watches::start(&client, &options);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let leads = matches!(
            leader.acquire(&options.identity, options.lease_ttl).await,
            Ok(LockState::Held)
        );
        let led = state.leading.swap(leads, Ordering::SeqCst);
        if leads != led {
            tracing::info!(identity = %options.identity, leads, "leadership changed");
        }
        if !leads {
            // Another replica acts: stop every guard of ours at once.
            guarding.clear();
        } else {
            if watches.ready() {
                pass(
                    &client,
                    &options,
                    &watches,
                    &mut guarding,
                    &mut guarded,
                    journal.as_ref(),
                )
                .await;
                state.ready.store(true, Ordering::SeqCst);
            }
        }
        // A change seen by a watch wakes the next pass; leadership is renewed every third of
        // the lease's time, and everything looked at again every resync.
        tokio::select! {
            () = &mut shutdown => break,
            () = watches.changed.notified() => {}
            () = tokio::time::sleep(options.resync.min(options.lease_ttl / 3)) => {}
        }
    }
    guarding.clear();
    watches.stop();
    let _ = leader.release(&options.identity).await;
    Ok(())
}

/// The watches the operator reads from.
struct Watches {
    guards: Store<DynamicObject>,
    deployments: Store<Deployment>,
    changed: Arc<tokio::sync::Notify>,
    /// Set when both watches have listed what there is.
    listed: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Watches {
    fn start(client: &kube::Client, options: &OperatorOptions) -> Self {
        let resource = api_resource();
        let changed = Arc::new(tokio::sync::Notify::new());
        let (guard_api, deployment_api): (Api<DynamicObject>, Api<Deployment>) =
            match &options.namespace {
                Some(namespace) => (
                    Api::namespaced_with(client.clone(), namespace, &resource),
                    Api::namespaced(client.clone(), namespace),
                ),
                None => (
                    Api::all_with(client.clone(), &resource),
                    Api::all(client.clone()),
                ),
            };
        let mut config = watcher::Config::default();
        if let Some(selector) = &options.selector {
            config = config.labels(selector);
        }
        let writer = reflector::store::Writer::new(resource);
        let guards = writer.as_reader();
        let guard_events = watcher(guard_api, config).default_backoff().reflect(writer);
        let (deployments, writer) = reflector::store();
        let deployment_events = watcher(deployment_api, watcher::Config::default())
            .default_backoff()
            .reflect(writer);
        let listed = Arc::new(AtomicBool::new(false));
        let (first, second, done) = (guards.clone(), deployments.clone(), Arc::clone(&listed));
        let woken = Arc::clone(&changed);
        let tasks = vec![
            tokio::spawn(wake_on(guard_events, Arc::clone(&changed))),
            tokio::spawn(wake_on(deployment_events, Arc::clone(&changed))),
            tokio::spawn(async move {
                if first.wait_until_ready().await.is_ok() && second.wait_until_ready().await.is_ok()
                {
                    done.store(true, Ordering::SeqCst);
                    woken.notify_one();
                }
            }),
        ];
        Self {
            guards,
            deployments,
            changed,
            listed,
            tasks,
        }
    }

    /// Whether both watches have listed what there is.
    fn ready(&self) -> bool {
        self.listed.load(Ordering::SeqCst)
    }

    fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Drives a watch, waking the operator on every event (a failed watch retries with backoff).
async fn wake_on<S, E>(events: S, changed: Arc<tokio::sync::Notify>)
where
    S: futures::Stream<Item = Result<E, watcher::Error>>,
{
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        if let Err(err) = event {
            tracing::debug!("a watch failed, retrying: {err}");
        }
        changed.notify_one();
    }
}

/// One look at every RolloutGuard, from the watches: status for a spec that cannot be used, a
/// guard for a rollout that started or a recovery left unfinished.
async fn pass(
    client: &kube::Client,
    options: &OperatorOptions,
    watches: &Watches,
    guarding: &mut HashMap<(String, String), Guarding>,
    guarded: &mut HashMap<(String, String), Seen>,
    journal: Option<&Arc<dyn JournalSink>>,
) {
    guarding.retain(|_, guard| !guard.task.is_finished());
    for object in watches.guards.state() {
        let (Some(namespace), Some(name)) = (
            object.metadata.namespace.clone(),
            object.metadata.name.clone(),
        ) else {
            continue;
        };
        let status = StatusJournal::new(
            client.clone(),
            &namespace,
            &name,
            object.metadata.generation,
            object.data.get("status").cloned(),
        );
        let key = (namespace.clone(), name.clone());
        let spec = match read_spec(&object, &namespace) {
            Ok(spec) => spec,
            Err(err) => {
                status.invalid(&err).await;
                continue;
            }
        };
        let deployment = match KubeDeployment::try_new(
            client.clone(),
            spec.namespace(),
            &spec.target.deployment,
        ) {
            Ok(deployment) => deployment,
            Err(err) => {
                let named = Error::invalid_input("target.deployment", err.message());
                status.invalid(&named).await;
                continue;
            }
        };
        status.valid(&spec).await;
        if guarding.contains_key(&key) {
            continue;
        }
        let Some(current) = watches
            .deployments
            .get(&ObjectRef::new(&spec.target.deployment).within(spec.namespace()))
        else {
            status
                .phase("TargetMissing", "the target Deployment does not exist")
                .await;
            continue;
        };
        // A recovery the Deployment's marker says is unfinished (its actor died: another
        // replica, or this one before a restart) is finished from where it stopped.
        let marker = current
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(deployguard_core::engine::RECOVERY))
            .cloned();
        let unfinished = marker.as_deref().is_some_and(|m| {
            serde_json::from_str::<serde_json::Value>(m)
                .ok()
                .is_some_and(|v| matches!(v["state"].as_str(), Some("in_progress" | "failed")))
        });
        if !(rolling_out(&current) || unfinished) {
            continue;
        }
        // Each rollout (and each state of its recovery) is guarded once: a guard that ended
        // paused or failed is not started again until something changes.
        let seen = (current.metadata.generation, marker);
        if guarded.get(&key) == Some(&seen) {
            continue;
        }
        guarded.insert(key.clone(), seen);
        // Events on the RolloutGuard too: `kubectl describe rolloutguard` says what it decided.
        let resource = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(format!("{GROUP}/{VERSION}")),
            kind: Some(KIND.into()),
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            uid: object.metadata.uid.clone(),
            ..Default::default()
        };
        let task = spawn_guard(
            client.clone(),
            resource,
            options.identity.clone(),
            spec,
            deployment,
            status,
            journal.cloned(),
        );
        guarding.insert(key, Guarding { task });
    }
}

/// Whether a Deployment is rolling out, as `kubectl rollout status` judges it: its controller
/// has not seen the latest spec, or not every replica runs the new template and is available.
/// A paused rollout is not (someone paused it on purpose).
fn rolling_out(deployment: &Deployment) -> bool {
    let spec = deployment.spec.as_ref();
    if spec.and_then(|s| s.paused).unwrap_or(false) {
        return false;
    }
    let Some(status) = deployment.status.as_ref() else {
        return true;
    };
    let wanted = spec.and_then(|s| s.replicas).unwrap_or(1);
    status.observed_generation < deployment.metadata.generation
        || status.updated_replicas.unwrap_or(0) < wanted
        || status.replicas.unwrap_or(0) > status.updated_replicas.unwrap_or(0)
        || status.available_replicas.unwrap_or(0) < status.updated_replicas.unwrap_or(0)
}

/// The resource's spec as a [`GuardSpec`], its target's namespace the resource's own.
fn read_spec(object: &DynamicObject, namespace: &str) -> Result<GuardSpec, Error> {
    let mut value = object.data.get("spec").cloned().unwrap_or_default();
    if let Some(target) = value.get_mut("target").and_then(|t| t.as_object_mut()) {
        match target.get("namespace").and_then(|n| n.as_str()) {
            Some(other) if other != namespace => {
                return Err(Error::invalid_input(
                    "target.namespace",
                    format!("{other:?} is not the RolloutGuard's own namespace {namespace:?}"),
                ));
            }
            _ => {
                target.insert("namespace".into(), namespace.into());
            }
        }
    }
    GuardSpec::from_value(value)
}

fn spawn_guard(
    client: kube::Client,
    resource: k8s_openapi::api::core::v1::ObjectReference,
    identity: String,
    spec: GuardSpec,
    deployment: KubeDeployment,
    status: StatusJournal,
    journal: Option<Arc<dyn JournalSink>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let namespace = spec.namespace().to_owned();
        let name = spec.target.deployment.clone();
        let traffic = match crate::guard::traffic_parts(&spec, &client).await {
            Ok(traffic) => traffic,
            Err(err) => {
                status.invalid(&err).await;
                return;
            }
        };
        let built = (|| -> Result<_, Error> {
            let resolver = SpecProbes::new(&namespace, deployment.clone());
            let mut builder = spec
                .guard_builder(Arc::new(deployment.clone()), &resolver)?
                // Its journal goes to `tracing` (the operator's log) by itself.
                .journal(Arc::new(status.clone()))
                .lock(
                    Arc::new(LeaseLock::new(client.clone(), &namespace, &name)),
                    &identity,
                );
            if let Some(parts) = traffic {
                builder = builder.router(parts.router);
                if let Some(stable) = parts.stable {
                    builder = builder.stable(Arc::new(stable));
                }
            }
            if spec.migrations.inspect_jobs {
                builder = builder.migrations(Arc::new(JobMigrationInspector::new(
                    client.clone(),
                    &namespace,
                )));
            }
            if spec.notifications.events && !spec.dry_run {
                builder = builder
                    .journal(Arc::new(KubeEvents::new(
                        client.clone(),
                        &namespace,
                        &name,
                    )?))
                    .journal(Arc::new(KubeEvents::on_object(client.clone(), resource)?));
            }
            if let Some(journal) = journal {
                builder = builder.journal(journal);
            }
            builder.build()
        })();
        let guard = match built {
            Ok(guard) => guard,
            Err(err) => {
                status.invalid(&err).await;
                return;
            }
        };
        status.phase("Guarding", "a rollout started").await;
        let report = guard.run().await;
        let phase = match &report.outcome {
            GuardOutcome::Promoted { .. } => "Promoted",
            GuardOutcome::RolledBack { .. } => "RolledBack",
            GuardOutcome::Paused { .. } => "Paused",
            _ => "Failed",
        };
        status.finished(phase, &report.outcome.to_string()).await;
    })
}
