//! Request bodies in Kubernetes' protobuf encoding, for the kinds kubectl sends that way.
//!
//! kubectl 1.32 and later send the bodies of `kubectl create configmap|deployment|namespace|
//! secret|service|job|cronjob|poddisruptionbudget|quota` (and `run`, `create serviceaccount`) as `application/vnd.kubernetes.protobuf`,
//! and client-go does not fall back to JSON when a server answers 415. A real API server decodes
//! every built-in kind; this one decodes the fields those commands write, from the kinds'
//! `generated.proto` field numbers, into the JSON the rest of the server stores. A field outside
//! that set is refused by number rather than silently dropped.
//!
//! The envelope: the four bytes `k8s\0`, then a `runtime.Unknown` message (`typeMeta` = 1 with
//! `apiVersion` = 1 and `kind` = 2, `raw` = 2 holding the object's own message).

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};

use crate::status::ApiError;

/// The content type of a protobuf body.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// How one field's value is encoded.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    Msg(&'static [F]),
    /// `bytes`: base64 in JSON.
    Bytes,
    /// A message whose field 1 holds JSON text (`metav1.FieldsV1`): that JSON.
    RawJson,
    /// `map<string, string>`.
    MapStr,
    /// `map<string, bytes>`.
    MapBytes,
    /// `map<string, Quantity>`.
    MapQuantity,
    /// `resource.Quantity` (`string` = 1), its text in JSON.
    Quantity,
    /// `metav1.Time` (`seconds` = 1, `nanos` = 2), an RFC 3339 string in JSON.
    Time,
    /// `intstr.IntOrString` (`type` = 1, `intVal` = 2, `strVal` = 3).
    IntOrStr,
}

