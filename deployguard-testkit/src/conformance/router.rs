//! The [`TrafficRouter`] suite.

use deployguard_core::{
    ErrorKind, RouterCapabilities, RoutingMode, TrafficRouter, TrafficSplit, Verification,
};

use super::{CheckResult, ConformanceFailure, call, ensure};

/// Runs every router check in order. The router must route at least two backends; the suite
/// leaves all traffic on the first.
pub async fn router_suite(router: &dyn TrafficRouter) -> CheckResult {
    router_apply_current_verify_round_trip(router).await?;
    router_refuses_inexpressible_split(router).await?;
    router_verify_reports_difference(router).await?;
    router_apply_is_conditional_on_the_version_read(router).await
}

fn backends(
    check: &'static str,
    caps: &RouterCapabilities,
) -> Result<(String, String), ConformanceFailure> {
    match caps.backends.as_slice() {
        [first, second, ..] => Ok((first.clone(), second.clone())),
        other => Err(ConformanceFailure {
            check,
            message: format!("the suite needs a router over two backends, it routes {other:?}"),
        }),
    }
}

fn split(
    check: &'static str,
    result: deployguard_core::Result<TrafficSplit>,
) -> Result<TrafficSplit, ConformanceFailure> {
    call(check, "building a split", result)
}

/// A split the router can express that differs from "all to the first backend".
fn expressible(
    check: &'static str,
    caps: &RouterCapabilities,
    first: &str,
    second: &str,
) -> Result<TrafficSplit, ConformanceFailure> {
    let others: Vec<&str> = caps
        .backends
        .iter()
        .map(String::as_str)
        .filter(|b| *b != first && *b != second)
        .collect();
    let mut weights: Vec<(&str, u8)> = others.iter().map(|b| (*b, 0)).collect();
    match caps.mode {
        RoutingMode::AllOrNothing => weights.extend([(first, 0), (second, 100)]),
        _ => {
            let granularity = caps.granularity.max(1);
            let canary = (20 / granularity).max(1) * granularity;
            weights.extend([(first, 100 - canary), (second, canary)]);
        }
    }
    split(check, TrafficSplit::new(weights))
}

fn all_to_first(
    check: &'static str,
    caps: &RouterCapabilities,
    first: &str,
) -> Result<TrafficSplit, ConformanceFailure> {
    let others: Vec<&str> = caps
        .backends
        .iter()
        .map(String::as_str)
        .filter(|b| *b != first)
        .collect();
    split(check, TrafficSplit::all_to(first, &others))
}

/// What is applied is what `current` reads and what `verify` confirms.
pub async fn router_apply_current_verify_round_trip(router: &dyn TrafficRouter) -> CheckResult {
    const CHECK: &str = "router_apply_current_verify_round_trip";
    let caps = router.capabilities();
    let (first, second) = backends(CHECK, &caps)?;
    let mut version = call(CHECK, "current", router.current().await)?.version;
    for wanted in [
        expressible(CHECK, &caps, &first, &second)?,
        all_to_first(CHECK, &caps, &first)?,
    ] {
        let written = call(CHECK, "apply", router.apply(&wanted, &version).await)?;
        let current = call(CHECK, "current", router.current().await)?;
        ensure(CHECK, current.split == wanted, || {
            format!("applied {wanted}, current reads {}", current.split)
        })?;
        ensure(CHECK, current.version == written, || {
            format!(
                "apply returned version {written}, current reads version {}",
                current.version
            )
        })?;
        version = written;
        let verdict = call(CHECK, "verify", router.verify(&wanted).await)?;
        ensure(
            CHECK,
            matches!(verdict, Verification::Matches | Verification::Unknown(_)),
            || format!("applied {wanted}, verify says {verdict:?}"),
        )?;
    }
    Ok(())
}

/// Splits the capabilities cannot express are refused and nothing changes.
pub async fn router_refuses_inexpressible_split(router: &dyn TrafficRouter) -> CheckResult {
    const CHECK: &str = "router_refuses_inexpressible_split";
    let caps = router.capabilities();
    let (first, second) = backends(CHECK, &caps)?;
    let before = call(CHECK, "current", router.current().await)?;
    let mut refused = vec![(
        split(
            CHECK,
            TrafficSplit::new([(first.as_str(), 50), ("no-such-backend-in-this-router", 50)]),
        )?,
        ErrorKind::InvalidInput,
    )];
    match caps.mode {
        RoutingMode::AllOrNothing => refused.push((
            split(CHECK, TrafficSplit::two_way(&first, &second, 50))?,
            ErrorKind::Unsupported,
        )),
        _ if caps.granularity > 1 => refused.push((
            split(
                CHECK,
                TrafficSplit::two_way(&first, &second, caps.granularity + 1),
            )?,
            ErrorKind::Unsupported,
        )),
        _ => {}
    }
    for (bad, kind) in refused {
        let result = router.apply(&bad, &before.version).await;
        ensure(CHECK, matches!(&result, Err(e) if e.kind() == kind), || {
            format!("apply({bad}) returned {result:?}, expected {kind}")
        })?;
        let after = call(CHECK, "current", router.current().await)?;
        ensure(CHECK, after == before, || {
            format!(
                "a refused apply({bad}) changed the route from {} to {}",
                before.split, after.split
            )
        })?;
    }
    Ok(())
}

/// Verifying a split other than the configured one does not report a match.
pub async fn router_verify_reports_difference(router: &dyn TrafficRouter) -> CheckResult {
    const CHECK: &str = "router_verify_reports_difference";
    let caps = router.capabilities();
    let (first, second) = backends(CHECK, &caps)?;
    let configured = all_to_first(CHECK, &caps, &first)?;
    let read = call(CHECK, "current", router.current().await)?;
    call(
        CHECK,
        "apply",
        router.apply(&configured, &read.version).await,
    )?;
    let other = expressible(CHECK, &caps, &first, &second)?;
    let verdict = call(CHECK, "verify", router.verify(&other).await)?;
    ensure(CHECK, !matches!(verdict, Verification::Matches), || {
        format!("{configured} is configured, yet verify({other}) says it matches")
    })
}

/// A write with a version read before the route last changed is a `Conflict`, and writes
/// nothing: the route is changed (by the router itself, as another writer would), then the
/// stale version is used.
pub async fn router_apply_is_conditional_on_the_version_read(
    router: &dyn TrafficRouter,
) -> CheckResult {
    const CHECK: &str = "router_apply_is_conditional_on_the_version_read";
    let caps = router.capabilities();
    let (first, second) = backends(CHECK, &caps)?;
    let home = all_to_first(CHECK, &caps, &first)?;
    let other = expressible(CHECK, &caps, &first, &second)?;
    let stale = call(CHECK, "current", router.current().await)?;
    let start = if stale.split == home { &other } else { &home };
    call(CHECK, "apply", router.apply(start, &stale.version).await)?;
    let moved = call(CHECK, "current", router.current().await)?;
    let back = if *start == home { &other } else { &home };
    let result = router.apply(back, &stale.version).await;
    ensure(
        CHECK,
        matches!(&result, Err(e) if e.kind() == ErrorKind::Conflict),
        || format!("apply({back}) with a stale version returned {result:?}, expected Conflict"),
    )?;
    let after = call(CHECK, "current", router.current().await)?;
    ensure(CHECK, after == moved, || {
        format!(
            "a stale apply({back}) changed the route from {} to {}",
            moved.split, after.split
        )
    })?;
    // Leave all traffic on the first backend, as the suite promises.
    call(CHECK, "apply", router.apply(&home, &after.version).await)?;
    Ok(())
}
