//! `pods/exec` and `pods/attach` over WebSocket, as kubectl 1.30 and later speak them: the `v5.channel.k8s.io` (or `v4`) subprotocol, each binary message a
//! channel byte (1 stdout, 2 stderr, 3 the error channel's final `Status`) and data.
//!
//! - **exec** runs its `command` in the container's command language
//!   ([`crate::controllers`]' scripts: `echo`, `sleep`, `cat` of mounted keys, `sh -c`, …) on the
//!   cluster clock, streams what it prints, and ends with the exit code (`NonZeroExitCode`, so
//!   `kubectl exec … -- sh -c 'exit 3'` exits 3). A command outside the language fails as the
//!   runtime fails an executable not on the `PATH`.
//! - **attach** streams what the container prints from then on until it stops (`kubectl run -i`,
//!   `kubectl attach`).
//!
//! Standard input is read and discarded (the language reads none). SPDY, which kubectl before
//! 1.30 speaks, is not served: those clients are told so and, for `run -i`, fall back to logs.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Response, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::api::{Body, full};
use crate::controllers::command::{Script, data_of, environment, parse};
use crate::pointer::Pointer;
use crate::resources::ResourceType;
use crate::status::ApiError;
use crate::{Shared, lock};

/// The channel protocols served, in order of preference.
const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// RFC 6455's key suffix.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;

/// What an upgraded connection runs: carried from the request's answer to the connection.
pub(crate) struct Session {
    shared: Weak<Shared>,
    namespace: String,
    pod: String,
    container: String,
    stdout: bool,
    stderr: bool,
    work: Work,
}

enum Work {
    Exec {
        argv: Vec<String>,
        script: Option<Script>,
    },
    Attach,
}

/// The request's WebSocket handshake headers: its key and offered subprotocols.
#[derive(Clone)]
pub(crate) struct Handshake {
    pub(crate) key: String,
    pub(crate) protocols: Vec<String>,
}

impl Handshake {
    /// The handshake a request asks for, if it asks to be upgraded to WebSocket.
    pub(crate) fn of(headers: &http::HeaderMap) -> Option<Self> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if !text("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            return None;
        }
        Some(Self {
            key: text("sec-websocket-key")?.to_owned(),
            protocols: headers
                .get_all("sec-websocket-protocol")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|p| p.trim().to_owned())
                .collect(),
        })
    }
}

/// Answers an exec or attach request (`sub`) for pod `ns/name`: the 101 that switches to
/// WebSocket, with the session to run in its extensions, or the refusal.
pub(crate) fn open(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    sub: &str,
    request: &crate::api::ApiRequest,
) -> Result<Response<Body>, ApiError> {
    let pod = lock(&shared.store).get(rt, ns, name)?;
    let param = |key: &str| request.param(key).map(str::to_owned);
    let flag = |key: &str| matches!(request.param(key), Some("true" | "1"));
    let names: Vec<String> = pod
        .at("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let default = pod
        .at("/metadata/annotations/kubectl.kubernetes.io~1default-container")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| names.first().cloned())
        .unwrap_or_default();
    let container = param("container").unwrap_or(default);
    if !names.contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let running = pod
        .at("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|s| {
            s.get("name").and_then(Value::as_str) == Some(container.as_str())
                && s.at("/state/running").is_some()
        });
    if !running {
        return Err(ApiError::bad_request(format!(
            "container not found (\"{container}\")"
        )));
    }
    let work = if sub == "exec" {
        let argv: Vec<String> = request
            .query
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.clone())
            .collect();
        if argv.is_empty() {
            return Err(ApiError::bad_request("you must specify at least 1 command"));
        }
        let spec = pod
            .at("/spec/containers")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c.get("name") == Some(&json!(container))))
            .cloned()
            .unwrap_or_default();
        let script = {
            let store = lock(&shared.store);
            let types = lock(&shared.types).clone();
            let lookup = |kind: &str, object: &str| {
                let rt = types
                    .iter()
                    .find(|t| t.group.is_empty() && t.kind == kind)?;
                data_of(kind, &store.get(rt, ns, object).ok()?)
            };
            parse(&argv, &environment(&pod, &spec, &lookup))
        };
        Work::Exec { argv, script }
    } else {
        Work::Attach
    };
    let Some(handshake) = request.websocket.as_ref() else {
        // SPDY (kubectl before 1.30, or a client that falls back to it) or a plain request.
        let why = if request
            .upgrade
            .as_deref()
            .is_some_and(|u| u.to_ascii_lowercase().starts_with("spdy"))
        {
            format!(
                "the simulated cluster serves {sub} over WebSocket only (kubectl 1.30 or later); SPDY is not served"
            )
        } else {
            "Upgrade request required".to_owned()
        };
        return Err(ApiError::bad_request(why));
    };
    let Some(protocol) = handshake
        .protocols
        .iter()
        .find(|p| PROTOCOLS.contains(&p.as_str()))
    else {
        return Err(ApiError::bad_request(format!(
            "none of the offered subprotocols {:?} is served (want {})",
            handshake.protocols,
            PROTOCOLS.join(" or ")
        )));
    };
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{}{WEBSOCKET_GUID}", handshake.key).as_bytes(),
    );
    let accept = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    if let Ok(value) = HeaderValue::from_str(protocol) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    response
        .extensions_mut()
        .insert(Arc::new(std::sync::Mutex::new(Some(Session {
            shared: Arc::downgrade(shared),
            namespace: ns.to_owned(),
            pod: name.to_owned(),
            container,
            stdout: flag("stdout"),
            stderr: flag("stderr"),
            work,
        }))));
    Ok(response)
}

