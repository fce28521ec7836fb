//! [`ServiceSelectorRouter`]: all-or-nothing blue/green by switching one key of a Service's
//! selector.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use deployguard_core::{
    Error, ErrorKind, Result, RouteVersion, Routed, RouterCapabilities, TrafficRouter,
    TrafficRouterExt, TrafficSplit, Verification,
};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch};
use serde_json::json;

use crate::error::from_kube;
use crate::names::{check_label, check_subdomain};
use crate::patch::{Precondition, conditional_patch, pointer, refused_patch};

/// Switches Service `service`'s selector key `key` between values, one per backend
/// (`blue` → `version=blue`, `green` → `version=green`).
///
/// Only that key is patched, with a JSON patch that first tests the resourceVersion the caller
/// read (the [`RouteVersion`] of [`current`](TrafficRouter::current)).
/// A switch to a side with no ready pods is refused; `verify` reads the EndpointSlices.
#[derive(Debug)]
pub struct ServiceSelectorRouter {
    namespace: String,
    service: String,
    key: String,
    backends: BTreeMap<String, String>,
    services: Api<Service>,
    pods: Api<Pod>,
    slices: Api<EndpointSlice>,
    /// The selector value before this router's last switch, for `restore_previous` (never a
    /// write precondition).
    previous: Mutex<Option<String>>,
}

impl ServiceSelectorRouter {
    /// A router over `namespace/service`'s selector key `key`; `backends` maps backend names to
    /// label values. Fails with `InvalidInput` unless there are two or more distinct backends.
    pub fn new<N: Into<String>, V: Into<String>>(
        client: kube::Client,
        namespace: &str,
        service: &str,
        key: &str,
        backends: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self> {
        check_label("namespace", namespace)?;
        check_subdomain("service", service)?;
        let backends: BTreeMap<String, String> = backends
            .into_iter()
            .map(|(n, v)| (n.into(), v.into()))
            .collect();
        let mut values: Vec<&String> = backends.values().collect();
        values.sort();
        values.dedup();
        if backends.len() < 2 || values.len() != backends.len() {
            return Err(Error::invalid_input(
                "backends",
                "need two or more backends with distinct label values",
            ));
        }
        if key.is_empty() {
            return Err(Error::invalid_input("key", "is empty"));
        }
        Ok(Self {
            namespace: namespace.into(),
            service: service.into(),
            key: key.into(),
            backends,
            services: Api::namespaced(client.clone(), namespace),
            pods: Api::namespaced(client.clone(), namespace),
            slices: Api::namespaced(client, namespace),
            previous: Mutex::new(None),
        })
    }

    fn object(&self) -> String {
        format!("service {}/{}", self.namespace, self.service)
    }

    fn backend_of(&self, value: &str) -> Option<&str> {
        self.backends
            .iter()
            .find(|(_, v)| *v == value)
            .map(|(k, _)| k.as_str())
    }

    fn split_to(&self, backend: &str) -> Result<TrafficSplit> {
        let others: Vec<&str> = self
            .backends
            .keys()
            .map(String::as_str)
            .filter(|b| *b != backend)
            .collect();
        TrafficSplit::all_to(backend, &others)
    }

    async fn read(&self, operation: &'static str) -> Result<(Service, BTreeMap<String, String>)> {
        let service = self
            .services
            .get(&self.service)
            .await
            .map_err(|e| from_kube(e, operation, &self.object()))?;
        let selector = service
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        Ok((service, selector))
    }

    /// Switches back to the value the selector had before this router's last switch.
    pub async fn restore_previous(&self) -> Result<TrafficSplit> {
        let previous = self
            .previous
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let previous = previous.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                "this router has not switched anything to restore",
            )
        })?;
        let backend = self
            .backend_of(&previous)
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::new(ErrorKind::Unexpected, format!("{previous:?} is no backend"))
            })?;
        let split = self.split_to(&backend)?;
        self.switch(&split).await?;
        Ok(split)
    }
}

impl ServiceSelectorRouter {
    /// Refuses ([`ErrorKind::Refused`]) when no ready pod would serve `backend`; reads only. A
    /// dry run asks this, so it promises nothing the real switch would refuse.
    pub async fn check_ready(&self, backend: &str) -> Result<()> {
        if !self.backends.contains_key(backend) {
            return Err(Error::invalid_input(
                "backend",
                format!("{backend:?} is none of this router's backends"),
            ));
        }
        let (_, selector) = self.read("check_ready").await?;
        self.ensure_ready(&selector, backend, "check_ready").await
    }

    async fn ensure_ready(
        &self,
        selector: &BTreeMap<String, String>,
        backend: &str,
        operation: &'static str,
    ) -> Result<()> {
        let mut target_selector = selector.clone();
        target_selector.insert(self.key.clone(), self.backends[backend].clone());
        ensure_ready_pods(
            &self.pods,
            &target_selector,
            backend,
            operation,
            &self.object(),
        )
        .await
    }
}

