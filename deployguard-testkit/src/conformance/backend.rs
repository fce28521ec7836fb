//! The [`DeploymentBackend`] suite.

use deployguard_core::{
    DeploymentBackend, ErrorKind, Revision, RevisionId, RollbackOptions, RollbackOutcome,
};

use super::{CheckResult, ConformanceFailure, call, ensure};

/// Runs every backend check in order.
///
/// The backend must be bound to a deployment with at least two revisions that run different
/// things, the newest one current. The suite rolls it back to the second newest.
pub async fn backend_suite(backend: &dyn DeploymentBackend) -> CheckResult {
    history_is_ordered(backend).await?;
    rollback_to_missing_revision_is_not_found(backend).await?;
    conditional_rollback_refuses_stale_expectation(backend).await?;
    observe_after_rollback_shows_target(backend).await?;
    rollback_is_idempotent(backend).await?;
    mark_verified_is_visible_in_history(backend).await?;
    markers_round_trip(backend).await?;
    marker_keys_outside_the_prefix_are_refused(backend).await
}

/// What the suite compares before and after a call that must write nothing.
async fn visible_state(
    check: &'static str,
    backend: &dyn DeploymentBackend,
) -> Result<(Vec<Revision>, Option<RevisionId>, bool, u32), ConformanceFailure> {
    let history = call(check, "history", backend.history().await)?;
    let snapshot = call(check, "observe", backend.observe().await)?;
    Ok((
        history,
        snapshot.current_revision,
        snapshot.paused,
        snapshot.desired,
    ))
}

/// The second newest revision that runs something other than the current one.
async fn rollback_candidate(
    check: &'static str,
    backend: &dyn DeploymentBackend,
) -> Result<Revision, ConformanceFailure> {
    let snapshot = call(check, "observe", backend.observe().await)?;
    let history = call(check, "history", backend.history().await)?;
    history
        .into_iter()
        .rev()
        .find(|r| Some(&r.fingerprint) != snapshot.current_fingerprint.as_ref())
        .ok_or_else(|| ConformanceFailure {
            check,
            message: "the suite needs a deployment with two revisions that run different things"
                .into(),
        })
}

/// History is ordered by number, numbers are unique, and the current revision is in it.
pub async fn history_is_ordered(backend: &dyn DeploymentBackend) -> CheckResult {
    const CHECK: &str = "history_is_ordered";
    let history = call(CHECK, "history", backend.history().await)?;
    let ids: Vec<RevisionId> = history.iter().map(|r| r.id).collect();
    ensure(CHECK, ids.windows(2).all(|w| w[0] < w[1]), || {
        format!("revision numbers are not strictly increasing: {ids:?}")
    })?;
    let snapshot = call(CHECK, "observe", backend.observe().await)?;
    let current = snapshot.current_fingerprint.clone();
    ensure(
        CHECK,
        history
            .iter()
            .any(|r| Some(&r.fingerprint) == current.as_ref()),
        || format!("the current fingerprint {current:?} is not in the history"),
    )?;
    ensure(CHECK, history.len() >= 2, || {
        format!(
            "the suite needs two revisions, the history has {}",
            history.len()
        )
    })
}

/// Rolling back to a revision that does not exist is NotFound, and nothing changes.
pub async fn rollback_to_missing_revision_is_not_found(
    backend: &dyn DeploymentBackend,
) -> CheckResult {
    const CHECK: &str = "rollback_to_missing_revision_is_not_found";
    let before = visible_state(CHECK, backend).await?;
    let missing = RevisionId(before.0.iter().map(|r| r.id.0).max().unwrap_or(0) + 1000);
    let result = backend
        .rollback_to(missing, RollbackOptions::default())
        .await;
    ensure(
        CHECK,
        matches!(&result, Err(e) if e.kind() == ErrorKind::NotFound),
        || format!("rollback to missing revision {missing} returned {result:?}, expected NotFound"),
    )?;
    let after = visible_state(CHECK, backend).await?;
    ensure(CHECK, before == after, || {
        format!("a refused rollback changed the deployment: before {before:?}, after {after:?}")
    })
}

/// A rollback that expects a revision other than the current one is a Conflict, and nothing
/// changes.
pub async fn conditional_rollback_refuses_stale_expectation(
    backend: &dyn DeploymentBackend,
) -> CheckResult {
    const CHECK: &str = "conditional_rollback_refuses_stale_expectation";
    let target = rollback_candidate(CHECK, backend).await?;
    let before = visible_state(CHECK, backend).await?;
    let stale = RevisionId(before.1.map_or(0, |id| id.0) + 500);
    let options = RollbackOptions::default().with_expected_current(stale);
    let result = backend.rollback_to(target.id, options).await;
    ensure(
        CHECK,
        matches!(&result, Err(e) if e.kind() == ErrorKind::Conflict),
        || {
            format!(
                "rollback expecting stale current {stale} returned {result:?}, expected Conflict"
            )
        },
    )?;
    let after = visible_state(CHECK, backend).await?;
    ensure(CHECK, before == after, || {
        format!("a conflicting rollback changed the deployment: before {before:?}, after {after:?}")
    })
}