/// The session an answer carries, if it switches protocols.
pub(crate) fn take(response: &Response<Body>) -> Option<Session> {
    response
        .extensions()
        .get::<Arc<std::sync::Mutex<Option<Session>>>>()
        .and_then(|s| lock(s).take())
}

/// A server frame: final, unmasked, of `opcode`.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

fn channel(id: u8, data: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(data.len() + 1);
    payload.push(id);
    payload.extend_from_slice(data);
    frame(0x2, &payload)
}

/// Reads one client frame: its opcode and unmasked payload; `None` when the connection ends.
async fn read_frame<R: tokio::io::AsyncRead + Unpin>(reader: &mut R) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    reader.read_exact(&mut head).await.ok()?;
    let opcode = head[0] & 0x0f;
    let masked = head[1] & 0x80 != 0;
    let len = match head[1] & 0x7f {
        126 => u64::from(reader.read_u16().await.ok()?),
        127 => reader.read_u64().await.ok()?,
        n => u64::from(n),
    };
    // Nothing a client sends here is large: refuse what would be.
    if len > 1 << 20 {
        return None;
    }
    let mut mask = [0u8; 4];
    if masked {
        reader.read_exact(&mut mask).await.ok()?;
    }
    let mut payload = vec![0u8; len as usize];
    reader.read_exact(&mut payload).await.ok()?;
    if masked {
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
    }
    Some((opcode, payload))
}

