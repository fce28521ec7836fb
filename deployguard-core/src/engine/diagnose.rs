//! Failure diagnosis from what a backend observed: pod reasons, events, conditions.

use crate::model::{Diagnosis, FailureMode, PodState, RolloutSnapshot};

/// Every failure mode `snapshot` shows, each with its evidence, most specific first.
///
/// Only pods of the current revision are read: old pods failing is not what this rollout broke.
pub fn diagnose(snapshot: &RolloutSnapshot) -> Vec<Diagnosis> {
    let current: Vec<&PodState> = match snapshot.current_revision {
        Some(id) => snapshot.pods_of(id).collect(),
        None => snapshot.pods.iter().collect(),
    };
    let mut found: Vec<Diagnosis> = Vec::new();
    for pod in &current {
        let message = pod.message.clone().unwrap_or_default();
        match pod.waiting_reason.as_deref() {
            Some("ErrImagePull" | "ImagePullBackOff" | "InvalidImageName") => add(
                &mut found,
                FailureMode::ImagePull {
                    image: image_in(&message).unwrap_or_default(),
                },
                format!(
                    "pod {}: {}: {message}",
                    pod.name,
                    pod.waiting_reason.as_deref().unwrap_or_default()
                ),
            ),
            Some("CrashLoopBackOff") => {
                let restarts = current.iter().map(|p| p.restarts).max().unwrap_or(0);
                add(
                    &mut found,
                    FailureMode::CrashLoop { restarts },
                    format!(
                        "pod {}: CrashLoopBackOff, {} restarts",
                        pod.name, pod.restarts
                    ),
                );
                for line in &pod.log_tail {
                    add(
                        &mut found,
                        FailureMode::CrashLoop { restarts },
                        format!("pod {} log: {line}", pod.name),
                    );
                }
            }
            Some("CreateContainerConfigError") => add(
                &mut found,
                FailureMode::ConfigError {
                    missing: missing_in(&message),
                },
                format!("pod {}: CreateContainerConfigError: {message}", pod.name),
            ),
            _ => {}
        }
        if pod.last_termination_reason.as_deref() == Some("OOMKilled") {
            add(
                &mut found,
                FailureMode::OomKilled,
                format!(
                    "pod {}: last terminated OOMKilled, {} restarts",
                    pod.name, pod.restarts
                ),
            );
        }
    }
    for event in &snapshot.events {
        if event.reason == "FailedScheduling" {
            add(
                &mut found,
                FailureMode::Unschedulable {
                    resource: resource_in(&event.message),
                },
                format!("{}: FailedScheduling: {}", event.object, event.message),
            );
        }
    }
    let running_unready: Vec<&&PodState> = current
        .iter()
        .filter(|p| p.phase == "Running" && !p.ready && p.waiting_reason.is_none())
        .collect();
    if !running_unready.is_empty() && found.is_empty() {
        let mut evidence = format!(
            "{} of {} pods of the current revision run but are not ready",
            running_unready.len(),
            current.len()
        );
        if let Some(message) = running_unready.iter().find_map(|p| p.message.as_deref()) {
            evidence.push_str(&format!(": {message}"));
        }
        add(&mut found, FailureMode::ReadinessFailing, evidence);
        for event in snapshot.events.iter().filter(|e| e.reason == "Unhealthy") {
            add(
                &mut found,
                FailureMode::ReadinessFailing,
                format!("{}: {}", event.object, event.message),
            );
        }
    }
    if snapshot.progress_deadline_exceeded {
        let message = snapshot
            .conditions
            .iter()
            .find(|c| c.reason == "ProgressDeadlineExceeded")
            .map_or_else(
                || "progress deadline exceeded".to_owned(),
                |c| c.message.clone(),
            );
        add(&mut found, FailureMode::ProgressDeadlineExceeded, message);
    }
    found
}

/// Adds `evidence` to the diagnosis of `mode`, creating it if needed.
fn add(found: &mut Vec<Diagnosis>, mode: FailureMode, evidence: String) {
    if let Some(existing) = found.iter_mut().find(|d| d.mode == mode) {
        if !existing.evidence.contains(&evidence) {
            existing.evidence.push(evidence);
        }
    } else {
        found.push(Diagnosis::new(mode, vec![evidence]));
    }
}

