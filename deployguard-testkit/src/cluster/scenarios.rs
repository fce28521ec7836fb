//! Named, reproducible incidents. Each one needs a cluster whose controllers run
//! ([`FakeCluster::with_controllers`]); loading waits (on tokio's clock) until the stable version
//! has rolled out, then starts what goes wrong.

use std::time::Duration;

use serde_json::{Value, json};

use deployguard_kube_sim::gateway::GatewayConfig;
use deployguard_kube_sim::mesh::MeshConfig;
use deployguard_kube_sim::{ApiError, FakeCluster, ImageBehaviour};

use super::{ServingProfile, SimulatedTraffic, TrafficConfig};

/// A team's usual load: 78 requests per second on six pods of 20 (65% busy), so a rolling
/// update that takes a pod out of service, or surges one in, never overflows.
pub const NORMAL_TRAFFIC: TrafficConfig = TrafficConfig {
    requests_per_second: 78.0,
    capacity_per_pod: 20.0,
    seed: 1,
};

/// A service at the edge of its capacity: 118 requests per second on six pods of 20 (98%);
/// five pods cannot take it.
pub const OVERLOADED_TRAFFIC: TrafficConfig = TrafficConfig {
    requests_per_second: 118.0,
    capacity_per_pod: 20.0,
    seed: 1,
};

/// A service with little traffic: 2 requests per second on six pods of 20.
pub const LOW_TRAFFIC: TrafficConfig = TrafficConfig {
    requests_per_second: 2.0,
    capacity_per_pod: 20.0,
    seed: 1,
};

/// What is really wrong in a scenario: the answer a guard should reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Truth {
    /// Nothing: the rollout should complete (promote).
    Healthy,
    /// The new version is broken: roll it back (or, past an incompatible migration, refuse and
    /// say why).
    VersionAtFault,
    /// The service is short of capacity while pods move; the new version is fine. Not a
    /// rollback: pause (or continue) and say why.
    CapacityAtFault,
}

impl std::fmt::Display for Truth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Healthy => "healthy",
            Self::VersionAtFault => "version at fault",
            Self::CapacityAtFault => "capacity at fault",
        })
    }
}

/// What a scenario rolls out, and so how a guard of it is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// No rollout to guard.
    None,
    /// A rolling update of Deployment `app-deployment` behind Service `myapp-service`.
    Rolling,
    /// An Istio canary: Deployments [`ISTIO_STABLE`] (serving) and [`ISTIO_CANARY`] (the
    /// candidate), subsets `stable` and `canary` of DestinationRule [`ISTIO_ROUTE`], weights on
    /// HTTP route `primary` of VirtualService [`ISTIO_ROUTE`].
    IstioCanary,
    /// An Istio blue-green: Deployments [`ISTIO_BLUE`] (serving) and [`ISTIO_GREEN`] (the
    /// candidate), subsets `blue` and `green`, route `primary` of VirtualService [`ISTIO_ROUTE`].
    IstioBlueGreen,
    /// The seed runbook's blue-green: Deployments [`SELECTOR_BLUE`] (serving) and
    /// [`SELECTOR_GREEN`] (the candidate) behind Service `myapp-service`, whose selector's
    /// `version` label picks `blue` or `green`.
    SelectorBlueGreen,
    /// A Gateway API canary: Deployments [`ISTIO_STABLE`] (serving) and [`ISTIO_CANARY`] (the
    /// candidate), each behind its own Service of the same name, weights on rule `primary` of
    /// HTTPRoute [`GATEWAY_ROUTE`], attached to Gateway [`GATEWAY`], which the traffic enters.
    GatewayCanary,
}

/// The Gateway of the Gateway API scenarios (the simulated traffic's target).
pub const GATEWAY: &str = "myapp-gateway";
/// The HTTPRoute of the Gateway API scenarios.
pub const GATEWAY_ROUTE: &str = "myapp";

/// The serving Deployment of the Service-selector blue-green scenarios.
pub const SELECTOR_BLUE: &str = "myapp-blue";
/// The candidate Deployment of the Service-selector blue-green scenarios.
pub const SELECTOR_GREEN: &str = "myapp-green";

/// The VirtualService and DestinationRule of the Istio scenarios.
pub const ISTIO_ROUTE: &str = "myapp";
/// The stable Deployment of the Istio canary scenarios.
pub const ISTIO_STABLE: &str = "app-stable";
/// The candidate Deployment of the Istio canary scenarios.
pub const ISTIO_CANARY: &str = "app-canary";
/// The serving Deployment of the Istio blue-green scenarios.
pub const ISTIO_BLUE: &str = "app-blue";
/// The candidate Deployment of the Istio blue-green scenarios.
pub const ISTIO_GREEN: &str = "app-green";

