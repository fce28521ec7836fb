//! The simulated Kubernetes cluster: an in-memory API server that kube-rs and the real `kubectl`
//! accept, in process (no socket, works under tokio's paused clock) or over HTTP on loopback.
//!
//! ```
//! use deployguard_kube_sim::FakeCluster;
//! use deployguard_kube_sim::k8s_openapi::api::core::v1::ConfigMap;
//! use deployguard_kube_sim::kube::{self, api::{Api, PostParams}};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kube::Error> {
//! let cluster = FakeCluster::new();
//! let config_maps: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("app-config".into());
//! config_maps.create(&PostParams::default(), &cm).await?;
//! assert!(config_maps.get("app-config").await?.metadata.uid.is_some());
//! // Typed access without a client, for assertions:
//! let read: ConfigMap = cluster.object("default", "app-config").unwrap();
//! assert_eq!(read.metadata.name.as_deref(), Some("app-config"));
//! # Ok(())
//! # }
//! ```
//!
//! Tests against outside processes wait with [`wait::until`] and run the real kubectl through
//! [`kubectl::Kubectl`], each with its own temporary kubeconfig and cache.
//!
//! This crate knows nothing of deployguard. What a user's tests add beside the cluster — the
//! deployguard testkit's simulated traffic, for one — plugs in as an [`Extension`] that advances
//! with the cluster's clock and reads where requests go ([`FakeCluster::routes`]).
//!
//! **Not semver-stable.** It follows the needs of deployguard's own tests; pin an exact version
//! if you build on it.
//!
//! # Fidelity
//!
//! It answers as a real API server does, word for word where clients print it (Status
//! messages, Table columns), and its time is tokio's: under a paused clock it is deterministic,
//! and its randomness comes from one seeded generator ([`rng::Rng`]). What is still knowingly
//! different from a real API server:
//!
//! - Field ownership is tracked for writes through the API and the scale subresource (the
//!   simulated controllers' own writes and status writes record no managers); lists without a
//!   merge key are owned whole, and a co-owned field dropped by one applier stays without a change
//!   of value.
//! - RBAC has no escalation checks on creating Roles or bindings; kubectl sends tokens only over
//!   TLS, so a cluster served over plain HTTP is used as the admin.
//! - Protobuf is decoded for ConfigMap, Secret, Namespace, ServiceAccount, Service, Pod,
//!   Deployment, Job, CronJob, `autoscaling/v2` HorizontalPodAutoscaler, PodDisruptionBudget,
//!   ResourceQuota, CertificateSigningRequest,
//!   the RBAC kinds, the review kinds
//!   and TokenRequest bodies only (others are a 415 naming the kind), and answers are always JSON;
//!   `/openapi/v2` has no definitions (kubectl falls back to the server's field validation).
//! - HorizontalPodAutoscalers are stored as `autoscaling/v2` and served as `autoscaling/v1` too,
//!   converted on reads, creates and replaces (a patch of the v1 form is refused: patch v2); the
//!   autoscaler scales on CPU use a test sets
//!   ([`FakeCluster::set_cpu_usage`]) or an extension models ([`Extension::pod_cpu`]: the
//!   testkit's simulated traffic), and its scale-down window is five minutes from its last
//!   scaling rather than a window of recommendations. Ingresses and NetworkPolicies are stored,
//!   with no controller behind them; an approved CertificateSigningRequest is issued a
//!   self-signed certificate (no cluster CA signs it); a refused pod update's message lacks the
//!   spec diff the real one appends. Quotas count pods, CPU, memory, storage, Services and
//!   objects by kind (not extended resources or scopes); LimitRanges bound CPU and memory (not
//!   `maxLimitRequestRatio`).
//! - A new cluster has three worker nodes and a control-plane node; `kube-system` holds the
//!   control plane's static pods and CoreDNS, but no kube-proxy or CNI DaemonSet, and the static
//!   pods have pod IPs rather than their node's.
//! - `exec` and `attach` are served over WebSocket only (the `v5.channel.k8s.io` and
//!   `v4.channel.k8s.io` subprotocols, as kubectl 1.30 and later speak them): exec runs the command language below and nothing else; standard input is read and
//!   dropped. SPDY (kubectl 1.27–1.29) is refused with a message saying so, and there is no
//!   `port-forward` or `cp`.
//!
//! # What containers run
//!
//! A container follows its image's behaviour ([`ImageBehaviour`]: ready after a while, crash
//! looping, failing its probe, …) unless its `command` + `args` are in a small language: `echo`,
//! `sleep N` (`infinity` too), `exit N`, `true`, `false`, `cat FILE` (the keys of mounted
//! ConfigMap and Secret volumes), `printenv`, `$NAME` from its literal `env`, and `sh -c` (any
//! shell) over those with `;`, `&&`, `||` and `while true; do …; done`. Anything else in a script
//! fails as busybox's shell does (`sh: NAME: not found`, exit 127). A script's exit code drives the
//! container's state, the pod's phase and restarts by its restart policy, and Job completion; its
//! output is the container's log, line by line with the time it was printed.
//! - Validation covers what clients hit (names, labels, selectors, rolling-update bounds,
//!   strategies, containers — names, ports, environment names, mounts, requests within limits —
//!   images, pull policies, Job restart policies, immutable Job and StatefulSet fields, custom
//!   resources against their CRD's schema), not every field; the wording of a kind
//!   mismatch between body and URL is ours.
//! - The change history is kept five minutes by time (etcd compacts by revision every five);
//!   pod IPs come from the uid sequence (unique up to 64,000 pods).

