//! [`TrafficRouter`]: who gets which share of the requests.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::model::{RouteVersion, Routed, RouterCapabilities, TrafficSplit, Verification};

/// One route on one platform (an Istio VirtualService route, an ALB listener rule, a Service's
/// selector).
///
/// Writes are conditional on a version the caller holds: [`current`](TrafficRouter::current)
/// returns the split with its [`RouteVersion`], and [`apply`](TrafficRouter::apply) takes it
/// back; if someone else changed the route since, `apply` fails with [`ErrorKind::Conflict`] and
/// writes nothing. A router keeps no hidden precondition state, so one instance can be shared. A
/// split the [`capabilities`](TrafficRouter::capabilities) cannot express is refused before
/// anything is written.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TrafficRouter: fmt::Debug + Send + Sync + 'static {
    /// What this instance is bound to, for messages.
    fn target(&self) -> String;

    /// What this router can express.
    fn capabilities(&self) -> RouterCapabilities;

    /// The split the platform is configured with now, and the version it was read at.
    async fn current(&self) -> Result<Routed>;

    /// Configures `split` if the route is still at `expected`; returns the new version (the
    /// same one when the route already had `split`, which writes nothing).
    async fn apply(&self, split: &TrafficSplit, expected: &RouteVersion) -> Result<RouteVersion>;

    /// Whether the platform routes `split` (reads the data plane where it can).
    async fn verify(&self, split: &TrafficSplit) -> Result<Verification>;
}

/// Conveniences over any [`TrafficRouter`]. Implemented for every router; do not implement it
/// yourself.
#[async_trait]
pub trait TrafficRouterExt: TrafficRouter {
    /// Reads the route, then configures `split` conditional on that read: the one way to write
    /// when the caller holds no version of its own.
    async fn switch(&self, split: &TrafficSplit) -> Result<RouteVersion> {
        let read = self.current().await?;
        self.apply(split, &read.version).await
    }

    /// [`switch`](Self::switch)es to `split`, then verifies it; a platform that routes
    /// something else is [`ErrorKind::Conflict`] naming what it routes.
    async fn apply_verified(&self, split: &TrafficSplit) -> Result<Verification> {
        self.switch(split).await?;
        match self.verify(split).await? {
            Verification::Differs(actual) => Err(Error::new(
                ErrorKind::Conflict,
                format!("applied {split} but the platform routes {actual}"),
            )
            .with_operation("apply_verified")
            .with_object(self.target())),
            other => Ok(other),
        }
    }

    /// Sends everything to `backend` and nothing to the router's other backends.
    async fn route_all_to(&self, backend: &str) -> Result<TrafficSplit> {
        let caps = self.capabilities();
        let others: Vec<&str> = caps
            .backends
            .iter()
            .map(String::as_str)
            .filter(|b| *b != backend)
            .collect();
        let split = TrafficSplit::all_to(backend, &others)?;
        self.switch(&split).await?;
        Ok(split)
    }
}

impl<T: TrafficRouter + ?Sized> TrafficRouterExt for T {}

macro_rules! forward_router {
    ($wrapper:ident) => {
        #[async_trait]
        impl<T: TrafficRouter + ?Sized> TrafficRouter for $wrapper<T> {
            fn target(&self) -> String {
                (**self).target()
            }
            fn capabilities(&self) -> RouterCapabilities {
                (**self).capabilities()
            }
            async fn current(&self) -> Result<Routed> {
                (**self).current().await
            }
            async fn apply(
                &self,
                split: &TrafficSplit,
                expected: &RouteVersion,
            ) -> Result<RouteVersion> {
                (**self).apply(split, expected).await
            }
            async fn verify(&self, split: &TrafficSplit) -> Result<Verification> {
                (**self).verify(split).await
            }
        }
    };
}

forward_router!(Arc);
forward_router!(Box);