/// A scenario: its name, what it holds, and — for rollouts — its ground truth and the
/// healthy twin of the same shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Scenario {
    /// Its name, as [`load`] takes it.
    pub name: &'static str,
    /// What it holds.
    pub description: &'static str,
    /// What is really wrong, for scenarios that roll out `app-deployment`.
    pub truth: Option<Truth>,
    /// The scenario of the same shape with a good image, for a failing one.
    pub twin: Option<&'static str>,
    /// What it rolls out.
    pub layout: Layout,
}

const fn scenario(
    name: &'static str,
    description: &'static str,
    truth: Option<Truth>,
    twin: Option<&'static str>,
) -> Scenario {
    let layout = if truth.is_some() {
        Layout::Rolling
    } else {
        Layout::None
    };
    Scenario {
        name,
        description,
        truth,
        twin,
        layout,
    }
}

const fn istio(
    name: &'static str,
    description: &'static str,
    truth: Truth,
    twin: Option<&'static str>,
    layout: Layout,
) -> Scenario {
    Scenario {
        name,
        description,
        truth: Some(truth),
        twin,
        layout,
    }
}

/// Every scenario.
pub fn catalogue() -> Vec<Scenario> {
    use Truth::{CapacityAtFault, Healthy, VersionAtFault};
    vec![
        scenario(
            "empty",
            "the default namespaces and nothing else",
            None,
            None,
        ),
        scenario(
            "static-web",
            "Deployment web and one pod stuck in ImagePullBackOff, written directly (no rollout)",
            None,
            None,
        ),
        scenario(
            "seed-rolling-failure",
            "app-deployment: 6 replicas, app:v2.3.1 -> app:v2.4.0 whose pods never become ready; the rollout stalls with old pods serving",
            Some(VersionAtFault),
            Some("healthy-rollout"),
        ),
        istio(
            "seed-blue-green",
            "myapp-blue (v2.3.1) and myapp-green (v2.4.0, readiness flapping) behind myapp-service, which selects blue",
            VersionAtFault,
            Some("seed-blue-green-healthy"),
            Layout::SelectorBlueGreen,
        ),
        istio(
            "seed-blue-green-healthy",
            "myapp-blue (v2.3.1) and myapp-green (v2.4.0, healthy) behind myapp-service, which selects blue",
            Healthy,
            None,
            Layout::SelectorBlueGreen,
        ),
        scenario(
            "no-prestop",
            "app-deployment: app:v2.3.1 -> app:v2.4.0, both healthy, no preStop hook: each old pod stops while the proxies (2 s behind) still send it requests, which fail",
            Some(Healthy),
            None,
        ),
        scenario(
            "prestop",
            "app-deployment: app:v2.3.1 -> app:v2.4.0, both healthy, a 5 s preStop sleep: each old pod serves until the proxies (2 s behind) stop sending to it",
            Some(Healthy),
            None,
        ),
        scenario(
            "healthy-rollout",
            "app-deployment: app:v2.3.1 -> app:v2.4.0, both healthy; the rollout completes",
            Some(Healthy),
            None,
        ),
        scenario(
            "bad-version",
            "app-deployment: app:v2.4.0 passes readiness but answers 15% 503s with a 5.2 s p99 (the seed runbook's numbers)",
            Some(VersionAtFault),
            Some("healthy-rollout"),
        ),
        scenario(
            "slow-version",
            "app-deployment: app:v2.4.0 answers correctly, four times slower",
            Some(VersionAtFault),
            Some("healthy-rollout"),
        ),
        scenario(
            "overloaded-rollout",
            "app-deployment: both versions healthy, but 118 rps on 6 pods of 20: while a pod is out, every pod overflows",
            Some(CapacityAtFault),
            Some("healthy-rollout"),
        ),
        scenario(
            "image-pull-failure",
            "app-deployment: the new image cannot be pulled",
            Some(VersionAtFault),
            Some("healthy-rollout"),
        ),
        scenario(
            "crash-loop",
            "app-deployment: the new version crashes on start (CrashLoopBackOff)",
            Some(VersionAtFault),
            Some("healthy-rollout"),
        ),
        scenario(
            "missing-config",
            "app-deployment: the new version needs ConfigMap app-config-v2, which does not exist",
            Some(VersionAtFault),
            Some("config-present"),
        ),
        scenario(
            "config-present",
            "app-deployment: the new version needs ConfigMap app-config-v2, which exists",
            Some(Healthy),
            None,
        ),
        scenario(
            "unschedulable",
            "app-deployment: the new version requests more cpu than any node has",
            Some(VersionAtFault),
            Some("fits-on-nodes"),
        ),
        scenario(
            "fits-on-nodes",
            "app-deployment: the new version requests 500m cpu, which the nodes have",
            Some(Healthy),
            None,
        ),
        scenario(
            "slow-start",
            "app-deployment: app:v2.4.0 is healthy but takes 90 s to start (a JVM warming up), refusing connections until then",
            Some(Healthy),
            None,
        ),
        scenario(
            "slow-start-never-ready",
            "app-deployment: app:v2.4.0 takes 90 s to start, then answers its readiness probe with 503 for ever",
            Some(VersionAtFault),
            Some("slow-start"),
        ),
        scenario(
            "late-failure",
            "app-deployment: app:v2.4.0 serves well for 3 minutes after it becomes ready, then fails 15% of requests (a leak)",
            Some(VersionAtFault),
            Some("healthy-rollout"),
        ),
        scenario(
            "low-traffic",
            "app-deployment: app:v2.3.1 -> app:v2.4.0, both healthy, on a service of 2 requests a second",
            Some(Healthy),
            None,
        ),
        scenario(
            "low-traffic-bad",
            "app-deployment: app:v2.4.0 fails 15% of requests, on a service of 2 requests a second",
            Some(VersionAtFault),
            Some("low-traffic"),
        ),
        scenario(
            "moderate-regression",
            "app-deployment: app:v2.4.0 fails 3% of requests where app:v2.3.1 fails 0.2%",
            Some(VersionAtFault),
            Some("healthy-rollout"),
        ),
        scenario(
            "migration-job-failed",
            "app-deployment: app:v2.4.0 failing after migration Job db-migrate-43 failed; schema at 43, dirty",
            Some(VersionAtFault),
            Some("healthy-rollout"),
        ),
        istio(
            "seed-istio-canary",
            "Istio canary: app-stable (v2.3.1, 6 pods) and app-canary (v2.4.0, 3 pods, 15% 503s) behind VirtualService myapp, all traffic on subset stable",
            VersionAtFault,
            Some("istio-canary-healthy"),
            Layout::IstioCanary,
        ),
        istio(
            "istio-canary-healthy",
            "Istio canary: app-stable (v2.3.1) and app-canary (v2.4.0, healthy) behind VirtualService myapp",
            Healthy,
            None,
            Layout::IstioCanary,
        ),
        istio(
            "gateway-canary",
            "Gateway API canary: app-stable (v2.3.1, 6 pods) and app-canary (v2.4.0, 3 pods, 15% 503s), each its own Service, behind HTTPRoute myapp of Gateway myapp-gateway, all weight on app-stable",
            VersionAtFault,
            Some("gateway-canary-healthy"),
            Layout::GatewayCanary,
        ),
        istio(
            "gateway-canary-healthy",
            "Gateway API canary: app-stable (v2.3.1) and app-canary (v2.4.0, healthy) behind HTTPRoute myapp of Gateway myapp-gateway",
            Healthy,
            None,
            Layout::GatewayCanary,
        ),
        istio(
            "istio-blue-green",
            "Istio blue-green: app-blue (v2.3.1) serving, app-green (v2.4.0, 15% 503s) ready on subset green at weight 0",
            VersionAtFault,
            Some("istio-blue-green-healthy"),
            Layout::IstioBlueGreen,
        ),
        istio(
            "istio-blue-green-healthy",
            "Istio blue-green: app-blue (v2.3.1) serving, app-green (v2.4.0, healthy) ready on subset green at weight 0",
            Healthy,
            None,
            Layout::IstioBlueGreen,
        ),
    ]
}

