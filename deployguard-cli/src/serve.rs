//! A tiny HTTP/1.1 responder for what an operator's probes and Prometheus scrape: one answer per
//! connection, the path deciding it.

use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// An answer: status code, content type, body.
pub type Answer = (u16, &'static str, String);

/// Serves `answer(path)` on `addr` until the runtime ends; returns the bound address.
pub async fn serve(
    addr: std::net::SocketAddr,
    answer: Arc<dyn Fn(&str) -> Answer + Send + Sync>,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let mut request = [0u8; 2048];
                let read = socket.read(&mut request).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&request[..read]);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (code, content_type, body) = answer(&path);
                let reason = match code {
                    200 => "OK",
                    404 => "Not Found",
                    _ => "Service Unavailable",
                };
                let head = format!(
                    "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    Ok(bound)
}

/// The guard metrics of `registry` as Prometheus scrapes them.
pub fn metrics(registry: &deployguard_prometheus::prometheus_client::registry::Registry) -> Answer {
    let mut body = String::new();
    match deployguard_prometheus::prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => (
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body,
        ),
        Err(_) => (503, "text/plain", "cannot encode the metrics\n".into()),
    }
}
