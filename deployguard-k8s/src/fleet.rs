//! Fleet mode: many guarded deployments share one watch-backed cache per resource kind instead
//! of each polling the API.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use deployguard_core::{
    BackendCapabilities, DeploymentBackend, Error, ErrorKind, Result, Revision, RevisionId,
    RollbackOptions, RollbackOutcome, RolloutSnapshot,
};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::task::JoinHandle;

mod index;
mod views;

use index::{Index, controller_uid, involved_uid};
use views::{DeploymentView, PodView, ReplicaSetView, trim_metadata};

use crate::KubeDeployment;
use crate::annotations::MARKER_PREFIX;
use crate::convert::{needs_evidence, owned_by, snapshot_of, to_revision};

struct Caches {
    client: kube::Client,
    deployments: Store<DeploymentView>,
    replica_sets: Store<ReplicaSetView>,
    pods: Store<PodView>,
    events: Store<Event>,
    /// ReplicaSets by their Deployment's uid, Pods by their ReplicaSet's, Events by their
    /// subject's: what one member reads, found without scanning the others'.
    replica_sets_by_owner: Arc<Index<ReplicaSetView>>,
    pods_by_owner: Arc<Index<PodView>>,
    events_by_subject: Arc<Index<Event>>,
    tasks: Vec<JoinHandle<()>>,
    /// Per watch: `None` while it delivers, else why its cache may be stale.
    health: Vec<(&'static str, WatchHealth)>,
}

/// One watch's last error and when it came: set by its task, read before every cached read.
type WatchHealth = Arc<std::sync::Mutex<Option<(String, tokio::time::Instant)>>>;

/// How long after a watch's last error its cache is still suspect. kube-rs retries a failing
/// watch with a backoff of at most 30 s, so a watch that keeps failing errors again within
/// this window; one that recovered quietly (a resumed watch yields nothing until a change)
/// is trusted again after it.
const SUSPECT_AFTER_ERROR: std::time::Duration = std::time::Duration::from_secs(60);

impl Caches {
    /// `Unavailable` (retryable) when a watch is failing or has ended: its cache may be stale,
    /// and a stale read must never pass for a current one.
    fn check_fresh(&self) -> Result<()> {
        for ((kind, health), task) in self.health.iter().zip(&self.tasks) {
            if task.is_finished() {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("the fleet's {kind} watch has ended; its cache is stale"),
                ));
            }
            let last_error = health
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            if let Some((why, _)) = last_error.filter(|(_, at)| at.elapsed() < SUSPECT_AFTER_ERROR)
            {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("the fleet's {kind} watch is failing ({why}); its cache may be stale"),
                ));
            }
        }
        Ok(())
    }
}

impl Caches {
    /// The cached objects `index` files under `key`.
    fn members<K>(&self, store: &Store<K>, index: &Index<K>, key: &str, namespace: &str) -> Vec<K>
    where
        K: kube::Resource<DynamicType = ()> + Clone,
    {
        index
            .names(key)
            .iter()
            .filter_map(|name| store.get(&ObjectRef::new(name).within(namespace)))
            .map(|obj| (*obj).clone())
            .collect()
    }
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("deployments", &self.deployments.state().len())
            .finish_non_exhaustive()
    }
}

impl Drop for Caches {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One watch per kind (Deployments, ReplicaSets, Pods, Events) in a namespace, shared by every
/// [`FleetDeployment`] made from it. Reads come from the caches; writes go to the API, each
/// conditional on a fresh read, exactly as [`KubeDeployment`] makes them.
///
/// ```no_run
/// use deployguard_core::DeploymentBackend;
/// use deployguard_k8s::Fleet;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let fleet = Fleet::start(kube::Client::try_default().await?, "shop").await?;
/// for name in ["cart", "checkout", "search"] {
///     let snapshot = fleet.deployment(name).observe().await?; // no API request
///     println!("{name}: {}/{} ready", snapshot.ready, snapshot.desired);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Fleet {
    namespace: String,
    caches: Arc<Caches>,
}

fn spawn_reflector<K>(
    api: Api<K>,
    index: Option<Arc<Index<K>>>,
    trim: fn(&mut K),
) -> (Store<K>, JoinHandle<()>, WatchHealth)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(trim)
        .reflect(writer);
    let health: WatchHealth = Arc::default();
    let report = Arc::clone(&health);
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            // The store has the event applied when it comes out of `reflect`; the index follows.
            if let (Ok(event), Some(index)) = (&event, &index) {
                index.apply(event);
            }
            // The watcher retries with backoff; until it delivers again (or stays quiet past
            // the suspect window), reads say so.
            let state = event
                .err()
                .map(|err| (err.to_string(), tokio::time::Instant::now()));
            *report
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = state;
        }
    });
    (reader, task, health)
}

