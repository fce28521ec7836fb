//! The fidelity matrix, workloads and nodes: a team's multi-kind bundle, StatefulSets,
//! DaemonSets, nodes with cordons, taints and drains under a disruption budget, and containers
//! that run their command — each as the kubectl commands a person types and the real cluster's
//! answers, on the oldest and newest kubectl this project supports.

use deployguard_kube_sim::FakeCluster;
use deployguard_kube_sim::kubectl::Kubectl;

const GOOD: &str = "registry.example/web:1";
const GOOD_TOO: &str = "registry.example/web:2";

/// Runs `test` against a running cluster (controllers on, ten times real time) on each kubectl.
async fn each_version(minors: &[u32], test: impl AsyncFn(&FakeCluster, &Kubectl)) {
    for &minor in minors {
        let cluster = FakeCluster::builder()
            .controllers(true)
            .time_scale(10.0)
            .images([GOOD, GOOD_TOO, "busybox:1.36"])
            .build();
        let served = cluster.serve().await.unwrap();
        let kubectl = Kubectl::version(minor, &served).unwrap();
        test(&cluster, &kubectl).await;
    }
}

/// Runs kubectl with `args` until `done` holds of its output, for up to thirty seconds; the
/// last output.
async fn poll(kubectl: &Kubectl, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = kubectl.ok(args).await;
        if done(&out) || std::time::Instant::now() > deadline {
            return out;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Writes `text` beside the kubectl's home and returns the path.
fn manifest(kubectl: &Kubectl, name: &str, text: &str) -> String {
    let path = kubectl.home().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const BUNDLE: &str = r#"
apiVersion: v1
kind: ResourceQuota
metadata: {name: team}
spec:
  hard: {pods: "50", requests.cpu: "20", limits.cpu: "40"}
---
apiVersion: v1
kind: LimitRange
metadata: {name: team}
spec:
  limits: [{type: Container, default: {cpu: 500m}, defaultRequest: {cpu: 100m}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: web-secret}
stringData: {token: s3cret}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers:
      - name: web
        image: registry.example/web:1
        resources: {requests: {cpu: 100m}, limits: {cpu: 500m}}
        envFrom: [{configMapRef: {name: web-config}}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 3
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: web.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: web, port: {number: 80}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {}}]}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: registry.example/web:1
        volumeMounts: [{name: data, mountPath: /var/lib/db}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: log-agent}
spec:
  selector: {matchLabels: {app: log-agent}}
  template:
    metadata: {labels: {app: log-agent}}
    spec:
      containers: [{name: agent, image: registry.example/web:1}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: report, image: busybox:1.36, command: [echo, done]}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typical_app_bundle_applies_rolls_out_and_deletes() {
    each_version(&[27, 33], async |_, kubectl| {
        let bundle = manifest(kubectl, "bundle.yaml", BUNDLE);
        let applied = kubectl.ok(&["apply", "-f", &bundle]).await;
        assert_eq!(applied.lines().count(), 15, "{applied}");
        for target in ["deployment/web", "statefulset/db", "daemonset/log-agent"] {
            kubectl
                .ok(&["rollout", "status", target, "--timeout=120s"])
                .await;
        }
        // `get all` lists the workload kinds by their category.
        let all = kubectl.ok(&["get", "all", "-o", "name"]).await;
        for expected in [
            "deployment.apps/web",
            "statefulset.apps/db",
            "daemonset.apps/log-agent",
            "cronjob.batch/report",
            "horizontalpodautoscaler.autoscaling/web",
            "service/web",
            "pod/db-0",
            "pod/db-1",
        ] {
            assert!(all.lines().any(|l| l == expected), "{expected} in\n{all}");
        }
        assert!(!all.contains("configmap/"), "{all}");
        // Each kind prints the columns the real printers do.
        let tables = kubectl
            .ok(&["get", "sts,ds,pdb,hpa,ing,netpol,pvc,cj,quota"])
            .await;
        for fragment in [
            "statefulset.apps/db   2/2",
            "poddisruptionbudget.policy/web   N/A             1                 1",
            "cpu: <unknown>/80%",
            "web.example.com",
            "app=web",
            "persistentvolumeclaim/data-db-0   Bound",
            "0 3 * * *",
            // The web pods' own requests and limits, and the LimitRange's for the others.
            "pods: 8/50, requests.cpu: 800m/20",
            "limits.cpu: 4/40",
        ] {
            let squeezed: String = tables.split_whitespace().collect::<Vec<_>>().join(" ");
            let wanted: String = fragment.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(squeezed.contains(&wanted), "{fragment:?} in\n{tables}");
        }
        let deleted = kubectl
            .ok(&["delete", "-f", &bundle, "--wait=true", "--timeout=120s"])
            .await;
        assert_eq!(deleted.lines().count(), 15, "{deleted}");
        // The pods go with their owners; the claims stay, as StatefulSet claims do.
        let pods = poll(kubectl, &["get", "pods", "-o", "name"], |out| {
            out.trim().is_empty()
        })
        .await;
        assert_eq!(pods.trim(), "");
        let claims = kubectl.ok(&["get", "pvc", "-o", "name"]).await;
        assert_eq!(
            claims.lines().collect::<Vec<_>>(),
            [
                "persistentvolumeclaim/data-db-0",
                "persistentvolumeclaim/data-db-1"
            ]
        );
    })
    .await;
}

const STATEFUL: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.example/web:1}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_starts_in_order_rolls_from_the_top_and_undoes() {
    each_version(&[27, 33], async |_, kubectl| {
        let file = manifest(kubectl, "sts.yaml", STATEFUL);
        kubectl.ok(&["apply", "-f", &file]).await;
        let status = kubectl
            .ok(&["rollout", "status", "sts/web", "--timeout=120s"])
            .await;
        assert!(
            status.ends_with("partitioned roll out complete: 3 new pods have been updated...\n"),
            "{status}"
        );
        // Created in ordinal order: each pod only once the one before was ready.
        let created = kubectl
            .ok(&[
                "get",
                "pods",
                "--sort-by=.metadata.creationTimestamp",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ])
            .await;
        assert_eq!(created, "web-0 web-1 web-2");
        kubectl
            .ok(&["set", "image", "sts/web", &format!("web={GOOD_TOO}")])
            .await;
        kubectl
            .ok(&["rollout", "status", "sts/web", "--timeout=120s"])
            .await;
        let history = kubectl.ok(&["rollout", "history", "sts/web"]).await;
        let revisions: Vec<&str> = history
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.parse::<u32>().is_ok())
            .collect();
        assert_eq!(revisions, ["1", "2"], "{history}");
        // Replaced from the highest ordinal down: web-2 is the oldest of the new pods.
        let replaced = kubectl
            .ok(&[
                "get",
                "pods",
                "--sort-by=.metadata.creationTimestamp",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ])
            .await;
        assert_eq!(replaced, "web-2 web-1 web-0");
        kubectl.ok(&["rollout", "undo", "sts/web"]).await;
        kubectl
            .ok(&["rollout", "status", "sts/web", "--timeout=120s"])
            .await;
        let images = kubectl
            .ok(&[
                "get",
                "pods",
                "-o",
                "jsonpath={.items[*].spec.containers[0].image}",
            ])
            .await;
        assert_eq!(images, [GOOD; 3].join(" "));
        let history = kubectl.ok(&["rollout", "history", "sts/web"]).await;
        assert!(
            history.lines().any(|l| l.starts_with("3 ")),
            "the undone revision comes back as the newest: {history}"
        );
    })
    .await;
}

