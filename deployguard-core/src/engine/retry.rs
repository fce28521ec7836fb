//! The one retry policy: what the engine does when a read or write fails in a way that trying
//! again can help (a 429, a 5xx, a reset, a timeout — [`Error::is_retryable`]).
//!
//! Every read and write of a guard (its start-up, its loop, its recovery) and of the emergency
//! command goes through it: jittered exponential backoff, never past the caller's deadline.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// Backoff between attempts: doubling from `first` up to `max`, each wait drawn between half of
/// it and all of it (jitter, so that racing clients do not retry in step).
///
/// The jitter is drawn from a seed of the process's own (two replicas of a program do not
/// retry in step), or from [`jitter_seed`](Self::jitter_seed) where a test wants the same waits
/// every run.
///
/// ```
/// use std::time::Duration;
/// use deployguard_core::engine::RetryPolicy;
///
/// let policy = RetryPolicy::new(Duration::from_millis(200), Duration::from_secs(5)).jitter_seed(7);
/// let wait = policy.backoff(3); // 800 ms, jittered down to between 400 and 800 ms
/// assert!(wait >= Duration::from_millis(400) && wait <= Duration::from_millis(800));
/// assert_eq!(wait, policy.backoff(3), "the same seed draws the same waits");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
    /// The seed the jitter is drawn from (`None`: the process's own).
    pub seed: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

impl RetryPolicy {
    /// Waits doubling from `first` up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max: max.max(first),
            seed: None,
        }
    }

    /// Draws the jitter from `seed`: the same waits every run.
    #[must_use]
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The wait before attempt `attempt + 1` (after `attempt` failures, counting from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .first
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let ceiling = doubled.min(self.max);
        // Between half the ceiling and all of it.
        let fraction = 0.5 + 0.5 * unit_random(self.seed, attempt);
        ceiling.mul_f64(fraction)
    }

    /// Runs `operation` until it succeeds, fails in a way retrying cannot help, or the next
    /// wait would end past `deadline`; the last error is returned then.
    pub async fn run<T, F, Fut>(&self, deadline: Instant, mut operation: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error: Error = match tokio::time::timeout_at(deadline, operation()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => error,
                Err(_) => {
                    return Err(Error::new(
                        crate::ErrorKind::Timeout,
                        "the deadline passed while waiting for an answer",
                    ));
                }
            };
            let wait = self.backoff(attempt);
            if !error.is_retryable() || Instant::now() + wait >= deadline {
                return Err(error);
            }
            tracing::debug!(
                target: "deployguard",
                attempt,
                error = %error,
                wait_ms = wait.as_millis() as u64,
                "retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// A number in [0, 1): from `seed` and `attempt` when seeded, else from the process's own
/// sequence, seeded once per process from the standard library's per-process random keys
/// (jitter needs spread between processes, not secrecy).
fn unit_random(seed: Option<u64>, attempt: u32) -> f64 {
    let bits = match seed {
        Some(seed) => splitmix64(seed ^ splitmix64(u64::from(attempt))),
        None => {
            static JITTER: Mutex<Option<fastrand::Rng>> = Mutex::new(None);
            JITTER
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(|| fastrand::Rng::with_seed(process_seed()))
                .u64(..)
        }
    };
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

fn process_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::ErrorKind;

    #[test]
    fn seeded_jitter_repeats_and_different_seeds_spread() {
        let ms = Duration::from_millis;
        let waits = |policy: RetryPolicy| (1..8).map(|a| policy.backoff(a)).collect::<Vec<_>>();
        let one = RetryPolicy::new(ms(100), ms(10_000)).jitter_seed(1);
        let two = RetryPolicy::new(ms(100), ms(10_000)).jitter_seed(2);
        assert_eq!(
            waits(one),
            waits(one),
            "a seed draws the same waits every time"
        );
        assert_ne!(
            waits(one),
            waits(two),
            "two replicas with their own seeds do not retry in step"
        );
        // Unseeded, the process's sequence: two draws of the same attempt differ.
        let unseeded = RetryPolicy::default();
        assert_ne!(waits(unseeded), waits(unseeded));
        assert_ne!(process_seed(), process_seed());
    }

    #[test]
    fn backoff_doubles_within_its_jitter_and_stops_at_max() {
        let policy = RetryPolicy::default();
        for attempt in 1..20 {
            let ceiling = (Duration::from_millis(500) * 2u32.pow((attempt - 1).min(16)))
                .min(Duration::from_secs(30));
            let wait = policy.backoff(attempt);
            assert!(
                wait <= ceiling && wait >= ceiling / 2,
                "{attempt}: {wait:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_until_the_deadline_and_others_are_not() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy::default();
        let deadline = Instant::now() + Duration::from_secs(60);
        let value = policy
            .run(deadline, || async {
                if calls.fetch_add(1, Ordering::Relaxed) < 3 {
                    Err(Error::new(ErrorKind::Unavailable, "503"))
                } else {
                    Ok(7)
                }
            })
            .await
            .unwrap();
        assert_eq!((value, calls.load(Ordering::Relaxed)), (7, 4));

        let calls = AtomicU32::new(0);
        let err = policy
            .run(deadline, || async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err::<(), _>(Error::not_found("x"))
            })
            .await
            .unwrap_err();
        assert_eq!(
            (err.kind(), calls.load(Ordering::Relaxed)),
            (ErrorKind::NotFound, 1)
        );

        let started = Instant::now();
        let err = policy
            .run(started + Duration::from_secs(10), || async {
                Err::<(), _>(Error::new(ErrorKind::Unavailable, "503"))
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(started.elapsed() < Duration::from_secs(10));

        // A call that never answers ends at the deadline.
        let err = policy
            .run(Instant::now() + Duration::from_secs(5), || {
                std::future::pending::<Result<()>>()
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
    }
}
