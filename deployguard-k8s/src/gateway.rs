//! [`GatewayRouter`]: weighted `backendRefs` of one rule of a Gateway API `HTTPRoute`
//! (`gateway.networking.k8s.io/v1`) — the router of Envoy Gateway, Cilium, NGINX Gateway
//! Fabric, Istio, GKE and every other implementation of the API.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use deployguard_core::{
    Error, ErrorKind, Result, RouteVersion, Routed, RouterCapabilities, TrafficRouter,
    TrafficRouterExt, TrafficSplit, Verification,
};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch};
use serde::Deserialize;
use serde_json::json;

use crate::error::from_kube;
use crate::names::{check_label, check_subdomain};
use crate::patch::{Precondition, conditional_patch, refused_patch};
use crate::router::ensure_ready_pods;

/// The Gateway API's group.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// The HTTPRoute resource of `gateway.networking.k8s.io/v1`.
pub fn http_route_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(GATEWAY_GROUP, "v1", "HTTPRoute"),
        "httproutes",
    )
}

/// Which rule of the route the router manages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleRef {
    /// The route's only rule.
    Only,
    /// The rule at this index of `spec.rules`.
    Index(usize),
    /// The rule with this `name` (Gateway API v1.2 and later).
    Named(String),
}

impl std::fmt::Display for RuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Only => f.write_str("its rule"),
            Self::Index(index) => write!(f, "rule {index}"),
            Self::Named(name) => write!(f, "rule {name:?}"),
        }
    }
}

/// One backend: a Service (and port, when the route names several of the same Service).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServiceRef {
    service: String,
    port: Option<i32>,
}

impl std::fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(port) => write!(f, "Service {}:{port}", self.service),
            None => write!(f, "Service {}", self.service),
        }
    }
}

/// Builds a [`GatewayRouter`]; every setting is checked at [`build`](Self::build).
#[must_use]
pub struct GatewayRouterBuilder {
    client: kube::Client,
    namespace: String,
    route: String,
    rule: RuleRef,
    backends: Vec<(String, ServiceRef)>,
}

impl std::fmt::Debug for GatewayRouterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayRouterBuilder")
            .field("namespace", &self.namespace)
            .field("route", &self.route)
            .field("rule", &self.rule)
            .field("backends", &self.backends)
            .finish_non_exhaustive()
    }
}

impl GatewayRouterBuilder {
    /// Manages the rule at `index` of `spec.rules` (needed when the route has several).
    pub fn rule(mut self, index: usize) -> Self {
        self.rule = RuleRef::Index(index);
        self
    }

    /// Manages the rule named `name` (needed when the route has several).
    pub fn rule_named(mut self, name: &str) -> Self {
        self.rule = RuleRef::Named(name.into());
        self
    }

    /// A backend named after the Service its backendRef names (`app-stable`).
    pub fn service(self, service: &str) -> Self {
        self.backend(service, service)
    }

    /// A backend `name` for the backendRef naming Service `service`.
    pub fn backend(mut self, name: &str, service: &str) -> Self {
        self.backends.push((
            name.into(),
            ServiceRef {
                service: service.into(),
                port: None,
            },
        ));
        self
    }

    /// A backend `name` for the backendRef naming Service `service` on `port`.
    pub fn backend_port(mut self, name: &str, service: &str, port: u16) -> Self {
        self.backends.push((
            name.into(),
            ServiceRef {
                service: service.into(),
                port: Some(i32::from(port)),
            },
        ));
        self
    }

    /// Adds a backend for each Service the rule's backendRefs name that no backend covers yet
    /// (named after the Service): what an emergency command uses to send everything to one
    /// Service without knowing the others. Reads the route once.
    pub async fn services_of_rule(mut self) -> Result<Self> {
        check_label("namespace", &self.namespace)?;
        check_subdomain("http route", &self.route)?;
        let probe = GatewayRouter {
            routes: Api::namespaced_with(
                self.client.clone(),
                &self.namespace,
                &http_route_resource(),
            ),
            services: Api::namespaced(self.client.clone(), &self.namespace),
            pods: Api::namespaced(self.client.clone(), &self.namespace),
            namespace: self.namespace.clone(),
            route: self.route.clone(),
            rule: self.rule.clone(),
            backends: BTreeMap::new(),
            before_first_write: Mutex::new(None),
        };
        let object = probe
            .routes
            .get(&self.route)
            .await
            .map_err(|e| from_kube(e, "services_of_rule", &probe.object()))?;
        let spec: RouteSpec = object
            .data
            .get("spec")
            .cloned()
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default();
        let index = probe.rule_index(&spec.rules, "services_of_rule")?;
        for backend_ref in &spec.rules[index].backend_refs {
            if !backend_ref.is_service(&self.namespace) {
                continue;
            }
            let covered = self.backends.iter().any(|(_, s)| {
                s.service == backend_ref.name && (s.port.is_none() || s.port == backend_ref.port)
            });
            if !covered {
                let name = backend_ref.name.clone();
                self = self.backend(&name, &name);
            }
        }
        Ok(self)
    }

