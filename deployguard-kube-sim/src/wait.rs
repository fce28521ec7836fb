//! Waiting on conditions in tests against outside processes (kubectl, a served cluster), where
//! time is real: poll a condition until it holds or a deadline passes. Never a fixed sleep.

use std::time::Duration;

/// How often [`until`] looks again.
const POLL: Duration = Duration::from_millis(25);

/// Waits until `ready` holds, at most `deadline` of tokio time; `Err` names `what` it waited
/// for. Under a paused clock the wait advances simulated time instead.
pub async fn until(
    what: &str,
    deadline: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if ready() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= end {
            return Err(format!("timed out after {deadline:?} waiting for {what}"));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`until`] with a deadline of 60 s that panics on timeout, for tests.
///
/// # Panics
/// When `ready` does not hold within 60 s; the message names `what`.
pub async fn eventually(what: &str, ready: impl FnMut() -> bool) {
    if let Err(message) = until(what, Duration::from_secs(60), ready).await {
        panic!("{message}");
    }
}
