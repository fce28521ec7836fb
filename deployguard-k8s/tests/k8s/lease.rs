//! The Lease lock against the simulated cluster: one holder at a time, renewals, release,
//! expiry on the taker's own clock, and a race for a free Lease that only one side wins.

use std::time::Duration;

use deployguard_core::{ActorLock, ErrorKind, LockState};
use deployguard_k8s::LeaseLock;
use deployguard_k8s::k8s_openapi::api::coordination::v1::Lease;
use deployguard_testkit::cluster::FakeCluster;

const TTL: Duration = Duration::from_secs(15);

#[tokio::test(start_paused = true)]
async fn one_holder_at_a_time_renewed_released_and_expired() {
    let cluster = FakeCluster::new();
    let a = LeaseLock::new(cluster.client(), "default", "web");
    let b = LeaseLock::new(cluster.client(), "default", "web");
    assert_eq!(a.acquire("guard-a", TTL).await.unwrap(), LockState::Held);
    let lease: Lease = cluster.object("default", "deployguard-web").unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("guard-a"));
    assert_eq!(spec.lease_duration_seconds, Some(15));
    assert_eq!(spec.lease_transitions, Some(0));

    // Someone else waits; the holder renews.
    assert!(matches!(
        b.acquire("guard-b", TTL).await.unwrap(),
        LockState::HeldBy { ref holder, .. } if holder == "guard-a"
    ));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(a.acquire("guard-a", TTL).await.unwrap(), LockState::Held);
    tokio::time::sleep(Duration::from_secs(10)).await;
    // 20 s after b first saw it, but renewed 10 s ago: still held.
    assert!(matches!(
        b.acquire("guard-b", TTL).await.unwrap(),
        LockState::HeldBy { .. }
    ));

    // Released: free at once.
    a.release("guard-a").await.unwrap();
    assert_eq!(b.acquire("guard-b", TTL).await.unwrap(), LockState::Held);
    let lease: Lease = cluster.object("default", "deployguard-web").unwrap();
    assert_eq!(lease.spec.unwrap().lease_transitions, Some(1));
    // Releasing what one does not hold does nothing.
    a.release("guard-a").await.unwrap();
    assert_eq!(b.acquire("guard-b", TTL).await.unwrap(), LockState::Held);

    // A holder that stops renewing (crashed) loses it once the duration passes.
    assert!(matches!(
        a.acquire("guard-a", TTL).await.unwrap(),
        LockState::HeldBy { .. }
    ));
    tokio::time::sleep(TTL + Duration::from_secs(1)).await;
    assert_eq!(a.acquire("guard-a", TTL).await.unwrap(), LockState::Held);
}

#[tokio::test(start_paused = true)]
async fn racing_for_a_free_lease_only_one_wins() {
    let cluster = FakeCluster::new();
    let locks: Vec<LeaseLock> = (0..5)
        .map(|_| LeaseLock::new(cluster.client(), "default", "web"))
        .collect();
    let results = futures::future::join_all(
        locks
            .iter()
            .enumerate()
            .map(|(i, lock)| async move { lock.acquire(&format!("guard-{i}"), TTL).await }),
    )
    .await;
    let winners = results
        .iter()
        .filter(|r| matches!(r, Ok(LockState::Held)))
        .count();
    assert_eq!(winners, 1, "{results:?}");
}

#[tokio::test(start_paused = true)]
async fn names_that_cannot_be_urls_are_refused() {
    let cluster = FakeCluster::new();
    let lock = LeaseLock::new(cluster.client(), "default", "web?x=1");
    let err = lock.acquire("guard", TTL).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(cluster.requests().is_empty());
}