impl Session {
    /// Runs the session on the upgraded connection until the work ends or the client goes.
    pub(crate) async fn run(self, upgrade: OnUpgrade) {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
        let writing = tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                let close = bytes.first() == Some(&0x88);
                if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
                    return;
                }
                if close {
                    let _ = writer.shutdown().await;
                    return;
                }
            }
        });
        let pongs = tx.clone();
        let reading = tokio::spawn(async move {
            // Standard input and resizes are read and dropped; pings are answered.
            while let Some((opcode, payload)) = read_frame(&mut reader).await {
                match opcode {
                    0x8 => return,
                    0x9 if pongs.send(frame(0xA, &payload)).await.is_err() => return,
                    _ => {}
                }
            }
        });
        let status = match &self.work {
            Work::Exec { argv, script } => self.exec(argv, script.as_ref(), &tx).await,
            Work::Attach => self.attach(&tx).await,
        };
        if let Some(status) = status {
            let _ = tx.send(channel(ERROR, status.to_string().as_bytes())).await;
            let _ = tx.send(frame(0x8, &1000u16.to_be_bytes())).await;
        }
        drop(tx);
        let _ = writing.await;
        reading.abort();
    }

    fn clock_now(&self) -> Option<(SystemTime, crate::clock::Clock)> {
        let shared = self.shared.upgrade()?;
        let clock = lock(&shared.store).clock.clone();
        Some((clock.now(), clock))
    }

    /// Runs the command on the cluster clock; the final status, `None` if the client went.
    async fn exec(
        &self,
        argv: &[String],
        script: Option<&Script>,
        tx: &mpsc::Sender<Vec<u8>>,
    ) -> Option<Value> {
        let Some(script) = script else {
            let program = argv.first().map(String::as_str).unwrap_or_default();
            return Some(json!({"metadata": {}, "status": "Failure",
                "message": format!("Internal error occurred: error executing command in container: failed to exec in container: failed to start exec: OCI runtime exec failed: exec failed: unable to start container process: exec: \"{program}\": executable file not found in $PATH: unknown"),
                "reason": "InternalError", "code": 500}));
        };
        let (start, _) = self.clock_now()?;
        let mut sent = 0;
        loop {
            let (now, clock) = self.clock_now()?;
            let elapsed = now.duration_since(start).unwrap_or_default();
            let run = script.run(elapsed);
            for (_, line) in &run.lines[sent..] {
                if self.stdout
                    && tx
                        .send(channel(STDOUT, format!("{line}\n").as_bytes()))
                        .await
                        .is_err()
                {
                    return None;
                }
            }
            sent = run.lines.len();
            if let Some((_, code)) = run.exit {
                return Some(exit_status(argv, code));
            }
            let next = script.next_change(elapsed)?;
            let wait = clock.to_real(next.saturating_sub(elapsed));
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
            if tx.is_closed() {
                return None;
            }
        }
    }

    /// Streams what the container prints until it stops.
    async fn attach(&self, tx: &mpsc::Sender<Vec<u8>>) -> Option<Value> {
        let key = (self.namespace.clone(), self.pod.clone());
        let current = |shared: &Shared| {
            lock(&shared.logs).get(&key).and_then(|logs| {
                logs.iter()
                    .find(|l| l.name == self.container || l.name.is_empty())
                    .map(|l| (l.current.clone(), l.running))
            })
        };
        let mut sent = {
            let shared = self.shared.upgrade()?;
            current(&shared).map_or(0, |(lines, _)| lines.len())
        };
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let (lines, running) = {
                let shared = self.shared.upgrade()?;
                // A container without a script keeps no lines: it runs while its state says so.
                current(&shared).unwrap_or_else(|| (Vec::new(), self.still_running(&shared)))
            };
            for (_, line) in lines.iter().skip(sent) {
                let wanted = if self.stdout { STDOUT } else { STDERR };
                if (self.stdout || self.stderr)
                    && tx
                        .send(channel(wanted, format!("{line}\n").as_bytes()))
                        .await
                        .is_err()
                {
                    return None;
                }
            }
            sent = sent.max(lines.len());
            if !running || tx.is_closed() {
                return Some(json!({"metadata": {}, "status": "Success"}));
            }
        }
    }
}

impl Session {
    fn still_running(&self, shared: &Shared) -> bool {
        let store = lock(&shared.store);
        let types = lock(&shared.types);
        let Some(rt) = types.iter().find(|t| t.group.is_empty() && t.kind == "Pod") else {
            return false;
        };
        store
            .get(rt, &self.namespace, &self.pod)
            .ok()
            .and_then(|pod| pod.at("/status/containerStatuses").cloned())
            .and_then(|s| s.as_array().cloned())
            .into_iter()
            .flatten()
            .any(|s| {
                s.get("name").and_then(Value::as_str) == Some(self.container.as_str())
                    && s.at("/state/running").is_some()
            })
    }
}

/// The error channel's last word on an exec that ended with `code`.
fn exit_status(argv: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({"metadata": {}, "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", argv.join(" ")),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
}
