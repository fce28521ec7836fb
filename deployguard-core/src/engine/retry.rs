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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (after `attempt` failures, counting from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .first
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let ceiling = doubled.min(self.max);
        // Between half the ceiling and all of it.
        let fraction = 0.5 + 0.5 * unit_random();
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
            tracing::debug!(target: "deployguard", "attempt {attempt} failed ({error}); again in {wait:?}");
            tokio::time::sleep(wait).await;
        }
    }
}

/// A number in [0, 1) from a process-wide seeded sequence: jitter needs spread, not secrecy,
/// and a fixed sequence keeps paused-clock tests reproducible.
fn unit_random() -> f64 {
    static JITTER: Mutex<Option<fastrand::Rng>> = Mutex::new(None);
    JITTER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(|| fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15))
        .f64()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::ErrorKind;

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