/// One field: its number, JSON name, encoding, and whether it repeats.
struct F(u32, &'static str, Ty, bool);

const fn one(n: u32, name: &'static str, ty: Ty) -> F {
    F(n, name, ty, false)
}

const fn many(n: u32, name: &'static str, ty: Ty) -> F {
    F(n, name, ty, true)
}

const OWNER_REFERENCE: &[F] = &[
    one(1, "kind", Ty::Str),
    one(3, "name", Ty::Str),
    one(4, "uid", Ty::Str),
    one(5, "apiVersion", Ty::Str),
    one(6, "controller", Ty::Bool),
    one(7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[F] = &[
    one(1, "name", Ty::Str),
    one(2, "generateName", Ty::Str),
    one(3, "namespace", Ty::Str),
    one(5, "uid", Ty::Str),
    one(6, "resourceVersion", Ty::Str),
    one(7, "generation", Ty::Int),
    one(8, "creationTimestamp", Ty::Time),
    one(11, "labels", Ty::MapStr),
    one(12, "annotations", Ty::MapStr),
    many(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    many(14, "finalizers", Ty::Str),
    many(17, "managedFields", Ty::Msg(MANAGED_FIELDS_ENTRY)),
];

/// A `metav1.ManagedFieldsEntry`; its `fieldsV1` (7) is a `FieldsV1` whose `Raw` (1) is JSON.
const MANAGED_FIELDS_ENTRY: &[F] = &[
    one(1, "manager", Ty::Str),
    one(2, "operation", Ty::Str),
    one(3, "apiVersion", Ty::Str),
    one(4, "time", Ty::Time),
    one(6, "fieldsType", Ty::Str),
    one(7, "fieldsV1", Ty::RawJson),
    one(8, "subresource", Ty::Str),
];

const SELECTOR_REQUIREMENT: &[F] = &[
    one(1, "key", Ty::Str),
    one(2, "operator", Ty::Str),
    many(3, "values", Ty::Str),
];

const LABEL_SELECTOR: &[F] = &[
    one(1, "matchLabels", Ty::MapStr),
    many(2, "matchExpressions", Ty::Msg(SELECTOR_REQUIREMENT)),
];

const CONTAINER_PORT: &[F] = &[
    one(1, "name", Ty::Str),
    one(2, "hostPort", Ty::Int),
    one(3, "containerPort", Ty::Int),
    one(4, "protocol", Ty::Str),
    one(5, "hostIP", Ty::Str),
];

const ENV_VAR: &[F] = &[one(1, "name", Ty::Str), one(2, "value", Ty::Str)];

const RESOURCES: &[F] = &[
    one(1, "limits", Ty::MapQuantity),
    one(2, "requests", Ty::MapQuantity),
];

const CONTAINER: &[F] = &[
    one(1, "name", Ty::Str),
    one(2, "image", Ty::Str),
    many(3, "command", Ty::Str),
    many(4, "args", Ty::Str),
    one(5, "workingDir", Ty::Str),
    many(6, "ports", Ty::Msg(CONTAINER_PORT)),
    many(7, "env", Ty::Msg(ENV_VAR)),
    one(8, "resources", Ty::Msg(RESOURCES)),
    one(13, "terminationMessagePath", Ty::Str),
    one(14, "imagePullPolicy", Ty::Str),
    one(16, "stdin", Ty::Bool),
    one(17, "stdinOnce", Ty::Bool),
    one(18, "tty", Ty::Bool),
    one(20, "terminationMessagePolicy", Ty::Str),
];

const POD_SPEC: &[F] = &[
    many(2, "containers", Ty::Msg(CONTAINER)),
    one(3, "restartPolicy", Ty::Str),
    one(4, "terminationGracePeriodSeconds", Ty::Int),
    one(6, "dnsPolicy", Ty::Str),
    one(7, "nodeSelector", Ty::MapStr),
    one(8, "serviceAccountName", Ty::Str),
    one(19, "schedulerName", Ty::Str),
    many(20, "initContainers", Ty::Msg(CONTAINER)),
];

const POD_TEMPLATE: &[F] = &[
    one(1, "metadata", Ty::Msg(OBJECT_META)),
    one(2, "spec", Ty::Msg(POD_SPEC)),
];

const ROLLING_UPDATE: &[F] = &[
    one(1, "maxUnavailable", Ty::IntOrStr),
    one(2, "maxSurge", Ty::IntOrStr),
];

const DEPLOYMENT_STRATEGY: &[F] = &[
    one(1, "type", Ty::Str),
    one(2, "rollingUpdate", Ty::Msg(ROLLING_UPDATE)),
];

const DEPLOYMENT_SPEC: &[F] = &[
    one(1, "replicas", Ty::Int),
    one(2, "selector", Ty::Msg(LABEL_SELECTOR)),
    one(3, "template", Ty::Msg(POD_TEMPLATE)),
    one(4, "strategy", Ty::Msg(DEPLOYMENT_STRATEGY)),
    one(5, "minReadySeconds", Ty::Int),
    one(6, "revisionHistoryLimit", Ty::Int),
    one(7, "paused", Ty::Bool),
    one(9, "progressDeadlineSeconds", Ty::Int),
];

const JOB_SPEC: &[F] = &[
    one(1, "parallelism", Ty::Int),
    one(2, "completions", Ty::Int),
    one(3, "activeDeadlineSeconds", Ty::Int),
    one(4, "selector", Ty::Msg(LABEL_SELECTOR)),
    one(5, "manualSelector", Ty::Bool),
    one(6, "template", Ty::Msg(POD_TEMPLATE)),
    one(7, "backoffLimit", Ty::Int),
    one(8, "ttlSecondsAfterFinished", Ty::Int),
    one(9, "completionMode", Ty::Str),
    one(10, "suspend", Ty::Bool),
];

const JOB_TEMPLATE: &[F] = &[
    one(1, "metadata", Ty::Msg(OBJECT_META)),
    one(2, "spec", Ty::Msg(JOB_SPEC)),
];

const CRON_JOB_SPEC: &[F] = &[
    one(1, "schedule", Ty::Str),
    one(2, "startingDeadlineSeconds", Ty::Int),
    one(3, "concurrencyPolicy", Ty::Str),
    one(4, "suspend", Ty::Bool),
    one(5, "jobTemplate", Ty::Msg(JOB_TEMPLATE)),
    one(6, "successfulJobsHistoryLimit", Ty::Int),
    one(7, "failedJobsHistoryLimit", Ty::Int),
    one(8, "timeZone", Ty::Str),
];

const PDB_SPEC: &[F] = &[
    one(1, "minAvailable", Ty::IntOrStr),
    one(2, "selector", Ty::Msg(LABEL_SELECTOR)),
    one(3, "maxUnavailable", Ty::IntOrStr),
    one(4, "unhealthyPodEvictionPolicy", Ty::Str),
];

const CROSS_VERSION_REFERENCE: &[F] = &[
    one(1, "kind", Ty::Str),
    one(2, "name", Ty::Str),
    one(3, "apiVersion", Ty::Str),
];

const METRIC_TARGET: &[F] = &[
    one(1, "type", Ty::Str),
    one(2, "value", Ty::Quantity),
    one(3, "averageValue", Ty::Quantity),
    one(4, "averageUtilization", Ty::Int),
];

const RESOURCE_METRIC: &[F] = &[
    one(1, "name", Ty::Str),
    one(2, "target", Ty::Msg(METRIC_TARGET)),
    one(3, "container", Ty::Str),
];

const METRIC_SPEC: &[F] = &[
    one(1, "type", Ty::Str),
    one(4, "resource", Ty::Msg(RESOURCE_METRIC)),
    one(7, "containerResource", Ty::Msg(RESOURCE_METRIC)),
];

const SCALING_POLICY: &[F] = &[
    one(1, "type", Ty::Str),
    one(2, "value", Ty::Int),
    one(3, "periodSeconds", Ty::Int),
];

const SCALING_RULES: &[F] = &[
    one(1, "selectPolicy", Ty::Str),
    many(2, "policies", Ty::Msg(SCALING_POLICY)),
    one(3, "stabilizationWindowSeconds", Ty::Int),
];

const HPA_SPEC: &[F] = &[
    one(1, "scaleTargetRef", Ty::Msg(CROSS_VERSION_REFERENCE)),
    one(2, "minReplicas", Ty::Int),
    one(3, "maxReplicas", Ty::Int),
    many(4, "metrics", Ty::Msg(METRIC_SPEC)),
    one(
        5,
        "behavior",
        Ty::Msg(&[
            one(1, "scaleUp", Ty::Msg(SCALING_RULES)),
            one(2, "scaleDown", Ty::Msg(SCALING_RULES)),
        ]),
    ),
];

const QUOTA_SPEC: &[F] = &[one(1, "hard", Ty::MapQuantity), many(2, "scopes", Ty::Str)];

const CSR_SPEC: &[F] = &[
    one(1, "request", Ty::Bytes),
    one(2, "username", Ty::Str),
    one(3, "uid", Ty::Str),
    many(4, "groups", Ty::Str),
    many(5, "usages", Ty::Str),
    one(7, "signerName", Ty::Str),
    one(8, "expirationSeconds", Ty::Int),
];

const CSR_CONDITION: &[F] = &[
    one(1, "type", Ty::Str),
    one(2, "reason", Ty::Str),
    one(3, "message", Ty::Str),
    one(4, "lastUpdateTime", Ty::Time),
    one(5, "lastTransitionTime", Ty::Time),
    one(6, "status", Ty::Str),
];

const CSR_STATUS: &[F] = &[
    many(1, "conditions", Ty::Msg(CSR_CONDITION)),
    one(2, "certificate", Ty::Bytes),
];

const NAMESPACE_SPEC: &[F] = &[many(1, "finalizers", Ty::Str)];

const POLICY_RULE: &[F] = &[
    many(1, "verbs", Ty::Str),
    many(2, "apiGroups", Ty::Str),
    many(3, "resources", Ty::Str),
    many(4, "resourceNames", Ty::Str),
    many(5, "nonResourceURLs", Ty::Str),
];

const SUBJECT: &[F] = &[
    one(1, "kind", Ty::Str),
    one(2, "apiGroup", Ty::Str),
    one(3, "name", Ty::Str),
    one(4, "namespace", Ty::Str),
];

const ROLE_REF: &[F] = &[
    one(1, "apiGroup", Ty::Str),
    one(2, "kind", Ty::Str),
    one(3, "name", Ty::Str),
];

const BINDING: &[F] = &[
    one(1, "metadata", Ty::Msg(OBJECT_META)),
    many(2, "subjects", Ty::Msg(SUBJECT)),
    one(3, "roleRef", Ty::Msg(ROLE_REF)),
];

const RESOURCE_ATTRIBUTES: &[F] = &[
    one(1, "namespace", Ty::Str),
    one(2, "verb", Ty::Str),
    one(3, "group", Ty::Str),
    one(4, "version", Ty::Str),
    one(5, "resource", Ty::Str),
    one(6, "subresource", Ty::Str),
    one(7, "name", Ty::Str),
];

const NON_RESOURCE_ATTRIBUTES: &[F] = &[one(1, "path", Ty::Str), one(2, "verb", Ty::Str)];

// The review kinds' statuses are the server's answer; Go clients send them with zero values.
const ACCESS_REVIEW_STATUS: &[F] = &[
    one(1, "allowed", Ty::Bool),
    one(2, "reason", Ty::Str),
    one(3, "evaluationError", Ty::Str),
    one(4, "denied", Ty::Bool),
];

const RULES_REVIEW_STATUS: &[F] = &[
    one(3, "incomplete", Ty::Bool),
    one(4, "evaluationError", Ty::Str),
];

const USER_INFO: &[F] = &[
    one(1, "username", Ty::Str),
    one(2, "uid", Ty::Str),
    many(3, "groups", Ty::Str),
];

const BOUND_OBJECT_REFERENCE: &[F] = &[
    one(1, "kind", Ty::Str),
    one(2, "apiVersion", Ty::Str),
    one(3, "name", Ty::Str),
    one(4, "uid", Ty::Str),
];

const TOKEN_REQUEST_SPEC: &[F] = &[
    many(1, "audiences", Ty::Str),
    one(3, "boundObjectRef", Ty::Msg(BOUND_OBJECT_REFERENCE)),
    one(4, "expirationSeconds", Ty::Int),
];

const TOKEN_REQUEST_STATUS: &[F] = &[
    one(1, "token", Ty::Str),
    one(2, "expirationTimestamp", Ty::Time),
];

const SERVICE_PORT: &[F] = &[
    one(1, "name", Ty::Str),
    one(2, "protocol", Ty::Str),
    one(3, "port", Ty::Int),
    one(4, "targetPort", Ty::IntOrStr),
    one(5, "nodePort", Ty::Int),
    one(6, "appProtocol", Ty::Str),
];

const SERVICE_SPEC: &[F] = &[
    many(1, "ports", Ty::Msg(SERVICE_PORT)),
    one(2, "selector", Ty::MapStr),
    one(3, "clusterIP", Ty::Str),
    one(4, "type", Ty::Str),
    many(5, "externalIPs", Ty::Str),
    one(7, "sessionAffinity", Ty::Str),
    one(8, "loadBalancerIP", Ty::Str),
    many(9, "loadBalancerSourceRanges", Ty::Str),
    one(10, "externalName", Ty::Str),
    one(11, "externalTrafficPolicy", Ty::Str),
    one(12, "healthCheckNodePort", Ty::Int),
    one(13, "publishNotReadyAddresses", Ty::Bool),
    one(17, "ipFamilyPolicy", Ty::Str),
    many(18, "clusterIPs", Ty::Str),
    many(19, "ipFamilies", Ty::Str),
    one(20, "allocateLoadBalancerNodePorts", Ty::Bool),
    one(21, "loadBalancerClass", Ty::Str),
    one(22, "internalTrafficPolicy", Ty::Str),
];

/// The kinds decoded, each with its top-level message; a status (field 3 of the objects with
/// one) is accepted empty.
const KINDS: &[(&str, &[F])] = &[
    (
        "ConfigMap",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "data", Ty::MapStr),
            one(3, "binaryData", Ty::MapBytes),
            one(4, "immutable", Ty::Bool),
        ],
    ),
    (
        "Secret",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "data", Ty::MapBytes),
            one(3, "type", Ty::Str),
            one(4, "stringData", Ty::MapStr),
            one(5, "immutable", Ty::Bool),
        ],
    ),
    (
        "Namespace",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "spec", Ty::Msg(NAMESPACE_SPEC)),
            one(3, "status", Ty::Msg(&[])),
        ],
    ),
    (
        "Service",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "spec", Ty::Msg(SERVICE_SPEC)),
            one(3, "status", Ty::Msg(&[])),
        ],
    ),
    (
        "ServiceAccount",
        &[one(1, "metadata", Ty::Msg(OBJECT_META))],
    ),
    (
        "Pod",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "spec", Ty::Msg(POD_SPEC)),
            one(3, "status", Ty::Msg(&[])),
        ],
    ),
    (
        "Deployment",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "spec", Ty::Msg(DEPLOYMENT_SPEC)),
            one(3, "status", Ty::Msg(&[])),
        ],
    ),
    (
        "Job",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "spec", Ty::Msg(JOB_SPEC)),
            one(3, "status", Ty::Msg(&[])),
        ],
    ),
    (
        "CertificateSigningRequest",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "spec", Ty::Msg(CSR_SPEC)),
            one(3, "status", Ty::Msg(CSR_STATUS)),
        ],
    ),
    (
        "CronJob",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "spec", Ty::Msg(CRON_JOB_SPEC)),
            one(3, "status", Ty::Msg(&[])),
        ],
    ),
    (
        "PodDisruptionBudget",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "spec", Ty::Msg(PDB_SPEC)),
            one(3, "status", Ty::Msg(&[])),
        ],
    ),
    (
        "HorizontalPodAutoscaler",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "spec", Ty::Msg(HPA_SPEC)),
            one(3, "status", Ty::Msg(&[])),
        ],
    ),
    (
        "ResourceQuota",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "spec", Ty::Msg(QUOTA_SPEC)),
            one(3, "status", Ty::Msg(&[])),
        ],
    ),
    (
        "Role",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            many(2, "rules", Ty::Msg(POLICY_RULE)),
        ],
    ),
    (
        "ClusterRole",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            many(2, "rules", Ty::Msg(POLICY_RULE)),
        ],
    ),
    ("RoleBinding", BINDING),
    ("ClusterRoleBinding", BINDING),
    (
        "SelfSubjectAccessReview",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(
                2,
                "spec",
                Ty::Msg(&[
                    one(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
                    one(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
                ]),
            ),
            one(3, "status", Ty::Msg(ACCESS_REVIEW_STATUS)),
        ],
    ),
    (
        "SelfSubjectRulesReview",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "spec", Ty::Msg(&[one(1, "namespace", Ty::Str)])),
            one(3, "status", Ty::Msg(RULES_REVIEW_STATUS)),
        ],
    ),
    (
        "SelfSubjectReview",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(
                2,
                "status",
                Ty::Msg(&[one(1, "userInfo", Ty::Msg(USER_INFO))]),
            ),
        ],
    ),
    (
        "TokenRequest",
        &[
            one(1, "metadata", Ty::Msg(OBJECT_META)),
            one(2, "spec", Ty::Msg(TOKEN_REQUEST_SPEC)),
            one(3, "status", Ty::Msg(TOKEN_REQUEST_STATUS)),
        ],
    ),
];

