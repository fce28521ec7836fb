//! The Istio traffic router of deployguard.
//!
//! [`IstioRouter`] moves a canary's or a blue-green's traffic by the weights of one HTTP route
//! of a `networking.istio.io` VirtualService: N-way splits between DestinationRule subsets (or
//! hosts, or ports), each write a JSON patch of the weights conditional on the resourceVersion
//! read, a subset checked for ready pods before it gets traffic, and verification that reads the
//! route back and, where istiod reports status, whether the data plane applied it.
//!
//! It speaks `networking.istio.io/v1` where the cluster serves it (Istio 1.22 and later) and
//! `v1beta1` otherwise. [`rbac::rules`] are the permissions it needs.
//!
//! ```no_run
//! use std::sync::Arc;
//! use deployguard_core::engine::{Canary, CanaryStep, Guard, Strategy};
//! use deployguard_istio::IstioRouter;
//! use deployguard_k8s::KubeDeployment;
//!
//! # async fn run(client: deployguard_k8s::kube::Client) -> deployguard_core::Result<()> {
//! let router = IstioRouter::builder(client.clone(), "prod", "app")
//!     .route("primary")
//!     .subset("stable")
//!     .subset("canary")
//!     .build()?;
//! let canary = Canary::new("stable", "canary", vec![CanaryStep::SetWeight(10), CanaryStep::Analysis]);
//! let guard = Guard::builder(Strategy::Canary(canary), Arc::new(KubeDeployment::new(client.clone(), "prod", "app-canary")))
//!     .stable(Arc::new(KubeDeployment::new(client, "prod", "app-stable")))
//!     .router(Arc::new(router));
//! # let _ = guard;
//! # Ok(())
//! # }
//! ```

pub mod rbac;
mod resources;
mod router;

pub use resources::{
    Destination, DestinationRule, DestinationRuleSpec, GROUP, HttpRoute, IstioCondition,
    IstioStatus, IstioVersion, PortSelector, RouteDestination, Subset, VirtualService,
    VirtualServiceSpec,
};
pub use router::{DestinationMatch, IstioRouter, IstioRouterBuilder};
