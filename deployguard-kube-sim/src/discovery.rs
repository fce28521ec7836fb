//! Discovery documents: legacy (`APIVersions`, `APIGroupList`, `APIResourceList`) and aggregated
//! (`APIGroupDiscoveryList` v2 and v2beta1), chosen by the Accept header as the real server
//! chooses.

use serde_json::{Value, json};

use crate::resources::{ResourceType, version_priority};

/// Which discovery document a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiscoveryFormat {
    Legacy,
    AggregatedV2,
    AggregatedV2Beta1,
}

impl DiscoveryFormat {
    /// v2 only when the client offers it, v2beta1 when that is all it offers (kubectl 1.27–1.29),
    /// legacy otherwise. Answering v2 to a client that did not offer it breaks kubectl.
    pub(crate) fn negotiate(accept: &str) -> Self {
        let offers = |version: &str| {
            accept.split(',').any(|media| {
                let media = media.replace(' ', "");
                media.contains("g=apidiscovery.k8s.io")
                    && media.split(';').any(|p| p == format!("v={version}"))
            })
        };
        if offers("v2") {
            Self::AggregatedV2
        } else if offers("v2beta1") {
            Self::AggregatedV2Beta1
        } else {
            Self::Legacy
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Legacy => "application/json",
            Self::AggregatedV2 => {
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            }
            Self::AggregatedV2Beta1 => {
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            }
        }
    }
}

/// Groups in the order the server lists them (core first), each with its versions, preferred
/// first (a group a CRD serves in several versions lists them all).
fn groups(types: &[ResourceType]) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for rt in types {
        match groups.iter_mut().find(|(g, _)| *g == rt.group) {
            Some((_, versions)) if versions.contains(&rt.version) => {}
            Some((_, versions)) => versions.push(rt.version.clone()),
            None => groups.push((rt.group.clone(), vec![rt.version.clone()])),
        }
    }
    for (_, versions) in &mut groups {
        versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
    }
    groups
}

fn subresource_kind(rt: &ResourceType, sub: &str) -> (String, String, String) {
    match sub {
        "scale" => ("autoscaling".into(), "v1".into(), "Scale".into()),
        "eviction" => ("policy".into(), "v1".into(), "Eviction".into()),
        _ => (rt.group.clone(), rt.version.clone(), rt.kind.clone()),
    }
}

fn sub_verbs(sub: &str) -> Vec<&'static str> {
    if sub == "log" {
        vec!["get"]
    } else if sub == "eviction" {
        vec!["create"]
    } else {
        vec!["get", "patch", "update"]
    }
}

/// `/api` (legacy).
pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

/// `/apis` (legacy).
pub(crate) fn api_group_list(types: &[ResourceType]) -> Value {
    let mut groups: Vec<Value> = Vec::new();
    for (group, versions) in self::groups(types)
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
    {
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        let preferred = versions[0].clone();
        groups.push(json!({"name": group, "versions": versions, "preferredVersion": preferred}));
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/api/v1`, `/apis/<group>/<version>` (legacy).
pub(crate) fn api_resource_list(
    types: &[ResourceType],
    group: &str,
    version: &str,
) -> Option<Value> {
    let members: Vec<&ResourceType> = types
        .iter()
        .filter(|rt| rt.group == group && rt.version == version)
        .collect();
    if members.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for rt in members {
        resources.push(json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": rt.verbs(),
            "shortNames": rt.short_names,
            "categories": rt.categories,
        }));
        for sub in &rt.subresources {
            let (g, v, kind) = subresource_kind(rt, sub);
            let mut entry = json!({
                "name": format!("{}/{sub}", rt.plural),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": kind,
                "verbs": sub_verbs(sub),
            });
            if matches!(sub.as_str(), "scale" | "eviction") {
                entry["group"] = json!(g);
                entry["version"] = json!(v);
            }
            resources.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

/// `/api` or `/apis` (aggregated): the core group for `/api`, every other group for `/apis`.
pub(crate) fn aggregated(types: &[ResourceType], core: bool, format: DiscoveryFormat) -> Value {
    let version = if format == DiscoveryFormat::AggregatedV2 {
        "v2"
    } else {
        "v2beta1"
    };
    let mut items = Vec::new();
    for (group, versions) in groups(types)
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
    {
        let versions: Vec<Value> = versions
            .iter()
            .map(|gv_version| {
                let resources: Vec<Value> = types
                    .iter()
                    .filter(|rt| rt.group == group && rt.version == *gv_version)
                    .map(aggregated_resource)
                    .collect();
                json!({"version": gv_version, "resources": resources, "freshness": "Current"})
            })
            .collect();
        let metadata = if core {
            json!({"creationTimestamp": null})
        } else {
            json!({"name": group, "creationTimestamp": null})
        };
        items.push(json!({"metadata": metadata, "versions": versions}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"), "metadata": {}, "items": items})
}

fn aggregated_resource(rt: &ResourceType) -> Value {
    let subresources: Vec<Value> = rt
        .subresources
        .iter()
        .map(|sub| {
            let (g, v, kind) = subresource_kind(rt, sub);
            json!({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": kind}, "verbs": sub_verbs(sub)})
        })
        .collect();
    json!({
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": rt.singular,
        "shortNames": rt.short_names,
        "categories": rt.categories,
        "verbs": rt.verbs(),
        "subresources": subresources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_what_each_kubectl_offers() {
        let v127 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        let v133 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            DiscoveryFormat::negotiate(v127),
            DiscoveryFormat::AggregatedV2Beta1
        );
        assert_eq!(
            DiscoveryFormat::negotiate(v133),
            DiscoveryFormat::AggregatedV2
        );
        assert_eq!(
            DiscoveryFormat::negotiate("application/json, */*"),
            DiscoveryFormat::Legacy
        );
    }
}