const GUARDED: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {kubernetes.io/hostname: node-1}
      containers: [{name: web, image: registry.example/web:1}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_cordoned_tainted_and_drained_within_the_disruption_budget() {
    each_version(&[27, 33], async |_, kubectl| {
        let nodes = kubectl.ok(&["get", "nodes"]).await;
        assert_eq!(nodes.lines().count(), 5, "{nodes}");
        assert_eq!(row(&nodes, "control-plane")[..3], ["control-plane", "Ready", "control-plane"]);
        // kube-system runs the control plane and CoreDNS, on the control-plane node only.
        let all_running = |out: &str| {
            out.lines().count() == 6
                && out
                    .lines()
                    .all(|l| l.contains(" control-plane ") && l.ends_with("Running"))
        };
        let system = poll(kubectl, &["get", "pods", "-n", "kube-system", "-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName,PHASE:.status.phase", "--no-headers"], all_running).await;
        assert!(all_running(&system), "{system}");
        let endpoints = ["get", "endpoints", "kube-dns", "-n", "kube-system", "-o", "jsonpath={.subsets[0].addresses[*].targetRef.name}"];
        let dns = poll(kubectl, &endpoints, |out| out.split(' ').count() == 2).await;
        assert_eq!(dns.split(' ').count(), 2, "{dns}");
        assert!(nodes.lines().skip(1).all(|l| l.contains(" Ready ")), "{nodes}");
        let file = manifest(kubectl, "guarded.yaml", GUARDED);
        kubectl.ok(&["apply", "-f", &file]).await;
        kubectl
            .ok(&["rollout", "status", "deploy/web", "--timeout=120s"])
            .await;
        // Draining node-1 evicts within the budget: one at a time, the rest refused with 429
        // until the replacement is ready — and the replacements cannot go anywhere but node-1,
        // which is cordoned, so the drain times out with the budget's refusal.
        let drain = kubectl
            .run(&["drain", "node-1", "--timeout=20s", "--ignore-daemonsets"])
            .await;
        assert_ne!(drain.code, 0);
        assert!(
            drain
                .stderr
                .contains("Cannot evict pod as it would violate the pod's disruption budget."),
            "{}",
            drain.stderr
        );
        let status = kubectl
            .ok(&["get", "node", "node-1", "--no-headers"])
            .await;
        assert!(status.contains("Ready,SchedulingDisabled"), "{status}");
        let pending = kubectl
            .ok(&[
                "get",
                "pods",
                "--field-selector=status.phase=Pending",
                "-o",
                "name",
            ])
            .await;
        assert_eq!(pending.lines().count(), 1, "{pending}");
        let events = kubectl
            .ok(&["get", "events", "--field-selector=reason=FailedScheduling", "-o", "jsonpath={.items[0].message}"])
            .await;
        assert!(
            events.starts_with("0/4 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node affinity/selector."),
            "{events}"
        );
        // A taint the pods do not tolerate keeps them off a node too.
        kubectl.ok(&["uncordon", "node-1"]).await;
        kubectl
            .ok(&["rollout", "status", "deploy/web", "--timeout=120s"])
            .await;
        kubectl
            .ok(&["taint", "nodes", "node-1", "dedicated=db:NoExecute"])
            .await;
        let left = poll(
            kubectl,
            &["get", "pods", "--field-selector=spec.nodeName=node-1", "-o", "name"],
            |out| out.trim().is_empty(),
        )
        .await;
        assert_eq!(left.trim(), "", "NoExecute evicts what does not tolerate it");
    })
    .await;
}

const SIDECAR: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: motd}
data: {message: "welcome aboard"}
---
apiVersion: v1
kind: Pod
metadata: {name: two}
spec:
  volumes: [{name: motd, configMap: {name: motd}}]
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "cat /etc/motd/message; while true; do echo tick; sleep 1; done"]
    volumeMounts: [{name: motd, mountPath: /etc/motd}]
  - name: side
    image: busybox:1.36
    args: [sh, -c, "echo side car up; sleep infinity"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_run_their_command_and_logs_are_what_they_printed() {
    each_version(&[27, 33], async |_, kubectl| {
        kubectl
            .ok(&[
                "create",
                "job",
                "hello",
                "--image=busybox:1.36",
                "--",
                "echo",
                "hi",
            ])
            .await;
        kubectl
            .ok(&[
                "wait",
                "--for=condition=complete",
                "job/hello",
                "--timeout=60s",
            ])
            .await;
        assert_eq!(kubectl.ok(&["logs", "job/hello"]).await, "hi\n");

        kubectl
            .ok(&[
                "run",
                "fails",
                "--restart=Never",
                "--image=busybox:1.36",
                "--",
                "sh",
                "-c",
                "echo bye; exit 3",
            ])
            .await;
        kubectl
            .ok(&[
                "wait",
                "--for=jsonpath={.status.phase}=Failed",
                "pod/fails",
                "--timeout=60s",
            ])
            .await;
        let code = kubectl
            .ok(&[
                "get",
                "pod",
                "fails",
                "-o",
                "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}",
            ])
            .await;
        assert_eq!(code, "3");
        let row = kubectl.ok(&["get", "pod", "fails", "--no-headers"]).await;
        assert!(row.contains(" Error "), "{row}");

        // A crash loop: the current log and the previous run's.
        kubectl
            .ok(&[
                "run",
                "crash",
                "--image=busybox:1.36",
                "--",
                "sh",
                "-c",
                "echo crashing; exit 1",
            ])
            .await;
        kubectl
            .ok(&[
                "wait",
                "--for=jsonpath={.status.containerStatuses[0].restartCount}=1",
                "pod/crash",
                "--timeout=60s",
            ])
            .await;
        assert_eq!(
            kubectl.ok(&["logs", "crash", "--previous"]).await,
            "crashing\n"
        );
        let never = kubectl.run(&["logs", "fails", "--previous"]).await;
        assert!(
            never
                .stderr
                .contains("previous terminated container \"fails\" in pod \"fails\" not found"),
            "{}",
            never.stderr
        );

        // Two containers: each its own log; a mounted ConfigMap read by `cat`.
        let file = manifest(kubectl, "two.yaml", SIDECAR);
        kubectl.ok(&["apply", "-f", &file]).await;
        kubectl
            .ok(&["wait", "--for=condition=Ready", "pod/two", "--timeout=60s"])
            .await;
        let main = kubectl
            .ok(&["logs", "two", "-c", "main", "--tail=-1"])
            .await;
        assert!(main.starts_with("welcome aboard\ntick\n"), "{main}");
        assert_eq!(
            kubectl.ok(&["logs", "two", "-c", "side"]).await,
            "side car up\n"
        );
        let defaulted = kubectl.run(&["logs", "two", "--tail=1"]).await;
        assert!(
            defaulted
                .stderr
                .contains("Defaulted container \"main\" out of: main, side"),
            "{}",
            defaulted.stderr
        );
        let stamped = kubectl
            .ok(&["logs", "two", "-c", "side", "--timestamps"])
            .await;
        let (stamp, line) = stamped.trim_end().split_once(' ').unwrap();
        assert_eq!(line, "side car up");
        assert!(
            stamp.ends_with('Z') && stamp.contains('T') && stamp.len() == 30,
            "{stamp}"
        );
        let unknown = kubectl.run(&["logs", "two", "-c", "nope"]).await;
        assert!(
            unknown
                .stderr
                .contains("container nope is not valid for pod two"),
            "{}",
            unknown.stderr
        );
        // A followed log streams what is printed until it is stopped.
        let mut follow = kubectl.command(&["logs", "-f", "two", "-c", "main", "--tail=0"]);
        follow.stdout(std::process::Stdio::piped());
        let mut child = follow.spawn().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
            line
        })
        .await
        .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(line, "tick\n");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cronjob_runs_on_the_cluster_clock_and_keeps_its_history() {
    each_version(&[27, 33], async |_, kubectl| {
        kubectl
            .ok(&[
                "create",
                "cronjob",
                "tick",
                "--image=busybox:1.36",
                "--schedule=* * * * *",
                "--",
                "echo",
                "tick",
            ])
            .await;
        // Within the minute (six seconds at ten times real time) the first Job runs and ends.
        let jobs = poll(
            kubectl,
            &["get", "jobs", "-o", "jsonpath={.items[*].status.succeeded}"],
            |out| out.contains('1'),
        )
        .await;
        assert!(
            jobs.contains('1'),
            "no job of the cronjob succeeded: {jobs:?}"
        );
        let job = kubectl
            .ok(&["get", "jobs", "-o", "jsonpath={.items[0].metadata.name}"])
            .await;
        assert!(job.starts_with("tick-"), "{job}");
        assert_eq!(kubectl.ok(&["logs", &format!("job/{job}")]).await, "tick\n");
        let row = kubectl
            .ok(&["get", "cronjob", "tick", "--no-headers"])
            .await;
        assert!(row.contains("* * * * *"), "{row}");
        let columns: Vec<&str> = row.split_whitespace().collect();
        assert_ne!(columns[9], "<none>", "a last schedule time is shown: {row}");
        // A Job from the CronJob by hand, as `create job --from` makes it.
        kubectl
            .ok(&["create", "job", "by-hand", "--from=cronjob/tick"])
            .await;
        kubectl
            .ok(&[
                "wait",
                "--for=condition=complete",
                "job/by-hand",
                "--timeout=60s",
            ])
            .await;
        // Suspended, it starts nothing more.
        kubectl
            .ok(&[
                "patch",
                "cronjob",
                "tick",
                "-p",
                r#"{"spec":{"suspend":true}}"#,
            ])
            .await;
        let suspended = kubectl
            .ok(&["get", "cronjob", "tick", "-o", "jsonpath={.spec.suspend}"])
            .await;
        assert_eq!(suspended, "true");
    })
    .await;
}

const SLOW_STOP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example/web:1
        lifecycle: {preStop: {exec: {command: [sh, -c, "sleep 20"]}}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_keeps_the_owner_until_its_pods_are_gone() {
    each_version(&[27, 33], async |_, kubectl| {
        // A preStop hook keeps the pods terminating for a while (two seconds of real time).
        let file = manifest(kubectl, "slow-stop.yaml", SLOW_STOP);
        kubectl.ok(&["apply", "-f", &file]).await;
        kubectl
            .ok(&["rollout", "status", "deploy/web", "--timeout=120s"])
            .await;
        kubectl
            .ok(&[
                "delete",
                "deployment",
                "web",
                "--cascade=foreground",
                "--wait=false",
            ])
            .await;
        let finalizers = kubectl
            .ok(&[
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.metadata.finalizers}",
            ])
            .await;
        assert_eq!(finalizers, r#"["foregroundDeletion"]"#);
        let terminating = kubectl.ok(&["get", "pods", "--no-headers"]).await;
        assert!(
            terminating.lines().all(|l| l.contains("Terminating")),
            "the pods terminate gracefully: {terminating}"
        );
        kubectl
            .ok(&["wait", "--for=delete", "deployment/web", "--timeout=60s"])
            .await;
        assert_eq!(kubectl.ok(&["get", "pods", "-o", "name"]).await, "");
    })
    .await;
}

const INVALID_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  containers:
  - name: web
    image: registry.example/web:1
    ports: [{containerPort: 70000}]
    env: [{name: 1BAD, value: x}]
    volumeMounts: [{name: data, mountPath: /data}]
    resources: {requests: {cpu: "2"}, limits: {cpu: "1"}}
  - name: web
    image: registry.example/web:1
"#;

const ALWAYS_JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: always}
spec:
  template:
    spec:
      containers: [{name: job, image: busybox:1.36, command: [echo, hi]}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_pod_specs_and_immutable_fields_are_refused_in_the_servers_words() {
    each_version(&[27, 33], async |_, kubectl| {
        let file = manifest(kubectl, "bad.yaml", INVALID_POD);
        let refused = kubectl.run(&["apply", "-f", &file]).await;
        assert_ne!(refused.code, 0);
        for expected in [
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].env[0].name: Invalid value: \"1BAD\": a valid environment variable name",
            "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
            "spec.containers[0].resources.requests[cpu]: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            "spec.containers[1].name: Duplicate value: \"web\"",
        ] {
            assert!(refused.stderr.contains(expected), "{expected}\nin {}", refused.stderr);
        }
        assert_eq!(kubectl.ok(&["get", "pods", "-o", "name"]).await, "");

        let file = manifest(kubectl, "always.yaml", ALWAYS_JOB);
        let refused = kubectl.run(&["apply", "-f", &file]).await;
        assert!(
            refused.stderr.contains(
                "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
            ),
            "{}",
            refused.stderr
        );

        kubectl
            .ok(&["create", "job", "once", "--image=busybox:1.36", "--", "sleep", "3600"])
            .await;
        let changed = kubectl
            .run(&["set", "image", "job/once", "once=busybox:1.37"])
            .await;
        assert!(
            changed.stderr.contains("spec.template: Invalid value")
                && changed.stderr.contains("field is immutable"),
            "{}",
            changed.stderr
        );
    })
    .await;
}

fn app(env: &str, sidecar: bool, ports: &str) -> String {
    let sidecar = if sidecar {
        "\n      - {name: proxy, image: registry.example/web:1}"
    } else {
        ""
    };
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: registry.example/web:1
        env: [{env}]
        ports: [{ports}]{sidecar}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_removes_dropped_items_whole_and_respects_scale_and_migration() {
    each_version(&[27, 33], async |_, kubectl| {
        let full = manifest(
            kubectl,
            "full.yaml",
            &app(
                "{name: A, value: '1'}, {name: B, value: '2'}",
                true,
                "{containerPort: 8080, name: http}, {containerPort: 9090, name: metrics}",
            ),
        );
        let trimmed = manifest(
            kubectl,
            "trimmed.yaml",
            &app(
                "{name: A, value: '1'}",
                false,
                "{containerPort: 8080, name: http}",
            ),
        );
        kubectl.ok(&["apply", "--server-side", "-f", &full]).await;
        kubectl
            .ok(&["apply", "--server-side", "-f", &trimmed])
            .await;
        let spec = kubectl
            .ok(&[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.spec.template.spec.containers}",
            ])
            .await;
        let containers: serde_json::Value = serde_json::from_str(&spec).unwrap();
        assert_eq!(containers.as_array().unwrap().len(), 1, "{spec}");
        assert_eq!(
            containers[0]["env"],
            serde_json::json!([{"name": "A", "value": "1"}])
        );
        assert_eq!(
            containers[0]["ports"].as_array().unwrap().len(),
            1,
            "{spec}"
        );
        assert_eq!(containers[0]["ports"][0]["containerPort"], 8080);

        // `kubectl scale` owns the replicas: an apply that changes them conflicts.
        kubectl.ok(&["scale", "deploy/web", "--replicas=5"]).await;
        let conflict = kubectl
            .run(&["apply", "--server-side", "-f", &trimmed])
            .await;
        assert_ne!(conflict.code, 0);
        assert!(
            conflict.stderr.contains("with subresource \"scale\"")
                && conflict.stderr.contains(".spec.replicas"),
            "{}",
            conflict.stderr
        );
        kubectl.ok(&["delete", "deploy", "web"]).await;

        // Client-side apply, then server-side: kubectl moves the fields to its apply manager,
        // so what the next configuration drops goes.
        kubectl.ok(&["apply", "-f", &full]).await;
        kubectl
            .ok(&["apply", "--server-side", "-f", &trimmed])
            .await;
        let env = kubectl
            .ok(&[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].env[*].name}",
            ])
            .await;
        assert_eq!(env, "A");
        let managers = kubectl
            .ok(&[
                "get",
                "deploy",
                "web",
                "--show-managed-fields",
                "-o",
                "jsonpath={.metadata.managedFields[*].manager}",
            ])
            .await;
        assert!(
            !managers.contains("kubectl-client-side-apply"),
            "{managers}"
        );
    })
    .await;
}