/// The scalar fields Go declares as pointers: their zero value was set on purpose.
const POINTERS: &[&str] = &[
    "replicas",
    "revisionHistoryLimit",
    "progressDeadlineSeconds",
    "parallelism",
    "completions",
    "backoffLimit",
    "activeDeadlineSeconds",
    "terminationGracePeriodSeconds",
    "ttlSecondsAfterFinished",
    "manualSelector",
    "suspend",
    "immutable",
    "expirationSeconds",
    "startingDeadlineSeconds",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
    "minReplicas",
    "averageUtilization",
    "stabilizationWindowSeconds",
];

/// Decodes a protobuf request body into the object's JSON form.
pub(crate) fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let unsupported = |what: String| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the simulated API server cannot decode this protobuf body ({what}); send it as application/json"
            ),
        )
    };
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        ApiError::bad_request("provided protobuf body is missing the 'k8s\\0' prefix")
    })?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for field in Reader(envelope) {
        let (number, value) = field.map_err(ApiError::bad_request)?;
        match (number, value) {
            (1, Wire::Len(type_meta)) => {
                for field in Reader(type_meta) {
                    match field.map_err(ApiError::bad_request)? {
                        (1, Wire::Len(text)) => api_version = utf8(text)?,
                        (2, Wire::Len(text)) => kind = utf8(text)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Len(bytes)) => raw = bytes,
            _ => {}
        }
    }
    // The autoscaler's schema is v2's; its v1 form differs.
    let modelled = !(kind == "HorizontalPodAutoscaler" && api_version != "autoscaling/v2");
    let schema = KINDS
        .iter()
        .filter(|_| modelled)
        .find(|(name, _)| *name == kind)
        .map(|(_, schema)| *schema)
        .ok_or_else(|| unsupported(format!("kind {kind:?} of {api_version}")))?;
    let mut object = message(raw, schema, &kind).map_err(unsupported)?;
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), json!(api_version));
        map.insert("kind".into(), json!(kind));
    }
    Ok(object)
}