/// After rolling back to R, the deployment runs what R ran, and R is still found by its old
/// number.
pub async fn observe_after_rollback_shows_target(backend: &dyn DeploymentBackend) -> CheckResult {
    const CHECK: &str = "observe_after_rollback_shows_target";
    let target = rollback_candidate(CHECK, backend).await?;
    let current = call(CHECK, "observe", backend.observe().await)?.current_revision;
    let options = RollbackOptions::default().with_resume_if_paused(true);
    let outcome = call(
        CHECK,
        "rollback_to",
        backend.rollback_to(target.id, options).await,
    )?;
    ensure(
        CHECK,
        outcome
            == RollbackOutcome::RolledBack {
                from: current,
                to: target.id,
            },
        || format!("rollback to {} returned {outcome:?}", target.id),
    )?;
    let snapshot = call(CHECK, "observe", backend.observe().await)?;
    ensure(
        CHECK,
        snapshot.current_fingerprint.as_ref() == Some(&target.fingerprint),
        || {
            format!(
                "after rollback to {} the deployment runs {:?}, expected {}",
                target.id, snapshot.current_fingerprint, target.fingerprint
            )
        },
    )?;
    let history = call(CHECK, "history", backend.history().await)?;
    ensure(
        CHECK,
        history
            .iter()
            .any(|r| r.answers_to(target.id) && r.fingerprint == target.fingerprint),
        || {
            format!(
                "after rollback no revision answers to {} with its fingerprint",
                target.id
            )
        },
    )
}

/// Rolling back twice to the same revision changes nothing the second time.
pub async fn rollback_is_idempotent(backend: &dyn DeploymentBackend) -> CheckResult {
    const CHECK: &str = "rollback_is_idempotent";
    let snapshot = call(CHECK, "observe", backend.observe().await)?;
    let history = call(CHECK, "history", backend.history().await)?;
    let Some(current) = history
        .iter()
        .find(|r| Some(&r.fingerprint) == snapshot.current_fingerprint.as_ref())
    else {
        return ensure(CHECK, false, || {
            "the current revision is not in the history".into()
        });
    };
    // Ask by the oldest number the current revision answers to: after a rollback that is the
    // number the caller asked for before the platform renumbered it.
    let asked = current.previous_ids.first().copied().unwrap_or(current.id);
    let before = visible_state(CHECK, backend).await?;
    let outcome = call(
        CHECK,
        "rollback_to",
        backend.rollback_to(asked, RollbackOptions::default()).await,
    )?;
    ensure(
        CHECK,
        outcome == RollbackOutcome::AlreadyCurrent { revision: asked },
        || format!("a second rollback to {asked} returned {outcome:?}, expected AlreadyCurrent"),
    )?;
    let after = visible_state(CHECK, backend).await?;
    ensure(CHECK, before == after, || {
        format!("a second rollback changed the deployment: before {before:?}, after {after:?}")
    })
}

/// A revision marked verified shows as verified in the history.
pub async fn mark_verified_is_visible_in_history(backend: &dyn DeploymentBackend) -> CheckResult {
    const CHECK: &str = "mark_verified_is_visible_in_history";
    let history = call(CHECK, "history", backend.history().await)?;
    let Some(oldest) = history.first() else {
        return ensure(CHECK, false, || "the history is empty".into());
    };
    call(
        CHECK,
        "mark_verified",
        backend.mark_verified(oldest.id).await,
    )?;
    let history = call(CHECK, "history", backend.history().await)?;
    ensure(
        CHECK,
        history
            .iter()
            .any(|r| r.fingerprint == oldest.fingerprint && r.verified),
        || format!("revision {} is not verified after mark_verified", oldest.id),
    )?;
    let missing = RevisionId(history.iter().map(|r| r.id.0).max().unwrap_or(0) + 1000);
    let result = backend.mark_verified(missing).await;
    ensure(
        CHECK,
        matches!(&result, Err(e) if e.kind() == ErrorKind::NotFound),
        || format!("mark_verified({missing}) returned {result:?}, expected NotFound"),
    )
}

/// A marker that is set can be read back, and removing it removes it.
pub async fn markers_round_trip(backend: &dyn DeploymentBackend) -> CheckResult {
    const CHECK: &str = "markers_round_trip";
    let key = "deployguard.io/conformance";
    call(
        CHECK,
        "set_marker",
        backend.set_marker(key, Some("1".into())).await,
    )?;
    let markers = call(CHECK, "markers", backend.markers().await)?;
    ensure(
        CHECK,
        markers.get(key).map(String::as_str) == Some("1"),
        || {
            format!(
                "marker {key} reads {:?} after setting it to \"1\"",
                markers.get(key)
            )
        },
    )?;
    call(CHECK, "set_marker", backend.set_marker(key, None).await)?;
    let markers = call(CHECK, "markers", backend.markers().await)?;
    ensure(CHECK, !markers.contains_key(key), || {
        format!("marker {key} is still there after removing it")
    })
}

/// A marker key outside [`MARKER_PREFIX`](deployguard_core::MARKER_PREFIX) (or naming nothing
/// after it) is `InvalidInput`, and nothing is written: every backend keeps the same rule, so a
/// guard moved from one backend to another finds its markers.
pub async fn marker_keys_outside_the_prefix_are_refused(
    backend: &dyn DeploymentBackend,
) -> CheckResult {
    const CHECK: &str = "marker_keys_outside_the_prefix_are_refused";
    for key in [
        "rollout",
        "deployguard.io/",
        "example.com/rollout",
        "deployguard.io/a b",
    ] {
        let result = backend.set_marker(key, Some("1".into())).await;
        ensure(
            CHECK,
            matches!(&result, Err(e) if e.kind() == ErrorKind::InvalidInput),
            || format!("set_marker({key:?}) returned {result:?}, expected InvalidInput"),
        )?;
        let markers = call(CHECK, "markers", backend.markers().await)?;
        ensure(CHECK, !markers.contains_key(key), || {
            format!("the refused marker {key:?} was written")
        })?;
    }
    Ok(())
}