const SCALABLE: &str = r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
 "metadata": {"name": "workers.example.com"},
 "spec": {"group": "example.com", "scope": "Namespaced",
  "names": {"kind": "Worker", "plural": "workers", "singular": "worker"},
  "versions": [{"name": "v1", "served": true, "storage": true,
   "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.count", "statusReplicasPath": ".status.count", "labelSelectorPath": ".status.selector"}},
   "schema": {"openAPIV3Schema": {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {"count": {"type": "integer"}}},
    "status": {"type": "object", "properties": {"count": {"type": "integer"}, "selector": {"type": "string"}}}}}}}]}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_resource_scales_through_the_paths_its_crd_names() {
    each_version(&[27, 33], async |_, kubectl| {
        let crd = manifest(kubectl, "crd.json", SCALABLE);
        kubectl.ok(&["apply", "-f", &crd]).await;
        kubectl
            .ok(&[
                "wait",
                "--for=condition=Established",
                "crd/workers.example.com",
                "--timeout=30s",
            ])
            .await;
        let worker = manifest(
            kubectl,
            "worker.yaml",
            "apiVersion: example.com/v1\nkind: Worker\nmetadata: {name: w}\nspec: {count: 1}\n",
        );
        kubectl.ok(&["apply", "-f", &worker]).await;
        kubectl.ok(&["scale", "worker/w", "--replicas=4"]).await;
        let count = kubectl
            .ok(&["get", "worker", "w", "-o", "jsonpath={.spec.count}"])
            .await;
        assert_eq!(count, "4");
        let scale = kubectl
            .ok(&[
                "get",
                "--raw",
                "/apis/example.com/v1/namespaces/default/workers/w/scale",
            ])
            .await;
        let scale: serde_json::Value = serde_json::from_str(&scale).unwrap();
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["spec"]["replicas"], 4);
    })
    .await;
}

