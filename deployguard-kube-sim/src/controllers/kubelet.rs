//! The simulated scheduler and kubelet: pod status as a function of the pod, its images'
//! behaviours and time, with the reasons, messages and events of the real ones.

use crate::pointer::Pointer;
use std::time::{Duration, SystemTime};

use std::sync::Arc;

use serde_json::{Value, json};

use super::behaviour::ImageBehaviour;
use super::util::{Ctx, i, name, namespace, s, time_at, uid};
use crate::clock::rfc3339;

/// Crash-loop and image-pull back-off: 10 s doubling to 5 min.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs((10u64 << attempt.min(5)).min(300))
}

/// The IP of the node the pod runs on.
fn host_ip(ctx: &Ctx<'_>, pod: &Value) -> String {
    ctx.get("", "Node", "", s(pod, "/spec/nodeName"))
        .and_then(|node| {
            node.at("/status/addresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|a| s(a, "/type") == "InternalIP")
                .map(|a| s(a, "/address").to_owned())
        })
        .unwrap_or_else(|| "172.18.0.2".to_owned())
}

/// The pod's QoS class: `Guaranteed` when every container's requests equal its limits (CPU and
/// memory both set), `BestEffort` when none sets either, `Burstable` otherwise.
fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = pod
        .at("/spec/containers")
        .and_then(Value::as_array)
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let set = |c: &Value, kind: &str| {
        c.at(&format!("/resources/{kind}"))
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key("cpu") || m.contains_key("memory"))
    };
    if containers
        .iter()
        .all(|c| !set(c, "requests") && !set(c, "limits"))
    {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = c.at(&format!("/resources/limits/{r}"));
            let request = c.at(&format!("/resources/requests/{r}")).or(limit);
            limit.is_some() && request == limit
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// A content digest of real length (64 hex digits), stable per `text`.
fn digest(text: &str) -> String {
    (0..4u8)
        .map(|part| format!("{:016x}", hash(&format!("{part}{text}"))))
        .collect()
}

/// The repository a runtime reports an image by: `docker.io/library/nginx` for `nginx:1.27`.
fn image_repository(image: &str) -> String {
    let canonical = super::behaviour::canonical_image(image);
    let repository = canonical
        .rsplit_once('@')
        .map(|(r, _)| r.to_owned())
        .or_else(|| {
            let (head, last) = canonical.rsplit_once('/').unwrap_or(("", &canonical));
            let name = last.split(':').next().unwrap_or(last);
            Some(if head.is_empty() {
                name.to_owned()
            } else {
                format!("{head}/{name}")
            })
        })
        .unwrap_or(canonical.clone());
    match repository.split_once('/') {
        Some((host, _)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            repository
        }
        Some(_) => format!("docker.io/{repository}"),
        None => format!("docker.io/library/{repository}"),
    }
}

/// A pod's IP, unique in the cluster: from the sequence number in its uid.
fn pod_ip(pod: &Value) -> String {
    let uid = uid(pod);
    let n = u64::from_str_radix(uid.rsplit('-').next().unwrap_or(""), 16)
        .unwrap_or_else(|_| hash(&uid));
    format!("10.244.{}.{}", (n / 250) % 256, n % 250 + 2)
}

fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// What one container looks like now.
struct Container {
    name: String,
    image: String,
    state: Value,
    last_state: Value,
    ready: bool,
    started: bool,
    restarts: i64,
    /// Terminated for good (Jobs).
    finished: Option<i32>,
    /// Never started yet.
    waiting_to_start: bool,
    /// What it printed, when its command is a script (else the image's lines).
    log: Option<crate::logs::ContainerLog>,
}

/// A missing ConfigMap or Secret the container references without `optional: true`.
fn missing_config(ctx: &Ctx<'_>, ns: &str, container: &Value) -> Option<String> {
    let exists = |kind: &str, name: &str| ctx.get("", kind, ns, name).is_some();
    let mut refs: Vec<(&str, String)> = Vec::new();
    for env in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (key, kind) in [("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")] {
            if let Some(r) = env.at(&format!("/valueFrom/{key}"))
                && r.get("optional") != Some(&json!(true))
            {
                refs.push((kind, s(r, "/name").to_owned()));
            }
        }
    }
    for from in container
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (key, kind) in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")] {
            if let Some(r) = from.get(key)
                && r.get("optional") != Some(&json!(true))
            {
                refs.push((kind, s(r, "/name").to_owned()));
            }
        }
    }
    refs.into_iter()
        .find(|(kind, name)| !exists(kind, name))
        .map(|(kind, name)| format!("{} \"{name}\" not found", kind.to_lowercase()))
}

