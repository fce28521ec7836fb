//! One sweep of a [`Fleet`]: observing each of N deployments (each with a ReplicaSet and a pod)
//! from the shared caches, against the simulated cluster in process. Prints the sweep's time,
//! the heap bytes the fleet holds (counted by the allocator: what dropping the fleet frees), and
//! the process's resident memory (which also keeps what the allocator has not handed back);
//! asserts nothing about speed.
//!
//! `cargo bench -p deployguard-k8s --bench fleet` measures 100, 1,000 and 10,000
//! (`DEPLOYGUARD_BENCH_SIZES=100,1000` picks the sizes); under `cargo test` it sweeps 20 as a
//! smoke test.

use std::alloc::System;
use std::time::Instant;

use deployguard_core::DeploymentBackend;
use deployguard_k8s::Fleet;
use deployguard_testkit::cluster::FakeCluster;
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes held now, in MiB.
fn held_mib() -> f64 {
    let stats = GLOBAL.stats();
    let held = stats.bytes_allocated as f64 - stats.bytes_deallocated as f64
        + stats.bytes_reallocated as f64;
    held / (1024.0 * 1024.0)
}

fn owner(obj: &Value, kind: &str, api_version: &str) -> Value {
    json!([{"apiVersion": api_version, "kind": kind, "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
}

/// N deployments, each with one ReplicaSet and one ready pod, written straight to the store.
fn seed(cluster: &FakeCluster, n: usize) {
    for i in 0..n {
        let name = format!("app-{i:05}");
        let labels = json!({"app": name, "pod-template-hash": "5d8f7c9b6"});
        let template = json!({"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}});
        let deployment = cluster
            .create(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "default",
                    "annotations": {"deployment.kubernetes.io/revision": "1"}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template},
                "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1, "observedGeneration": 1}}))
            .expect("deployment");
        let rs = cluster
            .create(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": format!("{name}-5d8f7c9b6"), "namespace": "default", "labels": labels,
                    "annotations": {"deployment.kubernetes.io/revision": "1"},
                    "ownerReferences": owner(&deployment, "Deployment", "apps/v1")},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
                "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}}))
            .expect("replica set");
        cluster
            .create(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{name}-5d8f7c9b6-x2x2x"), "namespace": "default", "labels": labels,
                    "ownerReferences": owner(&rs, "ReplicaSet", "apps/v1")},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "nginx:1.27", "imageID": "", "state": {"running": {}}}]}}))
            .expect("pod");
    }
}

/// Resident memory of this process, in MiB (Linux; 0 elsewhere).
fn resident_mib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * 4096.0 / (1024.0 * 1024.0))
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = match std::env::var("DEPLOYGUARD_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        Err(_) if full => vec![100, 1_000, 10_000],
        Err(_) => vec![20],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!(
        "fleet sweep ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    for n in sizes {
        runtime.block_on(async {
            let before = resident_mib();
            let cluster = FakeCluster::new();
            seed(&cluster, n);
            let with_cluster = resident_mib();
            let fleet = Fleet::start(cluster.client(), "default")
                .await
                .expect("fleet");
            let with_caches = resident_mib();
            let members: Vec<_> = (0..n)
                .map(|i| fleet.deployment(&format!("app-{i:05}")))
                .collect();
            let started = Instant::now();
            for member in &members {
                let snapshot = member.observe().await.expect("observe");
                assert_eq!(snapshot.pods.len(), 1, "each deployment's own pod");
            }
            let took = started.elapsed();
            let process = resident_mib();
            // What the fleet holds is what dropping it frees (its watch tasks end with it).
            let held = held_mib();
            drop(members);
            drop(fleet);
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let fleet_holds = held - held_mib();
            println!(
                "sweep {n:>6} deployments {took:>10.2?}  ({:>7.1?} each)  fleet holds {fleet_holds:>4.0} MiB; resident: cluster {:>4.0} MiB, fleet caches {:>4.0} MiB, process {process:>4.0} MiB",
                took / u32::try_from(n).unwrap_or(1),
                with_cluster - before,
                with_caches - with_cluster,
            );
        });
    }
}
