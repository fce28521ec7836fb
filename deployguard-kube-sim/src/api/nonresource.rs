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