fn waiting(reason: &str, message: &str) -> Value {
    if message.is_empty() {
        json!({"waiting": {"reason": reason}})
    } else {
        json!({"waiting": {"reason": reason, "message": message}})
    }
}

/// Simulates one container `elapsed` after the pod was scheduled.
fn simulate(
    ctx: &mut Ctx<'_>,
    pod: &Value,
    spec: &Value,
    created: SystemTime,
    elapsed: Duration,
    events: &mut Vec<(String, String, String)>,
) -> Container {
    let container_name = s(spec, "/name").to_owned();
    let image = s(spec, "/image").to_owned();
    let behaviour = ctx.behaviours.of(&image);
    let at = |d: Duration| rfc3339(created + d);
    let mut c = Container {
        name: container_name.clone(),
        image: image.clone(),
        state: waiting("ContainerCreating", ""),
        last_state: json!({}),
        ready: false,
        started: false,
        restarts: 0,
        finished: None,
        waiting_to_start: true,
        log: None,
    };
    let pod_ref = format!("{}_{}({})", name(pod), namespace(pod), uid(pod));
    if let Some(missing) = missing_config(ctx, &namespace(pod), spec) {
        c.state = waiting("CreateContainerConfigError", &missing);
        events.push((
            "Warning".into(),
            "Failed".into(),
            format!("Error: {missing}"),
        ));
        ctx.wake_in(Duration::from_secs(10));
        return c;
    }
    let start = Duration::from_secs(1);
    if elapsed < start {
        ctx.wake_at(created + start);
        return c;
    }
    let running_since = |d: Duration| json!({"running": {"startedAt": at(d)}});
    match behaviour {
        ImageBehaviour::PullFails { error } => {
            events.push((
                "Normal".into(),
                "Pulling".into(),
                format!("Pulling image \"{image}\""),
            ));
            events.push((
                "Warning".into(),
                "Failed".into(),
                format!("Failed to pull image \"{image}\": {error}"),
            ));
            events.push((
                "Warning".into(),
                "Failed".into(),
                "Error: ErrImagePull".into(),
            ));
            if elapsed < start + Duration::from_secs(5) {
                c.state = waiting("ErrImagePull", &error);
                ctx.wake_at(created + start + Duration::from_secs(5));
            } else {
                c.state = waiting(
                    "ImagePullBackOff",
                    &format!("Back-off pulling image \"{image}\""),
                );
                events.push((
                    "Normal".into(),
                    "BackOff".into(),
                    format!("Back-off pulling image \"{image}\""),
                ));
                events.push((
                    "Warning".into(),
                    "Failed".into(),
                    "Error: ImagePullBackOff".into(),
                ));
            }
            return c;
        }
        _ => {
            events.push((
                "Normal".into(),
                "Pulled".into(),
                format!("Container image \"{image}\" already present on machine"),
            ));
            events.push((
                "Normal".into(),
                "Created".into(),
                format!("Created container {container_name}"),
            ));
            events.push((
                "Normal".into(),
                "Started".into(),
                format!("Started container {container_name}"),
            ));
        }
    }
    c.waiting_to_start = false;
    c.started = true;
    c.state = running_since(start);
    if let Some(script) = script_of(ctx, pod, spec) {
        run_script(ctx, pod, &script, created, start, elapsed, &mut c, events);
        return c;
    }
    match behaviour {
        ImageBehaviour::Ready { startup } => {
            let ready_at = startup.max(start);
            c.ready = elapsed >= ready_at;
            if !c.ready {
                // Still starting: nothing listens yet, and the kubelet says so from its first
                // probe that finds nothing listening.
                let first_miss = start + probe_period(spec);
                if elapsed >= first_miss {
                    events.extend(refused(pod, spec));
                } else if first_miss < ready_at {
                    ctx.wake_at(created + first_miss);
                }
                ctx.wake_at(created + ready_at);
            }
        }
        ImageBehaviour::NeverReady { probe_output } => {
            events.push((
                "Warning".into(),
                "Unhealthy".into(),
                format!("Readiness probe failed: {probe_output}"),
            ));
        }
        ImageBehaviour::FailsAfterStart {
            startup,
            probe_output,
        } => {
            if elapsed < startup {
                let first_miss = start + probe_period(spec);
                if elapsed >= first_miss {
                    events.extend(refused(pod, spec));
                } else {
                    ctx.wake_at(created + first_miss);
                }
                ctx.wake_at(created + startup);
            } else {
                events.push((
                    "Warning".into(),
                    "Unhealthy".into(),
                    format!("Readiness probe failed: {probe_output}"),
                ));
            }
        }
        ImageBehaviour::Flapping { period } => {
            let period = period.max(Duration::from_secs(1));
            let phase = (elapsed - start).as_secs() / period.as_secs();
            c.ready = phase % 2 == 1;
            ctx.wake_at(created + start + period * (phase as u32 + 1));
            if !c.ready {
                events.push((
                    "Warning".into(),
                    "Unhealthy".into(),
                    "Readiness probe failed: HTTP probe failed with statuscode: 503".into(),
                ));
            }
        }
        ImageBehaviour::CrashLoop { .. } | ImageBehaviour::OomKilled => {
            let (code, reason) = match &behaviour {
                ImageBehaviour::CrashLoop { exit_code, .. } => (*exit_code, "Error"),
                _ => (137, "OOMKilled"),
            };
            // Runs 1 s, exits, waits its back-off, runs again.
            let mut crash = start + Duration::from_secs(1);
            let mut crashes = 0u32;
            let mut next_start = None;
            while crash <= elapsed {
                crashes += 1;
                let restart = crash + backoff(crashes - 1);
                next_start = Some((crash, restart));
                if restart > elapsed {
                    break;
                }
                crash = restart + Duration::from_secs(1);
                next_start = None;
            }
            c.restarts = i64::from(crashes);
            if let Some((crashed_at, restart_at)) = next_start {
                c.started = false;
                c.last_state = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": at(crashed_at - Duration::from_secs(1)), "finishedAt": at(crashed_at), "containerID": format!("containerd://{}", digest(&uid(pod)))}});
                c.state = waiting(
                    "CrashLoopBackOff",
                    &format!(
                        "back-off {}s restarting failed container={container_name} pod={pod_ref}",
                        backoff(crashes - 1).as_secs()
                    ),
                );
                events.push((
                    "Warning".into(),
                    "BackOff".into(),
                    format!(
                        "Back-off restarting failed container {container_name} in pod {pod_ref}"
                    ),
                ));
                ctx.wake_at(created + restart_at);
            } else if crashes > 0 {
                c.last_state = json!({"terminated": {"exitCode": code, "reason": reason, "finishedAt": at(crash - backoff(crashes - 1) - Duration::ZERO)}});
                c.state = running_since(crash - Duration::from_secs(1));
                ctx.wake_at(created + crash);
            } else {
                ctx.wake_at(created + crash);
            }
        }
        ImageBehaviour::Completes {
            after, exit_code, ..
        } => {
            if elapsed >= start + after {
                let reason = if exit_code == 0 { "Completed" } else { "Error" };
                c.state = json!({"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": at(start), "finishedAt": at(start + after)}});
                c.started = false;
                c.finished = Some(exit_code);
            } else {
                ctx.wake_at(created + start + after);
            }
        }
        ImageBehaviour::PullFails { .. } => {}
    }
    c
}