const AUTOSCALED: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: registry.example/web:1, resources: {requests: {cpu: 100m}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 6
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_autoscaler_scales_on_cpu_within_its_bounds_and_says_when_it_cannot_measure() {
    each_version(&[27, 33], async |cluster, kubectl| {
        let file = manifest(kubectl, "hpa.yaml", AUTOSCALED);
        kubectl.ok(&["apply", "-f", &file]).await;
        kubectl
            .ok(&["rollout", "status", "deploy/web", "--timeout=120s"])
            .await;
        // No metrics server: the autoscaler says so and leaves the Deployment alone.
        kubectl
            .ok(&[
                "wait",
                "--for=condition=ScalingActive=False",
                "hpa/web",
                "--timeout=60s",
            ])
            .await;
        let reason = kubectl
            .ok(&[
                "get",
                "hpa",
                "web",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"ScalingActive\")].reason}",
            ])
            .await;
        assert_eq!(reason, "FailedGetResourceMetric");
        // 90m of 100m requested is 90% against a 50% target: 2 × 1.8 → 4 pods.
        cluster.set_cpu_usage("default", "app=web", 90);
        kubectl
            .ok(&[
                "wait",
                "--for=jsonpath={.spec.replicas}=4",
                "deploy/web",
                "--timeout=60s",
            ])
            .await;
        let targets = kubectl.ok(&["get", "hpa", "web", "--no-headers"]).await;
        assert!(targets.contains("cpu: 90%/50%"), "{targets}");
        // Far above: held at the maximum, and the autoscaler says it is limited.
        cluster.set_cpu_usage("default", "app=web", 400);
        kubectl
            .ok(&[
                "wait",
                "--for=jsonpath={.spec.replicas}=6",
                "deploy/web",
                "--timeout=60s",
            ])
            .await;
        kubectl
            .ok(&[
                "wait",
                "--for=condition=ScalingLimited",
                "hpa/web",
                "--timeout=60s",
            ])
            .await;
        let events = kubectl
            .ok(&[
                "get",
                "events",
                "--field-selector=reason=SuccessfulRescale",
                "-o",
                "jsonpath={.items[*].message}",
            ])
            .await;
        assert!(
            events.contains(
                "New size: 4; reason: cpu resource utilization (percentage of request) above target"
            ),
            "{events}"
        );
    })
    .await;
}

const SURGING: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: registry.example/web:1}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemonset_surges_node_by_node_and_never_leaves_a_node_without_a_ready_pod() {
    each_version(&[27, 33], async |cluster, kubectl| {
        let file = manifest(kubectl, "surging.yaml", SURGING);
        kubectl.ok(&["apply", "-f", &file]).await;
        kubectl
            .ok(&["rollout", "status", "ds/agent", "--timeout=120s"])
            .await;
        // The new version takes 20 s to be ready: long enough to see the surge pod beside the
        // old one.
        cluster.set_image_behaviour(
            GOOD_TOO,
            deployguard_kube_sim::ImageBehaviour::ready_after(20),
        );
        kubectl
            .ok(&["set", "image", "ds/agent", &format!("agent={GOOD_TOO}")])
            .await;
        let surged = poll(kubectl, &["get", "pods", "--no-headers"], |out| {
            out.lines().filter(|l| !l.contains("Terminating")).count() == 4
        })
        .await;
        let live: Vec<&str> = surged
            .lines()
            .filter(|l| !l.contains("Terminating"))
            .collect();
        assert_eq!(
            live.len(),
            4,
            "one surge pod beside three old ones:\n{surged}"
        );
        assert_eq!(
            live.iter().filter(|l| l.contains(" 1/1 ")).count(),
            3,
            "every node keeps a ready pod:\n{surged}"
        );
        kubectl
            .ok(&["rollout", "status", "ds/agent", "--timeout=120s"])
            .await;
        // The old pods finish terminating a moment after the rollout is complete.
        let images = poll(
            kubectl,
            &[
                "get",
                "pods",
                "-o",
                "jsonpath={.items[*].spec.containers[0].image}",
            ],
            |out| out.split_whitespace().all(|i| i == GOOD_TOO),
        )
        .await;
        assert_eq!(images, [GOOD_TOO; 3].join(" "));
    })
    .await;
}

