//! The OpenAPI documents kubectl downloads before `apply`, `create -f`, `replace -f` and
//! `explain`, and the schemas the server prunes unknown fields with.
//!
//! - `/openapi/v3` lists one document per group-version served; each document has the paths of
//!   its resources (their PATCH operations carry `x-kubernetes-group-version-kind` and the
//!   `fieldValidation` parameter, which is how kubectl learns to leave validation to the server)
//!   and the schemas of its kinds (`x-kubernetes-group-version-kind` on each kind's schema, which
//!   is how `kubectl explain` finds it). Built-in schemas come from k8s-openapi's; a custom
//!   resource's from its CRD's `openAPIV3Schema`.
//! - `/openapi/v2` is a protobuf document with no definitions: kubectl insists on downloading it
//!   before validating, then finds the server validates fields itself.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::api::{
    apps, autoscaling, batch, certificates, coordination, core, discovery, networking, policy,
    rbac, storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use schemars::JsonSchema;
use serde_json::{Map, Value, json};

use crate::patch::PATCH_STRATEGIES;
use crate::resources::ResourceType;

/// The built-in kinds' schemas: every definition they reach, and each kind's definition name.
struct Builtins {
    definitions: Map<String, Value>,
    kinds: BTreeMap<(&'static str, &'static str), String>,
}

fn builtins() -> &'static Builtins {
    static BUILTINS: OnceLock<Builtins> = OnceLock::new();
    BUILTINS.get_or_init(|| {
        let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
        let mut kinds = BTreeMap::new();
        macro_rules! kind {
            ($group:literal, $kind:literal, $ty:ty) => {
                generator.subschema_for::<$ty>();
                kinds.insert(
                    ($group, $kind),
                    <$ty as JsonSchema>::schema_name().into_owned(),
                );
            };
        }
        kind!("", "Pod", core::v1::Pod);
        kind!("", "Service", core::v1::Service);
        kind!("", "Endpoints", core::v1::Endpoints);
        kind!("", "ConfigMap", core::v1::ConfigMap);
        kind!("", "Secret", core::v1::Secret);
        kind!("", "Event", core::v1::Event);
        kind!("", "Namespace", core::v1::Namespace);
        kind!("", "ServiceAccount", core::v1::ServiceAccount);
        kind!("apps", "Deployment", apps::v1::Deployment);
        kind!("apps", "ReplicaSet", apps::v1::ReplicaSet);
        kind!("batch", "Job", batch::v1::Job);
        kind!("apps", "StatefulSet", apps::v1::StatefulSet);
        kind!("apps", "DaemonSet", apps::v1::DaemonSet);
        kind!("apps", "ControllerRevision", apps::v1::ControllerRevision);
        kind!("batch", "CronJob", batch::v1::CronJob);
        kind!(
            "autoscaling",
            "HorizontalPodAutoscaler",
            autoscaling::v2::HorizontalPodAutoscaler
        );
        kind!(
            "policy",
            "PodDisruptionBudget",
            policy::v1::PodDisruptionBudget
        );
        kind!("policy", "Eviction", policy::v1::Eviction);
        kind!("networking.k8s.io", "Ingress", networking::v1::Ingress);
        kind!(
            "networking.k8s.io",
            "IngressClass",
            networking::v1::IngressClass
        );
        kind!(
            "networking.k8s.io",
            "NetworkPolicy",
            networking::v1::NetworkPolicy
        );
        kind!("", "PersistentVolumeClaim", core::v1::PersistentVolumeClaim);
        kind!("", "PersistentVolume", core::v1::PersistentVolume);
        kind!("storage.k8s.io", "StorageClass", storage::v1::StorageClass);
        kind!("", "ResourceQuota", core::v1::ResourceQuota);
        kind!("", "LimitRange", core::v1::LimitRange);
        kind!("", "Node", core::v1::Node);
        kind!(
            "certificates.k8s.io",
            "CertificateSigningRequest",
            certificates::v1::CertificateSigningRequest
        );
        kind!(
            "discovery.k8s.io",
            "EndpointSlice",
            discovery::v1::EndpointSlice
        );
        kind!("coordination.k8s.io", "Lease", coordination::v1::Lease);
        kind!("rbac.authorization.k8s.io", "Role", rbac::v1::Role);
        kind!(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            rbac::v1::RoleBinding
        );
        kind!(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            rbac::v1::ClusterRole
        );
        kind!(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            rbac::v1::ClusterRoleBinding
        );
        kind!(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            apiextensions::CustomResourceDefinition
        );
        let mut definitions = generator.take_definitions(true);
        for patched in PATCH_STRATEGIES {
            if let Some(Value::Object(field)) = definitions
                .get_mut(patched.definition)
                .and_then(|d| d.pointer_mut(&format!("/properties/{}", patched.field)))
            {
                field.insert(
                    "x-kubernetes-patch-strategy".into(),
                    json!(patched.strategy),
                );
                if let Some(key) = patched.merge_key {
                    field.insert("x-kubernetes-patch-merge-key".into(), json!(key));
                    field.insert("x-kubernetes-list-type".into(), json!("map"));
                    field.insert("x-kubernetes-list-map-keys".into(), json!([key]));
                }
            }
        }
        for ((group, kind), name) in &kinds {
            if let Some(Value::Object(schema)) = definitions.get_mut(name) {
                schema.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([{"group": group, "kind": kind, "version": version_of(name)}]),
                );
            }
        }
        Builtins { definitions, kinds }
    })
}