/// How often the container's readiness probe runs (`periodSeconds`, default 10 s), counted from
/// its initial delay: when a container that is still starting first shows a failed probe.
fn probe_period(spec: &Value) -> Duration {
    let probe = spec.get("readinessProbe");
    let field = |k: &str, default: u64| {
        probe
            .and_then(|p| p.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(default)
    };
    Duration::from_secs(field("initialDelaySeconds", 0) + field("periodSeconds", 10).max(1))
}

/// The kubelet's event for an HTTP or TCP readiness probe of a container whose app does not
/// listen yet: `Get "http://10.244.0.7:8080/healthz": dial tcp 10.244.0.7:8080: connect:
/// connection refused`. Nothing without a readiness probe (such a container is ready once it
/// runs).
fn refused(pod: &Value, spec: &Value) -> Option<(String, String, String)> {
    let probe = spec.get("readinessProbe")?;
    let ip = pod_ip(pod);
    let port_of = |port: &Value| -> String {
        match port {
            Value::String(name) => spec
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(name.as_str()))
                .and_then(|p| p.get("containerPort"))
                .map_or_else(|| name.clone(), Value::to_string),
            other => other.to_string(),
        }
    };
    let message = if let Some(get) = probe.get("httpGet") {
        let port = port_of(get.get("port").unwrap_or(&Value::Null));
        let path = get.get("path").and_then(Value::as_str).unwrap_or("/");
        format!(
            "Readiness probe failed: Get \"http://{ip}:{port}{path}\": dial tcp {ip}:{port}: connect: connection refused"
        )
    } else if let Some(tcp) = probe.get("tcpSocket") {
        let port = port_of(tcp.get("port").unwrap_or(&Value::Null));
        format!("Readiness probe failed: dial tcp {ip}:{port}: connect: connection refused")
    } else {
        return None;
    };
    Some(("Warning".into(), "Unhealthy".into(), message))
}