const CSR: &str = r#"
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {name: alice}
spec:
  request: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K
  signerName: kubernetes.io/kube-apiserver-client
  usages: [client auth]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_signing_request_is_pending_until_approved_then_issued() {
    each_version(&[27, 33], async |_, kubectl| {
        let file = manifest(kubectl, "csr.yaml", CSR);
        kubectl.ok(&["apply", "-f", &file]).await;
        let row = kubectl.ok(&["get", "csr", "alice", "--no-headers"]).await;
        assert!(row.trim_end().ends_with("Pending"), "{row}");
        kubectl.ok(&["certificate", "approve", "alice"]).await;
        let row = poll(kubectl, &["get", "csr", "alice", "--no-headers"], |out| {
            out.trim_end().ends_with("Approved,Issued")
        })
        .await;
        assert!(row.trim_end().ends_with("Approved,Issued"), "{row}");
        let pem = kubectl
            .ok(&[
                "get",
                "csr",
                "alice",
                "-o",
                "jsonpath={.status.certificate}",
            ])
            .await;
        use base64::Engine as _;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(pem)
            .unwrap();
        assert!(
            String::from_utf8(pem)
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
    })
    .await;
}

const QUOTA_AND_LIMITS: &str = r#"
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute}
spec:
  hard: {pods: "2", requests.cpu: "1"}
