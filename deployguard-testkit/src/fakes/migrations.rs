//! [`FakeMigrations`]: a schema state set by the test.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deployguard_core::{MigrationInspector, MigrationState, Result};

use crate::controls::{Controls, handle_controls, lock};

/// A [`MigrationInspector`] that reports what its handle sets.
///
/// ```
/// use deployguard_core::{MigrationInspector, MigrationState, MigrationStatus, SchemaVersion};
/// use deployguard_testkit::FakeMigrations;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> deployguard_core::Result<()> {
/// let (inspector, handle) = FakeMigrations::new(MigrationState::idle(Some(SchemaVersion(41)), vec![]));
/// handle.set(MigrationState::idle(Some(SchemaVersion(42)), vec![])
///     .with_status(MigrationStatus::Failed { reason: "column exists".into() }));
/// assert!(matches!(inspector.inspect().await?.status, MigrationStatus::Failed { .. }));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FakeMigrations {
    state: Arc<Mutex<MigrationState>>,
    controls: Arc<Controls>,
}

impl FakeMigrations {
    /// An inspector that reports `state` until its handle changes it.
    pub fn new(state: MigrationState) -> (Self, FakeMigrationsHandle) {
        let state = Arc::new(Mutex::new(state));
        let controls = Arc::new(Controls::default());
        let fake = Self {
            state: Arc::clone(&state),
            controls: Arc::clone(&controls),
        };
        (fake, FakeMigrationsHandle { state, controls })
    }
}

#[async_trait]
impl MigrationInspector for FakeMigrations {
    fn target(&self) -> String {
        "fake migrations".into()
    }

    async fn inspect(&self) -> Result<MigrationState> {
        self.controls
            .call(crate::Op::Inspect, "", || {
                Ok((lock(&self.state).clone(), false))
            })
            .await
    }
}

/// Controls a [`FakeMigrations`].
#[derive(Debug, Clone)]
pub struct FakeMigrationsHandle {
    state: Arc<Mutex<MigrationState>>,
    controls: Arc<Controls>,
}

impl FakeMigrationsHandle {
    handle_controls!("FakeMigrations");

    /// What the inspector reports from now on.
    pub fn set(&self, state: MigrationState) {
        *lock(&self.state) = state;
    }
}
