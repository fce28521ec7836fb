//! Serving the cluster over HTTP on loopback, and the kubeconfig that points at it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::api::{self, ApiRequest};
use super::{Shared, lock};

/// A cluster served over HTTP. Dropping it stops the server.
pub struct ServedCluster {
    addr: SocketAddr,
    token: Option<String>,
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

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig for this server (context `fake-cluster`, namespace `default`).
    pub fn kubeconfig(&self) -> String {
        // `user: {}` is valid YAML for a user with no credentials.
        let user = match &self.token {
            Some(token) => format!("  user:\n    token: {token}\n"),
            None => "  user: {}\n".to_owned(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: {}\n  name: fake-cluster\ncontexts:\n- context:\n    cluster: fake-cluster\n    namespace: default\n    user: fake-user\n  name: fake-cluster\ncurrent-context: fake-cluster\npreferences: {{}}\nusers:\n- name: fake-user\n{user}",
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
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig())?;
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

pub(crate) async fn serve(shared: Arc<Shared>, addr: &str) -> std::io::Result<ServedCluster> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    *lock(&shared.server_address) = addr.to_string();
    let token = shared.token.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: http::Request<Incoming>| {
                        let shared = Arc::clone(&shared);
                        async move {
                            let (parts, body) = request.into_parts();
                            // An injected reset is an error here: hyper closes the connection
                            // without an answer.
                            match body.collect().await {
                                Ok(collected) => {
                                    api::handle(
                                        shared,
                                        ApiRequest::new(&parts, collected.to_bytes()),
                                    )
                                    .await
                                }
                                Err(err) => Ok(api::error_response(&super::ApiError::bad_request(
                                    format!("reading the body: {err}"),
                                ))),
                            }
                        }
                    });
                // A client hanging up mid-stream is normal for watches.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(ServedCluster { addr, token, task })
}
