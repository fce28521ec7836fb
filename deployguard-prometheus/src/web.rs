//! [`WebProbe`]: health read from an HTTP endpoint's JSON, as Argo Rollouts' `web` metric and
//! Flagger's webhooks read it — for the many teams whose signals are not in Prometheus.
//!
//! Each metric is a JSONPath into the answer (`$.checks.error_rate`, `$.stats[0].p99`,
//! `$['error-rate']`): a number (or a numeric string, or a boolean as 1/0) is one reading of
//! the whole service; an object of numbers is one reading per version, keyed by version
//! (`{"app:v2.3.1": 0.001, "app:v2.4.0": 0.2}`). When the URL or a path holds `{version}`,
//! the probe asks once per version given ([`WebProbe::versions`]) and labels each reading.
//! A path that finds nothing is no data, not an error.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use deployguard_core::model::VERSION_LABEL;
use deployguard_core::{Error, ErrorKind, HealthProbe, Measurement, Result, Sample};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::http::{Connector, check_scheme, connector};

/// The longest answer read (a health endpoint's JSON is small; a runaway one is cut).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// One metric: its name and the JSONPath that reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WebMetric {
    name: String,
    path: String,
}

/// A [`HealthProbe`] that GETs (or POSTs) a URL and reads metrics from the JSON answer by
/// JSONPath. Header values (credentials) and a URL's password are never shown in `Debug` or in
/// errors. Errors say whether a retry helps: unreachable, 5xx and 429 are `Unavailable`, a
/// slow answer `Timeout` (both retryable); 401/403 `Forbidden`, other 4xx `InvalidInput`, an
/// answer that is not JSON or a value that is not a number `Unexpected`.
///
/// ```
/// use std::time::Duration;
/// use deployguard_prometheus::WebProbe;
///
/// let probe = WebProbe::builder("health", "https://status.example/api/canary")
///     .header("Authorization", "Bearer s3cret")
///     .metric("error_rate", "$.error_rate") // {"app:v1": 0.001, "app:v2": 0.2}: per version
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// assert!(!format!("{probe:?}").contains("s3cret"));
/// # Ok::<(), deployguard_core::Error>(())
/// ```
#[derive(Clone)]
pub struct WebProbe {
    name: String,
    url: String,
    method: http::Method,
    body: Option<String>,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    timeout: Duration,
    metrics: Vec<WebMetric>,
    versions: Vec<String>,
    client: Client<Connector, Full<Bytes>>,
}

impl std::fmt::Debug for WebProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, _)| format!("{name}: <redacted>"))
            .collect();
        f.debug_struct("WebProbe")
            .field("name", &self.name)
            .field("url", &redacted_url(&self.url))
            .field("method", &self.method)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("metrics", &self.metrics)
            .field("versions", &self.versions)
            .finish_non_exhaustive()
    }
}

/// Builds a [`WebProbe`]; [`build`](Self::build) checks every setting.
#[derive(Debug)]
#[must_use]
pub struct WebProbeBuilder {
    name: String,
    url: String,
    method: http::Method,
    body: Option<String>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    metrics: Vec<WebMetric>,
    versions: Vec<String>,
}

impl WebProbeBuilder {
    /// Sends this header with every request (its value never shown).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// POSTs `body` (JSON) instead of a GET.
    pub fn post(mut self, body: &str) -> Self {
        self.method = http::Method::POST;
        self.body = Some(body.into());
        self
    }

    /// How long an answer may take (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads metric `name` at JSONPath `path`.
    pub fn metric(mut self, name: &str, path: &str) -> Self {
        self.metrics.push(WebMetric {
            name: name.into(),
            path: path.into(),
        });
        self
    }

    /// The versions to ask for when the URL or a path holds `{version}`.
    pub fn versions<S: Into<String>>(mut self, versions: impl IntoIterator<Item = S>) -> Self {
        self.versions = versions.into_iter().map(Into::into).collect();
        self
    }