/// Every scenario: name and what it holds.
pub fn list() -> Vec<(&'static str, &'static str)> {
    catalogue()
        .into_iter()
        .map(|s| (s.name, s.description))
        .collect()
}

/// Loads scenario `name` into `cluster`, its traffic seeded with 1.
pub async fn load(cluster: &FakeCluster, name: &str) -> Result<(), ApiError> {
    load_seeded(cluster, name, 1).await
}

/// Loads scenario `name` into `cluster`, its traffic's noise drawn from `seed`.
pub async fn load_seeded(cluster: &FakeCluster, name: &str, seed: u64) -> Result<(), ApiError> {
    let normal = NORMAL_TRAFFIC.with_seed(seed);
    let good = || ImageBehaviour::ready_after(5);
    match name {
        "empty" => Ok(()),
        "static-web" => static_web(cluster),
        "seed-rolling-failure" => {
            rolling(cluster, ImageBehaviour::never_ready(), json!({}), normal).await
        }
        "healthy-rollout" => rolling(cluster, good(), json!({}), normal).await,
        "no-prestop" | "prestop" => {
            let hook = (name == "prestop")
                .then(|| json!({"preStop": {"exec": {"command": ["sh", "-c", "sleep 5"]}}}));
            graceful_rolling(cluster, hook, normal).await
        }
        "bad-version" => {
            cluster.set_serving(NEW, ServingProfile::SEED_BAD);
            rolling(cluster, good(), json!({}), normal).await
        }
        "slow-version" => {
            cluster.set_serving(NEW, ServingProfile::slow(4.0));
            rolling(cluster, good(), json!({}), normal).await
        }
        "overloaded-rollout" => {
            rolling(
                cluster,
                good(),
                json!({}),
                OVERLOADED_TRAFFIC.with_seed(seed),
            )
            .await
        }
        "image-pull-failure" => {
            rolling(cluster, ImageBehaviour::pull_fails(NEW), json!({}), normal).await
        }
        "crash-loop" => {
            rolling(
                cluster,
                ImageBehaviour::crash_loop(
                    "panic: failed to connect to database: DATABASE_URL not set",
                ),
                json!({}),
                normal,
            )
            .await
        }
        "missing-config" | "config-present" => {
            if name == "config-present" {
                cluster.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "app-config-v2", "namespace": "default"},
                    "data": {"DATABASE_URL": "postgres://db:5432/app"}}))?;
            }
            rolling(
                cluster,
                good(),
                json!({"envFrom": [{"configMapRef": {"name": "app-config-v2"}}]}),
                normal,
            )
            .await
        }
        "unschedulable" | "fits-on-nodes" => {
            let cpu = if name == "unschedulable" { "6" } else { "500m" };
            rolling(
                cluster,
                good(),
                json!({"resources": {"requests": {"cpu": cpu}}}),
                normal,
            )
            .await
        }
        "slow-start" => rolling(cluster, ImageBehaviour::ready_after(90), json!({}), normal).await,
        "slow-start-never-ready" => {
            rolling(
                cluster,
                ImageBehaviour::FailsAfterStart {
                    startup: Duration::from_secs(90),
                    probe_output: "HTTP probe failed with statuscode: 503".into(),
                },
                json!({}),
                normal,
            )
            .await
        }
        "late-failure" => {
            cluster.set_serving(
                NEW,
                ServingProfile {
                    errors_after: Some(Duration::from_secs(180)),
                    ..ServingProfile::SEED_BAD
                },
            );
            rolling(cluster, good(), json!({}), normal).await
        }
        "low-traffic" | "low-traffic-bad" => {
            if name == "low-traffic-bad" {
                cluster.set_serving(NEW, ServingProfile::SEED_BAD);
            }
            rolling(cluster, good(), json!({}), LOW_TRAFFIC.with_seed(seed)).await
        }
        "moderate-regression" => {
            cluster.set_serving(NEW, ServingProfile::failing(0.03));
            rolling(cluster, good(), json!({}), normal).await
        }
        "migration-job-failed" => migration_job_failed(cluster, normal).await,
        "seed-blue-green" | "seed-blue-green-healthy" => {
            let green = if name == "seed-blue-green" {
                ImageBehaviour::Flapping {
                    period: Duration::from_secs(20),
                }
            } else {
                good()
            };
            blue_green(cluster, green, normal).await
        }
        "seed-istio-canary" | "istio-canary-healthy" => {
            if name == "seed-istio-canary" {
                cluster.set_serving(NEW, ServingProfile::SEED_BAD);
            }
            istio_pair(
                cluster,
                ("stable", ISTIO_STABLE, 6),
                ("canary", ISTIO_CANARY, 3),
                normal,
            )
            .await
        }
        "gateway-canary" | "gateway-canary-healthy" => {
            if name == "gateway-canary" {
                cluster.set_serving(NEW, ServingProfile::SEED_BAD);
            }
            gateway_canary(cluster, normal).await
        }
        "istio-blue-green" | "istio-blue-green-healthy" => {
            if name == "istio-blue-green" {
                cluster.set_serving(NEW, ServingProfile::SEED_BAD);
            }
            istio_pair(
                cluster,
                ("blue", ISTIO_BLUE, 6),
                ("green", ISTIO_GREEN, 6),
                normal,
            )
            .await
        }
        other => Err(ApiError::bad_request(format!(
            "unknown scenario {other:?}; known: {}",
            list()
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A rolling update of `app-deployment` (six pods, app:v2.3.1 → app:v2.4.0) shaped by
/// parameters, for sweeps over what the named scenarios fix: how long the new version takes to
/// start, how much traffic the service has, how many more errors the new version makes and
/// when it starts making them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variation {
    /// Time from a new pod's creation until it is ready (it refuses connections until then).
    pub start: Duration,
    /// Requests per second to the service.
    pub requests_per_second: f64,
    /// The new version's error rate as a multiple of the healthy 0.2% (1: healthy).
    pub error_factor: f64,
    /// How long after a new pod becomes ready its errors begin (zero: at once).
    pub onset: Duration,
    /// The new version's latency as a multiple of the healthy one's (1: healthy).
    pub latency_factor: f64,
}

impl Variation {
    /// A healthy rollout at the usual load: ready after 5 s, 78 rps, no extra errors.
    pub fn healthy() -> Self {
        Self {
            start: Duration::from_secs(5),
            requests_per_second: NORMAL_TRAFFIC.requests_per_second,
            error_factor: 1.0,
            onset: Duration::ZERO,
            latency_factor: 1.0,
        }
    }

    /// Whether the new version is at fault: more than 1% errors (the replay's success range)
    /// and more than one point above the old version's, or twice as slow or worse.
    pub fn at_fault(&self) -> bool {
        let errors = ServingProfile::HEALTHY.error_rate * self.error_factor;
        (errors > 0.01 && errors - ServingProfile::HEALTHY.error_rate > 0.01)
            || self.latency_factor >= 2.0
    }
}

impl std::fmt::Display for Variation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "start {} s, {} rps, errors x{}, onset {} s, latency x{}",
            self.start.as_secs(),
            self.requests_per_second,
            self.error_factor,
            self.onset.as_secs(),
            self.latency_factor
        )
    }
}

