//! [`MigrationInspector`]: the database schema's state.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::model::MigrationState;

/// Reads the schema's state so a rollback never runs code against a schema it cannot use.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait MigrationInspector: fmt::Debug + Send + Sync + 'static {
    /// What this instance inspects, for messages.
    fn target(&self) -> String;

    /// The schema's state now.
    async fn inspect(&self) -> Result<MigrationState>;
}

macro_rules! forward_migrations {
    ($wrapper:ident) => {
        #[async_trait]
        impl<T: MigrationInspector + ?Sized> MigrationInspector for $wrapper<T> {
            fn target(&self) -> String {
                (**self).target()
            }
            async fn inspect(&self) -> Result<MigrationState> {
                (**self).inspect().await
            }
        }
    };
}

forward_migrations!(Arc);
forward_migrations!(Box);