fn utf8(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("a protobuf string field is not UTF-8"))
}

fn message(bytes: &[u8], schema: &[F], path: &str) -> Result<Value, String> {
    let mut out = Map::new();
    for field in Reader(bytes) {
        let (number, wire) = field?;
        let Some(F(_, name, ty, repeated)) = schema.iter().find(|f| f.0 == number) else {
            // Go's encoder writes every non-pointer field, empty or not: an empty value of a
            // field this server does not model carries nothing, any other value would be lost.
            if matches!(wire, Wire::Varint(0)) || matches!(wire, Wire::Len(b) if b.is_empty()) {
                continue;
            }
            return Err(format!("field {number} of {path} is not one it decodes"));
        };
        // Go writes every non-pointer field, set or not, and its JSON omits the empty ones: an
        // empty string, a zero or false is left out unless the field is a pointer (then it was
        // set, e.g. `--replicas=0`), and a zero time is no time.
        let empty = match (ty, &wire) {
            (Ty::Str | Ty::Bytes, Wire::Len(b)) => b.is_empty() && !repeated,
            (Ty::Int | Ty::Bool, Wire::Varint(0)) => !POINTERS.contains(name),
            (Ty::Time, Wire::Len(b)) => b.is_empty(),
            _ => false,
        };
        if empty {
            continue;
        }
        let path = format!("{path}.{name}");
        let value = scalar(wire, *ty, &path)?;
        match (ty, repeated) {
            (Ty::MapStr | Ty::MapBytes | Ty::MapQuantity, _) => {
                let entry = out
                    .entry(name.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Value::Object(map), Value::Object(pair)) = (entry, value) {
                    map.extend(pair);
                }
            }
            (_, true) => {
                if let Value::Array(items) = out
                    .entry(name.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    items.push(value);
                }
            }
            (_, false) => {
                out.insert(name.to_string(), value);
            }
        }
    }
    Ok(Value::Object(out))
}