/// Loads `variation` into `cluster`, its traffic's noise drawn from `seed`: the rollout starts
/// when it returns.
pub async fn load_variation(
    cluster: &FakeCluster,
    variation: &Variation,
    seed: u64,
) -> Result<(), ApiError> {
    if variation.error_factor != 1.0 || variation.latency_factor != 1.0 {
        cluster.set_serving(
            NEW,
            ServingProfile {
                error_rate: (ServingProfile::HEALTHY.error_rate * variation.error_factor).min(1.0),
                errors_after: (!variation.onset.is_zero()).then_some(variation.onset),
                ..ServingProfile::slow(variation.latency_factor)
            },
        );
    }
    // Pods sized so the service runs as busy as the usual load's (65%): a capacity shortfall
    // is another question than the ones a variation asks.
    let traffic = TrafficConfig {
        requests_per_second: variation.requests_per_second,
        capacity_per_pod: (variation.requests_per_second / 6.0 / 0.65).max(20.0),
        seed,
    };
    rolling(
        cluster,
        ImageBehaviour::Ready {
            startup: variation.start,
        },
        json!({}),
        traffic,
    )
    .await
}

const OLD: &str = "app:v2.3.1";
const NEW: &str = "app:v2.4.0";

fn app_deployment(name: &str, labels: Value, image: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": labels.clone(),
            "annotations": {"kubernetes.io/change-cause": format!("deploy {image}")}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels.clone()},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080, "name": "http"}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5}}]}
            }
        }
    })
}