/// The container's script, when its command is in the simulated command language.
fn script_of(ctx: &Ctx<'_>, pod: &Value, spec: &Value) -> Option<super::command::Script> {
    let argv: Vec<String> = ["command", "args"]
        .iter()
        .flat_map(|field| {
            spec.get(*field)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect();
    if argv.is_empty() {
        return None;
    }
    let ns = namespace(pod);
    let lookup =
        |kind: &str, name: &str| super::command::data_of(kind, &ctx.get("", kind, &ns, name)?);
    let env = super::command::environment(pod, spec, &lookup);
    super::command::parse(&argv, &env)
}

/// A container running a script: it prints as it goes, and when it ends the pod's restart
/// policy decides — `Never` leaves it terminated, `OnFailure` restarts it after a failure,
/// `Always` after any end — each restart after the kubelet's back-off (CrashLoopBackOff).
#[allow(clippy::too_many_arguments)]
fn run_script(
    ctx: &mut Ctx<'_>,
    pod: &Value,
    script: &super::command::Script,
    created: SystemTime,
    start: Duration,
    elapsed: Duration,
    c: &mut Container,
    events: &mut Vec<(String, String, String)>,
) {
    let policy = match s(pod, "/spec/restartPolicy") {
        "" => "Always",
        p => p,
    };
    let at = |d: Duration| rfc3339(created + d);
    let stamp = |run_start: Duration, lines: &[(Duration, String)]| -> Vec<(SystemTime, String)> {
        lines
            .iter()
            .map(|(offset, line)| (created + run_start + *offset, line.clone()))
            .collect()
    };
    let mut run_start = start;
    let mut previous: Option<Vec<(SystemTime, String)>> = None;
    let mut attempts = 0u32;
    let pod_ref = format!("{}_{}({})", name(pod), namespace(pod), uid(pod));
    loop {
        let run = script.run(elapsed - run_start);
        let lines = stamp(run_start, &run.lines);
        let Some((took, code)) = run.exit else {
            c.ready = true;
            c.restarts = i64::from(attempts);
            c.state = json!({"running": {"startedAt": at(run_start)}});
            // A script asleep for ever (`sleep infinity`) has nothing to wake for.
            if let Some(at) = script
                .next_change(elapsed - run_start)
                .and_then(|next| (created + run_start).checked_add(next))
            {
                ctx.wake_at(at);
            }
            c.log = Some(crate::logs::ContainerLog {
                name: c.name.clone(),
                current: lines,
                previous,
                running: true,
                waiting: None,
            });
            return;
        };
        let ended = run_start + took;
        let reason = if code == 0 { "Completed" } else { "Error" };
        let terminated = json!({"terminated": {"exitCode": code, "reason": reason,
            "startedAt": at(run_start), "finishedAt": at(ended),
            "containerID": format!("containerd://{}", digest(&format!("{}{attempts}", uid(pod))))}});
        let restarts = match policy {
            "Never" => false,
            "OnFailure" => code != 0,
            _ => true,
        };
        if !restarts {
            c.started = false;
            c.ready = false;
            c.restarts = i64::from(attempts);
            c.state = terminated;
            c.finished = Some(code);
            c.log = Some(crate::logs::ContainerLog {
                name: c.name.clone(),
                current: lines,
                previous,
                running: false,
                waiting: None,
            });
            return;
        }
        attempts += 1;
        let restart_at = ended + backoff(attempts - 1);
        if restart_at > elapsed {
            c.started = false;
            c.ready = false;
            c.restarts = i64::from(attempts);
            c.last_state = terminated;
            c.state = waiting(
                "CrashLoopBackOff",
                &format!(
                    "back-off {}s restarting failed container={} pod={pod_ref}",
                    backoff(attempts - 1).as_secs(),
                    c.name
                ),
            );
            events.push((
                "Warning".into(),
                "BackOff".into(),
                format!(
                    "Back-off restarting failed container {} in pod {pod_ref}",
                    c.name
                ),
            ));
            ctx.wake_at(created + restart_at);
            // Backing off, the last run is both the current container and the previous
            // (terminated) one.
            c.log = Some(crate::logs::ContainerLog {
                name: c.name.clone(),
                current: lines.clone(),
                previous: Some(lines),
                running: false,
                waiting: None,
            });
            return;
        }
        c.last_state = terminated;
        previous = Some(lines);
        run_start = restart_at;
    }
}

fn logs_of(behaviour: &ImageBehaviour, container: &Container) -> Vec<String> {
    match behaviour {
        ImageBehaviour::CrashLoop { logs, .. } | ImageBehaviour::Completes { logs, .. } => {
            logs.clone()
        }
        ImageBehaviour::OomKilled => vec!["allocating buffers".into()],
        _ if container.started => vec![format!("{} listening on :8080", container.image)],
        _ => Vec::new(),
    }
}

/// Brings every pod's status up to date.
pub(crate) fn reconcile(ctx: &mut Ctx<'_>) {
    let now = ctx.now();
    super::scheduler::evict_from_tainted_nodes(ctx);
    let all_pods = ctx.all_shared("", "Pod");
    let mut scheduler: Option<super::scheduler::Scheduler> = None;
    for pod in all_pods.iter().cloned() {
        if let Some(deadline) = time_at(&pod, "/metadata/deletionTimestamp") {
            stop(ctx, &pod, deadline, now);
            continue;
        }
        let phase = s(&pod, "/status/phase");
        if matches!(phase, "Succeeded" | "Failed") {
            continue;
        }
        let Some(created) = time_at(&pod, "/metadata/creationTimestamp") else {
            continue;
        };
        let elapsed = now.duration_since(created).unwrap_or(Duration::ZERO);
        let mut pod = pod;
        let mut events: Vec<(String, String, String, Option<String>, &'static str)> = Vec::new();

        // Scheduling.
        if s(&pod, "/spec/nodeName").is_empty() {
            let scheduler =
                scheduler.get_or_insert_with(|| super::scheduler::Scheduler::new(ctx, &all_pods));
            match scheduler.place(&pod, hash(&uid(&pod))) {
                super::scheduler::Placement::Nowhere(message) => {
                    let status = json!({
                        "phase": "Pending",
                        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message, "lastProbeTime": null, "lastTransitionTime": s(&pod, "/metadata/creationTimestamp")}],
                        "qosClass": qos_class(&pod),
                    });
                    events.push((
                        "Warning".into(),
                        "FailedScheduling".into(),
                        message,
                        None,
                        "default-scheduler",
                    ));
                    write(ctx, &pod, status, events);
                    continue;
                }
                super::scheduler::Placement::On(node) => {
                    let mut scheduled = Value::clone(&pod);
                    scheduled["spec"]["nodeName"] = json!(node);
                    let message = format!(
                        "Successfully assigned {}/{} to {node}",
                        namespace(&pod),
                        name(&pod)
                    );
                    match ctx.update("", "Pod", scheduled) {
                        Ok(updated) => pod = Arc::new(updated),
                        Err(_) => continue,
                    }
                    events.push((
                        "Normal".into(),
                        "Scheduled".into(),
                        message,
                        None,
                        "default-scheduler",
                    ));
                }
            }
        }

        // Containers.
        let specs: Vec<Value> = pod
            .at("/spec/containers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut containers = Vec::new();
        let mut logs: Vec<crate::logs::ContainerLog> = Vec::new();
        for spec in &specs {
            let mut container_events = Vec::new();
            let container = simulate(ctx, &pod, spec, created, elapsed, &mut container_events);
            let field_path = format!("spec.containers{{{}}}", container.name);
            for (kind, reason, message) in container_events {
                events.push((kind, reason, message, Some(field_path.clone()), "kubelet"));
            }
            let log = container.log.clone().unwrap_or_else(|| {
                let lines = logs_of(&ctx.behaviours.of(&container.image), &container);
                let stamped: Vec<(SystemTime, String)> = lines
                    .into_iter()
                    .map(|l| (created + Duration::from_secs(1), l))
                    .collect();
                crate::logs::ContainerLog {
                    name: container.name.clone(),
                    previous: (container.restarts > 0).then(|| stamped.clone()),
                    current: stamped,
                    running: container.started && container.finished.is_none(),
                    waiting: container
                        .waiting_to_start
                        .then(|| s(&container.state, "/waiting/reason").to_owned()),
                }
            });
            logs.push(log);
            containers.push(container);
        }
        let all_ready = !containers.is_empty() && containers.iter().all(|c| c.ready);
        let restart_never = s(&pod, "/spec/restartPolicy") != "Always";
        let phase = if restart_never
            && !containers.is_empty()
            && containers.iter().all(|c| c.finished.is_some())
        {
            if containers.iter().all(|c| c.finished == Some(0)) {
                "Succeeded"
            } else {
                "Failed"
            }
        } else if containers.iter().any(|c| c.waiting_to_start) {
            "Pending"
        } else {
            "Running"
        };
        let unready: Vec<&str> = containers
            .iter()
            .filter(|c| !c.ready)
            .map(|c| c.name.as_str())
            .collect();
        let previous_ready = pod
            .at("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| s(c, "/type") == "Ready").cloned());
        let ready_text = if all_ready { "True" } else { "False" };
        let ready_since = match &previous_ready {
            Some(prev) if s(prev, "/status") == ready_text => {
                s(prev, "/lastTransitionTime").to_owned()
            }
            _ => rfc3339(now),
        };
        let not_ready = |kind: &str| {
            if all_ready {
                json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": ready_since})
            } else {
                json!({"type": kind, "status": "False", "reason": "ContainersNotReady", "message": format!("containers with unready status: [{}]", unready.join(" ")), "lastProbeTime": null, "lastTransitionTime": ready_since})
            }
        };
        let created_text = s(&pod, "/metadata/creationTimestamp").to_owned();
        let statuses: Vec<Value> = containers
            .iter()
            .map(|c| {
                json!({
                    "name": c.name, "image": c.image,
                    "imageID": if c.started || c.restarts > 0 || c.finished.is_some() { format!("{}@sha256:{}", image_repository(&c.image), digest(&c.image)) } else { String::new() },
                    "ready": c.ready, "started": c.started, "restartCount": c.restarts,
                    "state": c.state, "lastState": c.last_state,
                })
            })
            .collect();
        let ip = pod_ip(&pod);
        let status = json!({
            "phase": phase,
            "conditions": [
                {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": created_text},
                not_ready("Ready"),
                not_ready("ContainersReady"),
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": created_text},
            ],
            "hostIP": host_ip(ctx, &pod),
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": created_text,
            "containerStatuses": statuses,
            "qosClass": qos_class(&pod),
        });
        let key = (namespace(&pod), name(&pod));
        ctx.logs.insert(key, logs);
        write(ctx, &pod, status, events);
    }
    // The logs of pods that are gone go with them.
    let live: std::collections::HashSet<(String, String)> =
        all_pods.iter().map(|p| (namespace(p), name(p))).collect();
    ctx.logs.retain(|key, _| live.contains(key));
}

/// How long after its last occurrence an ongoing failure's event recurs, as the kubelet and the
/// scheduler retry: a readiness probe every `periodSeconds` (10 s), the scheduler within its
/// 10 s back-off, an image pull or a container that cannot be configured after the kubelet's
/// back-off, doubling from 10 s to 5 minutes.
fn recurrence(reason: &str, count: i64) -> Option<Duration> {
    match reason {
        "Unhealthy" | "FailedScheduling" => Some(Duration::from_secs(10)),
        "BackOff" | "Failed" => {
            let doublings = u32::try_from(count.clamp(1, 6) - 1).unwrap_or(0);
            Some(Duration::from_secs(10 * 2u64.pow(doublings)).min(Duration::from_secs(300)))
        }
        _ => None,
    }
}

/// The events of a failure that goes on with no change of status: each recurs (its count grows,
/// its last-seen moves) once its [`recurrence`] has passed since it was last seen.
fn repeat_ongoing(
    ctx: &mut Ctx<'_>,
    pod: &Value,
    events: Vec<(String, String, String, Option<String>, &'static str)>,
) {
    if events.is_empty() {
        return;
    }
    let now = ctx.now();
    // Events are named after their object: only this pod's are read.
    let recorded = ctx.store.named_with_prefix(
        &ctx.rt("", "Event"),
        &namespace(pod),
        &format!("{}.", name(pod)),
    );
    let pod_uid = uid(pod);
    for (kind, reason, message, field_path, component) in events {
        let Some(last) = recorded.iter().find(|e| {
            s(e, "/involvedObject/uid") == pod_uid
                && s(e, "/reason") == reason
                && s(e, "/message") == message
        }) else {
            // A failure that began with no change of status (a starting app's probe that
            // finds nothing listening, then finds it answering 503): its first occurrence.
            if let Some(every) = recurrence(&reason, 1) {
                ctx.event(
                    pod,
                    &kind,
                    &reason,
                    &message,
                    component,
                    field_path.as_deref(),
                );
                ctx.wake_in(every);
            }
            continue;
        };
        let Some(every) = recurrence(&reason, i(last, "/count")) else {
            continue;
        };
        let seen = time_at(last, "/lastTimestamp").unwrap_or(now);
        let due = seen + every;
        if now >= due {
            ctx.event(
                pod,
                &kind,
                &reason,
                &message,
                component,
                field_path.as_deref(),
            );
            ctx.wake_in(recurrence(&reason, i(last, "/count") + 1).unwrap_or(every));
        } else if let Ok(left) = due.duration_since(now) {
            ctx.wake_in(left);
        }
    }
}

/// A pod being deleted: its preStop hook runs, then its containers get SIGTERM and exit a
/// second later (or are killed when the grace period ends, if sooner); then the kubelet
/// removes the pod, unless finalizers hold it.
fn stop(ctx: &mut Ctx<'_>, pod: &Value, deadline: SystemTime, now: SystemTime) {
    let marked = super::deletion_marked(pod).unwrap_or(deadline);
    let sigterm = marked + super::pre_stop(pod);
    if now < sigterm && sigterm < deadline {
        // The proxies may still send requests until the process stops: wake when it does.
        ctx.wake_at(sigterm);
    }
    let done = (sigterm + Duration::from_secs(1)).min(deadline);
    let held = pod
        .at("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if now < done {
        ctx.wake_at(done);
    } else if !held {
        let _ = ctx.delete("", "Pod", pod);
    }
}

/// Writes `status` if it changed, and the events of the transition. Events of a state that did
/// not change are not repeated, except back-offs, which the real kubelet repeats.
fn write(
    ctx: &mut Ctx<'_>,
    pod: &Value,
    status: Value,
    events: Vec<(String, String, String, Option<String>, &'static str)>,
) {
    if pod.get("status").unwrap_or(&Value::Null) == &status {
        repeat_ongoing(ctx, pod, events);
        return;
    }
    let old = pod.get("status").cloned().unwrap_or(Value::Null);
    let state_of = |status: &Value| {
        let containers = status
            .get("containerStatuses")
            .cloned()
            .unwrap_or(Value::Null);
        let mut shape = Vec::new();
        for c in containers.as_array().into_iter().flatten() {
            shape.push(format!(
                "{}|{}|{}|{}",
                c.at("/state")
                    .and_then(Value::as_object)
                    .and_then(|m| m.keys().next().cloned())
                    .unwrap_or_default(),
                s(c, "/state/waiting/reason"),
                c.get("ready") == Some(&json!(true)),
                i(c, "/restartCount")
            ));
        }
        (s(status, "/phase").to_owned(), shape)
    };
    let changed_shape = state_of(&old) != state_of(&status);
    let mut pod = pod.clone();
    pod["status"] = status;
    let Ok(updated) = ctx.update_status("", "Pod", pod) else {
        return;
    };
    if changed_shape {
        let old_text = old.to_string();
        for (kind, reason, message, field_path, component) in events {
            // Lifecycle events (Scheduled, Pulled, Created, Started) happen once per start.
            let repeatable = matches!(
                reason.as_str(),
                "BackOff" | "Failed" | "Unhealthy" | "FailedScheduling"
            );
            let already = old_text.contains("\"startedAt\"")
                && matches!(reason.as_str(), "Pulled" | "Created" | "Started")
                && !old_text.contains("CrashLoopBackOff");
            if !repeatable && already {
                continue;
            }
            ctx.event(
                &updated,
                &kind,
                &reason,
                &message,
                component,
                field_path.as_deref(),
            );
        }
    }
}
