//! [`ActorLock`]: one actor per deployment.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Who may write to one deployment right now: one guard, one emergency command, one replica of
/// a guard service. Taken before any write, renewed while writing, on top of conditional writes
/// (a Kubernetes Lease; a row in a table elsewhere).
///
/// A lock that is not renewed within its time to live expires, so a holder that crashed never
/// blocks the others for longer than that.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ActorLock: fmt::Debug + Send + Sync + 'static {
    /// What this lock is bound to, for messages.
    fn target(&self) -> String;

    /// Takes the lock for `holder` for `ttl` when it is free or expired, renews it when
    /// `holder` has it, and says who holds it after the call. Conditional on what it read: two
    /// callers racing for a free lock cannot both get it.
    async fn acquire(&self, holder: &str, ttl: Duration) -> Result<LockState>;

    /// Gives the lock up if `holder` has it (a no-op otherwise).
    async fn release(&self, holder: &str) -> Result<()>;
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LockState {
    /// The caller holds it.
    Held,
    /// Someone else does, for at most this long unless they renew it.
    HeldBy {
        /// Who.
        holder: String,
        /// Time left before it expires without a renewal.
        #[serde(with = "secs")]
        expires_in: Duration,
    },
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(d)?;
        Duration::try_from_secs_f64(seconds).map_err(serde::de::Error::custom)
    }
}

macro_rules! forward_lock {
    ($wrapper:ident) => {
        #[async_trait]
        impl<T: ActorLock + ?Sized> ActorLock for $wrapper<T> {
            fn target(&self) -> String {
                (**self).target()
            }
            async fn acquire(&self, holder: &str, ttl: Duration) -> Result<LockState> {
                (**self).acquire(holder, ttl).await
            }
            async fn release(&self, holder: &str) -> Result<()> {
                (**self).release(holder).await
            }
        }
    };
}

forward_lock!(Arc);
forward_lock!(Box);