    /// The probe; [`ErrorKind::InvalidInput`] names what is wrong.
    pub fn build(self) -> Result<WebProbe> {
        if self.name.trim().is_empty() {
            return Err(Error::invalid_input("probe name", "is empty"));
        }
        let shown = redacted_url(&self.url);
        let uri: http::Uri = self
            .url
            .replace("{version}", "v")
            .parse()
            .map_err(|e| Error::invalid_input("url", format!("{shown:?} is not a URL: {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(Error::invalid_input(
                "url",
                format!("{shown:?} is not an http:// or https:// URL"),
            ));
        }
        check_scheme(&uri, "url")?;
        if self.metrics.is_empty() {
            return Err(Error::invalid_input(
                "metrics",
                "a web probe reads one or more metrics",
            ));
        }
        for metric in &self.metrics {
            parse_path(&metric.path).map_err(|why| {
                Error::invalid_input(
                    &format!("metrics.{}", metric.name),
                    format!(
                        "{:?} is not a JSONPath this probe reads: {why}",
                        metric.path
                    ),
                )
            })?;
        }
        let templated = self.url.contains("{version}")
            || self.metrics.iter().any(|m| m.path.contains("{version}"));
        if templated && self.versions.is_empty() {
            return Err(Error::invalid_input(
                "versions",
                "the URL or a path holds {version}: name the versions to ask for",
            ));
        }
        if self.timeout.is_zero() {
            return Err(Error::invalid_input("timeout", "must be greater than zero"));
        }
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| {
                let header = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    Error::invalid_input("headers", format!("{name:?} is not a header name"))
                })?;
                let mut value = http::HeaderValue::from_str(value).map_err(|_| {
                    Error::invalid_input(
                        "headers",
                        format!("the value of {name} is not a header value"),
                    )
                })?;
                value.set_sensitive(true);
                Ok((header, value))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(WebProbe {
            name: self.name,
            url: self.url,
            method: self.method,
            body: self.body,
            headers,
            timeout: self.timeout,
            metrics: self.metrics,
            versions: self.versions,
            client: Client::builder(TokioExecutor::new()).build(connector()?),
        })
    }
}

impl WebProbe {
    /// A builder for probe `name` (how checks name it) reading `url`.
    pub fn builder(name: &str, url: &str) -> WebProbeBuilder {
        WebProbeBuilder {
            name: name.into(),
            url: url.into(),
            method: http::Method::GET,
            body: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            metrics: Vec::new(),
            versions: Vec::new(),
        }
    }

    /// One request: the JSON answer of `url`.
    async fn fetch(&self, url: &str) -> Result<Value> {
        let shown = redacted_url(url);
        let mut request = http::Request::builder()
            .method(self.method.clone())
            .uri(url)
            .header(http::header::ACCEPT, "application/json");
        if self.body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in &self.headers {
            request = request.header(name, value.clone());
        }
        let request = request
            .body(Full::new(Bytes::from(
                self.body.clone().unwrap_or_default(),
            )))
            .map_err(|e| Error::invalid_input("url", format!("{shown}: {e}")))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("{shown} could not be reached: {e}"),
                )
            })?;
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("{shown}: the answer was cut off or over {MAX_BODY} bytes: {e}"),
                    )
                })?
                .to_bytes();
            Ok::<_, Error>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!("{shown} did not answer within {:?}", self.timeout),
                )
            })??;
        if !status.is_success() {
            let kind = match status.as_u16() {
                401 | 403 => ErrorKind::Forbidden,
                429 | 500..=599 => ErrorKind::Unavailable,
                _ => ErrorKind::InvalidInput,
            };
            return Err(Error::new(kind, format!("{shown} answered {status}")));
        }
        serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!(
                    "{shown} answered {} bytes that are not JSON: {e}",
                    body.len()
                ),
            )
        })
    }

    /// The measurements of `metric` in `answer`, labelled `version` when asked per version.
    fn read(
        &self,
        metric: &WebMetric,
        path: &str,
        answer: &Value,
        version: Option<&str>,
    ) -> Result<Vec<Measurement>> {
        let steps = parse_path(path).map_err(|why| Error::invalid_input("path", why))?;
        let Some(found) = walk(answer, &steps) else {
            return Ok(vec![labelled(Measurement::no_data(&metric.name), version)]);
        };
        let number = |value: &Value, at: &str| -> Result<Option<f64>> {
            match value {
                Value::Number(n) => Ok(n.as_f64()),
                Value::Bool(b) => Ok(Some(if *b { 1.0 } else { 0.0 })),
                Value::Null => Ok(None),
                Value::String(text) => text.trim().parse::<f64>().map(Some).map_err(|_| {
                    Error::new(
                        ErrorKind::Unexpected,
                        format!("{}: {at} is {text:?}, not a number", metric.name),
                    )
                }),
                other => Err(Error::new(
                    ErrorKind::Unexpected,
                    format!("{}: {at} is {}, not a number", metric.name, kind_of(other)),
                )),
            }
        };
        let reading = |value: Option<f64>| match value.filter(|v| v.is_finite()) {
            Some(v) => Measurement::value(&metric.name, v),
            None => Measurement::no_data(&metric.name),
        };
        match found {
            Value::Object(by_version) if version.is_none() => by_version
                .iter()
                .map(|(key, value)| {
                    Ok(reading(number(value, &format!("{path}.{key}"))?)
                        .with_label(VERSION_LABEL, key.as_str()))
                })
                .collect(),
            value => Ok(vec![labelled(reading(number(value, path)?), version)]),
        }
    }
}