    /// The router; [`ErrorKind::InvalidInput`] names a bad name, fewer than two backends, a
    /// backend named twice, or two backends for the same Service and port.
    pub fn build(self) -> Result<GatewayRouter> {
        check_label("namespace", &self.namespace)?;
        check_subdomain("http route", &self.route)?;
        if matches!(&self.rule, RuleRef::Named(name) if name.is_empty()) {
            return Err(Error::invalid_input("rule", "is empty"));
        }
        if self.backends.len() < 2 {
            return Err(Error::invalid_input(
                "backends",
                "a router needs two or more backends",
            ));
        }
        let mut backends = BTreeMap::new();
        for (name, service) in self.backends {
            if name.trim().is_empty() {
                return Err(Error::invalid_input("backends", "a backend name is empty"));
            }
            check_label("backend service", &service.service)?;
            if let Some((other, _)) = backends.iter().find(|(_, s)| **s == service) {
                return Err(Error::invalid_input(
                    "backends",
                    format!("backends {other:?} and {name:?} are both {service}"),
                ));
            }
            if backends.insert(name.clone(), service).is_some() {
                return Err(Error::invalid_input(
                    "backends",
                    format!("backend {name:?} is named twice"),
                ));
            }
        }
        Ok(GatewayRouter {
            routes: Api::namespaced_with(
                self.client.clone(),
                &self.namespace,
                &http_route_resource(),
            ),
            services: Api::namespaced(self.client.clone(), &self.namespace),
            pods: Api::namespaced(self.client, &self.namespace),
            namespace: self.namespace,
            route: self.route,
            rule: self.rule,
            backends,
            before_first_write: Mutex::new(None),
        })
    }
}

/// Moves traffic between the weighted `backendRefs` of one rule of a Gateway API `HTTPRoute`:
/// N-way splits, any whole percentage.
///
/// Each backend is a backendRef of the rule, by Service name (and port). A write is a JSON
/// patch of those backendRefs' weights alone, whose first operation tests the resourceVersion
/// the caller read (the [`RouteVersion`] of [`current`](TrafficRouter::current)): a concurrent
/// edit is a [`ErrorKind::Conflict`], never overwritten, and the rest of the route (matches,
/// filters, other rules, other backendRefs at weight 0) is untouched. Weights are written as
/// percentages (summing to 100); weights read are relative, as the API defines them (an
/// unset weight is 1), and must come to whole percentages.
///
/// Before a backend's weight rises from 0 the router checks that its Service exists and that
/// ready pods match its selector ([`ErrorKind::Refused`] otherwise).
/// [`verify`](TrafficRouter::verify) reads the route back and asks its status: every parent
/// the gateway reports on must have `Accepted` and `ResolvedRefs` true for the generation
/// written.
///
/// ```no_run
/// use deployguard_core::{TrafficRouterExt, TrafficSplit};
/// use deployguard_k8s::GatewayRouter;
///
/// # async fn run(client: kube::Client) -> deployguard_core::Result<()> {
/// let router = GatewayRouter::builder(client, "prod", "app")
///     .rule_named("primary")
///     .backend("stable", "app-stable")
///     .backend("canary", "app-canary")
///     .build()?;
/// router.switch(&TrafficSplit::two_way("stable", "canary", 10)?).await?;
/// # Ok(())
/// # }
/// ```
pub struct GatewayRouter {
    namespace: String,
    route: String,
    rule: RuleRef,
    backends: BTreeMap<String, ServiceRef>,
    routes: Api<DynamicObject>,
    services: Api<Service>,
    pods: Api<Pod>,
    /// The split read before this router's first write, for [`GatewayRouter::restore`].
    before_first_write: Mutex<Option<TrafficSplit>>,
}

