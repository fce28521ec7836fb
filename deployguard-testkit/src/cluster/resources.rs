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
        )
    }

    pub(crate) fn verbs(&self) -> Vec<&'static str> {
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
    }
}

/// The built-in types.
pub(crate) fn builtins() -> Vec<ResourceType> {
    vec![
        builtin("", "v1", "Pod", "pods", &["po"], true, &["status", "log"]),
        builtin("", "v1", "Service", "services", &["svc"], true, &["status"]),
        builtin("", "v1", "Endpoints", "endpoints", &["ep"], true, &[]),
        builtin("", "v1", "ConfigMap", "configmaps", &["cm"], true, &[]),
        builtin("", "v1", "Secret", "secrets", &[], true, &[]),
        builtin("", "v1", "Event", "events", &["ev"], true, &[]),
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
        builtin("batch", "v1", "Job", "jobs", &[], true, &["status"]),
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
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            &[],
            true,
            &[],
        ),
    ]
}
