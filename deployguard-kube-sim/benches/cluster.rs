//! Round-trip times of the simulated cluster, in process and over loopback HTTP, the time to
//! list 10,000 pods, the requests `kubectl get pods` makes and `kubectl get pods` itself over
//! 101 and 10,001 pods. Prints numbers; asserts nothing about speed.
//!
//! `cargo bench -p deployguard-kube-sim --bench cluster` runs the full measurement; under
//! `cargo test` (no `--bench` argument) it runs a few iterations as a smoke test.

use std::time::{Duration, Instant};

use deployguard_kube_sim::FakeCluster;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

fn seed(cluster: &FakeCluster, pods: usize) {
    cluster
        .create(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.3"}]}}}
        }))
        .expect("seed deployment");
    for i in 0..pods {
        cluster
            .create(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("web-{i:05}"), "namespace": "default", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.3"}]},
                "status": {"phase": "Running"}
            }))
            .expect("seed pod");
    }
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!(
        "{what:<40} n={:<6} p50={:>9.1?} p99={:>9.1?} max={:>9.1?}",
        samples.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
}

async fn round_trips(label: &str, client: kube::Client, iterations: usize) {
    let api: Api<Deployment> = Api::namespaced(client, "default");
    let mut gets = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        api.get("web").await.expect("get");
        gets.push(started.elapsed());
    }
    report(&format!("{label} get deployment"), &mut gets);
    let mut patches = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let started = Instant::now();
        let patch = json!({"metadata": {"annotations": {"bench": i.to_string()}}});
        api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch");
        patches.push(started.elapsed());
    }
    report(&format!("{label} patch deployment (merge)"), &mut patches);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (iterations, pods) = if full { (2_000, 10_000) } else { (20, 100) };

    let cluster = FakeCluster::new();
    seed(&cluster, 0);
    round_trips("in-process", cluster.client(), iterations).await;

    let served = cluster.serve().await.expect("serve");
    let config = kube::Config::new(served.url().parse().expect("url"));
    let http = kube::Client::try_from(config).expect("client");
    round_trips("loopback HTTP", http.clone(), iterations).await;

    let big = FakeCluster::new();
    let started = Instant::now();
    seed(&big, pods);
    println!(
        "{:<40} {:>9.1?}",
        format!("seed {pods} pods"),
        started.elapsed()
    );
    for (label, client) in [
        ("in-process", big.client()),
        ("loopback HTTP", {
            let served = big.serve().await.expect("serve");
            let client =
                kube::Client::try_from(kube::Config::new(served.url().parse().expect("url")))
                    .expect("client");
            std::mem::forget(served);
            client
        }),
    ] {
        let api: Api<Pod> = Api::namespaced(client, "default");
        let mut samples = Vec::new();
        for _ in 0..if full { 5 } else { 2 } {
            let started = Instant::now();
            let list = api.list(&ListParams::default()).await.expect("list");
            assert_eq!(list.items.len(), pods);
            samples.push(started.elapsed());
        }
        report(
            &format!("{label} list {pods} pods (one page)"),
            &mut samples,
        );
        let started = Instant::now();
        let mut count = 0;
        let mut params = ListParams::default().limit(500);
        loop {
            let page = api.list(&params).await.expect("list page");
            count += page.items.len();
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => break,
            }
        }
        assert_eq!(count, pods);
        println!(
            "{:<40} {:>9.1?}",
            format!("{label} list {pods} pods (pages of 500)"),
            started.elapsed()
        );
    }
    table_pages(if full { 10_001 } else { 201 }).await;
    if full {
        kubectl_get_pods().await;
    }
}

/// The requests `kubectl get pods` sends (a server-side Table, `limit=500`, each page from the
/// last one's continue token) over loopback HTTP, without kubectl's client-side throttle: what
/// the server's pagination costs at 101 pods and at `pods`.
async fn table_pages(pods: usize) {
    const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let mut times = Vec::new();
    for n in [101, pods] {
        let cluster = FakeCluster::new();
        seed(&cluster, n);
        let served = cluster.serve().await.expect("serve");
        let client = kube::Client::try_from(kube::Config::new(served.url().parse().expect("url")))
            .expect("client");
        let mut samples = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let (mut rows, mut token) = (0, String::new());
            loop {
                let mut uri = String::from("/api/v1/namespaces/default/pods?limit=500");
                if !token.is_empty() {
                    uri.push_str("&continue=");
                    for byte in token.bytes() {
                        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                            uri.push(char::from(byte));
                        } else {
                            uri.push_str(&format!("%{byte:02X}"));
                        }
                    }
                }
                let request = http::Request::get(uri)
                    .header(http::header::ACCEPT, TABLE)
                    .body(Vec::new())
                    .expect("request");
                let page: serde_json::Value = client.request(request).await.expect("page");
                rows += page["rows"].as_array().map_or(0, Vec::len);
                token = page["metadata"]["continue"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if token.is_empty() {
                    break;
                }
            }
            assert_eq!(rows, n);
            samples.push(started.elapsed());
        }
        samples.sort();
        println!(
            "{:<48} {:>9.1?}",
            format!("kubectl's requests, {n} pods, pages of 500"),
            samples[2]
        );
        times.push(samples[2]);
    }
    println!(
        "{:<48} {:>8.1}x  ({:.0} times the pods; without kubectl's throttle)",
        format!("kubectl's requests, {pods} vs 101"),
        times[1].as_secs_f64() / times[0].as_secs_f64(),
        pods as f64 / 101.0
    );
}

