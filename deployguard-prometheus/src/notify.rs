//! [`WebhookNotifier`]: what a guard decided, POSTed to a URL (a Slack incoming webhook, a chat
//! bridge, an incident tool) as JSON with a Slack-compatible `text`. A journal sink that never
//! blocks its guard: notices wait in a bounded queue for a task that sends them, retried within
//! the retry policy; when the queue is full a notice is dropped and counted, never waited for.
//! (It lives here because this crate already has the HTTP client.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use deployguard_core::engine::{Decision, EventKind, JournalEvent, JournalSink, RetryPolicy};
use deployguard_core::{Error, ErrorKind, Result};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::sync::mpsc;

/// Notices waiting to be sent; more are dropped (and counted).
const QUEUE: usize = 64;

/// Sends each guard's abort, pause and outcome to a webhook. Clones share the queue.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    sender: mpsc::Sender<serde_json::Value>,
    target: Arc<Mutex<String>>,
    dropped: Arc<AtomicU64>,
}

impl WebhookNotifier {
    /// Notifies `url` (http:// or https://), each notice retried by `retry` for at most
    /// `give_up_after`. Must be called inside a tokio runtime: it starts the task that sends.
    ///
    /// ```
    /// use std::time::Duration;
    /// use deployguard_core::engine::RetryPolicy;
    /// use deployguard_prometheus::WebhookNotifier;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let err = WebhookNotifier::new("hooks.slack.com/x", RetryPolicy::default(), Duration::from_secs(60))
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "invalid input: webhook url: \"hooks.slack.com/x\" is not an http:// or https:// URL");
    /// # }
    /// ```
    pub fn new(url: &str, retry: RetryPolicy, give_up_after: Duration) -> Result<Self> {
        let uri: http::Uri = url
            .parse()
            .ok()
            .filter(|u: &http::Uri| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
            })
            .ok_or_else(|| {
                Error::invalid_input(
                    "webhook url",
                    format!("{url:?} is not an http:// or https:// URL"),
                )
            })?;
        crate::http::check_scheme(&uri, "webhook url")?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::invalid_input("webhook", "must be made inside a tokio runtime"))?;
        let client: Client<_, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(crate::http::connector()?);
        let (sender, mut receiver) = mpsc::channel::<serde_json::Value>(QUEUE);
        runtime.spawn(async move {
            while let Some(notice) = receiver.recv().await {
                let deadline = tokio::time::Instant::now() + give_up_after;
                let body = Bytes::from(notice.to_string());
                let sent = retry
                    .run(deadline, || post(&client, &uri, body.clone()))
                    .await;
                if let Err(err) = sent {
                    tracing::warn!(target: "deployguard::notify", error = %err, "webhook notice not delivered");
                }
            }
        });
        Ok(Self {
            sender,
            target: Arc::default(),
            dropped: Arc::default(),
        })
    }

    /// Notices dropped because the queue was full (the webhook slower than the guards).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn post(
    client: &Client<crate::http::Connector, Full<Bytes>>,
    uri: &http::Uri,
    body: Bytes,
) -> Result<()> {
    let request = http::Request::post(uri.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|e| Error::invalid_input("webhook request", e))?;
    let host = uri.host().unwrap_or_default().to_owned();
    let status = tokio::time::timeout(Duration::from_secs(10), async {
        let response = client.request(request).await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("webhook at {host} could not be reached: {e}"),
            )
        })?;
        let status = response.status();
        // Read (and bound) the answer so the connection can be reused.
        let _ = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await;
        Ok::<_, Error>(status)
    })
    .await
    .map_err(|_| {
        Error::new(
            ErrorKind::Timeout,
            format!("webhook at {host} did not answer"),
        )
    })??;
    if status.is_success() {
        Ok(())
    } else if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
        Err(Error::new(
            ErrorKind::Unavailable,
            format!("webhook at {host} answered {status}"),
        ))
    } else {
        Err(Error::invalid_input(
            "webhook",
            format!("{host} refused the notice: {status}"),
        ))
    }
}

impl JournalSink for WebhookNotifier {
    fn record(&self, event: &JournalEvent) {
        let target = || {
            self.target
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        let text = match &event.kind {
            EventKind::Started { target, .. } => {
                *self.target.lock().unwrap_or_else(PoisonError::into_inner) = target.clone();
                return;
            }
            EventKind::Decision {
                decision: Decision::Abort(reason),
                ..
            } => format!("deployguard: {}: recovering: {reason}", target()),
            EventKind::Decision {
                decision: Decision::Pause(reason),
                ..
            } => format!("deployguard: {}: paused: {reason}", target()),
            EventKind::Finished { outcome } => format!("deployguard: {}: {outcome}", target()),
            _ => return,
        };
        let notice = json!({
            "text": text,
            "target": target(),
            "event": serde_json::to_value(&event.kind).unwrap_or_default(),
        });
        if self.sender.try_send(notice).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
