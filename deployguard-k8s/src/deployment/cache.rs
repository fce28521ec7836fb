//! What a [`KubeDeployment`] last saw (a read, a write's answer, a watch event), shared by its
//! clones: reads reuse it while the deployment and its ReplicaSets still belong together.

use super::*;

/// The newest deployment object this backend saw, and its ReplicaSets as listed when the
/// deployment's generation was `listed_at`.
#[derive(Clone)]
pub(super) struct Seen {
    pub(super) deployment: Deployment,
    pub(super) owned: Vec<ReplicaSet>,
    pub(super) listed_at: Option<i64>,
}

impl Seen {
    pub(super) fn read(&self) -> Option<Read> {
        (self.listed_at == self.deployment.metadata.generation).then(|| Read {
            deployment: self.deployment.clone(),
            owned: self.owned.clone(),
        })
    }
}

/// Where a newer deployment object came from, which decides whether the ReplicaSets listed
/// before it still describe the deployment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The answer to our own write of markers alone (conditional on the generation listed
    /// under): the ReplicaSets stay as listed.
    OurMarkers,
    /// Anything else (a spec write, a read, a watch event): they do only if the generation is
    /// the one they were listed under.
    Other,
}

impl KubeDeployment {
    /// The deployment's status as this backend last saw it (a read, a write's answer or a watch
    /// event), without sending anything: counts, conditions and the current revision; no pods
    /// or events. `None` before the first read.
    pub fn last_seen(&self) -> Option<RolloutSnapshot> {
        let seen = self.seen_now()?;
        Some(status_of(&seen.deployment, &seen.owned))
    }

    pub(super) fn seen_now(&self) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn remember(&self, seen: Option<Seen>) {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = seen;
    }

    pub(super) fn remember_read(&self, read: &Read) {
        self.remember(Some(Seen {
            deployment: read.deployment.clone(),
            owned: read.owned.clone(),
            listed_at: read.deployment.metadata.generation,
        }));
    }

    /// A newer deployment object (a write's answer, a watch event).
    pub(super) fn remember_deployment(&self, deployment: Deployment, source: Source) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (owned, listed_at) = match seen.take() {
            Some(old) if source == Source::OurMarkers && old.read().is_some() => {
                (old.owned, deployment.metadata.generation)
            }
            Some(old) => (old.owned, old.listed_at),
            None => (Vec::new(), None),
        };
        *seen = Some(Seen {
            deployment,
            owned,
            listed_at,
        });
    }

    /// The deployment and its ReplicaSets: as last seen while they still belong together, else
    /// read now.
    pub(super) async fn recent_read(&self, operation: &'static str) -> Result<Read> {
        if let Some(read) = self.seen_now().and_then(|seen| seen.read()) {
            return Ok(read);
        }
        let read = self.read(operation).await?;
        self.remember_read(&read);
        Ok(read)
    }

    /// The deployment as last seen (`true`), else read now (`false`).
    pub(super) async fn recent_deployment(
        &self,
        operation: &'static str,
    ) -> Result<(Deployment, bool)> {
        if let Some(seen) = self.seen_now() {
            return Ok((seen.deployment, true));
        }
        let deployment = self
            .deployments
            .get(&self.name)
            .await
            .map_err(self.err(operation))?;
        self.remember_deployment(deployment.clone(), Source::Other);
        Ok((deployment, false))
    }

    pub(super) async fn read(&self, operation: &'static str) -> Result<Read> {
        let deployment = self
            .deployments
            .get(&self.name)
            .await
            .map_err(self.err(operation))?;
        let uid = deployment.metadata.uid.clone().unwrap_or_default();
        let list = self
            .replica_sets
            .list(&ListParams::default().labels(&self.selector(&deployment, operation)?))
            .await
            .map_err(self.err(operation))?;
        let mut owned: Vec<ReplicaSet> = list
            .items
            .into_iter()
            .filter(|rs| owned_by(&rs.metadata, &uid))
            .collect();
        owned.sort_by_key(|rs| revision_of(rs).unwrap_or(RevisionId(0)));
        Ok(Read { deployment, owned })
    }
}