impl Fleet {
    /// Starts the watches for `namespace` and waits until every cache has its first listing.
    pub async fn start(client: kube::Client, namespace: &str) -> Result<Self> {
        let replica_sets_by_owner = Index::new(controller_uid::<ReplicaSetView>);
        let pods_by_owner = Index::new(controller_uid::<PodView>);
        let events_by_subject = Index::new(involved_uid);
        // Each cache keeps what a snapshot or a history is made from (see `views`).
        let (deployments, t1, h1) = spawn_reflector(
            Api::<DeploymentView>::namespaced(client.clone(), namespace),
            None,
            |d| {
                trim_metadata(&mut d.metadata);
                d.metadata.labels = None;
            },
        );
        let (replica_sets, t2, h2) = spawn_reflector(
            Api::<ReplicaSetView>::namespaced(client.clone(), namespace),
            Some(Arc::clone(&replica_sets_by_owner)),
            |rs| trim_metadata(&mut rs.metadata),
        );
        let (pods, t3, h3) = spawn_reflector(
            Api::<PodView>::namespaced(client.clone(), namespace),
            Some(Arc::clone(&pods_by_owner)),
            |pod| {
                trim_metadata(&mut pod.metadata);
                pod.metadata.labels = None;
            },
        );
        let (events, t4, h4) = spawn_reflector(
            Api::<Event>::namespaced(client.clone(), namespace),
            Some(Arc::clone(&events_by_subject)),
            |event| trim_metadata(&mut event.metadata),
        );
        let caches = Caches {
            client,
            deployments,
            replica_sets,
            pods,
            events,
            replica_sets_by_owner,
            pods_by_owner,
            events_by_subject,
            tasks: vec![t1, t2, t3, t4],
            health: vec![
                ("Deployment", h1),
                ("ReplicaSet", h2),
                ("Pod", h3),
                ("Event", h4),
            ],
        };
        let not_ready = |e: reflector::store::WriterDropped| {
            Error::new(ErrorKind::Unavailable, format!("a fleet watch ended: {e}"))
        };
        caches
            .deployments
            .wait_until_ready()
            .await
            .map_err(not_ready)?;
        caches
            .replica_sets
            .wait_until_ready()
            .await
            .map_err(not_ready)?;
        caches.pods.wait_until_ready().await.map_err(not_ready)?;
        caches.events.wait_until_ready().await.map_err(not_ready)?;
        caches.replica_sets_by_owner.wait_until_listed().await;
        caches.pods_by_owner.wait_until_listed().await;
        caches.events_by_subject.wait_until_listed().await;
        Ok(Self {
            namespace: namespace.into(),
            caches: Arc::new(caches),
        })
    }

    /// A backend for deployment `name` that reads from the fleet's caches.
    pub fn deployment(&self, name: &str) -> FleetDeployment {
        FleetDeployment {
            fleet: self.clone(),
            name: name.into(),
            direct: KubeDeployment::new(self.caches.client.clone(), &self.namespace, name),
        }
    }

    /// How many deployments the cache holds.
    pub fn len(&self) -> usize {
        self.caches.deployments.state().len()
    }

    /// Whether the cache holds no deployment.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A [`DeploymentBackend`] reading from a [`Fleet`]'s caches and writing through the API.
#[derive(Debug, Clone)]
pub struct FleetDeployment {
    fleet: Fleet,
    name: String,
    direct: KubeDeployment,
}

impl FleetDeployment {
    /// The deployment and the ReplicaSets it controls, as cached.
    fn cached(&self) -> Result<(DeploymentView, Vec<ReplicaSetView>)> {
        let caches = &self.fleet.caches;
        caches.check_fresh().map_err(|e| {
            e.with_operation("observe")
                .with_object(self.direct.target())
        })?;
        let deployment = caches
            .deployments
            .get(&ObjectRef::new(&self.name).within(&self.fleet.namespace))
            .map(|d| (*d).clone())
            .ok_or_else(|| {
                Error::not_found(format!("deployments.apps \"{}\" not found", self.name))
                    .with_operation("observe")
                    .with_object(self.direct.target())
            })?;
        let uid = deployment.metadata.uid.clone().unwrap_or_default();
        let owned = caches
            .members(
                &caches.replica_sets,
                &caches.replica_sets_by_owner,
                &uid,
                &self.fleet.namespace,
            )
            .into_iter()
            .filter(|rs| owned_by(&rs.metadata, &uid))
            .collect();
        Ok((deployment, owned))
    }
}

impl FleetDeployment {
    fn cached_resource_version(&self) -> Option<String> {
        self.cached()
            .ok()
            .and_then(|(d, _)| d.metadata.resource_version)
    }

