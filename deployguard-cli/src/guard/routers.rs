//! The spec's router ([`RouterSpec`]) built from the backend crates: a Service selector or a
//! Gateway API HTTPRoute (`deployguard-k8s`), an Istio VirtualService (`deployguard-istio`), or
//! an AWS ALB listener (`deployguard-aws`, credentials and region from the environment, the
//! region an ARN names first). Errors name the spec's field.

use std::sync::Arc;

use deployguard_aws::AlbRouter;
use deployguard_core::TrafficRouter;
use deployguard_core::spec::{GuardSpec, RouterSpec};
use deployguard_core::{Error, ErrorKind};
use deployguard_istio::{DestinationMatch, IstioRouter};
use deployguard_k8s::{GatewayRouter, KubeDeployment, ServiceSelectorRouter};

/// What a blue-green or canary spec needs beside its target: the router, and the stable
/// side's Deployment when the spec names one.
#[derive(Debug)]
pub struct TrafficParts {
    /// The router of `spec.router`.
    pub router: Arc<dyn TrafficRouter>,
    /// `target.stable`'s Deployment.
    pub stable: Option<KubeDeployment>,
}

/// The spec's router and stable side, `None` for a rolling or recreate spec.
pub async fn traffic_parts(
    spec: &GuardSpec,
    client: &kube::Client,
) -> Result<Option<TrafficParts>, Error> {
    let Some(router) = &spec.router else {
        return Ok(None);
    };
    let namespace = spec.namespace();
    let at_router = |err: Error| Error::new(err.kind(), format!("router: {}", err.message()));
    let router: Arc<dyn TrafficRouter> = match router {
        RouterSpec::Service {
            service,
            key,
            backends,
            ..
        } => Arc::new(
            ServiceSelectorRouter::new(client.clone(), namespace, service, key, backends.clone())
                .map_err(at_router)?,
        ),
        RouterSpec::Istio {
            virtual_service,
            route,
            backends,
            ..
        } => {
            let mut builder = IstioRouter::builder(client.clone(), namespace, virtual_service);
            if let Some(route) = route {
                builder = builder.route(route);
            }
            for (side, subset) in backends {
                builder = builder.backend(side, DestinationMatch::subset(subset));
            }
            Arc::new(builder.build().map_err(at_router)?)
        }
        RouterSpec::HttpRoute {
            http_route,
            rule,
            backends,
            ..
        } => {
            let mut builder = GatewayRouter::builder(client.clone(), namespace, http_route);
            if let Some(rule) = rule {
                builder = builder.rule_named(rule);
            }
            for (side, service) in backends {
                builder = builder.backend(side, service);
            }
            Arc::new(builder.build().map_err(at_router)?)
        }
        RouterSpec::Alb {
            listener_arn,
            rule_arn,
            backends,
            ..
        } => {
            let arn = listener_arn.as_deref().or(rule_arn.as_deref());
            let sdk =
                crate::emergency::aws_config(arn.and_then(crate::emergency::arn_region)).await;
            let mut builder = AlbRouter::builder(&sdk);
            if let Some(listener) = listener_arn {
                builder = builder.listener(listener);
            }
            if let Some(rule) = rule_arn {
                builder = builder.rule(rule);
            }
            for (side, target_group) in backends {
                builder = builder.backend(side, target_group);
            }
            Arc::new(builder.build().map_err(at_router)?)
        }
        other => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "router.kind: {} routers are not built by this program",
                    other.kind()
                ),
            ));
        }
    };
    let stable = spec
        .target
        .stable
        .as_deref()
        .map(|name| {
            KubeDeployment::try_new(client.clone(), namespace, name)
                .map_err(|e| Error::new(e.kind(), format!("target.stable: {}", e.message())))
        })
        .transpose()?;
    Ok(Some(TrafficParts { router, stable }))
}