/// `kubectl get pods` (server-side Table) over 101 and 10,001 pods, in pages of 500 (kubectl's
/// default) and in one (`--chunk-size=0`): a listing should cost in proportion to what it lists.
/// Paged, kubectl's own client-side rate limiter (client-go: 5 requests a second after a burst
/// of 10) spaces its 21 requests for 10,001 pods; a run with `-v=3` logs each wait as
/// "client-side throttling", and the ratio is printed once more without them (the same waits
/// would be spent against a real API server). One page shows what the server and kubectl's
/// printing cost.
async fn kubectl_get_pods() {
    let mut times = Vec::new();
    for pods in [101, 10_001] {
        let cluster = FakeCluster::new();
        seed(&cluster, pods);
        let served = cluster.serve().await.expect("serve");
        let Ok(kubectl) = deployguard_kube_sim::kubectl::Kubectl::new(&served) else {
            println!("kubectl get pods: no kubectl on this machine");
            return;
        };
        let mut row = Vec::new();
        for (how, extra) in [("pages of 500", None), ("one page", Some("--chunk-size=0"))] {
            let mut samples = Vec::new();
            for _ in 0..3 {
                let mut args = vec!["get", "pods", "--no-headers"];
                args.extend(extra);
                let started = Instant::now();
                let out = kubectl.run(&args).await;
                assert_eq!(out.code, 0, "{}", out.stderr);
                assert_eq!(out.stdout.lines().count(), pods);
                samples.push(started.elapsed());
            }
            samples.sort();
            println!(
                "{:<48} {:>9.1?}",
                format!("kubectl get pods, {pods} pods, {how}"),
                samples[1]
            );
            row.push(samples[1]);
        }
        times.push(row);
    }
    // Once more, paged, with kubectl's log of the waits its rate limiter imposed (`-v=3` logs
    // each wait over 50 ms): what the same listing costs without them.
    {
        let cluster = FakeCluster::new();
        seed(&cluster, 10_001);
        let served = cluster.serve().await.expect("serve");
        if let Ok(kubectl) = deployguard_kube_sim::kubectl::Kubectl::new(&served) {
            let started = Instant::now();
            let out = kubectl.run(&["get", "pods", "--no-headers", "-v=3"]).await;
            let took = started.elapsed();
            let waits: Vec<Duration> = out
                .stderr
                .lines()
                .filter(|l| l.contains("client-side throttling"))
                .filter_map(throttle_wait)
                .collect();
            let waited: Duration = waits.iter().sum();
            println!(
                "{:<48} {:>9.1?}  ({} waits of its rate limiter, {waited:.1?} in all)",
                "kubectl get pods, 10001 pods, paged, -v=3",
                took,
                waits.len()
            );
            let unthrottled = took.saturating_sub(waited);
            times[1].push(unthrottled);
            println!(
                "{:<48} {:>9.1?}",
                "kubectl get pods, 10001 pods, paged, less waits", unthrottled
            );
        }
    }
    for (i, how) in [
        "pages of 500 (kubectl throttles itself)",
        "one page",
        "pages of 500, less kubectl's throttle waits",
    ]
    .iter()
    .enumerate()
    {
        println!(
            "{:<48} {:>8.1}x  (100 times the pods; {how})",
            "kubectl get pods, 10,001 vs 101",
            times[1][i].as_secs_f64() / times[0][i.min(1)].as_secs_f64()
        );
    }
}

/// The wait a client-go throttling log line reports ("Waited for 196.2ms due to client-side
/// throttling …", or `delay="196.2ms"` in structured logs), in Go's duration notation.
fn throttle_wait(line: &str) -> Option<Duration> {
    let text = line
        .split_once("Waited for ")
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or_default())
        .or_else(|| {
            line.split_once("delay=\"")
                .and_then(|(_, rest)| rest.split('"').next())
        })?
        .trim_end_matches(',');
    let digits = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "µs" | "us" => number / 1e6,
        "m" => number * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}
