//! The Kubernetes client, built from a kubeconfig as users expect, with timeouts, and errors that
//! never quote the file.

use std::time::Duration;

use deployguard_core::{Error, ErrorKind};

/// How long connecting to the API server may take, and reading one answer: a server that
/// accepts and never answers is given up on, and named.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A client from the current kubeconfig (`KUBECONFIG`, `~/.kube/config`), with connect and read
/// timeouts, and the API server's address for messages. Errors never quote the kubeconfig: a
/// parse error can carry a token from the file, so only where it failed is said.
pub async fn client() -> Result<(kube::Client, String), Error> {
    let config = kube::Config::infer().await.map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("kubeconfig: {}", redacted(&e.to_string())),
        )
    })?;
    client_with(config)
}

/// [`client`] from the kubeconfig file at `path` and its current context.
pub async fn client_from(path: &std::path::Path) -> Result<(kube::Client, String), Error> {
    let invalid = |e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "kubeconfig {}: {}",
                path.display(),
                redacted(&e.to_string())
            ),
        )
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| invalid(&e))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| invalid(&e))?;
    client_with(config)
}

fn client_with(mut config: kube::Config) -> Result<(kube::Client, String), Error> {
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "cannot build a client for {server}: {}",
                redacted(&e.to_string())
            ),
        )
    })?;
    Ok((client, server))
}

/// A configuration error's message without anything it quotes from the file: the words before
/// the first quote or detail, and the line and column where it failed.
pub fn redacted(message: &str) -> String {
    let head = message
        .split([':', '\'', '"', '`'])
        .next()
        .unwrap_or_default()
        .trim();
    let location = message.find("line ").and_then(|start| {
        let words: Vec<&str> = message[start..].split_whitespace().take(4).collect();
        let digits = |w: &str| {
            w.trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse::<u32>()
        };
        match words.as_slice() {
            ["line", line, "column", column] => Some(format!(
                " at line {} column {}",
                digits(line).ok()?,
                digits(column).ok()?
            )),
            _ => None,
        }
    });
    format!("{head}{}", location.unwrap_or_default())
}

/// The AWS configuration as every AWS SDK program loads it (environment, shared config and
/// credentials files, profile, region, web identity, instance metadata), with an HTTPS client on
/// rustls and ring. Nothing of it is printed.
pub async fn aws_config() -> aws_types::SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}
