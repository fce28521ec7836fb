//! Routers as data: what moves a blue-green's or a canary's traffic. The program that runs the
//! guard builds the router of its backend crate from it (the `guard` command and the operator:
//! a Service selector, an Istio VirtualService, a Gateway API HTTPRoute or an AWS ALB listener); the spec checks that
//! every side the strategy names is one of the router's backends.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The router of a blue-green or canary strategy: `{kind: service, …}`, `{kind: istio, …}`,
/// `{kind: httpRoute, …}` or `{kind: alb, …}`. Each maps the strategy's side names (`blue`/`green`, `stable`/`canary`) to
/// what the router sends traffic to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum RouterSpec {
    /// A Service's selector switched between sides (blue-green only: a selector cannot split).
    #[serde(rename_all = "camelCase")]
    Service {
        /// The Service, in the target's namespace.
        service: String,
        /// The selector's key that tells the sides apart (default `version`).
        #[serde(default = "version_key")]
        key: String,
        /// Side name → the key's value on that side's pods (`{blue: blue, green: green}`).
        backends: BTreeMap<String, String>,
    },
    /// Weighted routes of an Istio VirtualService, one destination subset per side.
    #[serde(rename_all = "camelCase")]
    Istio {
        /// The VirtualService, in the target's namespace.
        virtual_service: String,
        /// The HTTP route's `name` (default: the VirtualService's only route).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<String>,
        /// Side name → DestinationRule subset (`{stable: stable, canary: canary}`).
        backends: BTreeMap<String, String>,
    },
    /// Weighted `backendRefs` of one rule of a Gateway API HTTPRoute, one Service per side.
    #[serde(rename_all = "camelCase")]
    HttpRoute {
        /// The HTTPRoute, in the target's namespace.
        http_route: String,
        /// The rule's `name` (default: the route's only rule).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        /// Side name → Service the rule's backendRef names (`{stable: app-stable, canary: app-canary}`).
        backends: BTreeMap<String, String>,
    },
    /// An AWS ALB listener's default action (or one rule's) forwarding to weighted target
    /// groups. Credentials and region come from the environment, as the AWS CLI's do.
    #[serde(rename_all = "camelCase")]
    Alb {
        /// The listener's ARN (its default action); give this or `ruleArn`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        listener_arn: Option<String>,
        /// One rule's ARN.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule_arn: Option<String>,
        /// Side name → target group ARN.
        backends: BTreeMap<String, String>,
    },
}

fn version_key() -> String {
    "version".into()
}

impl RouterSpec {
    /// The backends by side name.
    pub fn backends(&self) -> &BTreeMap<String, String> {
        match self {
            Self::Service { backends, .. }
            | Self::Istio { backends, .. }
            | Self::HttpRoute { backends, .. }
            | Self::Alb { backends, .. } => backends,
        }
    }

    /// The kind, as the spec spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Service { .. } => "service",
            Self::Istio { .. } => "istio",
            Self::HttpRoute { .. } => "httpRoute",
            Self::Alb { .. } => "alb",
        }
    }
}
