//! The `guard` command from outside: a policy file guards the seed incident on the served
//! simulated cluster (rolled back) and its healthy twin (promoted); a bad spec is refused
//! naming the field, before anything is read from a cluster.

use std::process::{Command, Stdio};
use std::time::Duration;

use deployguard_testkit::cluster::k8s_openapi::api::apps::v1::Deployment;
use deployguard_testkit::cluster::{FakeCluster, scenarios};

const SPEC: &str = "
target: {deployment: app-deployment}
probes:
  - {name: pods, kind: podReadiness}
checks:
  - name: ready
    probe: pods
    metric: ready_fraction
    success: {min: 0.5}
    # A pod that is starting is not failing: the first look comes after the pods' start.
    initialDelay: 5s
    interval: 5s
    noData: ignore
bake: 10s
patience: {podFailureAfter: 5s}
deadlines: {recovery: 60s, poll: 500ms}
";

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the `guard` binary with `args`, killed after two minutes.
fn guard(args: &[&str], kubeconfig: Option<&std::path::Path>) -> Ran {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guard"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = kubeconfig {
        command.env("KUBECONFIG", path);
    }
    let child = command.spawn().unwrap();
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let output = match receiver.recv_timeout(Duration::from_secs(120)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("guard ran past two minutes");
        }
    };
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// [`guard`] with `--spec spec` on a blocking thread, beside the served cluster's runtime.
async fn guard_off_runtime(spec: &str, kubeconfig: std::path::PathBuf) -> Ran {
    let spec = spec.to_owned();
    tokio::task::spawn_blocking(move || guard(&["--spec", &spec], Some(&kubeconfig)))
        .await
        .unwrap()
}

fn image(cluster: &FakeCluster) -> String {
    let deployment: Deployment = cluster.deployment("default", "app-deployment").unwrap();
    deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_file_guards_the_seed_incident_and_its_healthy_twin() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("guard.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let spec_arg = spec.to_str().unwrap().to_owned();

    // The seed incident: the new version never gets ready; the guard rolls it back.
    let seed = scenarios::served_seed(10.0).await.unwrap();
    let kubeconfig = seed.kubeconfig.clone();
    let ran = guard_off_runtime(&spec_arg, kubeconfig).await;
    assert_eq!(ran.code, 3, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.starts_with("rolled back"), "{}", ran.stdout);
    assert!(
        ran.stderr.contains("guarding default/app-deployment"),
        "{}",
        ran.stderr
    );
    assert_eq!(image(&seed.cluster), "app:v2.3.1");

    // Its healthy twin: judged through the bake, then promoted.
    let cluster = FakeCluster::builder()
        .controllers(true)
        .time_scale(10.0)
        .build();
    scenarios::load(&cluster, "healthy-rollout").await.unwrap();
    let served = cluster.serve().await.unwrap();
    let kubeconfig = dir.path().join("healthy-kubeconfig");
    served.write_kubeconfig(&kubeconfig).unwrap();
    let ran = guard_off_runtime(&spec_arg, kubeconfig).await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.starts_with("promoted"), "{}", ran.stdout);
    assert!(ran.stderr.contains("baking"), "{}", ran.stderr);
    assert_eq!(image(&cluster), "app:v2.4.0");
}

#[test]
fn a_bad_spec_is_refused_naming_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("guard.yaml");
    std::fs::write(
        &spec,
        SPEC.replace("interval: 5s", "interval: 5 fortnights"),
    )
    .unwrap();
    // No kubeconfig at all: the spec is refused before any cluster is asked.
    let ran = guard(
        &["--spec", spec.to_str().unwrap()],
        Some(&dir.path().join("none")),
    );
    assert_eq!(ran.code, 2);
    assert_eq!(
        ran.stderr.trim(),
        format!(
            "guard: {}: checks[0].interval: invalid duration \"5 fortnights\": unknown time unit \"fortnights\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)",
            spec.display()
        )
    );
    std::fs::write(&spec, SPEC).unwrap();
    let ran = guard(&["--spec", spec.to_str().unwrap(), "--check"], None);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout
            .contains("a valid spec guarding default/app-deployment")
    );
    let ran = guard(&["--spec", "-", "--check"], None);
    assert_eq!(ran.code, 2, "empty standard input is no spec");
}

/// The seed runbook's blue-green as a spec: green is judged by its pods (six looks over 25 s, more
/// than its readiness's 20 s flapping period) before any traffic
/// moves; the flapping green is aborted (the Service still selects blue, green scaled to 0),
/// its healthy twin promoted (the Service selects green).
const BLUE_GREEN: &str = "
target: {deployment: myapp-green, stable: myapp-blue}
strategy:
  kind: blueGreen
  active: blue
  preview: green
  prePromotion: [green-ready]
  scaleDownDelay: 0s
router: {kind: service, service: myapp-service, key: version, backends: {blue: blue, green: green}}
probes: [{name: pods, kind: podReadiness}]
checks:
  - {name: green-ready, probe: pods, metric: ready_fraction, success: {min: 1.0},
     initialDelay: 10s, interval: 5s, count: 6}
