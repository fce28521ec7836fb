//! How long the simulated cluster's controllers take to converge N one-replica Deployments
//! (created at once; each needs a ReplicaSet, a pod, a kubelet start and two status rounds), on
//! tokio's paused clock, so the number is the controllers' CPU time, not the two simulated
//! seconds a container takes to start. Prints numbers; asserts nothing about speed.
//!
//! `cargo bench -p deployguard-testkit --bench convergence` measures 100 and 1,000
//! (`DEPLOYGUARD_BENCH_SIZES=100,1000,10000` picks the sizes); under `cargo test` it converges 20
//! as a smoke test.

use std::time::{Duration, Instant};

use deployguard_testkit::cluster::FakeCluster;
use serde_json::{Value, json};

fn deployment(i: usize) -> Value {
    let labels = json!({"app": format!("app-{i:05}")});
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("app-{i:05}"), "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}})
}

fn available(cluster: &FakeCluster) -> usize {
    cluster
        .list("apps/v1", "Deployment", "default")
        .iter()
        .filter(|d| d.pointer("/status/availableReplicas") == Some(&json!(1)))
        .count()
}

/// Wall time from the first create until every Deployment has its pod available.
fn converge(n: usize) -> Duration {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let cluster = FakeCluster::builder().controllers(true).build();
        let started = Instant::now();
        for i in 0..n {
            cluster.create(deployment(i)).expect("create deployment");
        }
        let mut simulated = Duration::ZERO;
        while available(&cluster) < n {
            tokio::time::sleep(Duration::from_secs(1)).await;
            simulated += Duration::from_secs(1);
            assert!(
                simulated < Duration::from_secs(600),
                "{n} deployments did not converge in 600 simulated seconds"
            );
        }
        started.elapsed()
    })
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // `DEPLOYGUARD_BENCH_SIZES=100,1000,10000` picks the sizes.
    let sizes: Vec<usize> = match std::env::var("DEPLOYGUARD_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        Err(_) if full => vec![100, 1_000],
        Err(_) => vec![20],
    };
    println!(
        "simulated cluster convergence ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    for n in sizes {
        let took = converge(n);
        println!("converge {n:>6} one-replica deployments   {took:>10.2?}");
    }
}
