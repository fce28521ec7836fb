//! How long the simulated cluster's controllers take to converge N one-replica Deployments
//! (created at once; each needs a ReplicaSet, a pod, a kubelet start and two status rounds), on
//! tokio's paused clock, so the number is the controllers' CPU time, not the two simulated
//! seconds a container takes to start. Then one of them rolls out a new image: what passes cost
//! when little changes among many. Prints numbers; asserts nothing about speed.
//!
//! `cargo bench -p deployguard-kube-sim --bench convergence` measures 100 and 1,000
//! (`DEPLOYGUARD_BENCH_SIZES=100,1000,10000` picks the sizes); under `cargo test` it converges 20
//! as a smoke test.

use std::time::{Duration, Instant};

use deployguard_kube_sim::FakeCluster;
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

/// Wall time from the first create until every Deployment has its pod available, then the
/// time one of them takes to roll out a new image among the N converged ones (what a pass
/// costs when little changes).
fn converge(n: usize) -> (Duration, Duration) {
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
        let converged = started.elapsed();
        let mut one = deployment(0);
        one["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
        let started = Instant::now();
        let rolled = cluster.replace(one).expect("roll one deployment");
        let generation = rolled["metadata"]["generation"].clone();
        for second in 0.. {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = cluster
                .get("apps/v1", "Deployment", "default", "app-00000")
                .expect("the rolled deployment");
            if now["status"]["observedGeneration"] == generation
                && now["status"]["updatedReplicas"] == json!(1)
                && now["status"]["availableReplicas"] == json!(1)
                && now["status"].get("replicas") == Some(&json!(1))
            {
                break;
            }
            assert!(
                second < 600,
                "the rollout of one deployment among {n} did not finish in 600 simulated seconds: {}",
                now["status"]
            );
        }
        (converged, started.elapsed())
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
        let (took, one) = converge(n);
        println!("converge {n:>6} one-replica deployments   {took:>10.2?}");
        println!("roll out one of {n:>6} converged            {one:>10.2?}");
    }
}