/// The image named in a kubelet pull message (`Back-off pulling image "app:v9"`).
fn image_in(message: &str) -> Option<String> {
    let start = message.find("image \"")? + "image \"".len();
    let rest = &message[start..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// What a CreateContainerConfigError says is missing (`configmap "app-config" not found`).
fn missing_in(message: &str) -> String {
    message
        .strip_suffix(" not found")
        .unwrap_or(message)
        .to_owned()
}

/// The resource a FailedScheduling message names (`0/3 nodes are available: 3 Insufficient cpu.`).
fn resource_in(message: &str) -> Option<String> {
    let start = message.find("Insufficient ")? + "Insufficient ".len();
    let resource: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '/' || *c == '-')
        .collect();
    (!resource.is_empty()).then(|| resource.trim_end_matches('.').to_owned())
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;
    use crate::model::{EventRecord, RevisionId};

    fn snapshot(pods: Vec<PodState>, events: Vec<EventRecord>) -> RolloutSnapshot {
        let mut s = RolloutSnapshot::new(3);
        s.current_revision = Some(RevisionId(2));
        s.pods = pods;
        s.events = events;
        s
    }

    fn render(snapshot: &RolloutSnapshot) -> String {
        diagnose(snapshot)
            .iter()
            .map(|d| format!("{:?}\n  {}\n", d.mode, d.evidence.join("\n  ")))
            .collect()
    }

    #[test]
    fn each_failure_shape_is_named_with_its_evidence() {
        let pull = PodState::running("web-a", RevisionId(2), false)
            .with_waiting("ImagePullBackOff", "Back-off pulling image \"app:v9.9.9\"");
        let mut crash = PodState::running("web-b", RevisionId(2), false)
            .with_waiting("CrashLoopBackOff", "back-off 40s");
        crash.restarts = 4;
        crash.log_tail = vec!["panic: DATABASE_URL not set".into()];
        let config = PodState::running("web-c", RevisionId(2), false).with_waiting(
            "CreateContainerConfigError",
            "configmap \"app-config\" not found",
        );
        let mut oom = PodState::running("web-d", RevisionId(2), false);
        oom.last_termination_reason = Some("OOMKilled".into());
        let old_broken =
            PodState::running("web-old", RevisionId(1), false).with_waiting("CrashLoopBackOff", "");
        let sched = EventRecord::warning(
            "pod/web-e",
            "FailedScheduling",
            "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available",
        );
        let got = render(&snapshot(
            vec![pull, crash, config, oom, old_broken],
            vec![sched],
        ));
        expect![[r#"
            ImagePull { image: "app:v9.9.9" }
              pod web-a: ImagePullBackOff: Back-off pulling image "app:v9.9.9"
            CrashLoop { restarts: 4 }
              pod web-b: CrashLoopBackOff, 4 restarts
              pod web-b log: panic: DATABASE_URL not set
            ConfigError { missing: "configmap \"app-config\"" }
              pod web-c: CreateContainerConfigError: configmap "app-config" not found
            OomKilled
              pod web-d: last terminated OOMKilled, 0 restarts
            Unschedulable { resource: Some("cpu") }
              pod/web-e: FailedScheduling: 0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available
        "#]]
        .assert_eq(&got);
    }

    #[test]
    fn running_but_unready_pods_are_a_readiness_failure() {
        let mut pod = PodState::running("web-a", RevisionId(2), false);
        pod.message = Some("Readiness probe failed: HTTP probe failed with statuscode: 503".into());
        let mut s = snapshot(
            vec![pod, PodState::running("web-b", RevisionId(2), false)],
            vec![],
        );
        s.progress_deadline_exceeded = true;
        expect![[r#"
            ReadinessFailing
              2 of 2 pods of the current revision run but are not ready: Readiness probe failed: HTTP probe failed with statuscode: 503
            ProgressDeadlineExceeded
              progress deadline exceeded
        "#]]
        .assert_eq(&render(&s));
    }

    #[test]
    fn no_pods_is_no_diagnosis_and_no_panic() {
        assert!(diagnose(&RolloutSnapshot::new(0)).is_empty());
    }
}
