//! [`GuardedLayer`]: what an API server (or whatever answers in its place) can do to the caller,
//! bounded. A layer for kube-rs's client stack, for programs that act in an emergency against a
//! server they cannot trust to be well: every answer must start within a time, every body is
//! bounded by what its kind of request can need, a watch may stay quiet as long as it asked to,
//! error bodies are summarized instead of quoted, and every failure names the server.
//!
//! Why each: kube-rs's one `read_timeout` applies to watches too, which are quiet by nature, so
//! a quiet rollout ended a recovery after 30 s; its line codec and body collection have no
//! limit, so a server streaming `[` grew a process to gigabytes; and an error body that is not a
//! Kubernetes `Status` is copied into the error's message, so a proxy that reflects request
//! headers put the bearer token into the command's output.
//!
//! ```no_run
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! use deployguard_k8s::transport::{GuardedLayer, Limits};
//!
//! let mut config = kube::Config::infer().await?;
//! // The layer times each answer; a watch must not be cut by a read timeout of its own.
//! config.read_timeout = None;
//! let layer = GuardedLayer::new(config.cluster_url.to_string(), Limits::default());
//! let client = kube::client::ClientBuilder::try_from(config)?
//!     .with_layer(&layer)
//!     .build();
//! # let _ = client;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How much and how long each kind of request may take.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest body of one object (a get, a write's answer). The API server stores objects
    /// of at most 1.5 MiB.
    pub object: usize,
    /// The largest body of a list (and of anything not an object: discovery, OpenAPI).
    pub list: usize,
    /// The longest line of a watch: one event.
    pub watch_event: usize,
    /// How much of an error's body is read to tell whether it is a Kubernetes `Status`.
    pub error: usize,
    /// How long the answer may take to start, and a body may stay silent (a watch: as long as
    /// its `timeoutSeconds`, and this again).
    pub silence: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            object: 4 << 20,
            list: 16 << 20,
            watch_event: 4 << 20,
            error: 64 << 10,
            silence: Duration::from_secs(30),
        }
    }
}

/// The kind of a request, as far as its limits go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    List,
    /// A watch, quiet for at most this long by its own `timeoutSeconds`.
    Watch(Option<Duration>),
}

impl Kind {
    fn of<B>(request: &Request<B>) -> Self {
        let query = request.uri().query().unwrap_or_default();
        let param = |name: &str| {
            query.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (key == name).then_some(value)
            })
        };
        if matches!(param("watch"), Some("true" | "1")) {
            let asked = param("timeoutSeconds")
                .and_then(|s| s.parse().ok())
                .map(Duration::from_secs);
            return Self::Watch(asked);
        }
        if request.method() != http::Method::GET || is_object_path(request.uri().path()) {
            Self::Object
        } else {
            Self::List
        }
    }

    fn limit(self, limits: &Limits) -> usize {
        match self {
            Self::Object => limits.object,
            Self::List => limits.list,
            Self::Watch(_) => limits.watch_event,
        }
    }

    /// How long the body may say nothing: `None` for a watch that did not say how long it lasts
    /// (its caller's deadline bounds it).
    fn silence(self, limits: &Limits) -> Option<Duration> {
        match self {
            Self::Watch(asked) => asked.map(|asked| asked + limits.silence),
            _ => Some(limits.silence),
        }
    }
}

/// Whether an API path names one object (`…/pods/web-1`, `…/namespaces/shop`) rather than a
/// collection (`…/pods`, `…/namespaces`).
fn is_object_path(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] | ["apis", _, _version, rest @ ..] => rest,
        _ => return false,
    };
    let rest = match rest {
        ["namespaces", _namespace, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    rest.len() >= 2
}

/// A [`tower::Layer`] for kube-rs's [`ClientBuilder`](kube::client::ClientBuilder): see the
/// module's documentation.
#[derive(Debug, Clone)]
pub struct GuardedLayer {
    server: Arc<str>,
    limits: Arc<Limits>,
}

impl GuardedLayer {
    /// Bounds answers from `server` (named in every error) by `limits`.
    pub fn new(server: impl Into<String>, limits: Limits) -> Self {
        Self {
            server: server.into().into(),
            limits: Arc::new(limits),
        }
    }
}

impl<S> tower::Layer<S> for GuardedLayer {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            inner,
            server: Arc::clone(&self.server),
            limits: Arc::clone(&self.limits),
        }
    }
}

/// The service [`GuardedLayer`] makes.
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    server: Arc<str>,
    limits: Arc<Limits>,
}

/// What went wrong with an answer, naming the server; never quoting what it sent.
#[derive(Debug)]
pub struct TransportError {
    server: Arc<str>,
    what: String,
    source: Option<BoxError>,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.server, self.what)?;
        // The causes, each once (hyper's errors repeat their source in their own words).
        let mut last = String::new();
        let mut cause = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(err) = cause {
            let text = err.to_string();
            // hyper-util's own summary ("client error (Connect)") says less than its source.
            let summary = text.starts_with("client error (") && err.source().is_some();
            if !text.is_empty() && !last.contains(&text) && !summary {
                write!(f, ": {text}")?;
            }
            last = text;
            cause = err.source();
        }
        Ok(())
    }
}