/// Refuses ([`ErrorKind::Refused`]) unless a ready pod carries every label of `labels`: no
/// router sends traffic to a side that cannot serve it. Both Kubernetes-facing routers ask it.
pub async fn ensure_ready_pods(
    pods: &Api<Pod>,
    labels: &BTreeMap<String, String>,
    backend: &str,
    operation: &'static str,
    object: &str,
) -> Result<()> {
    let selector = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let listed = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| from_kube(e, operation, object))?;
    // A pod being deleted takes no new traffic, whatever its last readiness.
    let ready = listed.items.iter().any(|p| {
        p.metadata.deletion_timestamp.is_none()
            && p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    if !ready {
        return Err(Error::new(
            ErrorKind::Refused,
            format!("no ready pods match {selector}; refusing to send traffic to {backend}"),
        )
        .with_operation(operation)
        .with_object(object.to_owned()));
    }
    Ok(())
}

#[async_trait]
impl TrafficRouter for ServiceSelectorRouter {
    fn target(&self) -> String {
        format!("{} selector {}", self.object(), self.key)
    }

    fn capabilities(&self) -> RouterCapabilities {
        RouterCapabilities::all_or_nothing(self.backends.keys().cloned())
    }

    async fn current(&self) -> Result<Routed> {
        let (service, selector) = self.read("current").await?;
        let value = selector.get(&self.key).cloned().unwrap_or_default();
        let backend = self.backend_of(&value).ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!(
                    "selector {}={value:?} is none of the router's backends",
                    self.key
                ),
            )
            .with_operation("current")
            .with_object(self.object())
        })?;
        let version = RouteVersion(service.metadata.resource_version.unwrap_or_default());
        Ok(Routed::new(self.split_to(backend)?, version))
    }

    async fn apply(&self, split: &TrafficSplit, expected: &RouteVersion) -> Result<RouteVersion> {
        self.capabilities()
            .check(split)
            .map_err(|e| e.with_operation("apply").with_object(self.object()))?;
        let Some(backend) = split.receiving().next().map(str::to_owned) else {
            return Err(Error::invalid_input(
                "traffic split",
                "sends traffic nowhere",
            ));
        };
        let value = self.backends[&backend].clone();
        let (service, selector) = self.read("apply").await?;
        let expected_rv = expected.0.clone();
        if service.metadata.resource_version.as_deref() != Some(expected_rv.as_str()) {
            return Err(Error::conflict(format!(
                "{} changed since it was read (resourceVersion {expected_rv})",
                self.object()
            ))
            .with_operation("apply")
            .with_object(self.object()));
        }
        let previous = selector.get(&self.key).cloned();
        if previous.as_deref() == Some(value.as_str()) {
            return Ok(expected.clone());
        }
        // Never send traffic to a side that cannot serve it.
        self.ensure_ready(&selector, &backend, "apply").await?;
        let path = pointer("/spec/selector", &self.key);
        let patch = conditional_patch(
            Precondition::ResourceVersion(&expected_rv),
            vec![json!({"op": "add", "path": path, "value": value})],
        )?;
        match self
            .services
            .patch(
                &self.service,
                &crate::writes::patch_params(),
                &Patch::<()>::Json(patch),
            )
            .await
        {
            Ok(updated) => {
                *self.previous.lock().unwrap_or_else(PoisonError::into_inner) = previous;
                Ok(RouteVersion(
                    updated.metadata.resource_version.unwrap_or_default(),
                ))
            }
            Err(kube::Error::Api(status)) if status.code == 422 => {
                let err = kube::Error::Api(status);
                let now = self
                    .services
                    .get(&self.service)
                    .await
                    .ok()
                    .map(|s| (s.metadata.generation, s.metadata.resource_version));
                Err(refused_patch(
                    err,
                    Precondition::ResourceVersion(&expected_rv),
                    now,
                    "apply",
                    &self.object(),
                ))
            }
            Err(err) => Err(from_kube(err, "apply", &self.object())),
        }
    }

    async fn verify(&self, split: &TrafficSplit) -> Result<Verification> {
        let service = self
            .services
            .get(&self.service)
            .await
            .map_err(|e| from_kube(e, "verify", &self.object()))?;
        let configured = service
            .spec
            .and_then(|s| s.selector)
            .and_then(|s| s.get(&self.key).cloned())
            .unwrap_or_default();
        let slices = self
            .slices
            .list(
                &ListParams::default()
                    .labels(&format!("kubernetes.io/service-name={}", self.service)),
            )
            .await
            .map_err(|e| from_kube(e, "verify", &self.object()))?;
        let mut values = Vec::new();
        for slice in slices.items {
            for endpoint in slice.endpoints {
                let ready = endpoint
                    .conditions
                    .as_ref()
                    .and_then(|c| c.ready)
                    .unwrap_or(false);
                let Some(pod) = endpoint.target_ref.and_then(|r| r.name) else {
                    continue;
                };
                if !ready {
                    continue;
                }
                let labels = self
                    .pods
                    .get(&pod)
                    .await
                    .ok()
                    .and_then(|p| p.metadata.labels)
                    .unwrap_or_default();
                values.push(labels.get(&self.key).cloned().unwrap_or_default());
            }
        }
        values.sort();
        values.dedup();
        match values.as_slice() {
            [] => Ok(Verification::Unknown(
                "the Service has no ready endpoints".into(),
            )),
            [routed] if *routed == configured => match self.backend_of(routed) {
                Some(backend) => {
                    let actual = self.split_to(backend)?;
                    Ok(if actual == *split {
                        Verification::Matches
                    } else {
                        Verification::Differs(actual)
                    })
                }
                None => Ok(Verification::Unknown(format!(
                    "endpoints carry {}={routed}, no backend of this router",
                    self.key
                ))),
            },
            _ => Ok(Verification::Unknown(
                "endpoints are catching up with the selector".into(),
            )),
        }
    }
}
