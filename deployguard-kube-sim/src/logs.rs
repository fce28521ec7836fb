//! Container logs as the kubelet keeps them and `pods/log` serves them: per container, the
//! current run's lines and the previous run's, each line timestamped; the query parameters
//! `container`, `previous`, `timestamps`, `sinceSeconds`, `sinceTime`, `tailLines`, `limitBytes`
//! and `follow` honoured, with the API server's refusals.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::Value;

use crate::clock::{parse_rfc3339, rfc3339_nanos};
use crate::status::ApiError;
use crate::{Shared, lock};

/// One container's logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ContainerLog {
    /// The container's name; empty for logs a test set for the whole pod.
    pub(crate) name: String,
    /// The current (or last) run's lines.
    pub(crate) current: Vec<(SystemTime, String)>,
    /// The run before, once the container has restarted.
    pub(crate) previous: Option<Vec<(SystemTime, String)>>,
    /// Whether the current run is still running (a follow ends when it stops).
    pub(crate) running: bool,
    /// Why it has not started, if it has not (`ContainerCreating`).
    pub(crate) waiting: Option<String>,
}

/// Every pod's logs, by namespace and name.
pub(crate) type Logs = HashMap<(String, String), Vec<ContainerLog>>;

/// What a `pods/log` request asks for.
pub(crate) struct Query {
    pub(crate) container: Option<String>,
    pub(crate) previous: bool,
    pub(crate) timestamps: bool,
    pub(crate) since: Option<SystemTime>,
    pub(crate) tail: Option<usize>,
    pub(crate) limit_bytes: Option<usize>,
    pub(crate) follow: bool,
}

impl Query {
    pub(crate) fn parse(
        param: &dyn Fn(&str) -> Option<String>,
        now: SystemTime,
    ) -> Result<Self, ApiError> {
        let flag = |name: &str| param(name).is_some_and(|v| v == "true" || v == "1");
        let number = |name: &str| -> Result<Option<u64>, ApiError> {
            param(name)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!("{name}: Invalid value: \"{v}\""))
                    })
                })
                .transpose()
        };
        let since = match (number("sinceSeconds")?, param("sinceTime")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "at most one of `sinceTime` or `sinceSeconds` may be specified",
                ));
            }
            (Some(seconds), None) => Some(now - Duration::from_secs(seconds)),
            (None, Some(time)) => Some(parse_rfc3339(&time).ok_or_else(|| {
                ApiError::bad_request(format!("sinceTime: Invalid value: \"{time}\""))
            })?),
            (None, None) => None,
        };
        Ok(Self {
            container: param("container").filter(|c| !c.is_empty()),
            previous: flag("previous"),
            timestamps: flag("timestamps"),
            since,
            tail: number("tailLines")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            limit_bytes: number("limitBytes")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            follow: flag("follow"),
        })
    }
}

/// The container the query is about: the one named, or the only one; the server's 400s
/// otherwise.
fn choose<'a>(
    pod: &Value,
    logs: &'a [ContainerLog],
    query: &Query,
) -> Result<Option<&'a ContainerLog>, ApiError> {
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let names: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    let wanted = match &query.container {
        Some(name) => {
            if !names.contains(&name.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "container {name} is not valid for pod {pod_name}"
                )));
            }
            name.clone()
        }
        None if names.len() > 1 => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
        None => names.first().map(|n| (*n).to_owned()).unwrap_or_default(),
    };
    Ok(logs
        .iter()
        .find(|l| l.name == wanted)
        .or_else(|| logs.iter().find(|l| l.name.is_empty())))
}

/// The lines a query selects, rendered.
fn render(lines: &[(SystemTime, String)], query: &Query, skip: usize) -> String {
    let selected: Vec<&(SystemTime, String)> = lines
        .iter()
        .skip(skip)
        .filter(|(at, _)| query.since.is_none_or(|since| *at >= since))
        .collect();
    let from = query
        .tail
        .filter(|_| skip == 0)
        .map_or(0, |tail| selected.len().saturating_sub(tail));
    let mut text = String::new();
    for (at, line) in &selected[from..] {
        if query.timestamps {
            text.push_str(&rfc3339_nanos(*at));
            text.push(' ');
        }
        text.push_str(line);
        text.push('\n');
    }
    if let Some(limit) = query.limit_bytes
        && text.len() > limit
    {
        let mut cut = limit;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The log text of `pod` for `query` (not following).
pub(crate) fn read(pod: &Value, logs: &[ContainerLog], query: &Query) -> Result<String, ApiError> {
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(log) = choose(pod, logs, query)? else {
        return Ok(String::new());
    };
    if query.previous {
        return match &log.previous {
            Some(lines) => Ok(render(lines, query, 0)),
            None => Err(ApiError::bad_request(format!(
                "previous terminated container \"{}\" in pod \"{pod_name}\" not found",
                log.name
            ))),
        };
    }
    if let Some(reason) = &log.waiting
        && log.current.is_empty()
    {
        return Err(ApiError::bad_request(format!(
            "container \"{}\" in pod \"{pod_name}\" is waiting to start: {reason}",
            log.name
        )));
    }
    Ok(render(&log.current, query, 0))
}

/// A followed log: what there is now, then each line as it is printed, until the container
/// stops or the pod goes.
pub(crate) fn follow(
    shared: Arc<Shared>,
    key: (String, String),
    pod: &Value,
    query: Query,
) -> Result<crate::api::Body, ApiError> {
    let logs = lock(&shared.logs).get(&key).cloned().unwrap_or_default();
    let first = read(pod, &logs, &query)?;
    let container = choose(pod, &logs, &query)?.map(|l| l.name.clone());
    let mut sent = choose(pod, &logs, &query)?.map_or(0, |l| l.current.len());
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let weak = Arc::downgrade(&shared);
    drop(shared);
    tokio::spawn(async move {
        if !first.is_empty() && tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let step = {
                let Some(shared) = weak.upgrade() else { return };
                let logs = lock(&shared.logs);
                logs.get(&key)
                    .and_then(|l| {
                        l.iter()
                            .find(|c| Some(&c.name) == container.as_ref() || c.name.is_empty())
                    })
                    // A restart starts a new run: the follow of the old one is over.
                    .filter(|log| log.current.len() >= sent)
                    .map(|log| {
                        let text = render(&log.current, &query, sent);
                        (text, log.current.len(), log.running)
                    })
            };
            let Some((text, now_sent, running)) = step else {
                return;
            };
            sent = now_sent;
            if !text.is_empty() && tx.send(Bytes::from(text)).await.is_err() {
                return;
            }
            if !running {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, std::convert::Infallible>(Frame::data(bytes)), rx))
    });
    Ok(StreamBody::new(stream).boxed_unsync())
}