fn service(name: &str, selector: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
}

/// Waits until deployment `name` has rolled out completely.
async fn rolled_out(cluster: &FakeCluster, name: &str) -> Result<(), ApiError> {
    for _ in 0..600 {
        let d = cluster.get("apps/v1", "Deployment", "default", name)?;
        let want = d
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let status = |k: &str| {
            d.pointer(&format!("/status/{k}"))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        let observed = status("observedGeneration")
            >= d.pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
        if observed
            && status("updatedReplicas") == want
            && status("replicas") == want
            && status("availableReplicas") == want
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(ApiError::new(
        504,
        "Timeout",
        format!("deployment {name} did not roll out"),
    ))
}

/// Sets the image (and extra container fields) of deployment `name`, as `kubectl set image`
/// would, with a change-cause.
fn set_image(
    cluster: &FakeCluster,
    name: &str,
    image: &str,
    extra: &Value,
    template_annotations: &Value,
) -> Result<(), ApiError> {
    // Read-modify-write, again on a conflict: the controllers write the deployment's status
    // concurrently, as they would on a real cluster.
    for _ in 0..20 {
        let mut d = cluster.get("apps/v1", "Deployment", "default", name)?;
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        for (k, v) in extra.as_object().into_iter().flatten() {
            d["spec"]["template"]["spec"]["containers"][0][k] = v.clone();
        }
        if template_annotations
            .as_object()
            .is_some_and(|a| !a.is_empty())
        {
            d["spec"]["template"]["metadata"]["annotations"] = template_annotations.clone();
        }
        d["metadata"]["annotations"]["kubernetes.io/change-cause"] =
            json!(format!("deploy {image}"));
        match cluster.replace(d) {
            Ok(_) => return Ok(()),
            Err(err) if err.code == 409 => continue,
            Err(err) => return Err(err),
        }
    }
    Err(ApiError::new(
        409,
        "Conflict",
        format!("deployment {name} kept changing"),
    ))
}

async fn rolling(
    cluster: &FakeCluster,
    new_behaviour: ImageBehaviour,
    extra: Value,
    traffic: TrafficConfig,
) -> Result<(), ApiError> {
    rolling_with(cluster, new_behaviour, extra, json!({}), traffic).await
}

async fn rolling_with(
    cluster: &FakeCluster,
    new_behaviour: ImageBehaviour,
    extra: Value,
    template_annotations: Value,
    traffic: TrafficConfig,
) -> Result<(), ApiError> {
    cluster.set_image_behaviour(OLD, ImageBehaviour::ready_after(2));
    cluster.set_image_behaviour(NEW, new_behaviour);
    cluster.create(service("myapp-service", json!({"app": "myapp"})))?;
    cluster.create(app_deployment(
        "app-deployment",
        json!({"app": "myapp"}),
        OLD,
        6,
    ))?;
    rolled_out(cluster, "app-deployment").await?;
    cluster.enable_traffic("default", "myapp-service", traffic);
    set_image(
        cluster,
        "app-deployment",
        NEW,
        &extra,
        &template_annotations,
    )
}

/// A healthy rolling update on a cluster whose proxies learn of a deleted pod 2 s late, its
/// pods with the preStop hook `hook` (none: the process stops at once).
async fn graceful_rolling(
    cluster: &FakeCluster,
    hook: Option<Value>,
    traffic: TrafficConfig,
) -> Result<(), ApiError> {
    cluster.set_proxy_lag(Duration::from_secs(2));
    cluster.set_image_behaviour(OLD, ImageBehaviour::ready_after(2));
    cluster.set_image_behaviour(NEW, ImageBehaviour::ready_after(5));
    cluster.create(service("myapp-service", json!({"app": "myapp"})))?;
    let mut deployment = app_deployment("app-deployment", json!({"app": "myapp"}), OLD, 6);
    if let Some(hook) = hook {
        deployment["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = hook;
    }
    cluster.create(deployment)?;
    rolled_out(cluster, "app-deployment").await?;
    cluster.enable_traffic("default", "myapp-service", traffic);
    set_image(cluster, "app-deployment", NEW, &json!({}), &json!({}))
}

async fn migration_job_failed(
    cluster: &FakeCluster,
    traffic: TrafficConfig,
) -> Result<(), ApiError> {
    cluster.set_image_behaviour(
        "app-migrate:v2.4.0",
        ImageBehaviour::Completes {
            after: Duration::from_secs(3),
            exit_code: 1,
            logs: vec![
                "applying migration 43_drop_legacy_price".into(),
                "ERROR: column \"legacy_price\" is referenced by view \"order_totals\"".into(),
                "migration 43 failed; schema marked dirty".into(),
            ],
        },
    );
    cluster.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "schema-version", "namespace": "default"},
        "data": {"version": "43", "dirty": "true", "previous": "42"}}))?;
    rolling_with(
        cluster,
        ImageBehaviour::never_ready(),
        json!({}),
        json!({"deployguard.io/requires-schema": "43"}),
        traffic,
    )
    .await?;
    cluster.create(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "db-migrate-43", "namespace": "default", "labels": {"app": "myapp", "deployguard.io/migration": "true"},
            "annotations": {"deployguard.io/schema-version": "43"}},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": {"app": "myapp-migrate"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": "app-migrate:v2.4.0"}]}}}
    }))?;
    Ok(())
}

