//! The endpoints that are not resources: discovery, version, health, OpenAPI and an extension's
//! metrics.

use super::*;

pub(super) async fn serve(
    shared: &Arc<Shared>,
    types: &[ResourceType],
    route: Route,
    request: &ApiRequest,
    watch: bool,
    drop_watch: bool,
) -> Response<Body> {
    match route {
        Route::Api | Route::Apis => {
            let format = DiscoveryFormat::negotiate(&request.accept);
            let body = match (format, matches!(route, Route::Api)) {
                (DiscoveryFormat::Legacy, true) => {
                    discovery::api_versions(&lock(&shared.server_address))
                }
                (DiscoveryFormat::Legacy, false) => discovery::api_group_list(types),
                (format, core) => discovery::aggregated(types, core, format),
            };
            json_response(200, &body, format.content_type())
        }
        Route::GroupVersion(group, version) => {
            match discovery::api_resource_list(types, &group, &version) {
                Some(list) => json_response(200, &list, "application/json"),
                None => error_response(&ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )),
            }
        }
        Route::Version => json_response(
            200,
            &json!({
                "major": "1", "minor": SERVER_MINOR,
                "emulationMajor": "1", "emulationMinor": SERVER_MINOR,
                "minCompatibilityMajor": "1", "minCompatibilityMinor": format!("{}", SERVER_MINOR.parse::<u32>().unwrap_or(33) - 1),
                "gitVersion": format!("v1.{SERVER_MINOR}.0-deployguard"),
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
                "platform": "linux/amd64",
            }),
            "application/json",
        ),
        Route::Health => {
            let mut response = Response::new(full("ok"));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            response
        }
        Route::Metrics(name) => {
            let cluster = crate::FakeCluster::from_shared(Arc::clone(shared));
            let text = cluster
                .advance_extensions()
                .iter()
                .find_map(|extension| extension.metrics(&name));
            match text {
                Some(text) => {
                    let mut response = Response::new(full(text));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4"),
                    );
                    response
                }
                None => error_response(&ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )),
            }
        }
        Route::OpenApiV2 => {
            let mut response = Response::new(full(crate::openapi::v2_protobuf()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                ),
            );
            response
        }
        Route::OpenApiV3(path) => {
            let crds = stored_crds(shared, types);
            let document = if path.is_empty() {
                Some(crate::openapi::v3_index(types, &crds))
            } else {
                crate::openapi::v3_at(types, &crds, &path)
            };
            match document {
                Some(document) => json_response(200, &document, "application/json"),
                None => error_response(&ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )),
            }
        }
        Route::Unknown => error_response(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
        Route::Resource {
            rt,
            namespace,
            name,
            sub,
        } => {
            if crate::conversion::is_autoscaling_v1(&rt) {
                return autoscaling_v1(shared, types, &rt, namespace, name, sub, request).await;
            }
            let result = resource(
                shared, &rt, namespace, name, sub, request, watch, drop_watch,
            )
            .await;
            let mut response = result.unwrap_or_else(|err| error_response(&err));
            if rt.kind == "Endpoints" && rt.group.is_empty() {
                response.headers_mut().insert(
                    "warning",
                    HeaderValue::from_static("299 - \"v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\""),
                );
            }
            response
        }
    }
}

/// A write of the v1 autoscaler: its body converted to the stored v2 form, written as v2, and
/// the answer converted back. Reads convert as they serve ([`crate::store::served_as`]); a patch
/// of the v1 form is not converted, and is refused saying so.
async fn autoscaling_v1(
    shared: &Arc<Shared>,
    types: &[ResourceType],
    rt: &ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    request: &ApiRequest,
) -> Response<Body> {
    let method = request.method.as_str();
    let writes = matches!(method, "POST" | "PUT") && sub.is_none();
    if method == "PATCH" && sub.is_none() {
        return error_response(&ApiError::new(
            405,
            "MethodNotAllowed",
            "the simulated cluster converts autoscaling/v1 HorizontalPodAutoscalers on create and replace only: patch the autoscaling/v2 form",
        ));
    }
    let Some(stored) = types
        .iter()
        .find(|t| t.group == rt.group && t.kind == rt.kind && t.version == "v2")
    else {
        return error_response(&ApiError::method_not_allowed("create", rt));
    };
    let (target, converted) = if writes {
        let body: Value = match decode_body(request) {
            Ok(body) => body,
            Err(err) => return error_response(&err),
        };
        if let Err(err) = check_type_meta(rt, &body) {
            return error_response(&err);
        }
        let mut converted = request.clone();
        converted.body = bytes::Bytes::from(crate::conversion::to_v2(body).to_string());
        converted.content_type = "application/json".into();
        (stored, Some(converted))
    } else {
        (rt, None)
    };
    let request = converted.as_ref().unwrap_or(request);
    let result = resource(shared, target, namespace, name, sub, request, false, false).await;
    let response = result.unwrap_or_else(|err| error_response(&err));
    if !writes || !response.status().is_success() {
        return response;
    }
    let status = response.status().as_u16();
    let Ok(body) = http_body_util::BodyExt::collect(response.into_body()).await;
    match serde_json::from_slice::<Value>(&body.to_bytes()) {
        Ok(obj) => json_response(status, &crate::conversion::to_v1(obj), "application/json"),
        Err(_) => error_response(&ApiError::bad_request("reading the stored autoscaler")),
    }
}
