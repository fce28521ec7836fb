//! Following a rollout on a watch, as `kubectl rollout status` does: reconnect where the stream
//! ended, read afresh after a 410.

use super::*;

impl KubeDeployment {
    /// Follows a watch on the deployment from `deployment` until it says the rollout is
    /// complete, sending each status to `seen`. Reconnects where the stream ended; after a
    /// 410 (history compacted) reads the deployment again and watches from there.
    pub(super) async fn follow(
        &self,
        mut deployment: Deployment,
        seen: &StatusSender,
        deadline: tokio::time::Instant,
        poll: Duration,
    ) -> Result<RolloutSnapshot> {
        loop {
            let owned = self.seen_now().map(|s| s.owned).unwrap_or_default();
            let mut snapshot = status_of(&deployment, &owned);
            if snapshot.is_complete() && snapshot.current_fingerprint.is_none() {
                // A template none of the listed ReplicaSets has: list them to name what runs.
                let read = self.read("await_complete").await?;
                self.remember_read(&read);
                snapshot = status_of(&read.deployment, &read.owned);
            }
            let _ = seen.send(snapshot.clone());
            if snapshot.is_complete() {
                return Ok(snapshot);
            }
            let version = deployment
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            // kube-rs allows watch timeouts under 295 s; the stream is reopened after one ends.
            let seconds = u32::try_from(left.as_secs() + 1)
                .unwrap_or(u32::MAX)
                .min(290);
            let params = WatchParams::default()
                .fields(&format!("metadata.name={}", self.name))
                .timeout(seconds);
            match self.deployments.watch(&params, &version).await {
                Ok(stream) => {
                    if let Some(next) = self
                        .until_complete_or_ended(stream, &mut deployment, seen, poll)
                        .await?
                    {
                        deployment = next;
                    }
                }
                Err(err) => {
                    let err = from_kube(err, "await_complete", &self.object());
                    if !err.is_retryable() {
                        return Err(err);
                    }
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }

    /// Reads one watch on the deployment, sending each status, until it says the rollout is
    /// complete or the history it resumed from is gone (410: the deployment is read afresh) —
    /// `Some`, the deployment to go on from — or the watch ends (`None`: watch again from
    /// `deployment`, kept current meanwhile). A deletion is `NotFound`.
    pub(super) async fn until_complete_or_ended(
        &self,
        stream: impl futures::Stream<Item = kube::Result<WatchEvent<Deployment>>>,
        deployment: &mut Deployment,
        seen: &StatusSender,
        poll: Duration,
    ) -> Result<Option<Deployment>> {
        let mut stream = std::pin::pin!(stream);
        loop {
            match stream.try_next().await {
                Ok(Some(WatchEvent::Added(d) | WatchEvent::Modified(d))) => {
                    self.remember_deployment(d.clone(), Source::Other);
                    let owned = self.seen_now().map(|s| s.owned).unwrap_or_default();
                    let status = status_of(&d, &owned);
                    if status.is_complete() {
                        return Ok(Some(d));
                    }
                    let _ = seen.send(status);
                    *deployment = d;
                }
                Ok(Some(WatchEvent::Deleted(_))) => {
                    self.remember(None);
                    return Err(Error::not_found(format!(
                        "{} was deleted while waiting for its rollout",
                        self.object()
                    ))
                    .with_operation("await_complete"));
                }
                Ok(Some(WatchEvent::Bookmark(mark))) => {
                    deployment.metadata.resource_version = Some(mark.metadata.resource_version);
                }
                Ok(Some(WatchEvent::Error(status))) if status.code == 410 => {
                    tracing::debug!(
                        target: "deployguard::k8s",
                        object = %self.object(),
                        resource_version = deployment.metadata.resource_version.as_deref().unwrap_or(""),
                        "watch history gone (410): reading the deployment afresh"
                    );
                    let now = self
                        .deployments
                        .get(&self.name)
                        .await
                        .map_err(self.err("await_complete"))?;
                    self.remember_deployment(now.clone(), Source::Other);
                    return Ok(Some(now));
                }
                Ok(Some(WatchEvent::Error(status))) => {
                    return Err(from_kube(
                        kube::Error::Api(status),
                        "await_complete",
                        &self.object(),
                    ));
                }
                // The server ended the stream (its timeout): watch again from here.
                Ok(None) => {
                    tracing::debug!(
                        target: "deployguard::k8s",
                        object = %self.object(),
                        resource_version = deployment.metadata.resource_version.as_deref().unwrap_or(""),
                        "watch ended; watching again from where it stopped"
                    );
                    return Ok(None);
                }
                Err(err) => {
                    // The server's own refusal ends the wait; a stream that broke (a reset, a
                    // proxy's idle timeout, a garbled line) is watched again: a quiet or broken
                    // watch is never a failure by itself, only the deadline is.
                    let refused = matches!(err, kube::Error::Api(_));
                    let err = from_kube(err, "await_complete", &self.object());
                    if refused && !err.is_retryable() {
                        return Err(err);
                    }
                    tracing::debug!(
                        target: "deployguard::k8s",
                        object = %self.object(),
                        error = %err,
                        "watch failed; reconnecting"
                    );
                    tokio::time::sleep(poll).await;
                    return Ok(None);
                }
            }
        }
    }
}
