//! The migration gate: never run code against a schema it cannot use.

use serde::{Deserialize, Serialize};

use crate::model::{MigrationState, MigrationStatus, Revision};

/// What the gate does when a rollback is unsafe for the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MigrationPolicy {
    /// Do not roll back: freeze the rollout, keep traffic where it is, report.
    #[default]
    Block,
    /// Roll back, and say why it may be unsafe.
    Warn,
    /// Do not look.
    Ignore,
}

/// What the gate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "gate", content = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GateVerdict {
    /// Safe, as far as can be known.
    Pass,
    /// Unsafe, and the policy says go on anyway.
    Warn(String),
    /// Unsafe; do not roll back.
    Block(String),
}

/// Whether `target` may run against the schema in `state`.
///
/// Unsafe: a migration running, failed or dirty; the target needs a newer schema than the
/// database has; or a migration applied after the target's schema is not known to be backward
/// compatible. A target that declares no schema need passes unless a migration is unfinished.
pub fn migration_gate(
    target: &Revision,
    state: &MigrationState,
    policy: MigrationPolicy,
) -> GateVerdict {
    if policy == MigrationPolicy::Ignore {
        return GateVerdict::Pass;
    }
    let problem = match &state.status {
        MigrationStatus::InProgress { what } => Some(format!("migration {what} is in progress")),
        MigrationStatus::Failed { reason } => Some(format!("the last migration failed: {reason}")),
        MigrationStatus::Dirty { version } => Some(format!("the schema is dirty at version {version}")),
        _ => None,
    }
    .or_else(|| {
        let needs = target.requires_schema?;
        match state.current {
            Some(current) if needs > current => Some(format!(
                "revision {} needs schema {needs}, the database is at {current}",
                target.id
            )),
            _ => {
                let incompatible: Vec<String> = state
                    .applied_after(needs)
                    .filter(|m| m.backward_compatible != Some(true))
                    .map(|m| format!("{} ({})", m.version, m.name))
                    .collect();
                (!incompatible.is_empty()).then(|| {
                    format!(
                        "revision {} needs schema {needs}; migrations applied since are not known to be backward compatible: {}",
                        target.id,
                        incompatible.join(", ")
                    )
                })
            }
        }
    });
    match (problem, policy) {
        (None, _) => GateVerdict::Pass,
        (Some(why), MigrationPolicy::Warn) => GateVerdict::Warn(why),
        (Some(why), _) => GateVerdict::Block(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppliedMigration, Fingerprint, RevisionId, SchemaVersion};

    fn target(needs: Option<u64>) -> Revision {
        Revision::new(RevisionId(2), Fingerprint::new("b"), vec![])
            .with_requires_schema(needs.map(SchemaVersion))
    }

    fn schema(compatible: Option<bool>) -> MigrationState {
        let mut third = AppliedMigration::new(SchemaVersion(3), "drop_legacy_column");
        third.backward_compatible = compatible;
        MigrationState::idle(
            Some(SchemaVersion(3)),
            vec![
                AppliedMigration::new(SchemaVersion(2), "add_currency")
                    .with_backward_compatible(true),
                third,
            ],
        )
    }

    #[test]
    fn gate_verdicts() {
        use GateVerdict::*;
        let block = MigrationPolicy::Block;
        assert_eq!(
            migration_gate(&target(Some(2)), &schema(Some(true)), block),
            Pass
        );
        assert_eq!(
            migration_gate(&target(None), &schema(Some(false)), block),
            Pass
        );
        assert_eq!(
            migration_gate(&target(Some(2)), &schema(Some(false)), block),
            Block("revision 2 needs schema 2; migrations applied since are not known to be backward compatible: 3 (drop_legacy_column)".into())
        );
        assert!(matches!(
            migration_gate(&target(Some(2)), &schema(None), block),
            Block(_)
        ));
        assert!(matches!(
            migration_gate(&target(Some(2)), &schema(None), MigrationPolicy::Warn),
            Warn(_)
        ));
        assert_eq!(
            migration_gate(&target(Some(2)), &schema(None), MigrationPolicy::Ignore),
            Pass
        );
        assert_eq!(
            migration_gate(&target(Some(4)), &schema(Some(true)), block),
            Block("revision 2 needs schema 4, the database is at 3".into())
        );
        for status in [
            MigrationStatus::InProgress {
                what: "job/migrate-42".into(),
            },
            MigrationStatus::Failed {
                reason: "duplicate column".into(),
            },
            MigrationStatus::Dirty {
                version: SchemaVersion(3),
            },
        ] {
            let state = schema(Some(true)).with_status(status);
            assert!(matches!(
                migration_gate(&target(None), &state, block),
                Block(_)
            ));
        }
    }
}
