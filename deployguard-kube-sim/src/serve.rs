//! Serving the cluster over HTTP on loopback, and the kubeconfig that points at it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::{self, ApiRequest};
use crate::{Shared, lock};

/// A cluster served over HTTP. Dropping it stops the server.
pub struct ServedCluster {
    addr: SocketAddr,
    token: Option<String>,
    /// The PEM certificate of a server that speaks TLS.
    ca_pem: Option<String>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for ServedCluster {
    // The bearer token is a credential: Debug says whether there is one, never what it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedCluster")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl ServedCluster {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://…` for a cluster served with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The server's certificate (PEM) when it speaks TLS: the one certificate its kubeconfig
    /// trusts.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A kubeconfig for this server (context `fake-cluster`, namespace `default`) with the
    /// admin credential, if the cluster has one.
    pub fn kubeconfig(&self) -> String {
        self.kubeconfig_presenting(self.token.as_deref())
    }

    /// A kubeconfig for this server whose user presents bearer `token` (a ServiceAccount's or
    /// a test user's), for kubectl or kube-rs acting as that identity.
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        self.kubeconfig_presenting(Some(token))
    }

    fn kubeconfig_presenting(&self, token: Option<&str>) -> String {
        // `user: {}` is valid YAML for a user with no credentials.
        let user = match token {
            Some(token) => format!("  user:\n    token: {token}\n"),
            None => "  user: {}\n".to_owned(),
        };
        let trust = match &self.ca_pem {
            Some(pem) => format!(
                "    certificate-authority-data: {}\n",
                crate::auth::base64_standard(pem.as_bytes())
            ),
            None => String::new(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n{trust}    server: {}\n  name: fake-cluster\ncontexts:\n- context:\n    cluster: fake-cluster\n    namespace: default\n    user: fake-user\n  name: fake-cluster\ncurrent-context: fake-cluster\npreferences: {{}}\nusers:\n- name: fake-user\n{user}",
            self.url()
        )
    }

    /// Writes [`kubeconfig`](Self::kubeconfig) to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// A `kube::Client` that reaches this server over HTTP, built from its kubeconfig the way
    /// an operator's tooling builds one.
    pub async fn kube_client(
        &self,
    ) -> Result<kube::Client, Box<dyn std::error::Error + Send + Sync>> {
        self.kube_client_from(&self.kubeconfig()).await
    }

    /// A `kube::Client` over HTTP that presents bearer `token`.
    pub async fn kube_client_with_token(
        &self,
        token: &str,
    ) -> Result<kube::Client, Box<dyn std::error::Error + Send + Sync>> {
        self.kube_client_from(&self.kubeconfig_with_token(token))
            .await
    }

    async fn kube_client_from(
        &self,
        kubeconfig: &str,
    ) -> Result<kube::Client, Box<dyn std::error::Error + Send + Sync>> {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for ServedCluster {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The server's certificate, made at start, and the acceptor that presents it.
struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    ca_pem: String,
}

impl Tls {
    /// A self-signed certificate for `127.0.0.1` and `localhost`; the kubeconfig trusts exactly
    /// it, so nothing is ever verified insecurely.
    fn new() -> std::io::Result<Self> {
        let other = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .map_err(|e| other(&e))?;
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| other(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .map_err(|e| other(&e))?;
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            ca_pem: certified.cert.pem(),
        })
    }
}

pub(crate) async fn serve(
    shared: Arc<Shared>,
    addr: &str,
    tls: bool,
) -> std::io::Result<ServedCluster> {
    let tls = if tls { Some(Tls::new()?) } else { None };
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    *lock(&shared.server_address) = addr.to_string();
    // Over TLS kubectl sends the kubeconfig's credential and asks for a password when there is
    // none: a cluster without an admin token gets one for its kubeconfig.
    let token = match (&shared.token, &tls) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(_)) => Some(lock(&shared.tokens).issue_admin()),
        (None, None) => None,
    };
    let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
    let acceptor = tls.map(|t| t.acceptor);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // As Go's net package (and so the real API server) does: a response written in
            // pieces (a paged list, a watch) is not held back by Nagle's algorithm waiting for
            // the client's delayed ACK, 40 ms a time on loopback.
            let _ = stream.set_nodelay(true);
            let shared = Arc::clone(&shared);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    // A client that fails the handshake (a plain-HTTP request, an untrusted
                    // certificate) is simply hung up on, as a real server does.
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve_connection(shared, stream).await;
                        }
                    }
                    None => serve_connection(shared, stream).await,
                }
            });
        }
    });
    Ok(ServedCluster {
        addr,
        token,
        ca_pem,
        task,
    })
}

async fn serve_connection<S>(shared: Arc<Shared>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        let shared = Arc::clone(&shared);
        async move {
            // Exec and attach switch the connection to WebSocket once answered.
            let upgrade = request
                .headers()
                .contains_key(http::header::UPGRADE)
                .then(|| hyper::upgrade::on(&mut request));
            let (parts, body) = request.into_parts();
            // An injected reset is an error here: hyper closes the connection without an
            // answer.
            match body.collect().await {
                Ok(collected) => {
                    let answer =
                        api::handle(shared, ApiRequest::new(&parts, collected.to_bytes())).await;
                    if let (Ok(response), Some(upgrade)) = (&answer, upgrade)
                        && let Some(session) = crate::remote::take(response)
                    {
                        tokio::spawn(session.run(upgrade));
                    }
                    answer
                }
                Err(err) => Ok(api::error_response(&crate::ApiError::bad_request(format!(
                    "reading the body: {err}"
                )))),
            }
        }
    });
    // A client hanging up mid-stream is normal for watches.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
}