mod admission;
mod api;
mod auth;
mod clock;
mod controllers;
mod conversion;
mod dataplane;
mod defaults;
mod discovery;
mod eviction;
mod extension;
mod faults;
mod furniture;
pub mod gateway;
pub mod kubectl;
mod logs;
mod managed;
pub mod mesh;
mod openapi;
mod patch;
mod pointer;
mod protobuf;
mod quantity;
mod remote;
mod resources;
pub mod rng;
mod selectors;
mod serve;
mod services;
mod status;
mod store;
mod structural;
mod table;
mod typed;
pub mod wait;
mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use serde_json::{Value, json};

/// The kube-rs and k8s-openapi this crate speaks, so a test needs no version of its own.
pub use {k8s_openapi, kube};

pub use controllers::{DEFAULT_IMAGES, ImageBehaviour};
pub use dataplane::{Endpoint, Route};
pub use extension::Extension;
pub use faults::{Fault, FaultAction, RequestRecord, Verb, parse_fault};
pub use resources::ResourceType;
pub use serve::ServedCluster;
pub use status::ApiError;
pub use store::{Change, ChangeKind};

use clock::Clock;
use store::Store;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves `resource` from now on (replacing the same group, version and plural).
pub(crate) fn register_type(shared: &Shared, resource: ResourceType) {
    let mut types = lock(&shared.types);
    let types = Arc::make_mut(&mut types);
    types.retain(|t| {
        !(t.group == resource.group && t.version == resource.version && t.plural == resource.plural)
    });
    types.push(resource);
}

/// The types a `CustomResourceDefinition` manifest serves (none for any other object), or the
/// 422 a real server answers for a definition it cannot serve.
pub(crate) fn crd_types(
    rt: &ResourceType,
    manifest: &Value,
) -> Result<Vec<ResourceType>, ApiError> {
    if rt.kind != "CustomResourceDefinition" {
        return Ok(Vec::new());
    }
    let name = manifest
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    resources::types_of_crd(manifest).map_err(|problem| {
        let (field, what) = problem
            .split_once(": ")
            .unwrap_or(("spec", problem.as_str()));
        ApiError::invalid(rt, name, field, what)
    })
}

/// A new CustomResourceDefinition's status as the API server writes it at once: its names
/// accepted (no conflicts in the simulation), `Established`, the storage version stored.
pub(crate) fn crd_status(crd: &Value, now: &str) -> Value {
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage") == Some(&Value::Bool(true)))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or_else(|| json!({})),
        "storedVersions": stored,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    })
}

