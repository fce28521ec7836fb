//! The resource types the simulated API serves: names, scopes, verbs, subresources.

/// One resource type, as discovery describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Version (`v1`).
    pub version: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Plural resource name (`deployments`).
    pub plural: String,
    /// Singular name (`deployment`).
    pub singular: String,
    /// Short names kubectl resolves (`deploy`).
    pub short_names: Vec<String>,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Subresources served (`status`, `scale`, `log`).
    pub subresources: Vec<String>,
    /// The columns `kubectl get` prints beside the name, as a CRD's
    /// `additionalPrinterColumns` declare them: `(name, JSONPath)`.
    pub printer_columns: Vec<(String, String)>,
    /// The categories discovery lists the type in (`all`: what `kubectl get all` shows).
    pub categories: Vec<String>,
    /// Where the `scale` subresource reads and writes, as JSON pointers: the desired and
    /// current replicas and the label selector (`/spec/replicas`, `/status/replicas`,
    /// `/status/selector` for a CRD that says so; the built-in kinds' own otherwise).
    pub scale_paths: Option<(String, String, Option<String>)>,
}

impl ResourceType {
    /// A namespaced custom resource type, as a CRD would register it (with a status
    /// subresource).
    pub fn custom(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            short_names: Vec::new(),
            namespaced: true,
            subresources: vec!["status".into()],
            printer_columns: Vec::new(),
            categories: Vec::new(),
            scale_paths: None,
        }
    }

    /// Adds short names.
    pub fn with_short_names(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group: how Status messages name the resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The key objects of this type are stored under.
    pub(crate) fn store_key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// Whether objects of this type carry a generation bumped by spec changes.
    pub(crate) fn has_generation(&self) -> bool {
        !matches!(
            self.kind.as_str(),
            "Pod"
                | "Event"
                | "ConfigMap"
                | "Secret"
                | "Endpoints"
                | "EndpointSlice"
                | "Namespace"
                | "Lease"
                | "Service"
                | "ServiceAccount"
                | "Role"
                | "RoleBinding"
                | "ClusterRole"
                | "ClusterRoleBinding"
                | "ControllerRevision"
                | "PersistentVolumeClaim"
                | "PersistentVolume"
                | "StorageClass"
                | "ResourceQuota"
                | "LimitRange"
                | "Node"
                | "CertificateSigningRequest"
        )
    }

    /// Whether objects of this kind are computed per request and never stored (the review
    /// APIs): they answer `create` only.
    pub(crate) fn is_review(&self) -> bool {
        self.kind.ends_with("Review")
    }

    pub(crate) fn verbs(&self) -> Vec<&'static str> {
        if self.is_review() {
            return vec!["create"];
        }
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    short: &[&str],
    namespaced: bool,
    sub: &[&str],
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        short_names: short.iter().map(|s| (*s).to_owned()).collect(),
        namespaced,
        subresources: sub.iter().map(|s| (*s).to_owned()).collect(),
        printer_columns: Vec::new(),
        scale_paths: None,
        categories: if IN_ALL.contains(&plural) {
            vec!["all".to_owned()]
        } else {
            Vec::new()
        },
    }
}

/// The built-in resources in the `all` category, which `kubectl get all` lists.
const IN_ALL: [&str; 9] = [
    "pods",
    "services",
    "daemonsets",
    "deployments",
    "replicasets",
    "statefulsets",
    "horizontalpodautoscalers",
    "cronjobs",
    "jobs",
];

/// The built-in types.
pub(crate) fn builtins() -> Vec<ResourceType> {
    vec![
        builtin(
            "",
            "v1",
            "Pod",
            "pods",
            &["po"],
            true,
            &["status", "log", "eviction"],
        ),
        builtin("", "v1", "Service", "services", &["svc"], true, &["status"]),
        builtin("", "v1", "Endpoints", "endpoints", &["ep"], true, &[]),
        builtin("", "v1", "ConfigMap", "configmaps", &["cm"], true, &[]),
        builtin("", "v1", "Secret", "secrets", &[], true, &[]),
        builtin("", "v1", "Event", "events", &["ev"], true, &[]),
        builtin(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            &["sa"],
            true,
            &["token"],
        ),
        builtin(
            "",
            "v1",
            "Namespace",
            "namespaces",
            &["ns"],
            false,
            &["status"],
        ),
        builtin(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            &["deploy"],
            true,
            &["status", "scale"],
        ),
        builtin(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            &["rs"],
            true,
            &["status", "scale"],
        ),
        builtin(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            &["sts"],
            true,
            &["status", "scale"],
        ),
        builtin(
            "apps",
            "v1",
            "DaemonSet",
            "daemonsets",
            &["ds"],
            true,
            &["status"],
        ),
        builtin(
            "apps",
            "v1",
            "ControllerRevision",
            "controllerrevisions",
            &[],
            true,
            &[],
        ),
        builtin("batch", "v1", "Job", "jobs", &[], true, &["status"]),
        builtin(
            "batch",
            "v1",
            "CronJob",
            "cronjobs",
            &["cj"],
            true,
            &["status"],
        ),
        builtin(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            &["hpa"],
            true,
            &["status"],
        ),
        // Served too as v1 (converted: crate::conversion), after v2 so that v2 is what a
        // lookup by kind finds.
        ResourceType {
            categories: Vec::new(),
            ..builtin(
                "autoscaling",
                "v1",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                &["hpa"],
                true,
                &["status"],
            )
        },
        builtin(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            &["pdb"],
            true,
            &["status"],
        ),
        builtin(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            &["ing"],
            true,
            &["status"],
        ),
        builtin(
            "networking.k8s.io",
            "v1",
            "IngressClass",
            "ingressclasses",
            &[],
            false,
            &[],
        ),
        builtin(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            &["netpol"],
            true,
            &[],
        ),
        builtin(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            &["pvc"],
            true,
            &["status"],
        ),
        builtin(
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            &["pv"],
            false,
            &["status"],
        ),
        builtin(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            &["sc"],
            false,
            &[],
        ),
        builtin(
            "",
            "v1",
            "ResourceQuota",
            "resourcequotas",
            &["quota"],
            true,
            &["status"],
        ),
        builtin(
            "",
            "v1",
            "LimitRange",
            "limitranges",
            &["limits"],
            true,
            &[],
        ),
        builtin("", "v1", "Node", "nodes", &["no"], false, &["status"]),
        builtin(
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "certificatesigningrequests",
            &["csr"],
            false,
            &["status", "approval"],
        ),
        builtin(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            &[],
            true,
            &[],
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            &["crd", "crds"],
            false,
            &["status"],
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            &[],
            true,
            &[],
        ),
        builtin(RBAC, "v1", "Role", "roles", &[], true, &[]),
        builtin(RBAC, "v1", "RoleBinding", "rolebindings", &[], true, &[]),
        builtin(RBAC, "v1", "ClusterRole", "clusterroles", &[], false, &[]),
        builtin(
            RBAC,
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            &[],
            false,
            &[],
        ),
        builtin(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            &[],
            false,
            &[],
        ),
        builtin(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
            &[],
            false,
            &[],
        ),
        // kubectl 1.27's `auth whoami` asks v1beta1, later ones v1.
        builtin(
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
            "selfsubjectreviews",
            &[],
            false,
            &[],
        ),
        builtin(
            "authentication.k8s.io",
            "v1beta1",
            "SelfSubjectReview",
            "selfsubjectreviews",
            &[],
            false,
            &[],
        ),
    ]
}

