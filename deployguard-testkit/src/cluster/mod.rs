//! The simulated Kubernetes cluster ([`FakeCluster`], from `deployguard-kube-sim`, re-exported
//! whole) with what deployguard's tests add to it: simulated traffic ([`SimulatedTraffic`], a
//! Service's requests each served by one ready pod as its image serves, and [`TrafficProbe`]
//! over it) and named incident [`scenarios`] with their ground truth.
//!
//! ```
//! use std::time::Duration;
//! use deployguard_testkit::cluster::{FakeCluster, SimulatedTraffic, scenarios};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let cluster = FakeCluster::with_controllers();
//! scenarios::load(&cluster, "healthy-rollout").await.unwrap();
//! tokio::time::sleep(Duration::from_secs(30)).await;
//! let seconds = cluster.traffic_window("default", "myapp-service", Duration::from_secs(10));
//! assert!(seconds.iter().map(|s| s.requests).sum::<u64>() > 0);
//! # }
//! ```

pub use deployguard_kube_sim::*;

pub mod scenarios;
mod traffic;

pub use traffic::{
    ServingProfile, SimulatedTraffic, TrafficConfig, TrafficProbe, TrafficSecond, VersionSecond,
};