/// What every handle to one cluster shares.
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    /// The served types; shared, since every request and every controller pass reads them.
    pub(crate) types: Mutex<Arc<Vec<ResourceType>>>,
    pub(crate) faults: Mutex<Vec<Fault>>,
    pub(crate) requests: Mutex<Vec<RequestRecord>>,
    pub(crate) logs: Mutex<logs::Logs>,
    /// Simulated CPU use of pods, which the autoscaler reads.
    pub(crate) cpu_usage: Mutex<controllers::autoscaler::CpuUsage>,
    pub(crate) server_address: Mutex<String>,
    pub(crate) token: Option<String>,
    /// Bearer tokens issued to users and ServiceAccounts.
    pub(crate) tokens: Mutex<auth::Tokens>,
    pub(crate) behaviours: Mutex<controllers::Behaviours>,
    /// What lives beside the cluster and advances with its clock (the testkit's traffic).
    pub(crate) extensions: Mutex<Vec<Arc<dyn Extension>>>,
    pub(crate) mesh: Mutex<mesh::Mesh>,
    pub(crate) gateways: Mutex<gateway::Gateways>,
    /// How long after a pod is marked for deletion the proxies stop sending it requests.
    pub(crate) proxy_lag: Mutex<std::time::Duration>,
    /// What each controller's last run saw (a pass skips those with nothing to do).
    pub(crate) gates: Mutex<controllers::Gates>,
    pub(crate) log_requests: bool,
    pub(crate) controller: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Shared {
    // The bearer token is a credential: Debug never prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("resource_version", &lock(&self.store).resource_version())
            .field("server_address", &*lock(&self.server_address))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.controller).take() {
            task.abort();
        }
    }
}

/// A simulated Kubernetes API server. Clones share one cluster.
#[derive(Debug, Clone)]
pub struct FakeCluster {
    shared: Arc<Shared>,
}

/// Builds a [`FakeCluster`].
#[derive(Default)]
pub struct FakeClusterBuilder {
    token: Option<String>,
    epoch: Option<SystemTime>,
    controllers: bool,
    time_scale: Option<f64>,
    log_requests: bool,
    images: Vec<String>,
}

impl std::fmt::Debug for FakeClusterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeClusterBuilder")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("controllers", &self.controllers)
            .field("time_scale", &self.time_scale)
            .finish_non_exhaustive()
    }
}

impl FakeClusterBuilder {
    /// Requires `Authorization: Bearer <token>` on every request (the kubeconfig carries it).
    pub fn bearer_token(mut self, token: &str) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The wall-clock time the cluster starts at (default: now). Cluster time then advances with
    /// tokio's clock.
    pub fn epoch(mut self, epoch: SystemTime) -> Self {
        self.epoch = Some(epoch);
        self
    }