/// One field's value; a map field's value is its one entry as an object.
fn scalar(wire: Wire<'_>, ty: Ty, path: &str) -> Result<Value, String> {
    let wrong = || format!("{path} has the wrong wire type");
    let text = |bytes: &[u8]| {
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{path} is not UTF-8"))
    };
    Ok(match (ty, wire) {
        (Ty::Str, Wire::Len(bytes)) => json!(text(bytes)?),
        (Ty::Bytes, Wire::Len(bytes)) => base64(bytes),
        (Ty::RawJson, Wire::Len(bytes)) => {
            let mut value = Value::Null;
            for field in Reader(bytes) {
                if let (1, Wire::Len(raw)) = field? {
                    value =
                        serde_json::from_slice(raw).map_err(|_| format!("{path} is not JSON"))?;
                }
            }
            value
        }
        (Ty::Int, Wire::Varint(n)) => json!(n as i64),
        (Ty::Bool, Wire::Varint(n)) => json!(n != 0),
        (Ty::Msg(schema), Wire::Len(bytes)) => message(bytes, schema, path)?,
        (Ty::MapStr | Ty::MapBytes | Ty::MapQuantity, Wire::Len(bytes)) => {
            let (mut key, mut value) = (String::new(), Value::String(String::new()));
            for field in Reader(bytes) {
                match (field?, ty) {
                    ((1, Wire::Len(k)), _) => key = text(k)?,
                    ((2, Wire::Len(v)), Ty::MapStr) => value = json!(text(v)?),
                    ((2, Wire::Len(v)), Ty::MapBytes) => {
                        value = base64(v);
                    }
                    ((2, Wire::Len(quantity)), _) => {
                        for part in Reader(quantity) {
                            if let (1, Wire::Len(s)) = part? {
                                value = json!(text(s)?);
                            }
                        }
                    }
                    _ => return Err(wrong()),
                }
            }
            json!({ key: value })
        }
        (Ty::Quantity, Wire::Len(bytes)) => {
            let mut value = json!("");
            for part in Reader(bytes) {
                if let (1, Wire::Len(s)) = part? {
                    value = json!(text(s)?);
                }
            }
            value
        }
        (Ty::Time, Wire::Len(bytes)) => {
            let mut seconds = 0i64;
            for field in Reader(bytes) {
                if let (1, Wire::Varint(n)) = field? {
                    seconds = n as i64;
                }
            }
            match u64::try_from(seconds) {
                Ok(0) | Err(_) => Value::Null,
                Ok(seconds) => json!(crate::clock::rfc3339(
                    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
                )),
            }
        }
        (Ty::IntOrStr, Wire::Len(bytes)) => {
            let (mut is_string, mut int, mut string) = (false, 0i64, String::new());
            for field in Reader(bytes) {
                match field? {
                    (1, Wire::Varint(n)) => is_string = n == 1,
                    (2, Wire::Varint(n)) => int = n as i64,
                    (3, Wire::Len(s)) => string = text(s)?,
                    _ => {}
                }
            }
            if is_string { json!(string) } else { json!(int) }
        }
        _ => return Err(wrong()),
    })
}

