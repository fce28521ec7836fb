//! The REST front: routes a request to discovery, the store, a subresource or a watch, and
//! answers as the real API server answers.

mod lifecycle;
mod nonresource;
mod patching;
mod request;
mod routing;
mod validation;
mod verbs;

pub(crate) use lifecycle::*;
use nonresource::*;
use patching::*;
pub(crate) use request::*;
use routing::*;
pub(crate) use validation::*;
use verbs::*;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::auth::{self, Attributes, Identity};
use crate::discovery::{self, DiscoveryFormat};
use crate::faults::{FaultAction, RequestRecord, Verb, firing};
use crate::managed;
use crate::patch::{PatchError, PatchType, apply_patch};
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::Part;
use crate::table::table;
use crate::{Shared, lock, watch};

/// The response body type of every answer.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The version the simulated server reports.
pub(crate) const SERVER_MINOR: &str = "33";

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub(crate) fn json_response(status: u16, value: &Value, content_type: &str) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
}

pub(crate) fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.to_status(), "application/json")
}

/// The connection closed without an answer (an injected reset or lost response).
#[derive(Debug)]
pub(crate) struct ConnectionReset;

impl std::fmt::Display for ConnectionReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by the simulated API server (injected fault)")
    }
}

impl std::error::Error for ConnectionReset {}

/// Serves one request and records it in the request log; `Err` closes the connection without an
/// answer.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    mut request: ApiRequest,
) -> Result<Response<Body>, ConnectionReset> {
    let started = Instant::now();
    let types = lock(&shared.types).clone();
    let route = route(&types, &request.path);
    let watch = matches!(request.param("watch"), Some("true" | "1"));
    let verb = verb_of(&request.method, &route, watch);
    let resource = match &route {
        Route::Resource { rt, .. } => Some(rt.plural.clone()),
        _ => None,
    };
    let actions = firing(&mut lock(&shared.faults), verb, resource.as_deref());
    let mut drop_watch = false;
    let mut injected = None;
    let (mut reset, mut lose_response) = (false, false);
    // What the injected faults did, for the request log: a record must say a lost answer was
    // lost, not that it was a 200.
    let mut done: Vec<String> = Vec::new();
    for action in actions {
        match &action {
            FaultAction::Latency(delay) => done.push(format!("delayed {}ms", delay.as_millis())),
            FaultAction::Reset => {
                done.push("reset: closed without an answer, nothing served".into())
            }
            FaultAction::LoseResponse => {
                done.push("lost response: served, then closed without the answer".into())
            }
            FaultAction::HangThenStatus(delay, code) => {
                done.push(format!("hung {}s, then answered {code}", delay.as_secs()))
            }
            FaultAction::Status(code) => done.push(format!("answered {code}, nothing served")),
            FaultAction::Conflict if verb.is_write() => {
                done.push("answered 409, nothing written".into())
            }
            FaultAction::DropWatch => done.push("watch ended at once".into()),
            FaultAction::Conflict => {}
        }
        match action {
            FaultAction::Latency(delay) => tokio::time::sleep(delay).await,
            FaultAction::Reset => reset = true,
            FaultAction::LoseResponse => lose_response = true,
            FaultAction::HangThenStatus(delay, code) => {
                tokio::time::sleep(delay).await;
                injected = Some(ApiError::injected(
                    code,
                    &format!("injected fault: HTTP {code} after {}s", delay.as_secs()),
                ));
            }
            FaultAction::Status(code) => {
                injected = Some(ApiError::injected(
                    code,
                    &format!("injected fault: HTTP {code}"),
                ))
            }
            FaultAction::Conflict if verb.is_write() => {
                let (rt, name) = match &route {
                    Route::Resource { rt, name, .. } => {
                        ((**rt).clone(), name.clone().unwrap_or_default())
                    }
                    _ => (types[0].clone(), String::new()),
                };
                // A create conflicts as the API server's do: the name is taken.
                injected = Some(if verb == Verb::Create {
                    let name = serde_json::from_slice::<Value>(&request.body)
                        .ok()
                        .and_then(|v| v.pointer("/metadata/name")?.as_str().map(str::to_owned))
                        .unwrap_or(name);
                    ApiError::already_exists(&rt, &name)
                } else {
                    ApiError::conflict(&rt, &name)
                });
            }
            FaultAction::DropWatch => drop_watch = true,
            FaultAction::Conflict => {}
        }
    }
    let response = if reset {
        error_response(&ApiError::injected(499, "connection reset"))
    } else if let Some(err) = injected {
        error_response(&err)
    } else {
        match admit(&shared, &types, &route, &request, verb) {
            Ok(identity) => {
                request.identity = identity;
                serve(&shared, &types, route, &request, watch, drop_watch).await
            }
            Err(err) => error_response(&err),
        }
    };
    // The API server's clock, as every Go HTTP server sends it: clients (the guard's pod ages
    // among them) read the cluster's time from it, never their own.
    let mut response = response;
    let now = lock(&shared.store).clock.now();
    if let Ok(date) = HeaderValue::from_str(&crate::clock::http_date(now)) {
        response.headers_mut().insert(header::DATE, date);
    }
    // As the API server's WithCacheControl filter: nothing it answers is cached as fresh. The
    // cluster's `Date` runs on simulated time, ahead of the wall clock when it runs fast; without
    // this kubectl's HTTP cache served discovery from before a CRD was created as fresh.
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache, private"));
    if shared.log_requests {
        let query = if request.raw_query.is_empty() {
            String::new()
        } else {
            format!("?{}", request.raw_query)
        };
        let fault = if done.is_empty() {
            String::new()
        } else {
            format!(" (injected fault: {})", done.join("; "))
        };
        let status = if reset {
            "-".to_owned()
        } else {
            response.status().as_u16().to_string()
        };
        eprintln!(
            "{} {}{} {status}{fault}",
            request.method, request.path, query
        );
    }
    lock(&shared.requests).push(RequestRecord {
        method: request.method.to_string(),
        path: request.path.clone(),
        query: request.raw_query.clone(),
        verb,
        status: if reset { 0 } else { response.status().as_u16() },
        duration: started.elapsed(),
        fault: (!done.is_empty()).then(|| done.join("; ")),
    });
    if reset || lose_response {
        return Err(ConnectionReset);
    }
    Ok(response)
}

/// Adds one `Warning` header per warning, as the API server does (kubectl prints each).
fn with_warnings(mut response: Response<Body>, warnings: &[String]) -> Response<Body> {
    for warning in warnings {
        let text = format!("299 - {}", serde_json::Value::String(warning.clone()));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append("warning", value);
        }
    }
    response
}