/// The seed runbook's blue-green: blue serves; green (`green_behaviour`) is created last, so
/// its rollout starts when loading returns.
async fn blue_green(
    cluster: &FakeCluster,
    green_behaviour: ImageBehaviour,
    traffic: TrafficConfig,
) -> Result<(), ApiError> {
    cluster.set_image_behaviour(OLD, ImageBehaviour::ready_after(2));
    cluster.set_image_behaviour(NEW, green_behaviour);
    cluster.create(app_deployment(
        "myapp-blue",
        json!({"app": "myapp", "version": "blue"}),
        OLD,
        6,
    ))?;
    cluster.create(service(
        "myapp-service",
        json!({"app": "myapp", "version": "blue"}),
    ))?;
    rolled_out(cluster, "myapp-blue").await?;
    cluster.enable_traffic("default", "myapp-service", traffic);
    cluster.create(app_deployment(
        "myapp-green",
        json!({"app": "myapp", "version": "green"}),
        NEW,
        6,
    ))?;
    Ok(())
}

/// Two Deployments behind one Service, as subsets of one DestinationRule, routed by a
/// VirtualService whose catch-all route `primary` sends everything to the first; the second
/// (the candidate) is created last: its rollout starts when loading returns.
async fn istio_pair(
    cluster: &FakeCluster,
    (serving, serving_deployment, serving_replicas): (&str, &str, u32),
    (candidate, candidate_deployment, candidate_replicas): (&str, &str, u32),
    traffic: TrafficConfig,
) -> Result<(), ApiError> {
    cluster.install_istio(MeshConfig::default())?;
    cluster.set_image_behaviour(OLD, ImageBehaviour::ready_after(2));
    cluster.set_image_behaviour(NEW, ImageBehaviour::ready_after(5));
    let labels = |track: &str| json!({"app": "myapp", "track": track});
    cluster.create(service("myapp-service", json!({"app": "myapp"})))?;
    cluster.create(
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": ISTIO_ROUTE, "namespace": "default"},
        "spec": {"host": "myapp-service", "subsets": [
            {"name": serving, "labels": {"track": serving}},
            {"name": candidate, "labels": {"track": candidate}}]}}),
    )?;
    cluster.create(
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": ISTIO_ROUTE, "namespace": "default"},
        "spec": {"hosts": ["myapp-service"], "http": [
            {"name": "canary-header", "match": [{"headers": {"x-canary": {"exact": "true"}}}],
             "route": [{"destination": {"host": "myapp-service", "subset": candidate}}]},
            {"name": "primary", "route": [
                {"destination": {"host": "myapp-service", "subset": serving}, "weight": 100},
                {"destination": {"host": "myapp-service", "subset": candidate}, "weight": 0}]}]}}),
    )?;
    cluster.create(app_deployment(
        serving_deployment,
        labels(serving),
        OLD,
        serving_replicas,
    ))?;
    rolled_out(cluster, serving_deployment).await?;
    cluster.enable_traffic("default", "myapp-service", traffic);
    cluster.create(app_deployment(
        candidate_deployment,
        labels(candidate),
        NEW,
        candidate_replicas,
    ))?;
    Ok(())
}

