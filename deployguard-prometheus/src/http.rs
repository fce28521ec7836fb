//! One instant query over HTTP(S), and what each way of failing means.

use bytes::Bytes;
use deployguard_core::{Error, ErrorKind, Result};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::{Auth, PrometheusConfig};

/// The connector: http:// and https:// with rustls and the system's roots (feature `rustls`,
/// on by default), or http:// alone without it (the program brings no TLS stack of ours).
#[cfg(feature = "rustls")]
pub(crate) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
/// The connector: http:// alone (built without the `rustls` feature).
#[cfg(not(feature = "rustls"))]
pub(crate) type Connector = HttpConnector;

pub(crate) type HttpClient = Client<Connector, Empty<Bytes>>;

/// A connector for http:// and https:// (rustls, the system's roots).
#[cfg(feature = "rustls")]
pub(crate) fn connector() -> Result<Connector> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("loading the system's TLS roots: {e}"),
            )
        })?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(https)
}

/// A connector for http:// only: built without the `rustls` feature.
#[cfg(not(feature = "rustls"))]
pub(crate) fn connector() -> Result<Connector> {
    Ok(HttpConnector::new())
}

/// Refuses an https:// URL when built without TLS, naming the feature.
pub(crate) fn check_scheme(uri: &http::Uri, what: &str) -> Result<()> {
    if cfg!(not(feature = "rustls")) && uri.scheme_str() == Some("https") {
        return Err(Error::invalid_input(
            what,
            "https:// needs deployguard-prometheus's `rustls` feature (built without it)",
        ));
    }
    Ok(())
}

/// A client for http:// and https:// (rustls, the system's roots).
pub(crate) fn client() -> Result<HttpClient> {
    Ok(Client::builder(TokioExecutor::new()).build(connector()?))
}

/// `GET {base}/api/v1/query?query=…[&time=…]`: the body of a 2xx answer, or the error an
/// answer (or its absence) means. A Prometheus error body (4xx/5xx with `errorType`) is read
/// by the caller from `Err`'s message.
pub(crate) async fn query(
    client: &HttpClient,
    config: &PrometheusConfig,
    promql: &str,
    time: Option<f64>,
) -> Result<(http::StatusCode, Bytes)> {
    let params = {
        let mut params = form_urlencoded::Serializer::new(String::new());
        params.append_pair("query", promql);
        if let Some(time) = time {
            params.append_pair("time", &format!("{time:.3}"));
        }
        params.finish()
    };
    let uri = format!("{}/api/v1/query?{params}", config.base_url());
    let mut request = http::Request::get(&uri);
    match &config.auth {
        Some(Auth::Bearer(token)) => {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        Some(Auth::Basic { user, password }) => {
            use base64::Engine as _;
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request = request.header(http::header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        None => {}
    }
    for (name, value) in &config.headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Empty::new())
        .map_err(|e| Error::invalid_input("prometheus query", e))?;
    let base = config.base_url();
    let exchange = async {
        let response = client.request(request).await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("prometheus at {base} could not be reached: {e}"),
            )
        })?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("prometheus at {base}: the answer was cut off: {e}"),
                )
            })?
            .to_bytes();
        Ok::<_, Error>((status, body))
    };
    let sent = tokio::time::Instant::now();
    let answer = match tokio::time::timeout(config.timeout, exchange).await {
        Ok(answer) => answer,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "prometheus at {base} did not answer within {:?}",
                config.timeout
            ),
        )),
    };
    let elapsed_ms = sent.elapsed().as_millis() as u64;
    match &answer {
        Ok((status, body)) => tracing::debug!(
            target: "deployguard::prometheus",
            prometheus = %base,
            query = promql,
            status = status.as_u16(),
            bytes = body.len(),
            elapsed_ms,
            "queried"
        ),
        Err(err) => tracing::debug!(
            target: "deployguard::prometheus",
            prometheus = %base,
            query = promql,
            error = %err,
            elapsed_ms,
            "query failed"
        ),
    }
    answer
}
