//! Failure diagnosis from what a backend observed: pod reasons, events, conditions.

use super::starting::{PodProgress, StartBudget};
use crate::model::{Diagnosis, FailureMode, PodState, RolloutSnapshot};

/// Every failure mode `snapshot` shows, each with its evidence, most specific first, with the
/// start budget the workload declares (see [`StartBudget`]).
///
/// Only pods of the current revision are read: old pods failing is not what this rollout broke.
/// A pod that is starting is not failing: a pod that runs unready is failing only once its app
/// answers the readiness probe with an error past the time a start takes, or once it has been
/// unready for its whole budget.
pub fn diagnose(snapshot: &RolloutSnapshot) -> Vec<Diagnosis> {
    diagnose_within(snapshot, &StartBudget::of(snapshot, None))
}

/// [`diagnose`] with a given start budget (a guard's `unready_after` setting).
pub fn diagnose_within(snapshot: &RolloutSnapshot, budget: &StartBudget) -> Vec<Diagnosis> {
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
    // Not ready, with no waiting reason: starting, unless the budget says otherwise.
    let mut unready = 0;
    let mut failing: Vec<String> = Vec::new();
    for pod in current
        .iter()
        .filter(|p| p.phase == "Running" && !p.ready && p.waiting_reason.is_none())
    {
        unready += 1;
        if let PodProgress::Failing(why) = budget.judge(pod) {
            failing.push(why);
        }
    }
    if !failing.is_empty() && found.is_empty() {
        let mut evidence = vec![format!(
            "{} of {} pods of the current revision run but are not ready",
            failing.len().max(unready),
            current.len()
        )];
        evidence.extend(failing);
        for line in evidence {
            add(&mut found, FailureMode::ReadinessFailing, line);
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

    use std::time::Duration;

    use super::*;
    use crate::model::{EventRecord, Patience, RevisionId};

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
    fn running_unready_pods_fail_on_an_error_answer_or_an_exhausted_budget() {
        let answered = PodState::running("web-a", RevisionId(2), false)
            .aged(Duration::from_secs(30))
            .with_probe_failure("Readiness probe failed: HTTP probe failed with statuscode: 503");
        let young = PodState::running("web-b", RevisionId(2), false)
            .aged(Duration::from_secs(5))
            .with_probe_failure("Readiness probe failed: HTTP probe failed with statuscode: 503");
        let mut s = snapshot(vec![answered, young], vec![]);
        s.patience = Patience::new(Duration::from_secs(15), Some(Duration::from_secs(600)));
        s.progress_deadline_exceeded = true;
        expect![[r#"
            ReadinessFailing
              2 of 2 pods of the current revision run but are not ready
              pod web-a: its app answers the readiness probe with an error 30 s after it was created, past the 15 s a start takes (its probes declare 15 s): Readiness probe failed: HTTP probe failed with statuscode: 503
            ProgressDeadlineExceeded
              progress deadline exceeded
        "#]]
        .assert_eq(&render(&s));
    }

    #[test]
    fn pods_that_are_starting_are_not_a_failure() {
        let refused = "Readiness probe failed: Get \"http://10.244.0.9:8080/healthz\": dial tcp 10.244.0.9:8080: connect: connection refused";
        let slow = PodState::running("web-a", RevisionId(2), false)
            .aged(Duration::from_secs(240))
            .with_probe_failure(refused);
        let fresh = PodState::running("web-b", RevisionId(2), false).aged(Duration::from_secs(2));
        let mut s = snapshot(vec![slow, fresh], vec![]);
        s.patience = Patience::new(Duration::from_secs(15), Some(Duration::from_secs(600)));
        assert!(diagnose(&s).is_empty(), "{}", render(&s));
    }

    #[test]
    fn no_pods_is_no_diagnosis_and_no_panic() {
        assert!(diagnose(&RolloutSnapshot::new(0)).is_empty());
    }
}
