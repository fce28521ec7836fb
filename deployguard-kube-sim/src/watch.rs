//! Watch streams: one JSON event per line over a chunked response, resumable from a
//! resourceVersion, with bookmarks, `timeoutSeconds`, and an in-stream 410 `Expired` for a
//! resourceVersion the history no longer has (kube-rs relists only on that form).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::api::{ApiRequest, Body};
use crate::clock::Clock;
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Change, served_as};
use crate::table::table;
use crate::{Shared, lock};

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

struct Filter {
    resource: String,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, change: &Change) -> bool {
        change.resource == self.resource
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == change.namespace)
            && self.labels.matches(
                change
                    .object
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object),
            )
            && self.fields.matches(&change.object)
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// A watch line for `object` as the version `rt` serves it (copied only when it differs).
/// How a watch writes its events' objects: as stored, in the apiVersion the watch asked for, or
/// — for a watch that asked for Tables, as `kubectl get -w` does — as one-row Tables.
struct Render {
    rt: ResourceType,
    /// The cluster clock (for ages) and whether rows carry the whole object.
    table: Option<(Clock, bool)>,
}

impl Render {
    fn event(&self, kind: &str, object: &Value) -> Bytes {
        let served;
        let object = if object.get("apiVersion").and_then(Value::as_str)
            == Some(self.rt.api_version().as_str())
        {
            object
        } else {
            served = served_as(&self.rt, object.clone());
            &served
        };
        match &self.table {
            Some((clock, include_object)) => {
                let rv = object
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .and_then(|rv| rv.parse().ok())
                    .unwrap_or(0);
                line(
                    kind,
                    &table(
                        &self.rt,
                        std::slice::from_ref(object),
                        rv,
                        clock.now(),
                        *include_object,
                    ),
                )
            }
            None => line(kind, object),
        }
    }
}

fn bookmark(rt: &ResourceType, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": metadata}),
    )
}

/// Starts a watch and returns its streaming response.
pub(crate) fn serve(
    shared: Arc<Shared>,
    rt: ResourceType,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    request: &ApiRequest,
    drop_at_once: bool,
) -> Result<Response<Body>, ApiError> {
    let filter = Filter {
        resource: rt.store_key(),
        namespace,
        labels,
        fields,
    };
    let bookmarks = request.param("allowWatchBookmarks") == Some("true");
    let send_initial = request.param("sendInitialEvents") == Some("true");
    let timeout = request
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let requested_rv = request
        .param("resourceVersion")
        .filter(|rv| !rv.is_empty())
        .map(str::to_owned);

    let render = Render {
        rt: rt.clone(),
        table: crate::api::wants_table(request).then(|| {
            (
                lock(&shared.store).clock.clone(),
                request.param("includeObject") == Some("Object"),
            )
        }),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let (initial, live, start_rv) = {
        let store = lock(&shared.store);
        // Subscribing under the store lock: nothing can change between the snapshot or replay
        // below and the first live event.
        let live = store.changes.subscribe();
        let start_rv = store.resource_version();
        // A resourceVersion the store has not reached: the real watch cache waits briefly for
        // it, then answers 504 "Too large resource version" (never a stream that hangs).
        if let Some(rv) = requested_rv
            .as_deref()
            .and_then(|rv| rv.parse::<u64>().ok())
            && rv > start_rv
        {
            return Err(store.too_large(rv));
        }
        let initial: Result<Vec<Bytes>, ApiError> = match requested_rv.as_deref() {
            // No resourceVersion, "0", or a streaming list: the current state as ADDED events.
            rv if rv.is_none_or(|rv| rv == "0") || send_initial => Ok(store
                .list(
                    &rt,
                    filter.namespace.as_deref(),
                    &filter.labels,
                    &filter.fields,
                )
                .iter()
                .map(|obj| render.event("ADDED", obj))
                .collect()),
            rv => {
                let rv = rv.unwrap_or_default();
                let rv: u64 = rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version {rv:?}"))
                })?;
                store.changes_since(&filter.resource, rv).map(|changes| {
                    changes
                        .iter()
                        .filter(|c| filter.matches(c))
                        .map(|c| render.event(c.kind.as_str(), &c.object))
                        .collect()
                })
            }
        };
        (initial, live, start_rv)
    };

    tokio::spawn(async move {
        let events = match initial {
            Ok(events) => events,
            Err(expired) => {
                // HTTP 200, then one ERROR event, then the end: what the watch cache does.
                let _ = tx.send(line("ERROR", &expired.to_status())).await;
                return;
            }
        };
        for event in events {
            if tx.send(event).await.is_err() {
                return;
            }
        }
        if send_initial && tx.send(bookmark(&rt, start_rv, true)).await.is_err() {
            return;
        }
        if drop_at_once {
            return;
        }
        stream_live(tx, live, filter, render, start_rv, bookmarks, timeout).await;
    });

    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, std::convert::Infallible>(Frame::data(bytes)), rx))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

async fn stream_live(
    tx: mpsc::Sender<Bytes>,
    mut live: broadcast::Receiver<Arc<Change>>,
    filter: Filter,
    render: Render,
    start_rv: u64,
    bookmarks: bool,
    timeout: Option<Duration>,
) {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut last_rv = start_rv;
    let mut next_bookmark = tokio::time::Instant::now() + BOOKMARK_EVERY;
    loop {
        let wake = deadline.map_or(next_bookmark, |d| d.min(next_bookmark));
        tokio::select! {
            change = live.recv() => match change {
                Ok(change) => {
                    last_rv = last_rv.max(change.rv);
                    if change.rv <= start_rv || !filter.matches(&change) {
                        continue;
                    }
                    let kind = change.kind.as_str();
                    if tx.send(render.event(kind, &change.object)).await.is_err() {
                        return;
                    }
                }
                // A watcher too slow to keep up is closed; the client re-watches from its last
                // resourceVersion, as with a real server.
                Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
            },
            () = tokio::time::sleep_until(wake) => {
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    return;
                }
                if bookmarks && tx.send(bookmark(&render.rt, last_rv, false)).await.is_err() {
                    return;
                }
                next_bookmark = tokio::time::Instant::now() + BOOKMARK_EVERY;
            }
            () = tx.closed() => return,
        }
    }
}
