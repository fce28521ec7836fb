//! [`LeaseLock`]: one actor per deployment, as a `coordination.k8s.io/v1` Lease.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use deployguard_core::{ActorLock, Error, ErrorKind, LockState, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::Api;
use tokio::time::Instant;

use crate::error::from_kube;
use crate::names::{check_label, check_subdomain};

/// An [`ActorLock`] over the Lease `deployguard-<deployment>` in the deployment's namespace,
/// the way client-go's leader election uses Leases: `holderIdentity`, `leaseDurationSeconds`,
/// `renewTime`, `leaseTransitions`; every take-over and renewal is a write conditional on the
/// resourceVersion read (fencing), so two actors racing for a free Lease cannot both win.
///
/// Expiry is judged as client-go judges it, on this process's own monotonic clock: a Lease
/// whose record has not changed for its duration since this process first saw it is expired,
/// whatever the clocks of other machines say.
#[derive(Debug)]
pub struct LeaseLock {
    namespace: String,
    name: String,
    leases: Api<Lease>,
    /// The resourceVersion last seen and when this process first saw it (expiry's clock).
    observed: Mutex<Option<(String, Instant)>>,
    /// The Lease as this process last wrote it: renewing and releasing start from it (their
    /// writes are conditional on its resourceVersion) instead of reading it again.
    written: Mutex<Option<Lease>>,
    invalid: Option<Error>,
}

impl LeaseLock {
    /// The lock of deployment `namespace/deployment`.
    pub fn new(client: kube::Client, namespace: &str, deployment: &str) -> Self {
        let name = format!("deployguard-{deployment}");
        Self {
            invalid: check_label("namespace", namespace)
                .and_then(|()| check_subdomain("deployment", deployment))
                .err(),
            namespace: namespace.into(),
            leases: Api::namespaced(client, namespace),
            name,
            observed: Mutex::new(None),
            written: Mutex::new(None),
        }
    }

    fn object(&self) -> String {
        format!("lease {}/{}", self.namespace, self.name)
    }

    fn lease(&self, holder: &str, ttl: Duration, transitions: i32, acquired: bool) -> Lease {
        let now = MicroTime(jiff_now());
        Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_owned()),
                lease_duration_seconds: Some(
                    i32::try_from(ttl.as_secs().max(1)).unwrap_or(i32::MAX),
                ),
                acquire_time: acquired.then(|| now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(transitions),
                ..LeaseSpec::default()
            }),
        }
    }

    /// How long `lease` has left, on this process's clock.
    fn remaining(&self, lease: &Lease) -> Duration {
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let duration = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .map_or(Duration::ZERO, |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or(0))
            });
        let mut observed = self.observed.lock().unwrap_or_else(PoisonError::into_inner);
        let since = match observed.as_ref() {
            Some((seen, at)) if *seen == version => *at,
            _ => {
                let now = Instant::now();
                *observed = Some((version, now));
                now
            }
        };
        duration.saturating_sub(since.elapsed())
    }
}

fn jiff_now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

#[async_trait]
impl ActorLock for LeaseLock {
    fn target(&self) -> String {
        self.object()
    }

    async fn acquire(&self, holder: &str, ttl: Duration) -> Result<LockState> {
        if let Some(err) = &self.invalid {
            return Err(err.clone());
        }
        let existing = self.known_or_read(holder, "acquire").await?;
        let Some(existing) = existing else {
            return match self
                .leases
                .create(
                    &crate::writes::post_params(),
                    &self.lease(holder, ttl, 0, true),
                )
                .await
            {
                Ok(created) => {
                    self.wrote(Some(created));
                    Ok(LockState::Held)
                }
                // Someone created it between our read and our write (they won), or the create
                // conflicted with nothing there (a retry finds out): what is there now decides.
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    self.holder_now(holder).await
                }
                Err(err) => Err(from_kube(err, "acquire", &self.object())),
            };
        };
        let spec = existing.spec.clone().unwrap_or_default();
        let current = spec.holder_identity.clone().unwrap_or_default();
        let remaining = self.remaining(&existing);
        let mine = current == holder;
        if !mine && !current.is_empty() && !remaining.is_zero() {
            return Ok(LockState::HeldBy {
                holder: current,
                expires_in: remaining,
            });
        }
        // Free, expired or ours: take or renew it, conditional on the resourceVersion read.
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let mut next = self.lease(holder, ttl, transitions, !mine);
        if mine && let Some(spec) = next.spec.as_mut() {
            spec.acquire_time = existing.spec.as_ref().and_then(|s| s.acquire_time.clone());
        }
        next.metadata.resource_version = existing.metadata.resource_version.clone();
        match self
            .leases
            .replace(&self.name, &crate::writes::post_params(), &next)
            .await
        {
            Ok(written) => {
                self.wrote(Some(written));
                Ok(LockState::Held)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                self.wrote(None);
                self.holder_now(holder).await
            }
            Err(err) => {
                self.wrote(None);
                Err(from_kube(err, "acquire", &self.object()))
            }
        }
    }

    async fn release(&self, holder: &str) -> Result<()> {
        if let Some(err) = &self.invalid {
            return Err(err.clone());
        }
        let existing = self.known_or_read(holder, "release").await?;
        let Some(existing) = existing else {
            return Ok(());
        };
        self.wrote(None);
        let spec = existing.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(holder) {
            return Ok(());
        }
        // Released as client-go releases: no holder, and a duration that makes it free at once.
        let mut next = existing.clone();
        if let Some(spec) = next.spec.as_mut() {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(jiff_now()));
        }
        match self
            .leases
            .replace(&self.name, &crate::writes::post_params(), &next)
            .await
        {
            Ok(_) => Ok(()),
            // Someone took it over meanwhile: it is not ours to release any more.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(err) => Err(from_kube(err, "release", &self.object())),
        }
    }
}

impl LeaseLock {
    /// The Lease as this process last wrote it for `holder`, if it did.
    fn written_by(&self, holder: &str) -> Option<Lease> {
        self.written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .filter(|lease| {
                lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.holder_identity.as_deref())
                    == Some(holder)
            })
    }

    /// The Lease as this process last wrote it for `holder`, else as it is now (`None`: there is
    /// none).
    async fn known_or_read(&self, holder: &str, operation: &'static str) -> Result<Option<Lease>> {
        if let Some(mine) = self.written_by(holder) {
            return Ok(Some(mine));
        }
        self.leases
            .get_opt(&self.name)
            .await
            .map_err(|e| from_kube(e, operation, &self.object()))
    }

    fn wrote(&self, lease: Option<Lease>) {
        *self.written.lock().unwrap_or_else(PoisonError::into_inner) = lease;
    }

    /// Who holds the Lease after a write of ours conflicted. A Lease that is not there (a create
    /// that conflicted with nothing), has no holder, or names us (the conflict was with an older
    /// record of our own) is a retryable conflict: the next attempt reads it afresh.
    async fn holder_now(&self, holder: &str) -> Result<LockState> {
        let retry = |why: &str| {
            Err(Error::new(ErrorKind::Conflict, why.to_owned())
                .with_operation("acquire")
                .with_object(self.object())
                .with_retryable(true))
        };
        let lease = match self.leases.get_opt(&self.name).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return retry("a create of the lease conflicted, and there is none"),
            Err(err) => return Err(from_kube(err, "acquire", &self.object())),
        };
        let current = lease.spec.as_ref().and_then(|s| s.holder_identity.clone());
        match current {
            Some(other) if other != holder => Ok(LockState::HeldBy {
                expires_in: self.remaining(&lease),
                holder: other,
            }),
            _ => retry("the lease changed while taking it"),
        }
    }
}