/// The Gateway API canary: two Deployments, a Service each, a Gateway of the simulated
/// class and an HTTPRoute whose rule `primary` weighs the two Services.
async fn gateway_canary(cluster: &FakeCluster, traffic: TrafficConfig) -> Result<(), ApiError> {
    cluster.install_gateway_api(GatewayConfig::default())?;
    cluster.set_image_behaviour(OLD, ImageBehaviour::ready_after(2));
    cluster.set_image_behaviour(NEW, ImageBehaviour::ready_after(5));
    let labels = |track: &str| json!({"app": "myapp", "track": track});
    for (name, track) in [(ISTIO_STABLE, "stable"), (ISTIO_CANARY, "canary")] {
        cluster.create(service(name, labels(track)))?;
    }
    cluster.create(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": GATEWAY, "namespace": "default"},
        "spec": {"gatewayClassName": "sim", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}}))?;
    cluster.create(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": GATEWAY_ROUTE, "namespace": "default"},
        "spec": {"parentRefs": [{"name": GATEWAY}], "hostnames": ["myapp.example.com"],
            "rules": [{"name": "primary", "backendRefs": [
                {"name": ISTIO_STABLE, "port": 80, "weight": 100},
                {"name": ISTIO_CANARY, "port": 80, "weight": 0}]}]}}),
    )?;
    cluster.create(app_deployment(ISTIO_STABLE, labels("stable"), OLD, 6))?;
    rolled_out(cluster, ISTIO_STABLE).await?;
    cluster.enable_traffic("default", GATEWAY, traffic);
    cluster.create(app_deployment(ISTIO_CANARY, labels("canary"), NEW, 3))?;
    Ok(())
}

