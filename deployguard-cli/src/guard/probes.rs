//! A spec's probes made real: Prometheus with presets or queries of your own, and the
//! deployment's pod readiness.

use std::sync::Arc;

use deployguard_core::spec::{ProbeResolver, ProbeSpec};
use deployguard_core::{Error, ErrorKind, HealthProbe, Result};
use deployguard_k8s::{KubeDeployment, PodReadinessProbe};
use deployguard_prometheus::{PrometheusConfig, PrometheusProbe, Query, WebProbe, presets};

/// Resolves a spec's probes against one cluster and deployment.
#[derive(Debug, Clone)]
pub struct SpecProbes {
    deployment: KubeDeployment,
    namespace: String,
}

impl SpecProbes {
    /// Probes of `deployment` in `namespace` (where the presets count requests).
    pub fn new(namespace: &str, deployment: KubeDeployment) -> Self {
        Self {
            deployment,
            namespace: namespace.to_owned(),
        }
    }
}

impl ProbeResolver for SpecProbes {
    fn resolve(&self, spec: &ProbeSpec) -> Result<Arc<dyn HealthProbe>> {
        match spec {
            ProbeSpec::Prometheus(prometheus) => {
                let mut config = PrometheusConfig::new(&prometheus.url)?;
                if let Some(var) = &prometheus.bearer_token_env {
                    let token = std::env::var(var).map_err(|_| {
                        Error::invalid_input("bearerTokenEnv", format!("{var} is not set"))
                    })?;
                    config = config.bearer_token(token);
                }
                let mut probe = PrometheusProbe::new(&prometheus.name, config)?;
                if let Some(errors) = &prometheus.error_ratio {
                    probe = probe.with(presets::error_ratio_by_version(
                        &self.namespace,
                        &errors.service,
                        errors.window,
                    ));
                }
                if let Some(latency) = &prometheus.latency {
                    probe = probe.with(presets::latency_by_version(
                        &self.namespace,
                        &latency.service,
                        latency.quantile,
                        latency.window,
                    ));
                }
                for (metric, promql) in &prometheus.queries {
                    probe = probe.with(Query::value(metric, promql));
                }
                Ok(Arc::new(probe))
            }
            ProbeSpec::PodReadiness(readiness) => Ok(Arc::new(
                PodReadinessProbe::new(self.deployment.clone()).named(&readiness.name),
            )),
            ProbeSpec::Web(web) => {
                let mut builder = WebProbe::builder(&web.name, &web.url)
                    .timeout(web.timeout)
                    .versions(web.versions.iter().cloned());
                if let Some(body) = &web.body {
                    builder = builder.post(body);
                }
                for (header, var) in &web.headers_from_env {
                    let value = std::env::var(var).map_err(|_| {
                        Error::invalid_input(
                            &format!("headersFromEnv.{header}"),
                            format!("{var} is not set"),
                        )
                    })?;
                    builder = builder.header(header, &value);
                }
                for (metric, path) in &web.metrics {
                    builder = builder.metric(metric, path);
                }
                Ok(Arc::new(builder.build()?))
            }
            other => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "kind {} is not served by this command (prometheus, podReadiness and web are)",
                    other.kind()
                ),
            )),
        }
    }
}
