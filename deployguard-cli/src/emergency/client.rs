//! The Kubernetes client, built from a kubeconfig as users expect: each problem with the file
//! named with its path and cause (never quoting it: it holds credentials), credentials only
//! over TLS, and every answer bounded by deployguard-k8s's guarded transport.

use std::path::{Path, PathBuf};
use std::time::Duration;

use deployguard_core::{Error, ErrorKind};
use deployguard_k8s::transport::{GuardedLayer, Limits};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// How long connecting to the API server may take: a server that does not accept is named.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the client came from, and whether credentials may go over plain HTTP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// The kubeconfig file; `None`: `KUBECONFIG` (its files merged, as kubectl merges them),
    /// else `~/.kube/config`, else the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// Send the kubeconfig's credentials to an `http://` server (a local test cluster).
    pub allow_plain_http: bool,
    /// How long and how much each answer may take (a watch: as long as it asked to last).
    pub limits: Limits,
}

/// A client from the current kubeconfig (`KUBECONFIG`, `~/.kube/config`) and the API server's
/// address for messages.
pub async fn client() -> Result<(kube::Client, String), Error> {
    client_with(&ClientOptions::default()).await
}

/// [`client`] from the kubeconfig file at `path` and its current context.
pub async fn client_from(path: &Path) -> Result<(kube::Client, String), Error> {
    client_with(&ClientOptions {
        kubeconfig: Some(path.to_owned()),
        ..ClientOptions::default()
    })
    .await
}

/// A client as `options` say.
pub async fn client_with(options: &ClientOptions) -> Result<(kube::Client, String), Error> {
    let config = match kubeconfig_files(options.kubeconfig.as_deref())? {
        Some((kubeconfig, shown)) => {
            let config =
                kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| {
                        invalid(format!("kubeconfig {shown}: {}", redacted(&e.to_string())))
                    })?;
            (config, shown)
        }
        None => {
            let config = kube::Config::incluster().map_err(|e| {
                invalid(format!(
                    "no kubeconfig ({}), and not running in a cluster: {}; set KUBECONFIG or create ~/.kube/config",
                    default_path().display(),
                    redacted(&e.to_string())
                ))
            })?;
            (config, "the in-cluster service account".to_owned())
        }
    };
    let (mut config, shown) = config;
    let server = config.cluster_url.to_string();
    if config.cluster_url.scheme_str() == Some("http") && has_credentials(&config.auth_info) {
        if !options.allow_plain_http {
            return Err(invalid(format!(
                "the server of {shown} is plain HTTP ({server}) and its user has credentials: they go only over TLS; use an https:// server, or pass --allow-plain-http for a local test cluster"
            )));
        }
        tracing::warn!("sending credentials to {server} over plain HTTP (--allow-plain-http)");
    }
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    // The guarded transport times each answer; a watch is quiet as long as it asked to be.
    config.read_timeout = None;
    let layer = GuardedLayer::new(server.trim_end_matches('/'), options.limits.clone());
    let client = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "cannot build a client for {server}: {}",
                    redacted(&e.to_string())
                ),
            )
        })?
        .with_layer(&layer)
        .build();
    Ok((client, server))
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

fn has_credentials(user: &kube::config::AuthInfo) -> bool {
    user.token.is_some()
        || user.token_file.is_some()
        || user.password.is_some()
        || user.exec.is_some()
        || user.auth_provider.is_some()
}

fn default_path() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".kube")
        .join("config")
}

/// The kubeconfig to use and how to name it: `path`, else `KUBECONFIG`'s files merged (missing
/// ones skipped, as kubectl skips them), else `~/.kube/config`; `None` when there is none
/// at all (the in-cluster configuration is tried). Each problem names the file and its cause.
fn kubeconfig_files(path: Option<&Path>) -> Result<Option<(Kubeconfig, String)>, Error> {
    let (paths, from_env) = match path {
        Some(path) => (vec![path.to_owned()], false),
        None => match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            Some(list) => (std::env::split_paths(&list).collect(), true),
            None => (vec![default_path()], false),
        },
    };
    let explicit = path.is_some();
    let mut merged: Option<Kubeconfig> = None;
    let mut read = Vec::new();
    for path in &paths {
        let shown = path.display().to_string();
        match std::fs::metadata(path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                // A file named on purpose (and alone) must be there; of several, or the
                // default, a missing one is skipped.
                if paths.len() == 1 && (explicit || from_env) {
                    let origin = if from_env { " (KUBECONFIG)" } else { "" };
                    return Err(invalid(format!(
                        "kubeconfig {shown}{origin} does not exist"
                    )));
                }
                continue;
            }
            Err(err) => {
                return Err(invalid(format!(
                    "kubeconfig {shown}: cannot read it: {err}"
                )));
            }
            Ok(meta) if meta.is_dir() => {
                return Err(invalid(format!(
                    "kubeconfig {shown} is a directory, not a file"
                )));
            }
            Ok(_) => {}
        }
        let text = std::fs::read(path)
            .map_err(|err| invalid(format!("kubeconfig {shown}: cannot read it: {err}")))?;
        if text.iter().all(u8::is_ascii_whitespace) {
            return Err(invalid(format!("kubeconfig {shown} is empty")));
        }
        let one = Kubeconfig::read_from(path).map_err(|e| {
            invalid(format!(
                "kubeconfig {shown} is not a valid kubeconfig: {}",
                redacted(&e.to_string())
            ))
        })?;
        merged = Some(match merged {
            None => one,
            Some(before) => before.merge(one).map_err(|e| {
                invalid(format!(
                    "kubeconfig {shown}: cannot merge it: {}",
                    redacted(&e.to_string())
                ))
            })?,
        });
        read.push(shown);
    }
    let Some(kubeconfig) = merged else {
        if path.is_none() && !from_env && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            return Ok(None);
        }
        let listed = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(invalid(format!(
            "no kubeconfig: {listed} does not exist; set KUBECONFIG or create ~/.kube/config"
        )));
    };
    let shown = read.join(", ");
    check_context(&kubeconfig, &shown)?;
    Ok(Some((kubeconfig, shown)))
}

/// What kube-rs would only say as "failed to infer config": the current context, its cluster
/// and its server, each named.
fn check_context(kubeconfig: &Kubeconfig, shown: &str) -> Result<(), Error> {
    let Some(current) = kubeconfig
        .current_context
        .as_deref()
        .filter(|c| !c.is_empty())
    else {
        return Err(invalid(format!(
            "kubeconfig {shown} has no current-context; choose one with kubectl config use-context NAME"
        )));
    };
    let Some(context) = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.as_ref())
    else {
        return Err(invalid(format!(
            "kubeconfig {shown}: its current-context {current:?} is not among its contexts"
        )));
    };
    let Some(cluster) = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
    else {
        return Err(invalid(format!(
            "kubeconfig {shown}: context {current:?} names cluster {:?}, which is not among its clusters",
            context.cluster
        )));
    };
    match cluster.server.as_deref() {
        None | Some("") => Err(invalid(format!(
            "kubeconfig {shown}: cluster {:?} has no server",
            context.cluster
        ))),
        Some(server) if server.parse::<http::Uri>().is_err() => Err(invalid(format!(
            "kubeconfig {shown}: cluster {:?} has a server that is not a URL",
            context.cluster
        ))),
        Some(_) => Ok(()),
    }
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
///
/// `region` (the one an ARN names) is used when given, so no region is looked up.
pub async fn aws_config(region: Option<&str>) -> aws_types::SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(region) = region {
        loader = loader.region(aws_types::region::Region::new(region.to_owned()));
    }
    loader.load().await
}