fn static_web(cluster: &FakeCluster) -> Result<(), ApiError> {
    cluster.create(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.3"}]}}}
    }))?;
    let pod = cluster.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-abc12", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.3"}]},
        "status": {"phase": "Pending", "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0, "image": "nginx:1.3", "imageID": "",
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"nginx:1.3\""}}}]}
    }))?;
    let uid = pod["metadata"]["uid"].clone();
    cluster.create(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web-abc12.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-abc12", "uid": uid, "apiVersion": "v1", "fieldPath": "spec.containers{web}"},
        "reason": "BackOff", "message": "Back-off pulling image \"nginx:1.3\"", "type": "Warning", "count": 3,
        "source": {"component": "kubelet"},
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"
    }))?;
    Ok(())
}

/// How long the seed's new pods have failed by the time a person finds the incident: longer
/// than the start their probes declare (15 s), so that they read as failing, not starting.
pub const SEED_STALLED_FOR: Duration = Duration::from_secs(20);

/// Whether `seed-rolling-failure` has reached its stall as a person finds it: three pods of the
/// new version that run, answer their readiness probe with 503 and have done so for
/// [`SEED_STALLED_FOR`], five old ones still serving, and the controller caught up with the
/// spec. Tests wait for it before they act.
pub fn seed_has_stalled(cluster: &FakeCluster) -> bool {
    let deployment_stalled = cluster
        .deployment("default", "app-deployment")
        .ok()
        .is_some_and(|deployment| {
            let generation = deployment.metadata.generation;
            deployment.status.is_some_and(|status| {
                status.updated_replicas == Some(3)
                    && status.ready_replicas == Some(5)
                    && status.observed_generation == generation
            })
        });
    deployment_stalled && new_pods_aged(cluster, SEED_STALLED_FOR)
}

/// Whether three pods of app:v2.4.0 run in `default`, each at least `age` old on the cluster's
/// clock.
pub fn new_pods_aged(cluster: &FakeCluster, age: Duration) -> bool {
    cluster.pods("default").is_ok_and(|pods| {
        pods.iter()
            .filter(|pod| {
                let image = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.containers.first()?.image.clone());
                let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
                let old_enough = pod.metadata.creation_timestamp.as_ref().is_some_and(|t| {
                    cluster
                        .now()
                        .duration_since(std::time::SystemTime::from(t.0))
                        .is_ok_and(|existed| existed >= age)
                });
                image.as_deref() == Some(NEW) && phase.as_deref() == Some("Running") && old_enough
            })
            .count()
            == 3
    })
}

/// The seed incident served over HTTP on loopback, at its stall, with a kubeconfig in a
/// temporary directory of its own (removed on drop): where tests of commands and clients built
/// as users build them start.
#[derive(Debug)]
pub struct ServedSeed {
    /// The cluster, for assertions and faults.
    pub cluster: FakeCluster,
    /// The server.
    pub served: super::ServedCluster,
    /// The kubeconfig that points at it.
    pub kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// [`ServedSeed`] with cluster time `time_scale` times the wall clock's; waits (at most 60 s of
/// tokio time) for the stall.
pub async fn served_seed(time_scale: f64) -> std::io::Result<ServedSeed> {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .time_scale(time_scale)
        .build();
    load(&cluster, "seed-rolling-failure")
        .await
        .map_err(|err| std::io::Error::other(err.message))?;
    super::wait::until("the rollout to stall", Duration::from_secs(60), || {
        seed_has_stalled(&cluster)
    })
    .await
    .map_err(std::io::Error::other)?;
    let served = cluster.serve().await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    served.write_kubeconfig(&kubeconfig)?;
    Ok(ServedSeed {
        cluster,
        served,
        kubeconfig,
        _dir: dir,
    })
}