impl std::fmt::Debug for GatewayRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayRouter")
            .field("namespace", &self.namespace)
            .field("route", &self.route)
            .field("rule", &self.rule)
            .field("backends", &self.backends)
            .finish_non_exhaustive()
    }
}

/// What the router reads of an HTTPRoute.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RouteSpec {
    rules: Vec<Rule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Rule {
    name: Option<String>,
    backend_refs: Vec<BackendRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BackendRef {
    group: Option<String>,
    kind: Option<String>,
    name: String,
    namespace: Option<String>,
    port: Option<i32>,
    weight: Option<i64>,
}

impl BackendRef {
    fn weight(&self) -> i64 {
        self.weight.unwrap_or(1)
    }

    fn is_service(&self, namespace: &str) -> bool {
        self.group.as_deref().unwrap_or("").is_empty()
            && self.kind.as_deref().unwrap_or("Service") == "Service"
            && self.namespace.as_deref().is_none_or(|ns| ns == namespace)
    }

    fn describe(&self) -> String {
        let kind = self.kind.as_deref().unwrap_or("Service");
        match self.port {
            Some(port) => format!("{kind} {}:{port}", self.name),
            None => format!("{kind} {}", self.name),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RouteStatus {
    parents: Vec<ParentStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ParentStatus {
    controller_name: String,
    conditions: Vec<Condition>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Condition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    reason: String,
    message: String,
    observed_generation: Option<i64>,
}

/// The route as read: the object, the rule's index, its backendRefs and each backend's
/// backendRef index and percentage (`None`: the rule has no backendRef for it).
struct Read {
    object: DynamicObject,
    index: usize,
    refs: Vec<BackendRef>,
    slots: BTreeMap<String, Option<(usize, u8)>>,
}

impl Read {
    fn split(&self) -> Result<TrafficSplit> {
        TrafficSplit::new(
            self.slots
                .iter()
                .map(|(name, slot)| (name.as_str(), slot.map_or(0, |(_, w)| w))),
        )
    }
}

impl GatewayRouter {
    /// A builder for a router over HTTPRoute `namespace/route`.
    pub fn builder(client: kube::Client, namespace: &str, route: &str) -> GatewayRouterBuilder {
        GatewayRouterBuilder {
            client,
            namespace: namespace.into(),
            route: route.into(),
            rule: RuleRef::Only,
            backends: Vec::new(),
        }
    }

    fn object(&self) -> String {
        format!("httproute {}/{}", self.namespace, self.route)
    }

    fn fail(&self, operation: &'static str, kind: ErrorKind, message: String) -> Error {
        Error::new(kind, message)
            .with_operation(operation)
            .with_object(self.object())
    }

    async fn read(&self, operation: &'static str) -> Result<Read> {
        let object = self
            .routes
            .get(&self.route)
            .await
            .map_err(|e| from_kube(e, operation, &self.object()))?;
        let spec: RouteSpec = object
            .data
            .get("spec")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| {
                self.fail(
                    operation,
                    ErrorKind::Unexpected,
                    format!("its spec is not an HTTPRoute's: {e}"),
                )
            })?
            .unwrap_or_default();
        let mut spec = spec;
        let index = self.rule_index(&spec.rules, operation)?;
        let refs = std::mem::take(&mut spec.rules[index].backend_refs);
        let total: i64 = refs.iter().map(BackendRef::weight).sum();
        let percent = |weight: i64| -> Option<u8> {
            if total == 0 {
                return Some(0);
            }
            let scaled = weight * 100;
            (scaled % total == 0)
                .then(|| u8::try_from(scaled / total).ok())
                .flatten()
        };
        let mut slots = BTreeMap::new();
        let mut claimed = vec![false; refs.len()];
        for (name, wanted) in &self.backends {
            let found = refs.iter().position(|r| {
                r.is_service(&self.namespace)
                    && r.name == wanted.service
                    && (wanted.port.is_none() || r.port == wanted.port)
            });
            let slot = match found {
                Some(j) => {
                    claimed[j] = true;
                    let weight = percent(refs[j].weight()).ok_or_else(|| {
                        self.fail(
                            operation,
                            ErrorKind::Unsupported,
                            format!(
                                "{}'s weights ({}) are not whole percentages; deployguard writes only such splits",
                                self.rule,
                                weights_text(&refs)
                            ),
                        )
                    })?;
                    Some((j, weight))
                }
                None => None,
            };
            slots.insert(name.clone(), slot);
        }
        if let Some((j, other)) = refs
            .iter()
            .enumerate()
            .find(|(j, r)| !claimed[*j] && r.weight() > 0)
        {
            return Err(self.fail(
                operation,
                ErrorKind::Unsupported,
                format!(
                    "{} sends weight {} to {} (backendRef {j}), which is none of this router's backends ({})",
                    self.rule,
                    other.weight(),
                    other.describe(),
                    self.backends.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let read = Read {
            object,
            index,
            refs,
            slots,
        };
        read.split().map_err(|e| {
            self.fail(
                operation,
                ErrorKind::Unsupported,
                format!(
                    "{}'s weights are not a split of its backends summing to 100 ({e})",
                    self.rule
                ),
            )
        })?;
        Ok(read)
    }

    fn rule_index(&self, rules: &[Rule], operation: &'static str) -> Result<usize> {
        let names = || {
            rules
                .iter()
                .enumerate()
                .map(|(i, r)| r.name.clone().unwrap_or_else(|| format!("#{i} unnamed")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.rule {
            RuleRef::Index(index) if *index < rules.len() => Ok(*index),
            RuleRef::Index(index) => Err(self.fail(
                operation,
                ErrorKind::NotFound,
                format!("it has {} rules, no rule {index}", rules.len()),
            )),
            RuleRef::Named(name) => rules
                .iter()
                .position(|r| r.name.as_deref() == Some(name))
                .ok_or_else(|| {
                    self.fail(
                        operation,
                        ErrorKind::NotFound,
                        format!("rule {name:?} is not in it (its rules: {})", names()),
                    )
                }),
            RuleRef::Only if rules.len() == 1 => Ok(0),
            RuleRef::Only => Err(self.fail(
                operation,
                ErrorKind::InvalidInput,
                format!(
                    "it has {} rules ({}); name the one to manage",
                    rules.len(),
                    names()
                ),
            )),
        }
    }

    /// Refuses ([`ErrorKind::Refused`], or [`ErrorKind::NotFound`] for a Service that is not
    /// there) when no ready pod would serve `backend`; reads only. A dry run asks this.
    pub async fn check_ready(&self, backend: &str) -> Result<()> {
        let read = self.read("check_ready").await?;
        self.ensure_ready(&read, backend, "check_ready").await
    }

    async fn ensure_ready(
        &self,
        read: &Read,
        backend: &str,
        operation: &'static str,
    ) -> Result<()> {
        let wanted = self.backends.get(backend).ok_or_else(|| {
            Error::invalid_input(
                "backend",
                format!("{backend:?} is none of this router's backends"),
            )
        })?;
        let Some(Some(_)) = read.slots.get(backend) else {
            return Err(self.fail(
                operation,
                ErrorKind::Unsupported,
                format!(
                    "{} has no backendRef for backend {backend} ({wanted}); add one before sending it traffic",
                    self.rule
                ),
            ));
        };
        let labels = match self.services.get_opt(&wanted.service).await {
            Ok(Some(service)) => service.spec.and_then(|s| s.selector).unwrap_or_default(),
            Ok(None) => {
                return Err(self.fail(
                    operation,
                    ErrorKind::NotFound,
                    format!(
                        "backend {backend} is Service {}/{}, which does not exist",
                        self.namespace, wanted.service
                    ),
                ));
            }
            Err(e) => return Err(from_kube(e, operation, &self.object())),
        };
        ensure_ready_pods(&self.pods, &labels, backend, operation, &self.object()).await
    }

    /// Puts back the split the route had before this router's first write (the pre-rollout
    /// split), conditional on a fresh read.
    pub async fn restore(&self) -> Result<TrafficSplit> {
        let before = self
            .before_first_write
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    "this router has not written anything to restore",
                )
                .with_object(self.object())
            })?;
        self.switch(&before).await?;
        Ok(before)
    }
}

fn weights_text(refs: &[BackendRef]) -> String {
    refs.iter()
        .map(|r| format!("{} {}", r.describe(), r.weight()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl TrafficRouter for GatewayRouter {
    fn target(&self) -> String {
        match &self.rule {
            RuleRef::Only => self.object(),
            rule => format!("{} {rule}", self.object()),
        }
    }

    fn capabilities(&self) -> RouterCapabilities {
        RouterCapabilities::weighted(self.backends.keys().cloned())
    }

    async fn current(&self) -> Result<Routed> {
        let read = self.read("current").await?;
        let version = RouteVersion(
            read.object
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default(),
        );
        Ok(Routed::new(read.split()?, version))
    }

    async fn apply(&self, split: &TrafficSplit, expected: &RouteVersion) -> Result<RouteVersion> {
        self.capabilities()
            .check(split)
            .map_err(|e| e.with_operation("apply").with_object(self.object()))?;
        let read = self.read("apply").await?;
        let conflict = || {
            Error::conflict(format!(
                "{} changed since it was read (resourceVersion {expected})",
                self.object()
            ))
            .with_operation("apply")
            .with_object(self.object())
        };
        if read.object.metadata.resource_version.as_deref() != Some(expected.0.as_str()) {
            return Err(conflict());
        }
        let current = read.split()?;
        // Never send traffic to a side that cannot serve it (nor to one the rule lacks).
        for (backend, weight) in split.iter() {
            if weight > 0 && current.weight(backend) == Some(0) {
                self.ensure_ready(&read, backend, "apply").await?;
            }
        }
        // Weights as percentages: every backendRef of the rule gets one (the others 0), so the
        // relative weights the gateway computes are the split's.
        let mut ops = Vec::new();
        for (j, backend_ref) in read.refs.iter().enumerate() {
            let owner = read
                .slots
                .iter()
                .find(|(_, slot)| slot.is_some_and(|(k, _)| k == j))
                .map(|(name, _)| name.as_str());
            let weight = owner.and_then(|name| split.weight(name)).unwrap_or(0);
            if backend_ref.weight != Some(i64::from(weight)) {
                ops.push(json!({
                    "op": "add",
                    "path": format!("/spec/rules/{}/backendRefs/{j}/weight", read.index),
                    "value": weight,
                }));
            }
        }
        if ops.is_empty() {
            return Ok(expected.clone());
        }
        let patch = conditional_patch(Precondition::ResourceVersion(&expected.0), ops)?;
        match self
            .routes
            .patch(
                &self.route,
                &crate::writes::patch_params(),
                &Patch::<()>::Json(patch),
            )
            .await
        {
            Ok(updated) => {
                self.before_first_write
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(current);
                Ok(RouteVersion(
                    updated.metadata.resource_version.unwrap_or_default(),
                ))
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Err(conflict()),
            Err(kube::Error::Api(status)) if status.code == 422 => {
                let err = kube::Error::Api(status);
                let now = self
                    .routes
                    .get(&self.route)
                    .await
                    .ok()
                    .map(|r| (r.metadata.generation, r.metadata.resource_version));
                Err(refused_patch(
                    err,
                    Precondition::ResourceVersion(&expected.0),
                    now,
                    "apply",
                    &self.object(),
                ))
            }
            Err(err) => Err(from_kube(err, "apply", &self.object())),
        }
    }

    async fn verify(&self, split: &TrafficSplit) -> Result<Verification> {
        let read = self.read("verify").await?;
        let configured = read.split()?;
        if configured != *split {
            return Ok(Verification::Differs(configured));
        }
        let generation = read.object.metadata.generation.unwrap_or_default();
        let status: RouteStatus = read
            .object
            .data
            .get("status")
            .cloned()
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default();
        if status.parents.is_empty() {
            return Ok(Verification::Unknown(format!(
                "no gateway has reported on {} yet (its status names no parent)",
                self.object()
            )));
        }
        for parent in &status.parents {
            for wanted in ["Accepted", "ResolvedRefs"] {
                let Some(condition) = parent.conditions.iter().find(|c| c.type_ == wanted) else {
                    return Ok(Verification::Unknown(format!(
                        "{} reports no {wanted} condition",
                        parent.controller_name
                    )));
                };
                let observed = condition.observed_generation.unwrap_or_default();
                if observed < generation {
                    return Ok(Verification::Unknown(format!(
                        "{} has {wanted} for generation {observed} of {}, not yet {generation}",
                        parent.controller_name,
                        self.object()
                    )));
                }
                if condition.status != "True" {
                    return Ok(Verification::Unknown(format!(
                        "{} reports {wanted}={} ({}): {}",
                        parent.controller_name,
                        condition.status,
                        condition.reason,
                        condition.message
                    )));
                }
            }
        }
        Ok(Verification::Matches)
    }
}