---
apiVersion: v1
kind: LimitRange
metadata: {name: defaults}
spec:
  limits:
  - type: Container
    default: {cpu: 300m}
    defaultRequest: {cpu: 200m}
    max: {cpu: "1", memory: 1Gi}
"#;

const TOO_BIG: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: big}
spec:
  containers:
  - name: web
    image: registry.example/web:1
    resources: {limits: {cpu: "2"}}
"#;

/// The words of `text`'s line that starts with `first`.
fn row<'t>(text: &'t str, first: &str) -> Vec<&'t str> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|words| words.first() == Some(&first))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_what_exceeds_them_and_limit_ranges_fill_in_and_bound_resources() {
    each_version(&[27, 33], async |_, kubectl| {
        let file = manifest(kubectl, "quota.yaml", QUOTA_AND_LIMITS);
        kubectl.ok(&["apply", "-f", &file]).await;
        // A LimitRange's defaults as the server fills them in: a default limit from the max,
        // the default request from the default.
        let defaults = kubectl
            .ok(&["get", "limitrange", "defaults", "-o",
                "jsonpath={.spec.limits[0].default.memory} {.spec.limits[0].defaultRequest.memory}"])
            .await;
        assert_eq!(defaults, "1Gi 1Gi");

        kubectl
            .ok(&["create", "deployment", "web", &format!("--image={GOOD}"), "--replicas=3"])
            .await;
        let events = poll(kubectl, &["get", "events"], |out| out.contains("FailedCreate")).await;
        assert!(
            events.contains("exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2"),
            "{events}"
        );
        let pods = kubectl.ok(&["get", "pods", "-o", "name"]).await;
        assert_eq!(pods.lines().count(), 2, "{pods}");
        let pod = pods.lines().next().unwrap().to_owned();
        let resources = kubectl
            .ok(&["get", &pod, "-o",
                "jsonpath={.spec.containers[0].resources.requests.cpu} {.spec.containers[0].resources.limits.cpu} {.metadata.annotations.kubernetes\\.io/limit-ranger}"])
            .await;
        assert_eq!(
            resources,
            "200m 300m LimitRanger plugin set: cpu, memory request for container web; cpu, memory limit for container web"
        );
        let quota = poll(kubectl, &["describe", "quota", "compute"], |out| {
            row(out, "requests.cpu") == ["requests.cpu", "400m", "1"]
        })
        .await;
        assert_eq!(row(&quota, "pods"), ["pods", "2", "2"], "{quota}");

        // A container over the LimitRange's max is refused before the quota is looked at.
        let file = manifest(kubectl, "big.yaml", TOO_BIG);
        let refused = kubectl.run(&["apply", "-f", &file]).await;
        assert!(
            refused.stderr.contains(
                "pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
            ),
            "{}",
            refused.stderr
        );

        // Room in the quota: the ReplicaSet's next try creates the third pod.
        kubectl
            .ok(&["patch", "resourcequota", "compute", "-p", r#"{"spec":{"hard":{"pods":"3"}}}"#])
            .await;
        let pods = poll(kubectl, &["get", "pods", "-o", "name"], |out| out.lines().count() == 3).await;
        assert_eq!(pods.lines().count(), 3, "{pods}");

        // Under a quota of compute resources, a pod must state them.
        kubectl.ok(&["create", "namespace", "bare"]).await;
        kubectl
            .ok(&["create", "quota", "cpu", "--hard=requests.cpu=1", "-n", "bare"])
            .await;
        let refused = kubectl
            .run(&["run", "p", &format!("--image={GOOD}"), "-n", "bare"])
            .await;
        assert!(
            refused
                .stderr
                .contains("pods \"p\" is forbidden: failed quota: cpu: must specify requests.cpu"),
            "{}",
            refused.stderr
        );

        // A running pod's image may change; its other spec fields may not.
        kubectl.ok(&["set", "image", &pod, &format!("web={GOOD_TOO}")]).await;
        let changed = kubectl
            .run(&["patch", &pod, "-p", r#"{"spec":{"containers":[{"name":"web","ports":[{"containerPort":80}]}]}}"#])
            .await;
        assert!(
            changed.stderr.contains(
                "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
            ),
            "{}",
            changed.stderr
        );
    })
    .await;
}

/// Starts pod `box`, a busybox that sleeps for ever, and waits until it runs.
async fn start_box(kubectl: &Kubectl) {
    kubectl
        .ok(&[
            "run",
            "box",
            "--image=busybox:1.36",
            "--",
            "sleep",
            "infinity",
        ])
        .await;
    let state = poll(kubectl, &["get", "pod", "box"], |out| {
        out.contains("Running")
    })
    .await;
    assert!(state.contains("Running"), "{state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_attach_stream_over_websocket_and_exit_with_the_commands_code() {
    // 1.30 is the first kubectl to stream over WebSocket.
    each_version(&[30, 33], async |_, kubectl| {
        start_box(kubectl).await;
        let out = kubectl
            .run(&[
                "exec",
                "box",
                "--",
                "sh",
                "-c",
                "echo hi; sleep 5; echo $HOSTNAME",
            ])
            .await;
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, "hi\nbox\n"),
            "{}",
            out.stderr
        );
        let failed = kubectl
            .run(&["exec", "box", "--", "sh", "-c", "exit 3"])
            .await;
        assert_eq!(failed.code, 3, "{}", failed.stderr);
        assert!(
            failed
                .stderr
                .contains("command terminated with exit code 3"),
            "{}",
            failed.stderr
        );
        let missing = kubectl.run(&["exec", "box", "--", "ls"]).await;
        assert_eq!(missing.code, 1);
        assert!(
            missing
                .stderr
                .contains("exec: \"ls\": executable file not found in $PATH"),
            "{}",
            missing.stderr
        );
        let wrong = kubectl
            .run(&["exec", "-c", "nope", "box", "--", "echo"])
            .await;
        assert!(
            wrong
                .stderr
                .contains("container nope is not valid for pod box"),
            "{}",
            wrong.stderr
        );

        // `run -i` attaches: what the container prints from then on, and its exit code.
        let run = kubectl
            .run(&[
                "run",
                "once",
                "--rm",
                "-i",
                "--restart=Never",
                "--image=busybox:1.36",
                "--",
                "sh",
                "-c",
                "sleep 60; echo late; exit 4",
            ])
            .await;
        assert_eq!(
            (run.code, run.stdout.trim()),
            (4, "late\npod \"once\" deleted"),
            "{}",
            run.stderr
        );
        // `--rm` deletes the finished pod; the kubelet removes it a moment later.
        let left = poll(kubectl, &["get", "pods", "-o", "name"], |out| {
            out == "pod/box\n"
        })
        .await;
        assert_eq!(left, "pod/box\n");
    })
    .await;
    // kubectl before 1.30 speaks SPDY, which the simulation does not serve: it says so.
    each_version(&[27], async |_, kubectl| {
        start_box(kubectl).await;
        let refused = kubectl.run(&["exec", "box", "--", "echo", "hi"]).await;
        assert!(
            refused
                .stderr
                .contains("serves exec over WebSocket only (kubectl 1.30 or later)"),
            "{}",
            refused.stderr
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_autoscale_writes_either_version_and_both_read_back() {
    // kubectl 1.27 writes autoscaling/v1; 1.33 writes v2 in protobuf.
    each_version(&[27, 33], async |_, kubectl| {
        kubectl
            .ok(&["create", "deployment", "web", &format!("--image={GOOD}")])
            .await;
        let out = kubectl
            .ok(&[
                "autoscale",
                "deployment",
                "web",
                "--min=2",
                "--max=5",
                "--cpu-percent=60",
            ])
            .await;
        assert_eq!(out, "horizontalpodautoscaler.autoscaling/web autoscaled\n");
        let hpa = kubectl.ok(&["get", "hpa", "web"]).await;
        assert_eq!(
            row(&hpa, "web")[..6],
            ["web", "Deployment/web", "cpu:", "<unknown>/60%", "2", "5"],
            "{hpa}"
        );
        let v1 = kubectl
            .ok(&[
                "get",
                "--raw",
                "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web",
            ])
            .await;
        let v1: serde_json::Value = serde_json::from_str(&v1).unwrap();
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(v1["spec"].get("metrics"), None);
        // The autoscaler raises the deployment to its minimum, metrics or none.
        let web = poll(kubectl, &["get", "deployment", "web"], |out| {
            out.contains("2/2")
        })
        .await;
        assert!(web.contains("2/2"), "{web}");
        let events = kubectl.ok(&["get", "events"]).await;
        assert!(
            events
                .contains("New size: 2; reason: Current number of replicas below Spec.MinReplicas"),
            "{events}"
        );
    })
    .await;
}