deadlines: {recovery: 60s, poll: 500ms}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_spec_moves_traffic_through_its_router_only_when_green_is_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("blue-green.yaml");
    std::fs::write(&spec, BLUE_GREEN).unwrap();
    let spec_arg = spec.to_str().unwrap().to_owned();
    let selected = |cluster: &FakeCluster| {
        cluster
            .get("v1", "Service", "default", "myapp-service")
            .map(|s| s["spec"]["selector"]["version"].clone())
            .unwrap()
    };
    let green_replicas = |cluster: &FakeCluster| {
        let green: Deployment = cluster.deployment("default", "myapp-green").unwrap();
        green.spec.unwrap().replicas.unwrap_or(1)
    };
    for (scenario, code, version) in [
        ("seed-blue-green", 3, "blue"),
        ("seed-blue-green-healthy", 0, "green"),
    ] {
        let cluster = FakeCluster::builder()
            .controllers(true)
            .time_scale(10.0)
            .build();
        scenarios::load(&cluster, scenario).await.unwrap();
        let served = cluster.serve().await.unwrap();
        let kubeconfig = dir.path().join(format!("{scenario}-kubeconfig"));
        served.write_kubeconfig(&kubeconfig).unwrap();
        let ran = guard_off_runtime(&spec_arg, kubeconfig).await;
        assert_eq!(ran.code, code, "{scenario}: {}\n{}", ran.stdout, ran.stderr);
        assert_eq!(selected(&cluster), version, "{scenario}");
        if code == 3 {
            assert_eq!(green_replicas(&cluster), 0, "{scenario}: green scaled down");
        }
    }
}

/// A local health endpoint over the simulated traffic to `target`: each version's error
/// ratio over the last 20 s of cluster time, as JSON keyed by image — the evidence a team's
/// status service would give. Stops when the task is aborted.
async fn health_endpoint(
    cluster: FakeCluster,
    target: &'static str,
) -> (String, tokio::task::JoinHandle<()>) {
    use deployguard_testkit::cluster::SimulatedTraffic;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}/errors", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                }
            }
            let mut by_image: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
            for second in cluster.traffic_window("default", target, Duration::from_secs(20)) {
                for version in second.versions {
                    let counts = by_image.entry(version.image).or_default();
                    counts.0 += version.errors;
                    counts.1 += version.requests;
                }
            }
            let rates: serde_json::Map<String, serde_json::Value> = by_image
                .into_iter()
                .filter(|(_, (_, requests))| *requests > 0)
                .map(|(image, (errors, requests))| {
                    (image, (errors as f64 / requests as f64).into())
                })
                .collect();
            let body = serde_json::json!({"error_rate": rates}).to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (url, task)
}

/// A Gateway API canary as a spec, judged by a web probe (the guard's clock is the wall's, the
/// cluster's 20 times faster: a 5 s pause is 100 s of traffic): the canary answering 15% errors is
/// aborted with every request back on app-stable; its healthy twin is promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_canary_spec_judged_by_a_web_probe_aborts_the_bad_canary_and_promotes_its_twin() {
    let dir = tempfile::tempdir().unwrap();
    for (scenario, code, canary_weight) in
        [("gateway-canary", 3, 0), ("gateway-canary-healthy", 0, 100)]
    {
        let cluster = FakeCluster::builder()
            .controllers(true)
            .time_scale(20.0)
            .build();
        scenarios::load(&cluster, scenario).await.unwrap();
        let served = cluster.serve().await.unwrap();
        let kubeconfig = dir.path().join(format!("{scenario}-kubeconfig"));
        served.write_kubeconfig(&kubeconfig).unwrap();
        let (url, endpoint) = health_endpoint(cluster.clone(), scenarios::GATEWAY).await;
        let spec = format!(
            "
target: {{deployment: app-canary, stable: app-stable}}
strategy:
  kind: canary
  stable: stable
  canary: canary
  steps: [{{setWeight: 20}}, {{pause: {{duration: 5s}}}}, {{setWeight: 50}}, {{pause: {{duration: 5s}}}}]
  abortScaleDownDelay: 0s
  scaleDownDelay: 0s
router: {{kind: httpRoute, httpRoute: myapp, rule: primary, backends: {{stable: app-stable, canary: app-canary}}}}
probes: [{{name: status, kind: web, url: \"{url}\", metrics: {{error_rate: $.error_rate}}}}]
checks:
  - {{name: errors, probe: status, metric: error_rate, success: {{max: 0.05}}, initialDelay: 2s, interval: 2s, noData: ignore}}
deadlines: {{recovery: 60s, poll: 500ms}}
"
        );
        let path = dir.path().join(format!("{scenario}.yaml"));
        std::fs::write(&path, spec).unwrap();
        let ran = guard_off_runtime(path.to_str().unwrap(), kubeconfig).await;
        endpoint.abort();
        assert_eq!(ran.code, code, "{scenario}: {}\n{}", ran.stdout, ran.stderr);
        let route = cluster
            .get(
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                "default",
                "myapp",
            )
            .unwrap();
        assert_eq!(
            route["spec"]["rules"][0]["backendRefs"][1]["weight"],
            serde_json::json!(canary_weight),
            "{scenario}: {}",
            ran.stderr
        );
    }
}
