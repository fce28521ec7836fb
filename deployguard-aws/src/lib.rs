//! The AWS backends of deployguard: an Application Load Balancer router and a target-health
//! probe, on `aws-sdk-elasticloadbalancingv2`.
//!
//! [`AlbRouter`] moves traffic between the weighted target groups of one forward action — a
//! listener's default action or one rule's — with writes checked against what was read (ELBv2 has
//! no ETags: the action is read again immediately before the write and after it).
//! [`TargetHealthProbe`] turns `DescribeTargetHealth` into measurements per version.
//! [`iam::policy`] is the least-privilege policy both need.
//!
//! Both are built from an `aws_types::SdkConfig`, so the standard credential chain, region,
//! profiles and `endpoint_url` work as in any AWS SDK program; this crate brings no HTTP client
//! or TLS stack of its own (aws-config's default one is what most programs use). Credentials
//! never appear in messages or `Debug` output.
//!
//! ```no_run
//! use deployguard_aws::{AlbRouter, TargetHealthProbe};
//!
//! // let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! # async fn run(sdk: aws_types::SdkConfig) -> deployguard_core::Result<()> {
//! let router = AlbRouter::builder(&sdk)
//!     .rule("arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee")
//!     .backend("blue", "shop-blue")
//!     .backend("green", "shop-green")
//!     .build()?;
//! let probe = TargetHealthProbe::builder(&sdk)
//!     .target_group("blue", "shop-blue")
//!     .target_group("green", "shop-green")
//!     .build()?;
//! # let _ = (router, probe);
//! # Ok(())
//! # }
//! ```

mod error;
pub mod iam;
mod probe;
mod router;

pub use probe::{METRICS, TargetHealthProbe, TargetHealthProbeBuilder};
pub use router::{AlbRouter, AlbRouterBuilder, AlbTarget, MAX_TARGET_GROUPS_PER_ACTION};