/// The version of a built-in kind's definition: `v2` of
/// `io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler`.
fn version_of(definition: &str) -> &str {
    definition.rsplit('.').nth(1).unwrap_or("v1")
}

/// A kind's schema and the definitions its references resolve in.
pub(crate) struct KindSchema<'a> {
    pub(crate) root: Value,
    pub(crate) definitions: &'a Map<String, Value>,
}

/// The schema objects of `rt` are checked against: a built-in kind's, or the CRD's (`crds` are
/// the stored CustomResourceDefinitions). `None` when the type has none (nothing is pruned).
pub(crate) fn schema_of<'a>(
    rt: &ResourceType,
    crds: &[Value],
    empty: &'a Map<String, Value>,
) -> Option<KindSchema<'a>> {
    let builtins = builtins();
    if let Some(name) = builtins.kinds.get(&(rt.group.as_str(), rt.kind.as_str()))
        && rt.version == version_of(name)
    {
        return Some(KindSchema {
            root: json!({"$ref": format!("#/components/schemas/{name}")}),
            definitions: &builtins.definitions,
        });
    }
    crd_schema(rt, crds).map(|root| KindSchema {
        root,
        definitions: empty,
    })
}

fn crd_schema(rt: &ResourceType, crds: &[Value]) -> Option<Value> {
    crds.iter()
        .filter(|crd| {
            crd.pointer("/spec/group").and_then(Value::as_str) == Some(rt.group.as_str())
                && crd.pointer("/spec/names/kind").and_then(Value::as_str) == Some(rt.kind.as_str())
        })
        .flat_map(|crd| crd.pointer("/spec/versions").and_then(Value::as_array))
        .flatten()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(rt.version.as_str()))
        .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
        .cloned()
        .map(|mut root| {
            // The API server specifies `apiVersion`, `kind` and `metadata` of every custom
            // resource implicitly: a CRD's schema need not (and mostly does not) list them.
            if let Some(properties) = root
                .as_object_mut()
                .map(|r| r.entry("properties").or_insert_with(|| json!({})))
                .and_then(Value::as_object_mut)
            {
                for (field, schema) in [
                    ("apiVersion", json!({"type": "string"})),
                    ("kind", json!({"type": "string"})),
                    (
                        "metadata",
                        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                    ),
                ] {
                    properties.entry(field).or_insert(schema);
                }
            }
            root
        })
}

/// The path segment of a group-version's document: `api/v1` or `apis/GROUP/VERSION`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: where each group-version's document is, with a hash of its content (kubectl
/// caches documents by it).
pub(crate) fn v3_index(types: &[ResourceType], crds: &[Value]) -> Value {
    let mut paths = Map::new();
    let mut gvs: Vec<(&str, &str)> = types
        .iter()
        .map(|t| (t.group.as_str(), t.version.as_str()))
        .collect();
    gvs.sort_unstable();
    gvs.dedup();
    for (group, version) in gvs {
        let path = gv_path(group, version);
        let document = v3_document(types, crds, group, version).to_string();
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={:016X}", fnv(document.as_bytes()))}),
        );
    }
    json!({ "paths": paths })
}

