//! Typed `networking.istio.io` resources: the parts of a VirtualService and a DestinationRule
//! the router reads. Unknown fields are ignored on read and never written back: the router
//! writes JSON patches of the weights alone.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::DynamicResourceScope;
use serde::{Deserialize, Serialize};

/// The API group of Istio's networking resources.
pub const GROUP: &str = "networking.istio.io";

/// Which version of `networking.istio.io` the router speaks. The schemas are identical (one
/// definition aliased across versions since Istio 1.23); v1 is served from Istio 1.22 on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IstioVersion {
    /// `networking.istio.io/v1` (Istio 1.22 and later; the storage version).
    V1,
    /// `networking.istio.io/v1beta1` (every Istio since 1.5).
    V1beta1,
}

impl IstioVersion {
    /// `v1` or `v1beta1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V1beta1 => "v1beta1",
        }
    }
}

impl fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{GROUP}/{}", self.as_str())
    }
}

macro_rules! istio_resource {
    ($ty:ident, $kind:literal, $plural:literal) => {
        impl kube::Resource for $ty {
            type DynamicType = IstioVersion;
            // The version is chosen at run time, so the scope is the dynamic one; both kinds
            // are namespaced.
            type Scope = DynamicResourceScope;

            fn kind(_: &IstioVersion) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &IstioVersion) -> Cow<'_, str> {
                Cow::Borrowed(GROUP)
            }
            fn version(version: &IstioVersion) -> Cow<'_, str> {
                Cow::Borrowed(version.as_str())
            }
            fn plural(_: &IstioVersion) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// A VirtualService: HTTP routes, each with weighted destinations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VirtualService {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// What it routes.
    #[serde(default)]
    pub spec: VirtualServiceSpec,
    /// What the control plane reports, when its status reporting is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<IstioStatus>,
}

istio_resource!(VirtualService, "VirtualService", "virtualservices");

/// The routing of a [`VirtualService`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VirtualServiceSpec {
    /// The hosts it applies to.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The gateways (and `mesh`) it applies to.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// HTTP routes, first match wins.
    #[serde(default)]
    pub http: Vec<HttpRoute>,
}

/// One HTTP route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HttpRoute {
    /// Its name, how the router finds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its match conditions (absent: every request).
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<serde_json::Value>>,
    /// Its weighted destinations.
    #[serde(default)]
    pub route: Vec<RouteDestination>,
}

/// A destination and its weight.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RouteDestination {
    /// Where requests go.
    pub destination: Destination,
    /// Its relative weight (absent: all traffic when it is the only destination, else none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
}

/// A host, with a subset or a port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Destination {
    /// A Service name, short (`app`) or fully qualified (`app.prod.svc.cluster.local`).
    pub host: String,
    /// A subset a DestinationRule defines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    /// A port of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
}

/// A port number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PortSelector {
    /// The port.
    #[serde(default)]
    pub number: u32,
}

/// The status Istio writes on its resources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct IstioStatus {
    /// The generation the control plane has distributed (Istio writes it as a number or a
    /// string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<serde_json::Value>,
    /// Conditions, `Reconciled` above all.
    #[serde(default)]
    pub conditions: Vec<IstioCondition>,
}

impl IstioStatus {
    /// The observed generation as a number.
    pub fn observed(&self) -> Option<i64> {
        match self.observed_generation.as_ref()? {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// One condition of an [`IstioStatus`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IstioCondition {
    /// `Reconciled`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// What the control plane says.
    #[serde(default)]
    pub message: Option<String>,
}

/// A DestinationRule: the subsets of a host, each selecting pods by labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DestinationRule {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// Its host and subsets.
    #[serde(default)]
    pub spec: DestinationRuleSpec,
}

istio_resource!(DestinationRule, "DestinationRule", "destinationrules");

/// The host and subsets of a [`DestinationRule`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DestinationRuleSpec {
    /// The host it applies to.
    #[serde(default)]
    pub host: String,
    /// Its subsets.
    #[serde(default)]
    pub subsets: Vec<Subset>,
}

/// A named subset of a host's pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Subset {
    /// Its name, as destinations name it.
    pub name: String,
    /// The labels its pods carry.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Whether `host`, as written in namespace `namespace`, names the same Service as `other`.
pub(crate) fn same_host(host: &str, other: &str, namespace: &str) -> bool {
    let short = |h: &str| {
        let suffixes = [
            format!(".{namespace}.svc.cluster.local"),
            format!(".{namespace}.svc"),
            format!(".{namespace}"),
        ];
        suffixes
            .iter()
            .find_map(|s| h.strip_suffix(s.as_str()))
            .unwrap_or(h)
            .to_owned()
    };
    short(host) == short(other)
}