fn labelled(measurement: Measurement, version: Option<&str>) -> Measurement {
    match version {
        Some(version) => measurement.with_label(VERSION_LABEL, version),
        None => measurement,
    }
}

#[async_trait]
impl HealthProbe for WebProbe {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn metrics(&self) -> Vec<String> {
        self.metrics.iter().map(|m| m.name.clone()).collect()
    }

    async fn sample(&self) -> Result<Sample> {
        let per_version = self.url.contains("{version}");
        let mut measurements = Vec::new();
        let mut evidence = Vec::new();
        let asks: Vec<Option<&str>> = if per_version {
            self.versions.iter().map(|v| Some(v.as_str())).collect()
        } else {
            vec![None]
        };
        for version in asks {
            let url = match version {
                Some(v) => self.url.replace("{version}", v),
                None => self.url.clone(),
            };
            let answer = self.fetch(&url).await?;
            evidence.push(redacted_url(&url));
            for metric in &self.metrics {
                if metric.path.contains("{version}") && version.is_none() {
                    for v in &self.versions {
                        let path = metric.path.replace("{version}", v);
                        measurements.extend(self.read(metric, &path, &answer, Some(v))?);
                    }
                } else {
                    let path = match version {
                        Some(v) => metric.path.replace("{version}", v),
                        None => metric.path.clone(),
                    };
                    measurements.extend(self.read(metric, &path, &answer, version)?);
                }
            }
        }
        Ok(Sample::new(
            measurements,
            format!("{} {}", self.method, evidence.join(", ")),
        ))
    }
}

/// One step of a JSONPath.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `$`, `.key`, `['key']`/`["key"]` and `[N]`: the paths a health endpoint's JSON needs.
fn parse_path(path: &str) -> std::result::Result<Vec<Step>, String> {
    let mut rest = path
        .trim()
        .strip_prefix('$')
        .ok_or("it does not start with $")?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return Err("an empty key".into());
            }
            steps.push(Step::Key(after[..end].to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or("a [ without its ]")?;
            let inside = after[..end].trim();
            if let Some(quoted) = inside
                .strip_prefix('\'')
                .and_then(|q| q.strip_suffix('\''))
                .or_else(|| inside.strip_prefix('"').and_then(|q| q.strip_suffix('"')))
            {
                steps.push(Step::Key(quoted.to_owned()));
            } else {
                let index = inside
                    .parse()
                    .map_err(|_| format!("[{inside}] is neither an index nor a quoted key"))?;
                steps.push(Step::Index(index));
            }
            rest = &after[end + 1..];
        } else {
            return Err(format!("unexpected {rest:?}"));
        }
    }
    Ok(steps)
}

fn walk<'a>(value: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    steps.iter().try_fold(value, |value, step| match step {
        Step::Key(key) => value.get(key),
        Step::Index(index) => value.get(index),
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
        _ => "a value",
    }
}

/// `url` with any password blanked (`https://user:<redacted>@host/…`).
fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:<redacted>@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_keys_quoted_keys_and_indexes() {
        let answer = serde_json::json!({"stats": [{"p99": 0.4}], "error-rate": {"v1": 0.01}});
        let at = |path: &str| walk(&answer, &parse_path(path).unwrap()).cloned();
        assert_eq!(at("$.stats[0].p99"), Some(serde_json::json!(0.4)));
        assert_eq!(at("$['error-rate'].v1"), Some(serde_json::json!(0.01)));
        assert_eq!(at("$.missing"), None);
        assert!(parse_path("stats").is_err());
        assert!(parse_path("$.stats[x]").is_err());
    }

    #[test]
    fn a_urls_password_is_never_shown() {
        assert_eq!(
            redacted_url("https://bot:hunter2@status.example/api?x=1"),
            "https://bot:<redacted>@status.example/api?x=1"
        );
        assert_eq!(redacted_url("http://h/p"), "http://h/p");
    }
}
