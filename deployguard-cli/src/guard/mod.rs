//! The `guard` command: one rollout guarded from a [`GuardSpec`] file, against the current
//! kubeconfig's cluster — the policy a team keeps beside its manifests, run by the same engine
//! as code.

mod probes;
mod routers;
mod words;

use std::sync::Arc;

use deployguard_core::engine::GuardOutcome;
use deployguard_core::spec::GuardSpec;
use deployguard_core::{Error, ErrorKind};
use deployguard_k8s::{JobMigrationInspector, KubeDeployment, KubeEvents};

pub use probes::SpecProbes;
pub use routers::{TrafficParts, traffic_parts};
pub use words::Words;

use crate::emergency::ClientOptions;

/// How the command ends: 0 promoted (or nothing to judge), 2 a bad spec or no cluster, 3 rolled
/// back, 4 paused or failed (a person must look).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardExit {
    /// The new version was promoted.
    Promoted = 0,
    /// The spec or the kubeconfig could not be used.
    Usage = 2,
    /// The new version was rolled back (or traffic put back on the stable side).
    RolledBack = 3,
    /// The guard paused for a person, or its recovery failed.
    NeedsAPerson = 4,
}

/// Reads the spec at `path` (`-`: standard input). Errors name the file and the spec's path.
pub fn read_spec(path: &std::path::Path) -> Result<GuardSpec, Error> {
    let text = if path == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    GuardSpec::from_yaml(&text).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{}: {}", path.display(), e.message()),
        )
    })
}

/// Guards the spec's rollout: builds the guard (probes, checks, migration gate, notifications)
/// through [`GuardSpec::guard_builder`] and runs it to its outcome.
pub async fn run(
    spec: &GuardSpec,
    client_options: &ClientOptions,
    dry_run: bool,
) -> Result<(GuardExit, GuardOutcome), Error> {
    let (client, server) = crate::emergency::client_with(client_options).await?;
    let namespace = spec.namespace();
    let deployment = &spec.target.deployment;
    let backend = KubeDeployment::try_new(client.clone(), namespace, deployment)?;
    let resolver = SpecProbes::new(namespace, backend.clone());
    let dry_run = dry_run || spec.dry_run;
    let mut builder = spec
        .guard_builder(Arc::new(backend), &resolver)?
        .dry_run(dry_run)
        .journal(Arc::new(Words));
    if let Some(parts) = routers::traffic_parts(spec, &client).await? {
        builder = builder.router(parts.router);
        if let Some(stable) = parts.stable {
            builder = builder.stable(Arc::new(stable));
        }
    }
    if spec.migrations.inspect_jobs {
        builder = builder.migrations(Arc::new(JobMigrationInspector::new(
            client.clone(),
            namespace,
        )));
    }
    if let Some(url) = &spec.notifications.webhook {
        let notifier = deployguard_prometheus::WebhookNotifier::new(
            url,
            deployguard_core::engine::RetryPolicy::default(),
            std::time::Duration::from_secs(120),
        )
        .map_err(|e| Error::invalid_input("notifications.webhook", e.message()))?;
        builder = builder.journal(Arc::new(notifier));
    }
    if spec.notifications.events && !dry_run {
        builder = builder.journal(Arc::new(KubeEvents::new(client, namespace, deployment)?));
    }
    let guard = builder.build()?;
    eprintln!(
        "guarding {namespace}/{deployment} on {server}{}",
        if dry_run {
            " (dry run: nothing is written)"
        } else {
            ""
        }
    );
    let report = guard.run().await;
    let exit = match &report.outcome {
        GuardOutcome::Promoted { .. } => GuardExit::Promoted,
        GuardOutcome::RolledBack { .. } => GuardExit::RolledBack,
        _ => GuardExit::NeedsAPerson,
    };
    Ok((exit, report.outcome))
}