    /// Runs cluster time `scale` times as fast as tokio's clock (pods start, back-offs and
    /// progress deadlines pass sooner), for demos over HTTP. Values ≤ 0 are ignored.
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.time_scale = Some(scale).filter(|s| *s > 0.0 && s.is_finite());
        self
    }

    /// Prints each request served as one line on stderr: `METHOD PATH[?QUERY] STATUS`.
    pub fn log_requests(mut self, log: bool) -> Self {
        self.log_requests = log;
        self
    }

    /// Runs the simulated controllers (Deployment, ReplicaSet, scheduler and kubelet,
    /// Endpoints, Jobs). Without them the cluster is an API server only. Needs a tokio runtime
    /// at `build()`.
    pub fn controllers(mut self, run: bool) -> Self {
        self.controllers = run;
        self
    }

    /// Adds images to the simulated registry: their containers start and are ready after 2 s.
    /// A new cluster's registry holds [`DEFAULT_IMAGES`]; an image nobody declared (here, with
    /// [`FakeCluster::add_images`] or a behaviour) fails to pull — `ErrImagePull`, then
    /// `ImagePullBackOff` — as a typo'd image does on a real cluster.
    pub fn images<I, S>(mut self, images: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.images.extend(images.into_iter().map(Into::into));
        self
    }

    /// The cluster, with the namespaces a new cluster has.
    pub fn build(self) -> FakeCluster {
        let clock = Clock::new(
            self.epoch.unwrap_or_else(SystemTime::now),
            self.time_scale.unwrap_or(1.0),
        );
        let cluster = FakeCluster {
            shared: Arc::new(Shared {
                store: Mutex::new(Store::new(clock)),
                types: Mutex::new(Arc::new(resources::builtins())),
                faults: Mutex::new(Vec::new()),
                requests: Mutex::new(Vec::new()),
                logs: Mutex::new(HashMap::new()),
                cpu_usage: Mutex::new(Vec::new()),
                server_address: Mutex::new("127.0.0.1:0".into()),
                token: self.token,
                tokens: Mutex::new(auth::Tokens::default()),
                behaviours: Mutex::new({
                    let mut behaviours = controllers::Behaviours::default();
                    behaviours.add_images(self.images.iter().map(String::as_str));
                    behaviours.add_images(furniture::IMAGES);
                    behaviours
                }),
                extensions: Mutex::new(Vec::new()),
                mesh: Mutex::new(mesh::Mesh::default()),
                gateways: Mutex::new(gateway::Gateways::default()),
                proxy_lag: Mutex::new(std::time::Duration::ZERO),
                gates: Mutex::default(),
                log_requests: self.log_requests,
                controller: Mutex::new(None),
            }),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            if let Err(err) = cluster.create(namespace) {
                tracing::error!("creating namespace {ns}: {}", err.message);
            }
        }
        let mut made = Vec::new();
        for object in furniture::objects() {
            match cluster.create(object) {
                Ok(made_one) => made.push(made_one),
                Err(err) => tracing::error!("creating the cluster's furniture: {}", err.message),
            }
        }
        // What the controllers and the kubelet would have made of it, made now with fixed names.
        let find = |kind: &str, name: &str| {
            made.iter()
                .find(|o| o["kind"] == kind && o.pointer("/metadata/name") == Some(&json!(name)))
        };
        let mut owned = Vec::new();
        if let Some(node) = find("Node", furniture::CONTROL_PLANE) {
            owned.extend(furniture::static_pods(node));
        }
        if let Some(deployment) = find("Deployment", "coredns")
            && let (replica_set, pods) = furniture::coredns_replicas(deployment)
            && let Ok(replica_set) = cluster.create(replica_set)
        {
            owned.extend(pods.into_iter().map(|mut pod| {
                pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1",
                    "kind": "ReplicaSet", "controller": true, "blockOwnerDeletion": true,
                    "name": replica_set.pointer("/metadata/name"),
                    "uid": replica_set.pointer("/metadata/uid")}]);
                pod
            }));
        }
        for object in owned {
            if let Err(err) = cluster.create(object) {
                tracing::error!("creating the cluster's furniture: {}", err.message);
            }
        }
        if self.controllers {
            *lock(&cluster.shared.controller) = Some(controllers::start(&cluster.shared));
        }
        cluster
    }
}

impl Default for FakeCluster {
    fn default() -> Self {
        Self::new()
    }
}

/// What a boxed tower service of the simulated API server fails with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The in-process API server as a tower service ([`FakeCluster::api_service`]).
pub type ApiService = tower::util::BoxCloneService<
    http::Request<kube::client::Body>,
    http::Response<
        http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, std::convert::Infallible>,
    >,
    BoxError,
>;

impl FakeCluster {
    /// A handle to shared state (the controllers and the HTTP layer hold the state alone).
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// A cluster with the default namespaces and no authentication.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts building a cluster.
    pub fn builder() -> FakeClusterBuilder {
        FakeClusterBuilder::default()
    }

    /// An in-process `kube::Client` (no socket) whose default namespace is `default`. It acts as
    /// the cluster's admin (`system:masters`).
    pub fn client(&self) -> kube::Client {
        self.client_presenting(None)
    }

    /// An in-process `kube::Client` that presents bearer `token` on every request, so the API
    /// authenticates and authorizes it as that token's identity (see
    /// [`service_account_token`](Self::service_account_token) and [`user_token`](Self::user_token)).
    pub fn client_with_token(&self, token: &str) -> kube::Client {
        self.client_presenting(Some(format!("Bearer {token}")))
    }

    /// The in-process API server as a tower service, for a `kube::Client` built on a stack of
    /// your own: `kube::client::ClientBuilder::new(cluster.api_service(), "default")
    /// .with_layer(&your_layer).build()`. Requests carry no credential (the admin), and an
    /// injected reset or lost response is an error, as a broken connection is.
    pub fn api_service(&self) -> ApiService {
        let shared = Arc::clone(&self.shared);
        tower::util::BoxCloneService::new(tower::service_fn(
            move |request: http::Request<kube::client::Body>| {
                let shared = Arc::clone(&shared);
                async move {
                    let (parts, body) = request.into_parts();
                    let response = match api::collect(body).await {
                        Ok(bytes) => api::handle(shared, api::ApiRequest::new(&parts, bytes)).await,
                        Err(err) => Ok(api::error_response(&err)),
                    };
                    response.map_err(|reset| -> BoxError { Box::new(reset) })
                }
            },
        ))
    }