/// Bytes as JSON shows them: base64 (what `ByteString` serializes to).
fn base64(bytes: &[u8]) -> Value {
    serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec())).unwrap_or(Value::Null)
}

/// A field's value on the wire.
enum Wire<'a> {
    Varint(u64),
    Len(&'a [u8]),
    Fixed,
}

/// Reads the fields of one message, in order.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .0
                .split_first()
                .ok_or("a protobuf varint runs past the end of the body")?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a protobuf varint is longer than ten bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err("a protobuf field runs past the end of the body".into());
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<(u32, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = (|| {
            let key = self.varint()?;
            let number =
                u32::try_from(key >> 3).map_err(|_| "a protobuf field number overflows")?;
            let wire = match key & 7 {
                0 => Wire::Varint(self.varint()?),
                1 => {
                    self.take(8)?;
                    Wire::Fixed
                }
                2 => {
                    let n = usize::try_from(self.varint()?)
                        .map_err(|_| "a protobuf length overflows")?;
                    Wire::Len(self.take(n)?)
                }
                5 => {
                    self.take(4)?;
                    Wire::Fixed
                }
                other => return Err(format!("protobuf wire type {other} is not supported")),
            };
            Ok((number, wire))
        })();
        if field.is_err() {
            self.0 = &[];
        }
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len(number: u32, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3 | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn a_configmap_decodes_with_its_type_meta_and_data() {
        let meta = len(1, b"c1");
        let entry = [len(1, b"a"), len(2, b"b")].concat();
        let raw = [len(1, &meta), len(2, &entry)].concat();
        let type_meta = [len(1, b"v1"), len(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), len(1, &type_meta), len(2, &raw)].concat();
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"a": "b"}})
        );
    }

    #[test]
    fn an_unknown_field_is_refused_by_number_and_a_torn_body_is_a_bad_request() {
        let raw = len(9, b"x");
        let type_meta = [len(1, b"v1"), len(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), len(1, &type_meta), len(2, &raw)].concat();
        let err = decode(&body).unwrap_err();
        assert_eq!(err.code, 415);
        assert!(
            err.message.contains("field 9 of ConfigMap"),
            "{}",
            err.message
        );
        assert_eq!(decode(b"k8s\0\x0a\x09").unwrap_err().code, 400);
        assert_eq!(decode(b"{}").unwrap_err().code, 400);
    }
}
