//! [`JobMigrationInspector`]: the schema's state from migration Jobs and a schema ConfigMap.

use async_trait::async_trait;
use deployguard_core::{
    AppliedMigration, MigrationInspector, MigrationState, MigrationStatus, Result, SchemaVersion,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, LogParams};

use crate::error::from_kube;

/// Reads the schema's state from Kubernetes objects:
///
/// - migration Jobs, found by a label selector (default `deployguard.io/migration=true`): the
///   newest one running is *in progress*, failed is *failed* (with its last log lines);
/// - a ConfigMap (default `schema-version`) whose `version` is the current schema version,
///   `dirty: "true"` marks a migration that stopped halfway, and `applied` lists migrations one
///   per line as `VERSION NAME [compatible|incompatible]`;
/// - failing a ConfigMap version, the `deployguard.io/schema-version` annotation of the newest
///   succeeded Job.
#[derive(Debug, Clone)]
pub struct JobMigrationInspector {
    namespace: String,
    job_selector: String,
    config_map: String,
    jobs: Api<Job>,
    pods: Api<Pod>,
    config_maps: Api<ConfigMap>,
}

impl JobMigrationInspector {
    /// An inspector for `namespace` with the default Job selector and ConfigMap name.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            namespace: namespace.into(),
            job_selector: "deployguard.io/migration=true".into(),
            config_map: "schema-version".into(),
            jobs: Api::namespaced(client.clone(), namespace),
            pods: Api::namespaced(client.clone(), namespace),
            config_maps: Api::namespaced(client, namespace),
        }
    }

    /// Finds migration Jobs with this label selector.
    pub fn with_job_selector(mut self, selector: &str) -> Self {
        self.job_selector = selector.into();
        self
    }

    /// Reads the schema version from this ConfigMap.
    pub fn with_config_map(mut self, name: &str) -> Self {
        self.config_map = name.into();
        self
    }

    /// The newest attempt's last log lines, or one line saying why they could not be read (a
    /// missing `pods/log` permission must show in the evidence, not leave it silently empty).
    async fn last_log_lines(&self, job: &str) -> Vec<String> {
        let unavailable = |err: kube::Error, operation| {
            vec![format!(
                "(logs unavailable: {})",
                from_kube(err, operation, &format!("job {job}"))
            )]
        };
        let pods = match self
            .pods
            .list(&ListParams::default().labels(&format!("job-name={job}")))
            .await
        {
            Ok(pods) => pods,
            Err(err) => return unavailable(err, "list_pods"),
        };
        // The newest attempt's pod: the last one created.
        let newest = pods
            .items
            .iter()
            .max_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let Some(pod) = newest.and_then(|p| p.metadata.name.clone()) else {
            return Vec::new();
        };
        // Named, for a pod with more than one container (a mesh sidecar): the Job's own
        // container is the first.
        let container = newest
            .and_then(|p| p.spec.as_ref())
            .filter(|spec| spec.containers.len() > 1)
            .and_then(|spec| spec.containers.first())
            .map(|c| c.name.clone());
        let params = LogParams {
            tail_lines: Some(5),
            container,
            ..LogParams::default()
        };
        match self.pods.logs(&pod, &params).await {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(err) => unavailable(err, "read_logs"),
        }
    }
}

fn parse_applied(text: &str) -> Vec<AppliedMigration> {
    let mut applied: Vec<AppliedMigration> = text
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let version = parts.next()?.parse().ok()?;
            let name = parts.next().unwrap_or("");
            let migration = AppliedMigration::new(SchemaVersion(version), name);
            Some(match parts.next() {
                Some("compatible") => migration.with_backward_compatible(true),
                Some("incompatible") => migration.with_backward_compatible(false),
                _ => migration,
            })
        })
        .collect();
    applied.sort_by_key(|m| m.version);
    applied
}

#[async_trait]
impl MigrationInspector for JobMigrationInspector {
    fn target(&self) -> String {
        format!("migrations in {} ({})", self.namespace, self.job_selector)
    }

    async fn inspect(&self) -> Result<MigrationState> {
        let object = self.target();
        let config = match self.config_maps.get_opt(&self.config_map).await {
            Ok(config) => config.and_then(|c| c.data).unwrap_or_default(),
            Err(err) => return Err(from_kube(err, "inspect", &object)),
        };
        let mut jobs = self
            .jobs
            .list(&ListParams::default().labels(&self.job_selector))
            .await
            .map_err(|e| from_kube(e, "inspect", &object))?
            .items;
        jobs.sort_by_key(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let version_of = |job: &Job| {
            job.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("deployguard.io/schema-version"))
                .and_then(|v| v.parse().ok())
                .map(SchemaVersion)
        };
        let succeeded = |job: &Job| {
            job.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Complete" && c.status == "True")
                })
        };
        let current = config
            .get("version")
            .and_then(|v| v.parse().ok())
            .map(SchemaVersion)
            .or_else(|| {
                jobs.iter()
                    .rev()
                    .find(|j| succeeded(j))
                    .and_then(version_of)
            });
        let applied = config
            .get("applied")
            .map(|t| parse_applied(t))
            .unwrap_or_default();
        let mut status = MigrationStatus::Idle;
        if let Some(job) = jobs.last() {
            let name = job.metadata.name.clone().unwrap_or_default();
            let job_status = job.status.clone().unwrap_or_default();
            let failed = job_status.conditions.as_ref().and_then(|cs| {
                cs.iter()
                    .find(|c| c.type_ == "Failed" && c.status == "True")
                    .cloned()
            });
            if let Some(condition) = failed {
                let lines = self.last_log_lines(&name).await;
                let mut reason = format!(
                    "job {name} failed: {}",
                    condition.reason.unwrap_or_default()
                );
                if !lines.is_empty() {
                    reason.push_str(&format!("; last log lines: {}", lines.join(" | ")));
                }
                status = MigrationStatus::Failed { reason };
            } else if !succeeded(job) && job_status.active.unwrap_or(0) > 0 {
                status = MigrationStatus::InProgress {
                    what: format!("job/{name}"),
                };
            }
        }
        if status == MigrationStatus::Idle && config.get("dirty").is_some_and(|d| d == "true") {
            status = MigrationStatus::Dirty {
                version: current.unwrap_or(SchemaVersion(0)),
            };
        }
        Ok(MigrationState::idle(current, applied).with_status(status))
    }
}