const RBAC: &str = "rbac.authorization.k8s.io";

/// How the API server orders versions of one group (`v1` > `v1beta2` > `v1beta1` > `v1alpha1` >
/// anything else): the first is the preferred version discovery names.
pub(crate) fn version_priority(version: &str) -> (u8, u32, u32) {
    let Some(rest) = version.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    let level = |prefix: &str| {
        tail.strip_prefix(prefix)
            .and_then(|n| n.parse::<u32>().ok())
    };
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(minor) = level("beta") {
        (2, major, minor)
    } else if let Some(minor) = level("alpha") {
        (1, major, minor)
    } else {
        (0, 0, 0)
    }
}

/// The resource types a `CustomResourceDefinition` serves, one per served version; the error
/// names the field that is missing or wrong.
pub(crate) fn types_of_crd(crd: &serde_json::Value) -> Result<Vec<ResourceType>, String> {
    let text = |pointer: &str| {
        crd.pointer(pointer)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                format!(
                    "{}: Required value",
                    pointer.trim_start_matches('/').replace('/', ".")
                )
            })
    };
    let group = text("/spec/group")?;
    let kind = text("/spec/names/kind")?;
    let plural = text("/spec/names/plural")?;
    let singular = crd
        .pointer("/spec/names/singular")
        .and_then(serde_json::Value::as_str)
        .map_or_else(|| kind.to_lowercase(), str::to_owned);
    let short_names: Vec<String> = crd
        .pointer("/spec/names/shortNames")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    let namespaced = text("/spec/scope")? == "Namespaced";
    let versions = crd
        .pointer("/spec/versions")
        .and_then(serde_json::Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or("spec.versions: Required value")?;
    let mut types = Vec::new();
    for version in versions {
        if version.get("served") != Some(&serde_json::Value::Bool(true)) {
            continue;
        }
        let name = version
            .get("name")
            .and_then(serde_json::Value::as_str)
            .ok_or("spec.versions[].name: Required value")?;
        let mut subresources = Vec::new();
        if version.pointer("/subresources/status").is_some() {
            subresources.push("status".to_owned());
        }
        // `.spec.replicas` as a JSON pointer.
        let pointer = |path: &str| format!("/{}", path.trim_start_matches('.').replace('.', "/"));
        let scale_paths = version.pointer("/subresources/scale").map(|scale| {
            subresources.push("scale".to_owned());
            let path = |field: &str| scale.get(field).and_then(serde_json::Value::as_str);
            (
                pointer(path("specReplicasPath").unwrap_or(".spec.replicas")),
                pointer(path("statusReplicasPath").unwrap_or(".status.replicas")),
                path("labelSelectorPath").map(pointer),
            )
        });
        let printer_columns = version
            .get("additionalPrinterColumns")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            // Columns of priority 1 and up show only with `-o wide`; the simulated table has
            // the default ones.
            .filter(|c| {
                c.get("priority")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0)
                    == 0
            })
            .filter_map(|c| {
                Some((
                    c.get("name")?.as_str()?.to_owned(),
                    c.get("jsonPath")?.as_str()?.to_owned(),
                ))
            })
            .collect();
        types.push(ResourceType {
            group: group.to_owned(),
            version: name.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            singular: singular.clone(),
            short_names: short_names.clone(),
            namespaced,
            subresources,
            printer_columns,
            scale_paths,
            categories: crd
                .pointer("/spec/names/categories")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect(),
        });
    }
    types.sort_by_key(|t| std::cmp::Reverse(version_priority(&t.version)));
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_ordered_as_the_api_server_orders_them() {
        let mut versions = vec!["v1alpha3", "v1beta1", "v1", "v2beta1", "v1alpha1", "foo"];
        versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(
            versions,
            ["v1", "v2beta1", "v1beta1", "v1alpha3", "v1alpha1", "foo"]
        );
    }
}
