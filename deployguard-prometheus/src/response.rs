//! The Prometheus API's answer to an instant query, read honestly.

use std::collections::BTreeMap;

use deployguard_core::{Error, ErrorKind, Result};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// One series of an answer: its labels and its value (`None`: NaN or ±Inf, no data).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: Option<f64>,
}

/// What an answer held.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub(crate) series: Vec<Series>,
    pub(crate) warnings: Vec<String>,
}

fn parse_value(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Reads a `/api/v1/query` answer with HTTP status `status`.
pub(crate) fn read(status: http::StatusCode, body: &[u8], promql: &str) -> Result<Answer> {
    let envelope: Option<Envelope> = serde_json::from_slice(body).ok();
    let Some(envelope) = envelope else {
        let kind = if status.is_server_error() {
            ErrorKind::Unavailable
        } else if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN
        {
            ErrorKind::Forbidden
        } else if status == http::StatusCode::NOT_FOUND {
            ErrorKind::NotFound
        } else {
            ErrorKind::Unexpected
        };
        let text = String::from_utf8_lossy(body);
        let text: String = text.chars().take(200).collect();
        return Err(Error::new(
            kind,
            format!(
                "prometheus answered {status} without an API answer: {}",
                text.trim()
            ),
        ));
    };
    if envelope.status != "success" {
        let error_type = envelope.error_type.unwrap_or_default();
        let message = envelope.error.unwrap_or_default();
        // bad_data: the query is wrong; execution: it cannot be evaluated (both the caller's to
        // fix); timeout, canceled, unavailable: the server's, worth another try.
        let kind = match error_type.as_str() {
            "bad_data" => ErrorKind::InvalidInput,
            "timeout" => ErrorKind::Timeout,
            "canceled" | "unavailable" => ErrorKind::Unavailable,
            _ if status.is_server_error() => ErrorKind::Unavailable,
            _ => ErrorKind::Unexpected,
        };
        return Err(Error::new(
            kind,
            format!("prometheus refused the query {promql:?}: {error_type}: {message}"),
        ));
    }
    let data = envelope.data.ok_or_else(|| {
        Error::new(
            ErrorKind::Unexpected,
            "prometheus answered success without data",
        )
    })?;
    let series = match data.result_type.as_str() {
        "vector" => {
            let samples: Vec<VectorSample> = serde_json::from_value(data.result).map_err(|e| {
                Error::new(
                    ErrorKind::Unexpected,
                    format!("prometheus vector not understood: {e}"),
                )
            })?;
            samples
                .into_iter()
                .map(|s| Series {
                    labels: s.metric,
                    value: parse_value(&s.value.1),
                })
                .collect()
        }
        "scalar" => {
            let (_, value): (f64, String) = serde_json::from_value(data.result).map_err(|e| {
                Error::new(
                    ErrorKind::Unexpected,
                    format!("prometheus scalar not understood: {e}"),
                )
            })?;
            vec![Series {
                labels: BTreeMap::new(),
                value: parse_value(&value),
            }]
        }
        other => {
            return Err(Error::invalid_input(
                "prometheus query",
                format!(
                    "{promql:?} returns a {other}; a probe needs an instant vector or a scalar (a range selector such as [5m] must be inside a function like rate())"
                ),
            ));
        }
    };
    Ok(Answer {
        series,
        warnings: envelope.warnings,
    })
}
