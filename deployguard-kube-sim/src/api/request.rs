//! A request as the server reads it: method, path, query, headers and body; the body's
//! decoding (JSON, YAML for server-side apply, protobuf) and size limit.

use super::*;

/// A parsed request.
#[derive(Clone)]
pub(crate) struct ApiRequest {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) raw_query: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) accept: String,
    pub(crate) content_type: String,
    pub(crate) authorization: Option<String>,
    pub(crate) user_agent: String,
    /// `Impersonate-User`, `Impersonate-Group` (each), `Impersonate-Uid`: who the request acts
    /// as, when its sender may impersonate them.
    pub(crate) impersonate_user: Option<String>,
    pub(crate) impersonate_groups: Vec<String>,
    pub(crate) impersonate_uid: Option<String>,
    pub(crate) body: Bytes,
    /// The WebSocket handshake it asks for (exec, attach).
    pub(crate) websocket: Option<crate::remote::Handshake>,
    /// Its `Upgrade` header (`SPDY/3.1`, `websocket`).
    pub(crate) upgrade: Option<String>,
    /// Who sent it, once authenticated.
    pub(crate) identity: Identity,
}

impl ApiRequest {
    pub(crate) fn new(parts: &http::request::Parts, body: Bytes) -> Self {
        let header = |name: header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let raw_query = parts.uri.query().unwrap_or("").to_owned();
        Self {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parse_query(&raw_query),
            raw_query,
            accept: header(header::ACCEPT),
            content_type: header(header::CONTENT_TYPE),
            authorization: parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            user_agent: header(header::USER_AGENT),
            impersonate_user: parts
                .headers
                .get("impersonate-user")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            impersonate_groups: parts
                .headers
                .get_all("impersonate-group")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_owned)
                .collect(),
            impersonate_uid: parts
                .headers
                .get("impersonate-uid")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body,
            websocket: crate::remote::Handshake::of(&parts.headers),
            upgrade: parts
                .headers
                .get(header::UPGRADE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            identity: Identity::admin(),
        }
    }

    pub(crate) fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn dry_run(&self) -> bool {
        self.param("dryRun") == Some("All")
    }

    /// The field manager a write is recorded under: `fieldManager`, else the client's
    /// User-Agent up to its first `/`, as the API server derives it.
    pub(super) fn manager(&self) -> String {
        match self.param("fieldManager").filter(|m| !m.is_empty()) {
            Some(manager) => manager.to_owned(),
            None => match self.user_agent.split('/').next().filter(|p| !p.is_empty()) {
                Some(prefix) => prefix.to_owned(),
                None => "unknown".to_owned(),
            },
        }
    }
}

/// A query string's component decoded: `+` is a space, `%XX` a byte (invalid UTF-8 replaced).
pub(super) fn percent_decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(pair), String::new()),
        })
        .collect()
}

pub(crate) fn wants_table(request: &ApiRequest) -> bool {
    request
        .accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// Collects an in-process request body.
pub(crate) async fn collect<B>(body: B) -> Result<Bytes, ApiError>
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    body.collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))
}

/// The API server's limit on a request body (3 MiB).
pub(super) const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

pub(super) fn check_size(request: &ApiRequest) -> Result<(), ApiError> {
    if request.body.len() > MAX_REQUEST_BODY_BYTES {
        return Err(ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {MAX_REQUEST_BODY_BYTES}"),
        ));
    }
    Ok(())
}

/// The object in a create or update body, as the content type says it is encoded.
pub(super) fn decode_body(request: &ApiRequest) -> Result<Value, ApiError> {
    check_size(request)?;
    if request
        .content_type
        .starts_with(crate::protobuf::CONTENT_TYPE)
    {
        return crate::protobuf::decode(&request.body);
    }
    serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))
}