impl std::error::Error for TransportError {}

impl TransportError {
    fn boxed(server: &Arc<str>, what: impl Into<String>, source: Option<BoxError>) -> BoxError {
        Box::new(Self {
            server: Arc::clone(server),
            what: what.into(),
            source,
        })
    }
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<GuardedBody>, BoxError>> + Send>>;

impl<S, B> tower::Service<Request<kube::client::Body>> for Guarded<S>
where
    S: tower::Service<Request<kube::client::Body>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<GuardedBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
        let kind = Kind::of(&request);
        let server = Arc::clone(&self.server);
        let limits = Arc::clone(&self.limits);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = match tokio::time::timeout(limits.silence, answer).await {
                Err(_) => {
                    return Err(TransportError::boxed(
                        &server,
                        format!("no answer within {}", humanize(limits.silence)),
                        None,
                    ));
                }
                Ok(Err(err)) => {
                    let err: BoxError = err.into();
                    let what = if chain_mentions(&*err, "connect") {
                        "cannot connect"
                    } else {
                        "no usable answer"
                    };
                    return Err(TransportError::boxed(&server, what, Some(err)));
                }
                Ok(Ok(response)) => response,
            };
            let (parts, body) = response.into_parts();
            if parts.status.is_client_error() || parts.status.is_server_error() {
                let text = error_body(&server, &limits, &parts, body).await;
                return Ok(Response::from_parts(
                    parts,
                    GuardedBody::Whole(Some(Bytes::from(text))),
                ));
            }
            let body = Bounded {
                inner: body,
                server,
                kind,
                limit: kind.limit(&limits),
                silence: kind.silence(&limits),
                timer: None,
                counted: 0,
            };
            Ok(Response::from_parts(
                parts,
                GuardedBody::Streamed(Box::new(body)),
            ))
        })
    }
}

/// Whether `err` or a cause of it mentions `word`.
fn chain_mentions(err: &(dyn std::error::Error + 'static), word: &str) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if err.to_string().to_ascii_lowercase().contains(word) {
            return true;
        }
        cause = err.source();
    }
    false
}

fn humanize(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

/// An error answer's body as kube-rs will read it: a Kubernetes `Status` as sent (its message
/// cut to 1 KiB, credentials blanked), anything else replaced by a `Status` that says what came
/// (code, size, content type) without quoting it.
async fn error_body<B>(
    server: &Arc<str>,
    limits: &Limits,
    parts: &http::response::Parts,
    body: B,
) -> String
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut body = body;
    let mut bytes = Vec::new();
    let mut whole = true;
    let read = async {
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let Ok(frame) = frame else {
                whole = false;
                break;
            };
            if let Ok(data) = frame.into_data() {
                bytes.extend_from_slice(&data);
                if bytes.len() > limits.error {
                    whole = false;
                    break;
                }
            }
        }
    };
    if tokio::time::timeout(limits.silence, read).await.is_err() {
        whole = false;
    }
    let status = parts.status;
    if whole
        && let Ok(mut parsed) = serde_json::from_slice::<serde_json::Value>(&bytes)
        && parsed.get("kind").and_then(|k| k.as_str()) == Some("Status")
    {
        if let Some(message) = parsed.get_mut("message")
            && let Some(text) = message.as_str()
        {
            *message = serde_json::Value::String(scrubbed(text));
        }
        return parsed.to_string();
    }
    let size = if whole {
        format!("{} bytes", bytes.len())
    } else {
        format!("more than {} bytes", bytes.len().min(limits.error))
    };
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map_or("no content type".to_owned(), |t| {
            scrubbed(t.split(';').next().unwrap_or_default().trim())
        });
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": format!(
            "{server} answered {} with {size} of {content_type}, not a Kubernetes Status (not quoted)",
            status.as_u16()
        ),
        "reason": reason(status),
        "code": status.as_u16(),
    })
    .to_string()
}