    /// Waits (up to 5 s) until the cache has seen a write that moved the deployment past
    /// `before`, so a caller reads its own writes; a cache that does not is an error (the write
    /// took effect; a retry finds it already done).
    async fn catch_up(&self, before: Option<String>) -> Result<()> {
        for _ in 0..500 {
            if self.cached_resource_version() != before {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            "the fleet's cache did not see the write within 5 s; its reads may be stale",
        )
        .with_object(self.direct.target()))
    }

    /// Runs a write of the deployment, then waits for the cache to see it.
    async fn write<T>(
        &self,
        write: impl std::future::Future<Output = Result<T>>,
        changed: impl Fn(&T) -> bool,
    ) -> Result<T> {
        let before = self.cached_resource_version();
        let result = write.await?;
        if changed(&result) {
            self.catch_up(before).await?;
        }
        Ok(result)
    }
}

#[async_trait]
impl DeploymentBackend for FleetDeployment {
    fn target(&self) -> String {
        self.direct.target()
    }

    fn name(&self) -> String {
        self.direct.name()
    }

    fn capabilities(&self) -> BackendCapabilities {
        self.direct.capabilities()
    }

    async fn observe(&self) -> Result<RolloutSnapshot> {
        let (view, owned_views) = self.cached()?;
        let rs_uids: Vec<String> = owned_views
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .collect();
        let current = owned_views.iter().position(|rs| view.is_current(rs));
        let deployment = view.to_deployment();
        let owned: Vec<ReplicaSet> = owned_views
            .iter()
            .map(ReplicaSetView::to_replica_set)
            .collect();
        let current = current.map(|i| &owned[i]);
        let caches = &self.fleet.caches;
        let namespace = &self.fleet.namespace;
        let pods: Vec<Pod> = rs_uids
            .iter()
            .flat_map(|uid| caches.members(&caches.pods, &caches.pods_by_owner, uid, namespace))
            .map(|view| view.to_pod())
            .collect();
        let mut snapshot = snapshot_of(&deployment, &owned, current, &pods, &[], None);
        if needs_evidence(&snapshot) {
            let subjects = std::iter::once(deployment.metadata.uid.clone())
                .chain(pods.iter().map(|p| p.metadata.uid.clone()))
                .flatten();
            let events: Vec<Event> = subjects
                .flat_map(|uid| {
                    caches.members(&caches.events, &caches.events_by_subject, &uid, namespace)
                })
                .collect();
            snapshot = snapshot_of(&deployment, &owned, current, &pods, &events, None);
            self.direct.attach_logs(&mut snapshot).await;
        }
        Ok(snapshot)
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        let (_, owned) = self.cached()?;
        let mut revisions: Vec<Revision> = owned
            .iter()
            .filter_map(|rs| to_revision(&rs.to_replica_set()))
            .collect();
        revisions.sort_by_key(|r| r.id);
        Ok(revisions)
    }

    async fn rollback_to(
        &self,
        revision: RevisionId,
        options: RollbackOptions,
    ) -> Result<RollbackOutcome> {
        self.write(self.direct.rollback_to(revision, options), |o| {
            matches!(o, RollbackOutcome::RolledBack { .. })
        })
        .await
    }

    async fn set_paused(&self, paused: bool) -> Result<()> {
        let changed = self.cached().is_ok_and(|(d, _)| d.paused() != paused);
        self.write(self.direct.set_paused(paused), |_| changed)
            .await
    }

    async fn scale(&self, replicas: u32) -> Result<()> {
        let changed = self
            .cached()
            .is_ok_and(|(d, _)| d.spec.replicas != i32::try_from(replicas).ok());
        self.write(self.direct.scale(replicas), |_| changed).await
    }

    async fn mark_verified(&self, revision: RevisionId) -> Result<()> {
        self.direct.mark_verified(revision).await?;
        // Wait for the ReplicaSet cache to show the marker.
        for _ in 0..500 {
            if self
                .history()
                .await?
                .iter()
                .any(|r| r.answers_to(revision) && r.verified)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Ok(())
    }

    async fn markers(&self) -> Result<BTreeMap<String, String>> {
        let (deployment, _) = self.cached()?;
        Ok(deployment
            .metadata
            .annotations
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k.starts_with(MARKER_PREFIX))
            .collect())
    }

    async fn set_marker(&self, key: &str, value: Option<String>) -> Result<()> {
        let changed = self.markers().await?.get(key) != value.as_ref();
        self.write(self.direct.set_marker(key, value), |_| changed)
            .await
    }
}