/// The document of one group-version, or `None` when nothing is served there; `path` is what
/// follows `/openapi/v3/`.
pub(crate) fn v3_at(types: &[ResourceType], crds: &[Value], path: &str) -> Option<Value> {
    let (group, version) = match path.trim_matches('/').split('/').collect::<Vec<_>>()[..] {
        ["api", version] => ("", version),
        ["apis", group, version] => (group, version),
        _ => return None,
    };
    types
        .iter()
        .any(|t| t.group == group && t.version == version)
        .then(|| v3_document(types, crds, group, version))
}

fn v3_document(types: &[ResourceType], crds: &[Value], group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let mut any_builtin = false;
    for rt in types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        let name = match builtins().kinds.get(&(rt.group.as_str(), rt.kind.as_str())) {
            Some(name) => {
                any_builtin = true;
                name.clone()
            }
            None => {
                let reversed: Vec<&str> = rt.group.split('.').rev().collect();
                let name = format!("{}.{}.{}", reversed.join("."), rt.version, rt.kind);
                let mut schema = crd_schema(rt, crds).unwrap_or_else(
                    || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                );
                if let Value::Object(schema) = &mut schema {
                    schema.insert(
                        "x-kubernetes-group-version-kind".into(),
                        json!([{"group": rt.group, "kind": rt.kind, "version": rt.version}]),
                    );
                }
                schemas.insert(name.clone(), schema);
                name
            }
        };
        paths.extend(resource_paths(rt, &name));
    }
    if any_builtin {
        schemas.extend(builtins().definitions.clone());
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", crate::api::SERVER_MINOR)},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// The collection and item paths of one resource type, with their operations.
fn resource_paths(rt: &ResourceType, schema: &str) -> Map<String, Value> {
    let base = format!("/{}", gv_path(&rt.group, &rt.version));
    let collection = if rt.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", rt.plural)
    } else {
        format!("{base}/{}", rt.plural)
    };
    let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
    let reference = json!({"$ref": format!("#/components/schemas/{schema}")});
    let query = |names: &[&str]| {
        names
            .iter()
            .map(|name| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
            .collect::<Vec<_>>()
    };
    let operation = |action: &str, params: &[&str], body: bool| {
        let mut op = json!({
            "description": format!("{action} the specified {}", rt.kind),
            "parameters": query(params),
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        });
        if body {
            op["requestBody"] =
                json!({"content": {"application/json": {"schema": reference}}, "required": true});
        }
        op
    };
    let writes = ["dryRun", "fieldManager", "fieldValidation"];
    let mut paths = Map::new();
    paths.insert(
        collection.clone(),
        json!({
            "get": operation("list", &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"], false),
            "post": operation("post", &writes, true),
            "delete": operation("deletecollection", &["labelSelector", "fieldSelector"], false),
        }),
    );
    let mut item = json!({
        "get": operation("get", &[], false),
        "put": operation("put", &writes, true),
        "patch": operation("patch", &["dryRun", "fieldManager", "fieldValidation", "force"], false),
        "delete": operation("delete", &["dryRun", "gracePeriodSeconds", "propagationPolicy"], false),
    });
    item["patch"]["requestBody"] = json!({"content": {
        "application/json-patch+json": {"schema": {"type": "object"}},
        "application/merge-patch+json": {"schema": {"type": "object"}},
        "application/strategic-merge-patch+json": {"schema": {"type": "object"}},
        "application/apply-patch+yaml": {"schema": {"type": "object"}},
    }, "required": true});
    paths.insert(format!("{collection}/{{name}}"), item);
    paths
}

/// `/openapi/v2` in its protobuf form (gnostic's `openapi_v2.Document`): `swagger` = 1,
/// `info` = 2 (`title` = 1, `version` = 2), `paths` = 8, and no definitions.
pub(crate) fn v2_protobuf() -> Vec<u8> {
    fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![number << 3 | 2, u8::try_from(bytes.len()).unwrap_or(0)];
        out.extend_from_slice(bytes);
        out
    }
    let version = format!("v1.{}.0", crate::api::SERVER_MINOR);
    let info = [field(1, b"Kubernetes"), field(2, version.as_bytes())].concat();
    [field(1, b"2.0"), field(2, &info), field(8, &[])].concat()
}

/// FNV-1a, for the documents' cache hashes.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Removes from `value` every field its schema does not declare (as the API server drops them),
/// returning their paths as the server names them (`spec.template.spec.containers[0].bogus`).
pub(crate) fn prune(value: &mut Value, schema: &KindSchema<'_>) -> Vec<String> {
    let mut unknown = Vec::new();
    prune_at(value, &schema.root, schema.definitions, "", &mut unknown);
    unknown
}

/// The first value of a built-in kind's object whose JSON type its Go type cannot take, worded
/// as the API server's decoder words it: `json: cannot unmarshal string into Go struct field
/// DeploymentSpec.spec.replicas of type int32`. Nulls pass (they are the zero value).
pub(crate) fn type_error(value: &Value, schema: &KindSchema<'_>) -> Option<String> {
    type_error_at(value, &schema.root, schema.definitions, "", "")
}

fn type_error_at(
    value: &Value,
    schema: &Value,
    definitions: &Map<String, Value>,
    path: &str,
    owner: &str,
) -> Option<String> {
    // The Go struct a field belongs to is the definition its object came from.
    let named = schema
        .get("$ref")
        .or_else(|| schema.pointer("/allOf/0/$ref"))
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|n| n.rsplit('.').next());
    let schema = resolve(schema, definitions);
    if value.is_null()
        || schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
            && (value.is_string() || value.is_number())
        || schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
    {
        return None;
    }
    let go_type = |schema: &Value| -> String {
        let format = schema.get("format").and_then(Value::as_str);
        match (schema.get("type").and_then(Value::as_str), format) {
            (Some("integer"), Some(f @ ("int32" | "int64"))) => f.to_owned(),
            (Some("integer"), _) => "int".into(),
            (Some("number"), _) => "float64".into(),
            (Some("boolean"), _) => "bool".into(),
            (Some("string"), _) => "string".into(),
            (Some("array"), _) => "[]interface {}".into(),
            (Some("object"), _) if schema.get("properties").is_none() => "map[string]string".into(),
            _ => named.unwrap_or("struct").to_owned(),
        }
    };
    let expected = schema.get("type").and_then(Value::as_str);
    let fits = match (expected, value) {
        (None, _) => true,
        (Some("integer"), Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Some("number"), Value::Number(_))
        | (Some("string"), Value::String(_))
        | (Some("boolean"), Value::Bool(_))
        | (Some("array"), Value::Array(_))
        | (Some("object"), Value::Object(_)) => true,
        _ => false,
    };
    if !fits {
        let got = match value {
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Null => "null",
        };
        let field = if owner.is_empty() {
            path.to_owned()
        } else {
            format!("{owner}.{path}")
        };
        return Some(format!(
            "json: cannot unmarshal {got} into Go struct field {field} of type {}",
            go_type(schema)
        ));
    }
    let owner = named.unwrap_or(owner);
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            fields.iter().find_map(|(key, field)| {
                let declared = properties.and_then(|p| p.get(key));
                let field_schema = declared.or(additional)?;
                // Go names a map's values by the map's field, not the key.
                let field_path = match (declared, path.is_empty()) {
                    (None, _) => path.to_owned(),
                    (Some(_), true) => key.clone(),
                    (Some(_), false) => format!("{path}.{key}"),
                };
                type_error_at(field, field_schema, definitions, &field_path, owner)
            })
        }
        Value::Array(items) => schema.get("items").and_then(|item_schema| {
            items
                .iter()
                .find_map(|item| type_error_at(item, item_schema, definitions, path, owner))
        }),
        _ => None,
    }
}

fn resolve<'a>(mut schema: &'a Value, definitions: &'a Map<String, Value>) -> &'a Value {
    for _ in 0..8 {
        if let Some(name) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())
        {
            match definitions.get(name) {
                Some(target) => schema = target,
                None => break,
            }
        } else if let Some(first) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|all| all.first())
        {
            schema = first;
        } else {
            break;
        }
    }
    schema
}

fn prune_at(
    value: &mut Value,
    schema: &Value,
    definitions: &Map<String, Value>,
    path: &str,
    unknown: &mut Vec<String>,
) {
    let schema = resolve(schema, definitions);
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if properties.is_none() && additional.is_none() {
                return; // a free-form object (or a string-typed one such as a quantity)
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let field_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let field_schema = properties.and_then(|p| p.get(&key)).or(additional);
                match (field_schema, map.get_mut(&key)) {
                    (Some(field_schema), Some(field)) => {
                        prune_at(field, field_schema, definitions, &field_path, unknown);
                    }
                    _ => {
                        map.remove(&key);
                        unknown.push(field_path);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(
                        item,
                        item_schema,
                        definitions,
                        &format!("{path}[{i}]"),
                        unknown,
                    );
                }
            }
        }
        _ => {}
    }
}
