//! [`IstioRouter`]: weighted splits on one HTTP route of a VirtualService.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use deployguard_core::{
    Error, ErrorKind, Result, RouteVersion, Routed, RouterCapabilities, TrafficRouter,
    TrafficRouterExt, TrafficSplit, Verification,
};
use deployguard_k8s::support::{
    Precondition, check_label, check_subdomain, conditional_patch, ensure_ready_pods, from_kube,
    refused_patch,
};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams, Patch};
use serde_json::json;
use tokio::sync::OnceCell;

use crate::resources::{
    Destination, DestinationRule, GROUP, HttpRoute, IstioVersion, VirtualService, same_host,
};

/// Which destinations of the route a backend is: by subset, by host, by port, or by several.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DestinationMatch {
    /// The destination's host (short or fully qualified), if it must match.
    pub host: Option<String>,
    /// The destination's subset, if it must match.
    pub subset: Option<String>,
    /// The destination's port, if it must match.
    pub port: Option<u32>,
}

impl DestinationMatch {
    /// The destination with subset `subset` (of whatever host).
    pub fn subset(subset: &str) -> Self {
        Self {
            subset: Some(subset.into()),
            ..Self::default()
        }
    }

    /// The destination with host `host` (a Service per version, no subsets).
    pub fn host(host: &str) -> Self {
        Self {
            host: Some(host.into()),
            ..Self::default()
        }
    }

    /// Also requires port `port`.
    pub fn with_port(mut self, port: u32) -> Self {
        self.port = Some(port);
        self
    }

    /// Also requires host `host`.
    pub fn with_host(mut self, host: &str) -> Self {
        self.host = Some(host.into());
        self
    }

    fn matches(&self, destination: &Destination, namespace: &str) -> bool {
        self.host
            .as_deref()
            .is_none_or(|h| same_host(h, &destination.host, namespace))
            && self
                .subset
                .as_deref()
                .is_none_or(|s| destination.subset.as_deref() == Some(s))
            && self
                .port
                .is_none_or(|p| destination.port.as_ref().map(|p| p.number) == Some(p))
    }

    fn is_empty(&self) -> bool {
        self.host.is_none() && self.subset.is_none() && self.port.is_none()
    }
}

