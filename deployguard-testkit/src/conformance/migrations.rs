//! The [`MigrationInspector`] suite.

use deployguard_core::{MigrationInspector, MigrationStatus};

use super::{CheckResult, call, ensure};

/// Runs every migration-inspector check.
pub async fn migrations_suite(inspector: &dyn MigrationInspector) -> CheckResult {
    inspection_is_consistent(inspector).await
}

/// Applied migrations are in version order, and an idle schema is at the newest applied
/// version.
pub async fn inspection_is_consistent(inspector: &dyn MigrationInspector) -> CheckResult {
    const CHECK: &str = "inspection_is_consistent";
    let state = call(CHECK, "inspect", inspector.inspect().await)?;
    let versions: Vec<u64> = state.applied.iter().map(|m| m.version.0).collect();
    ensure(CHECK, versions.windows(2).all(|w| w[0] < w[1]), || {
        format!("applied migrations are not in increasing version order: {versions:?}")
    })?;
    if state.status == MigrationStatus::Idle
        && let Some(newest) = state.applied.last()
    {
        ensure(CHECK, state.current == Some(newest.version), || {
            format!(
                "idle schema reports version {:?}, newest applied is {}",
                state.current, newest.version
            )
        })?;
    }
    Ok(())
}