    fn client_presenting(&self, authorization: Option<String>) -> kube::Client {
        let shared = Arc::clone(&self.shared);
        let authorization =
            authorization.and_then(|value| http::HeaderValue::from_str(&value).ok());
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let shared = Arc::clone(&shared);
            let authorization = authorization.clone();
            async move {
                let (mut parts, body) = request.into_parts();
                if let Some(value) = authorization {
                    parts.headers.insert(http::header::AUTHORIZATION, value);
                }
                match api::collect(body).await {
                    Ok(bytes) => api::handle(shared, api::ApiRequest::new(&parts, bytes)).await,
                    Err(err) => Ok(api::error_response(&err)),
                }
            }
        });
        kube::Client::new(service, "default")
    }

    /// A bearer token that authenticates as user `name` in `groups` (and
    /// `system:authenticated`), as a static token file would on a real cluster. The user may do
    /// what Roles and ClusterRoles bound to the name or a group grant, nothing more.
    ///
    /// ```
    /// use deployguard_kube_sim::FakeCluster;
    /// use deployguard_kube_sim::k8s_openapi::api::core::v1::Pod;
    /// use deployguard_kube_sim::kube::{Api, api::ListParams};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cluster = FakeCluster::new();
    /// let token = cluster.user_token("alice", &["developers"]);
    /// let pods: Api<Pod> = Api::namespaced(cluster.client_with_token(&token), "default");
    /// let err = pods.list(&ListParams::default()).await.unwrap_err();
    /// assert!(err.to_string().contains(r#"User "alice" cannot list resource "pods""#));
    /// # }
    /// ```
    pub fn user_token(&self, name: &str, groups: &[&str]) -> String {
        lock(&self.shared.tokens).issue_user(name, groups)
    }

    /// A token for ServiceAccount `namespace/name`, as `kubectl create token` issues it: valid
    /// for an hour of cluster time and only while the account exists. Fails with the API's
    /// `NotFound` if there is no such account.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> Result<String, ApiError> {
        let rt = self.type_of(&json!({"apiVersion": "v1", "kind": "ServiceAccount"}))?;
        let store = lock(&self.shared.store);
        let account = store.get(&rt, namespace, name)?;
        let answer = auth::token_request(
            &mut lock(&self.shared.tokens),
            &account,
            &json!({}),
            store.clock.now(),
        )?;
        Ok(answer["status"]["token"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Registers a custom resource type without its CRD object. Creating a
    /// `CustomResourceDefinition` (through the API or [`create`](Self::create)) registers every
    /// version it serves, as a real API server does.
    pub fn register(&self, resource: ResourceType) {
        register_type(&self.shared, resource);
    }

    /// Creates an object from its manifest (`apiVersion`, `kind`, `metadata.namespace` pick the
    /// place), as `kubectl create -f` would. Fails with the API's error.
    ///
    /// Unlike a POST, a `status` in the manifest is kept (written through the status
    /// subresource), so tests and scenarios can seed objects in any state. A custom resource is
    /// pruned, defaulted and checked by its CRD's schema, as a POST's is.
    pub fn create(&self, mut manifest: Value) -> Result<Value, ApiError> {
        let rt = self.type_of(&manifest)?;
        let served = crd_types(&rt, &manifest)?;
        api::admit_custom(&self.shared, &rt, &mut manifest)?;
        if rt.kind == "CustomResourceDefinition" && manifest.get("status").is_none() {
            let now = lock(&self.shared.store).clock.rfc3339();
            manifest["status"] = crd_status(&manifest, &now);
        }
        let ns = if rt.namespaced {
            manifest
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_owned()
        } else {
            String::new()
        };
        let status = manifest.get("status").cloned();
        let mut store = lock(&self.shared.store);
        let created = store.create(&rt, &ns, manifest, false)?;
        for served in served {
            register_type(&self.shared, served);
        }
        match status {
            Some(status) if created.get("status") != Some(&status) => {
                let name = created
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let mut with_status = created;
                with_status["status"] = status;
                store.update(&rt, &ns, &name, with_status, store::Part::Status, false)
            }
            _ => Ok(created),
        }
    }

    /// Replaces an object with `manifest` (as a PUT would, conditional on a resourceVersion in
    /// it).
    pub fn replace(&self, mut manifest: Value) -> Result<Value, ApiError> {
        let rt = self.type_of(&manifest)?;
        api::admit_custom(&self.shared, &rt, &mut manifest)?;
        let ns = if rt.namespaced {
            manifest
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_owned()
        } else {
            String::new()
        };
        let name = manifest
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        lock(&self.shared.store).update(&rt, &ns, &name, manifest, store::Part::Main, false)
    }

    /// Reads an object by API version, kind, namespace and name.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let rt = self.type_of(&json!({"apiVersion": api_version, "kind": kind}))?;
        lock(&self.shared.store).get(&rt, if rt.namespaced { namespace } else { "" }, name)
    }

    /// Every object of an API version and kind in `namespace` (all namespaces when empty).
    pub fn list(&self, api_version: &str, kind: &str, namespace: &str) -> Vec<Value> {
        let Ok(rt) = self.type_of(&json!({"apiVersion": api_version, "kind": kind})) else {
            return Vec::new();
        };
        let ns = (!namespace.is_empty()).then_some(namespace);
        lock(&self.shared.store).list(
            &rt,
            ns,
            &selectors::LabelSelector::default(),
            &selectors::FieldSelector::default(),
        )
    }

    fn type_of(&self, manifest: &Value) -> Result<ResourceType, ApiError> {
        let api_version = manifest
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = manifest.get("kind").and_then(Value::as_str).unwrap_or("");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        lock(&self.shared.types)
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "no kind \"{kind}\" is registered for version \"{api_version}\""
                ))
            })
    }

    /// A cluster whose controllers run: deployments roll out, pods start and fail.
    pub fn with_controllers() -> Self {
        Self::builder().controllers(true).build()
    }

    /// The cluster's clock: the time its objects' timestamps are written at.
    pub fn now(&self) -> SystemTime {
        lock(&self.shared.store).clock.now()
    }

    /// Adds images to the simulated registry (see [`FakeClusterBuilder::images`]).
    pub fn add_images(&self, images: &[&str]) {
        lock(&self.shared.behaviours).add_images(images.iter().copied());
        controllers::pass(&self.shared);
    }

    /// Runs cluster time `scale` times as fast as tokio's clock from now on (a positive,
    /// finite number; anything else is ignored): a scenario can be set up fast and then watched
    /// slowly. Cluster time goes on from where it is.
    pub fn set_time_scale(&self, scale: f64) {
        if scale > 0.0 && scale.is_finite() {
            lock(&self.shared.store).clock.set_scale(scale);
            controllers::pass(&self.shared);
        }
    }

    /// How containers of `image` behave from now on (an image given a behaviour is in the
    /// registry; a catalogued one without is ready after 2 s).
    pub fn set_image_behaviour(&self, image: &str, behaviour: ImageBehaviour) {
        lock(&self.shared.behaviours).set(image, behaviour);
        // Wake the controllers: nothing in the store changed, so nudge them with a no-op pass.
        controllers::pass(&self.shared);
    }

    /// Creates each of `crds` the cluster does not have yet (installing twice changes nothing).
    fn install_crds(&self, crds: Vec<Value>) -> Result<(), ApiError> {
        for crd in crds {
            let name = crd
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if self
                .get(
                    "apiextensions.k8s.io/v1",
                    "CustomResourceDefinition",
                    "",
                    &name,
                )
                .is_err()
            {
                self.create(crd)?;
            }
        }
        Ok(())
    }

    /// Makes the cluster an Istio mesh: installs the `networking.istio.io` CRDs (VirtualService
    /// and DestinationRule, served in v1, v1beta1 and v1alpha3, stored as v1) and starts a
    /// control plane that applies each VirtualService `config.propagation` after it is written.
    /// Simulated traffic to a Service a VirtualService routes follows the applied weights.
    pub fn install_istio(&self, config: mesh::MeshConfig) -> Result<(), ApiError> {
        self.install_crds(mesh::istio_crds())?;
        lock(&self.shared.mesh).install(config);
        Ok(())
    }

    /// Installs the Gateway API (the standard channel's GatewayClass, Gateway and HTTPRoute
    /// CRDs, `v1`, with their real schemas), a GatewayClass `config.class` for the simulated
    /// controller, and the controller: it accepts the class's Gateways and applies each
    /// HTTPRoute attached to them `config.propagation` after it is written, reporting it in
    /// the route's status. Simulated traffic to a Gateway (by its name) follows the applied
    /// route's weights; see [`gateway`].
    pub fn install_gateway_api(&self, config: gateway::GatewayConfig) -> Result<(), ApiError> {
        self.install_crds(gateway::gateway_api_crds())?;
        if self
            .get(
                "gateway.networking.k8s.io/v1",
                "GatewayClass",
                "",
                &config.class,
            )
            .is_err()
        {
            self.create(
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                "metadata": {"name": config.class},
                "spec": {"controllerName": gateway::CONTROLLER_NAME}}),
            )?;
        }
        lock(&self.shared.gateways).install(config);
        Ok(())
    }

    /// How long the proxies (kube-proxy, a mesh's sidecars) take to stop sending requests to
    /// a pod after it is marked for deletion (default zero: at once). Meanwhile the pod is
    /// still routed to, and once its process has stopped — at its SIGTERM, after its preStop
    /// hook — each request it gets fails: the classic dropped requests of a rolling update
    /// without a preStop hook.
    pub fn set_proxy_lag(&self, lag: std::time::Duration) {
        *lock(&self.shared.proxy_lag) = lag;
    }

    /// Where Service `namespace/service`'s requests go now: its ready endpoints, split by the
    /// mesh's applied route when a VirtualService routes it (see [`Route`]).
    pub fn routes(&self, namespace: &str, service: &str) -> Vec<Route> {
        dataplane::routes(&self.shared, namespace, service)
    }

    /// How containers of `image` behave (see [`set_image_behaviour`](Self::set_image_behaviour)).
    pub fn image_behaviour(&self, image: &str) -> ImageBehaviour {
        lock(&self.shared.behaviours).of(image)
    }

    /// Runs one controller pass now, after advancing the extensions as the controllers' own
    /// passes do (tests that drive time by hand use it).
    pub fn reconcile(&self) {
        self.advance_extensions();
        controllers::pass(&self.shared);
    }

    /// Sets the log text of a pod (`kubectl logs` and `pods/log` read it).
    pub fn set_pod_log(&self, namespace: &str, pod: &str, text: &str) {
        let now = lock(&self.shared.store).clock.now();
        let log = logs::ContainerLog {
            current: text.lines().map(|l| (now, l.to_owned())).collect(),
            ..logs::ContainerLog::default()
        };
        lock(&self.shared.logs).insert((namespace.into(), pod.into()), vec![log]);
    }

    /// Sets the CPU the pods in `namespace` matching `selector` (`app=web`) each use, in
    /// millicores, as a metrics server would report it; the HorizontalPodAutoscaler controller
    /// scales on it, before what an [`Extension::pod_cpu`] models. Without either, the cluster
    /// has no metrics server.
    pub fn set_cpu_usage(&self, namespace: &str, selector: &str, millicores: i64) {
        let mut usage = lock(&self.shared.cpu_usage);
        usage.retain(|(ns, sel, _)| !(ns == namespace && sel == selector));
        usage.push((namespace.to_owned(), selector.to_owned(), millicores));
    }

    /// Adds a fault.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Forgets the change history, as etcd compaction does: a watch from any earlier
    /// resourceVersion is answered with 410 Expired.
    pub fn compact(&self) {
        lock(&self.shared.store).compact();
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).resource_version()
    }

    /// Serves the cluster over HTTP on `127.0.0.1:0`.
    pub async fn serve(&self) -> std::io::Result<ServedCluster> {
        serve::serve(Arc::clone(&self.shared), "127.0.0.1:0", false).await
    }

    /// Serves the cluster over HTTP on `addr`.
    pub async fn serve_on(&self, addr: &str) -> std::io::Result<ServedCluster> {
        serve::serve(Arc::clone(&self.shared), addr, false).await
    }

    /// Serves the cluster over HTTPS on `addr`, with a self-signed certificate made now that
    /// the [kubeconfig](ServedCluster::kubeconfig) trusts. kubectl sends bearer tokens only
    /// over TLS: serve this way to run kubectl as a ServiceAccount or a test user.
    pub async fn serve_tls_on(&self, addr: &str) -> std::io::Result<ServedCluster> {
        serve::serve(Arc::clone(&self.shared), addr, true).await
    }
}