/// The API server's reason for an HTTP status, as a `Status` would carry it.
fn reason(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

/// A server's message, at most 1 KiB, with whatever follows `Bearer` or `Basic` blanked: a
/// message may quote a request's headers.
pub fn scrubbed(text: &str) -> String {
    const MAX: usize = 1024;
    let mut out = String::with_capacity(text.len().min(MAX));
    let mut blank_next = false;
    for word in text.split_inclusive(char::is_whitespace) {
        let bare = word.trim_end();
        if blank_next && !bare.is_empty() {
            out.push_str("[redacted]");
            out.push_str(&word[bare.len()..]);
            blank_next = false;
        } else {
            out.push_str(word);
        }
        let lower = bare.to_ascii_lowercase();
        if lower.ends_with("bearer") || lower.ends_with("basic") {
            blank_next = true;
        }
    }
    if out.len() > MAX {
        let mut end = MAX;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

/// The body of an answer [`Guarded`] passes on.
pub enum GuardedBody {
    /// An error's body, read whole (and summarized).
    Whole(Option<Bytes>),
    /// A success's body, bounded as it streams.
    Streamed(Box<dyn BoundedBody>),
}

impl fmt::Debug for GuardedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Whole(bytes) => f
                .debug_tuple("Whole")
                .field(&bytes.as_ref().map_or(0, Bytes::len))
                .finish(),
            Self::Streamed(_) => f.write_str("Streamed"),
        }
    }
}

/// A body that stops at its limit (object-safe, so [`GuardedBody`] needs no type parameter).
pub trait BoundedBody: Send + Unpin {
    /// Polls the next frame.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>>;
}

struct Bounded<B> {
    inner: B,
    server: Arc<str>,
    kind: Kind,
    limit: usize,
    silence: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes of the body so far (a watch: of the line so far).
    counted: usize,
}

impl<B> Bounded<B> {
    fn too_large(&self) -> BoxError {
        let what = match self.kind {
            Kind::Watch(_) => format!(
                "a watch event longer than {} bytes; the stream was dropped",
                self.limit
            ),
            Kind::List => format!("a list larger than {} bytes; refused", self.limit),
            Kind::Object => format!("an answer larger than {} bytes; refused", self.limit),
        };
        TransportError::boxed(&self.server, what, None)
    }
}

impl<B> BoundedBody for Bounded<B>
where
    B: Body<Data = Bytes> + Send + Unpin,
    B::Error: Into<BoxError>,
{
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => {
                let Some(silence) = self.silence else {
                    return Poll::Pending;
                };
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(silence)));
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(TransportError::boxed(
                    &self.server,
                    format!("the answer stopped for {}", humanize(silence)),
                    None,
                ))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(TransportError::boxed(
                &self.server,
                "the answer broke off",
                Some(err.into()),
            )))),
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(silence), Some(timer)) = (self.silence, self.timer.as_mut()) {
                    timer.as_mut().reset(Instant::now() + silence);
                }
                if let Some(data) = frame.data_ref() {
                    self.counted = match (self.kind, data.iter().rposition(|b| *b == b'\n')) {
                        (Kind::Watch(_), Some(end)) => data.len() - end - 1,
                        _ => self.counted + data.len(),
                    };
                    if self.counted > self.limit {
                        return Poll::Ready(Some(Err(self.too_large())));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Streamed(body) => body.poll_next(cx),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Whole(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Self::Whole(None) => SizeHint::with_exact(0),
            Self::Streamed(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str) -> Request<()> {
        Request::get(uri).body(()).unwrap()
    }

    #[test]
    fn requests_are_told_apart_by_what_they_can_need() {
        let kind = |uri| Kind::of(&get(uri));
        assert_eq!(
            kind("/apis/apps/v1/namespaces/shop/deployments/web"),
            Kind::Object
        );
        assert_eq!(
            kind("/apis/apps/v1/namespaces/shop/deployments"),
            Kind::List
        );
        assert_eq!(kind("/api/v1/namespaces/shop/pods/web-1/log"), Kind::Object);
        assert_eq!(kind("/api/v1/namespaces"), Kind::List);
        assert_eq!(kind("/api/v1/namespaces/shop"), Kind::Object);
        assert_eq!(kind("/api/v1/pods"), Kind::List);
        assert_eq!(kind("/apis"), Kind::List);
        assert_eq!(
            kind(
                "/apis/apps/v1/namespaces/shop/deployments?fieldSelector=x&watch=true&timeoutSeconds=290"
            ),
            Kind::Watch(Some(Duration::from_secs(290)))
        );
        assert_eq!(kind("/api/v1/pods?watch=1"), Kind::Watch(None));
        let patch = Request::patch("/apis/apps/v1/namespaces/shop/deployments/web")
            .body(())
            .unwrap();
        assert_eq!(Kind::of(&patch), Kind::Object);
    }

    #[test]
    fn credentials_in_a_message_are_blanked_and_long_messages_cut() {
        assert_eq!(
            scrubbed("echo: Authorization: Bearer abc.def.ghi, Accept: */*"),
            "echo: Authorization: Bearer [redacted] Accept: */*"
        );
        assert_eq!(scrubbed("basic  dXNlcjpwYXNz\n"), "basic  [redacted]\n");
        assert_eq!(
            scrubbed("deployments.apps \"web\" not found"),
            "deployments.apps \"web\" not found"
        );
        let long = "é".repeat(2000);
        assert!(scrubbed(&long).len() <= 1024 + '…'.len_utf8());
    }
}