impl std::fmt::Display for DestinationMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(host) = &self.host {
            parts.push(format!("host {host}"));
        }
        if let Some(subset) = &self.subset {
            parts.push(format!("subset {subset}"));
        }
        if let Some(port) = self.port {
            parts.push(format!("port {port}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// Builds an [`IstioRouter`]; every setting is checked at [`build`](Self::build).
#[must_use]
pub struct IstioRouterBuilder {
    client: kube::Client,
    namespace: String,
    virtual_service: String,
    route: Option<String>,
    backends: Vec<(String, DestinationMatch)>,
    version: Option<IstioVersion>,
}

impl std::fmt::Debug for IstioRouterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IstioRouterBuilder")
            .field("namespace", &self.namespace)
            .field("virtual_service", &self.virtual_service)
            .field("route", &self.route)
            .field("backends", &self.backends)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl IstioRouterBuilder {
    /// The HTTP route to manage, by name (needed when the VirtualService has several).
    pub fn route(mut self, name: &str) -> Self {
        self.route = Some(name.into());
        self
    }

    /// A backend named after the subset it routes to (`stable` → subset `stable`).
    pub fn subset(self, subset: &str) -> Self {
        self.backend(subset, DestinationMatch::subset(subset))
    }

    /// A backend `name` for the destinations `destination` matches.
    pub fn backend(mut self, name: &str, destination: DestinationMatch) -> Self {
        self.backends.push((name.into(), destination));
        self
    }

    /// Speaks `version` instead of discovering it (v1 when served, else v1beta1).
    pub fn api_version(mut self, version: IstioVersion) -> Self {
        self.version = Some(version);
        self
    }

    /// Adds a backend for each subset the route's destinations name that no backend covers
    /// yet (named after the subset): what an emergency command uses to send everything to one
    /// subset without knowing the others. Reads the VirtualService once.
    pub async fn subsets_of_route(mut self) -> Result<Self> {
        check_label("namespace", &self.namespace)?;
        check_subdomain("virtual service", &self.virtual_service)?;
        let object = format!("virtualservice {}/{}", self.namespace, self.virtual_service);
        let version = match self.version {
            Some(version) => version,
            None => discover_version(&self.client).await?,
        };
        let api: Api<VirtualService> =
            Api::namespaced_with(self.client.clone(), &self.namespace, &version);
        let read = api
            .get(&self.virtual_service)
            .await
            .map_err(|e| from_kube(e, "subsets_of_route", &object))?;
        let routes = &read.spec.http;
        let index = route_index(routes, self.route.as_deref(), &object, "subsets_of_route")?;
        for destination in &routes[index].route {
            let Some(subset) = &destination.destination.subset else {
                continue;
            };
            let covered = self
                .backends
                .iter()
                .any(|(_, m)| m.matches(&destination.destination, &self.namespace));
            if !covered {
                self.backends
                    .push((subset.clone(), DestinationMatch::subset(subset)));
            }
        }
        self.version = Some(version);
        Ok(self)
    }

    /// The router; [`ErrorKind::InvalidInput`] names a bad name, fewer than two backends, a
    /// backend named twice, or two backends for the same destination.
    pub fn build(self) -> Result<IstioRouter> {
        check_label("namespace", &self.namespace)?;
        check_subdomain("virtual service", &self.virtual_service)?;
        if self.route.as_deref().is_some_and(str::is_empty) {
            return Err(Error::invalid_input("route", "is empty"));
        }
        if self.backends.len() < 2 {
            return Err(Error::invalid_input(
                "backends",
                "a router needs two or more backends",
            ));
        }
        let mut backends = BTreeMap::new();
        for (name, destination) in self.backends {
            if name.trim().is_empty() {
                return Err(Error::invalid_input("backends", "a backend name is empty"));
            }
            if destination.is_empty() {
                return Err(Error::invalid_input(
                    "backends",
                    format!("backend {name:?} matches no host, subset or port"),
                ));
            }
            if let Some((other, _)) = backends.iter().find(|(_, d)| **d == destination) {
                return Err(Error::invalid_input(
                    "backends",
                    format!("backends {other:?} and {name:?} are both {destination}"),
                ));
            }
            if backends.insert(name.clone(), destination).is_some() {
                return Err(Error::invalid_input(
                    "backends",
                    format!("backend {name:?} is named twice"),
                ));
            }
        }
        let version = OnceCell::new_with(self.version);
        Ok(IstioRouter {
            pods: Api::namespaced(self.client.clone(), &self.namespace),
            services: Api::namespaced(self.client.clone(), &self.namespace),
            client: self.client,
            namespace: self.namespace,
            virtual_service: self.virtual_service,
            route: self.route,
            backends,
            version,
            before_first_write: Mutex::new(None),
        })
    }
}

/// Moves traffic between the destinations of one HTTP route of an Istio VirtualService, by
/// weight: N-way splits, any whole percentage.
///
/// Each backend is a destination of the route — by DestinationRule subset (`stable`,
/// `canary`), by host (a Service per version), or by port. A write is a JSON patch of the
/// backends' weights alone, whose first operation tests the resourceVersion the caller read
/// (the [`RouteVersion`] of [`current`](TrafficRouter::current)): a concurrent edit is a
/// [`ErrorKind::Conflict`], never overwritten, and the rest of the route (matches, retries,
/// mirrors, other destinations at weight 0) is untouched. Weights always sum to 100, as every
/// Istio version accepts.
///
/// Before a backend's weight rises from 0 the router checks that its subset exists in a
/// DestinationRule and that ready pods carry its labels ([`ErrorKind::Refused`] otherwise).
/// [`verify`](TrafficRouter::verify) reads the route back and, when istiod reports status,
/// whether the data plane has the generation written.
///
/// ```no_run
/// use deployguard_core::{TrafficRouterExt, TrafficSplit};
/// use deployguard_istio::IstioRouter;
///
/// # async fn run(client: deployguard_k8s::kube::Client) -> deployguard_core::Result<()> {
/// let router = IstioRouter::builder(client, "prod", "app")
///     .route("primary")
///     .subset("stable")
///     .subset("canary")
///     .build()?;
/// router.switch(&TrafficSplit::two_way("stable", "canary", 10)?).await?;
/// # Ok(())
/// # }
/// ```
pub struct IstioRouter {
    client: kube::Client,
    namespace: String,
    virtual_service: String,
    route: Option<String>,
    backends: BTreeMap<String, DestinationMatch>,
    version: OnceCell<IstioVersion>,
    pods: Api<Pod>,
    services: Api<Service>,
    /// The split read before this router's first write, for [`IstioRouter::restore`] (never a
    /// write precondition).
    before_first_write: Mutex<Option<TrafficSplit>>,
}

impl std::fmt::Debug for IstioRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IstioRouter")
            .field("namespace", &self.namespace)
            .field("virtual_service", &self.virtual_service)
            .field("route", &self.route)
            .field("backends", &self.backends)
            .field("version", &self.version.get())
            .finish_non_exhaustive()
    }
}

/// The route as read: the object, the route's index, and each backend's destination index and
/// weight (`None`: the route has no destination for it).
struct Read {
    object: VirtualService,
    index: usize,
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

impl IstioRouter {
    /// A builder for a router over VirtualService `namespace/virtual_service`.
    pub fn builder(
        client: kube::Client,
        namespace: &str,
        virtual_service: &str,
    ) -> IstioRouterBuilder {
        IstioRouterBuilder {
            client,
            namespace: namespace.into(),
            virtual_service: virtual_service.into(),
            route: None,
            backends: Vec::new(),
            version: None,
        }
    }

    fn object(&self) -> String {
        format!("virtualservice {}/{}", self.namespace, self.virtual_service)
    }

    fn route_name(&self) -> String {
        match &self.route {
            Some(name) => format!("HTTP route {name:?}"),
            None => "the HTTP route".into(),
        }
    }

    /// The version of `networking.istio.io` this router speaks: the one it was built with, or
    /// v1 when the cluster serves it, else v1beta1 (asked once).
    pub async fn api_version(&self) -> Result<IstioVersion> {
        self.version
            .get_or_try_init(|| discover_version(&self.client))
            .await
            .copied()
    }

    async fn virtual_services(&self) -> Result<Api<VirtualService>> {
        let version = self.api_version().await?;
        Ok(Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &version,
        ))
    }

    async fn read(&self, operation: &'static str) -> Result<Read> {
        let object = self
            .virtual_services()
            .await?
            .get(&self.virtual_service)
            .await
            .map_err(|e| from_kube(e, operation, &self.object()))?;
        let fail = |kind: ErrorKind, message: String| {
            Error::new(kind, message)
                .with_operation(operation)
                .with_object(self.object())
        };
        let routes = &object.spec.http;
        let index = route_index(routes, self.route.as_deref(), &self.object(), operation)?;
        let route = &routes[index].route;
        let single = route.len() == 1;
        let mut slots = BTreeMap::new();
        let mut claimed = vec![false; route.len()];
        for (name, matcher) in &self.backends {
            let found = route
                .iter()
                .position(|d| matcher.matches(&d.destination, &self.namespace));
            let slot = match found {
                Some(j) => {
                    claimed[j] = true;
                    let weight = route[j].weight.unwrap_or(if single { 100 } else { 0 });
                    let weight =
                        u8::try_from(weight)
                            .ok()
                            .filter(|w| *w <= 100)
                            .ok_or_else(|| {
                                fail(
                                    ErrorKind::Unexpected,
                                    format!(
                                        "destination {} has weight {weight}, not a percentage",
                                        describe(&route[j].destination)
                                    ),
                                )
                            })?;
                    Some((j, weight))
                }
                None => None,
            };
            slots.insert(name.clone(), slot);
        }
        if let Some((j, other)) = route
            .iter()
            .enumerate()
            .find(|(j, d)| !claimed[*j] && d.weight.unwrap_or(if single { 100 } else { 0 }) > 0)
        {
            return Err(fail(
                ErrorKind::Unsupported,
                format!(
                    "{} sends {}% to {} (destination {j}), which is none of this router's backends ({})",
                    self.route_name(),
                    other.weight.unwrap_or(100),
                    describe(&other.destination),
                    self.backends.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let read = Read {
            object,
            index,
            slots,
        };
        read.split().map_err(|e| {
            fail(
                ErrorKind::Unsupported,
                format!(
                    "{}'s weights are not whole percentages summing to 100 ({e}); deployguard writes only such splits",
                    self.route_name()
                ),
            )
        })?;
        Ok(read)
    }

    /// Refuses ([`ErrorKind::Refused`], or [`ErrorKind::NotFound`] for a subset no
    /// DestinationRule defines) when no ready pod would serve `backend`; reads only. A dry run
    /// asks this, so it promises nothing the real switch would refuse.
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
        let matcher = self.backends.get(backend).ok_or_else(|| {
            Error::invalid_input(
                "backend",
                format!("{backend:?} is none of this router's backends"),
            )
        })?;
        let fail = |kind: ErrorKind, message: String| {
            Error::new(kind, message)
                .with_operation(operation)
                .with_object(self.object())
        };
        let Some(Some((j, _))) = read.slots.get(backend) else {
            return Err(fail(
                ErrorKind::Unsupported,
                format!(
                    "{} has no destination for backend {backend} ({matcher}); add one before sending it traffic",
                    self.route_name()
                ),
            ));
        };
        let destination = &read.object.spec.http[read.index].route[*j].destination;
        let host = destination
            .host
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        let mut labels = match self.services.get_opt(&host).await {
            Ok(Some(service)) => service.spec.and_then(|s| s.selector).unwrap_or_default(),
            Ok(None) => {
                return Err(fail(
                    ErrorKind::NotFound,
                    format!(
                        "backend {backend} routes to host {}, and Service {}/{host} does not exist",
                        destination.host, self.namespace
                    ),
                ));
            }
            Err(e) => return Err(from_kube(e, operation, &self.object())),
        };
        if let Some(subset) = &destination.subset {
            let version = self.api_version().await?;
            let rules: Api<DestinationRule> =
                Api::namespaced_with(self.client.clone(), &self.namespace, &version);
            let rules = rules
                .list(&ListParams::default())
                .await
                .map_err(|e| from_kube(e, operation, &self.object()))?;
            let found = rules
                .items
                .iter()
                .filter(|dr| same_host(&dr.spec.host, &destination.host, &self.namespace))
                .flat_map(|dr| dr.spec.subsets.iter())
                .find(|s| s.name == *subset);
            let Some(found) = found else {
                return Err(fail(
                    ErrorKind::NotFound,
                    format!(
                        "backend {backend} routes to subset {subset:?} of host {}, which no DestinationRule in {} defines",
                        destination.host, self.namespace
                    ),
                ));
            };
            labels.extend(found.labels.clone());
        }
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

/// The version of `networking.istio.io` to speak: v1 when the cluster serves it, else v1beta1.
async fn discover_version(client: &kube::Client) -> Result<IstioVersion> {
    let groups = client
        .list_api_groups()
        .await
        .map_err(|e| from_kube(e, "discovery", GROUP))?;
    let Some(group) = groups.groups.iter().find(|g| g.name == GROUP) else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("the cluster does not serve {GROUP}: is Istio installed?"),
        )
        .with_operation("discovery"));
    };
    let served: Vec<&str> = group.versions.iter().map(|v| v.version.as_str()).collect();
    [IstioVersion::V1, IstioVersion::V1beta1]
        .into_iter()
        .find(|v| served.contains(&v.as_str()))
        .ok_or_else(|| {
            Error::unsupported(format!(
                "the cluster serves {GROUP} in {}; the router speaks v1 or v1beta1",
                served.join(", ")
            ))
        })
}

/// The index of the managed route of `object`: the one named `route`, or the only one.
fn route_index(
    routes: &[HttpRoute],
    route: Option<&str>,
    object: &str,
    operation: &'static str,
) -> Result<usize> {
    let fail = |kind: ErrorKind, message: String| {
        Error::new(kind, message)
            .with_operation(operation)
            .with_object(object.to_owned())
    };
    match route {
        Some(name) => routes
            .iter()
            .position(|r| r.name.as_deref() == Some(name))
            .ok_or_else(|| {
                fail(
                    ErrorKind::NotFound,
                    format!(
                        "HTTP route {name:?} is not in it (its routes: {})",
                        route_names(routes)
                    ),
                )
            }),
        None if routes.len() == 1 => Ok(0),
        None => Err(fail(
            ErrorKind::InvalidInput,
            format!(
                "it has {} HTTP routes ({}); name the one to manage",
                routes.len(),
                route_names(routes)
            ),
        )),
    }
}

fn route_names(routes: &[HttpRoute]) -> String {
    routes
        .iter()
        .enumerate()
        .map(|(i, r)| r.name.clone().unwrap_or_else(|| format!("#{i} unnamed")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(destination: &Destination) -> String {
    let mut text = format!("host {}", destination.host);
    if let Some(subset) = &destination.subset {
        text.push_str(&format!(" subset {subset}"));
    }
    if let Some(port) = &destination.port {
        text.push_str(&format!(" port {}", port.number));
    }
    text
}

#[async_trait]
impl TrafficRouter for IstioRouter {
    fn target(&self) -> String {
        match &self.route {
            Some(route) => format!("{} route {route}", self.object()),
            None => self.object(),
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
        if current == *split {
            return Ok(expected.clone());
        }
        let mut ops = Vec::new();
        for (backend, weight) in split.iter() {
            match read.slots.get(backend) {
                Some(Some((j, _))) => ops.push(json!({
                    "op": "add",
                    "path": format!("/spec/http/{}/route/{j}/weight", read.index),
                    "value": weight,
                })),
                _ if weight == 0 => {}
                _ => {
                    // No destination to give the weight to: refused before anything is written.
                    self.ensure_ready(&read, backend, "apply").await?;
                }
            }
        }
        // Never send traffic to a side that cannot serve it.
        for (backend, weight) in split.iter() {
            if weight > 0 && current.weight(backend) == Some(0) {
                self.ensure_ready(&read, backend, "apply").await?;
            }
        }
        let patch = conditional_patch(Precondition::ResourceVersion(&expected.0), ops)?;
        match self
            .virtual_services()
            .await?
            .patch(
                &self.virtual_service,
                &deployguard_k8s::support::patch_params(),
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
                let now = match self.virtual_services().await {
                    Ok(api) => api
                        .get(&self.virtual_service)
                        .await
                        .ok()
                        .map(|vs| (vs.metadata.generation, vs.metadata.resource_version)),
                    Err(_) => None,
                };
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
        let Some(status) = &read.object.status else {
            // The control plane reports nothing (status reporting off): the object is all
            // there is to read.
            return Ok(Verification::Matches);
        };
        match status.observed() {
            Some(observed) if observed < generation => Ok(Verification::Unknown(format!(
                "the mesh has applied generation {observed} of {}, not yet {generation}",
                self.object()
            ))),
            _ => match status.conditions.iter().find(|c| c.type_ == "Reconciled") {
                Some(c) if c.status != "True" => Ok(Verification::Unknown(format!(
                    "the mesh reports Reconciled={}: {}",
                    c.status,
                    c.message.as_deref().unwrap_or("no message")
                ))),
                _ => Ok(Verification::Matches),
            },
        }
    }
}
