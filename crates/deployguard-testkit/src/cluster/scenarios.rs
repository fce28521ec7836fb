//! Named, reproducible cluster contents.

use serde_json::json;

use super::{ApiError, FakeCluster};

/// Every scenario: name and what it holds.
pub fn list() -> Vec<(&'static str, &'static str)> {
    vec![
        ("empty", "the default namespaces and nothing else"),
        (
            "static-web",
            "Deployment web (3 replicas of nginx:1.3), one pod stuck in ImagePullBackOff with its event; no controllers run",
        ),
    ]
}

/// Loads scenario `name` into `cluster`.
pub fn load(cluster: &FakeCluster, name: &str) -> Result<(), ApiError> {
    match name {
        "empty" => Ok(()),
        "static-web" => static_web(cluster),
        other => Err(ApiError::bad_request(format!(
            "unknown scenario {other:?}; known: {}",
            list()
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn static_web(cluster: &FakeCluster) -> Result<(), ApiError> {
    cluster.create(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.3"}]}}}
    }))?;
    let pod = cluster.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-abc12", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.3"}]},
        "status": {"phase": "Pending", "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0, "image": "nginx:1.3", "imageID": "",
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"nginx:1.3\""}}}]}
    }))?;
    let uid = pod["metadata"]["uid"].clone();
    cluster.create(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web-abc12.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-abc12", "uid": uid, "apiVersion": "v1", "fieldPath": "spec.containers{web}"},
        "reason": "BackOff", "message": "Back-off pulling image \"nginx:1.3\"", "type": "Warning", "count": 3,
        "source": {"component": "kubelet"},
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"
    }))?;
    Ok(())
}
