//! What several test modules read off the simulated cluster.

use deployguard_testkit::cluster::FakeCluster;
use deployguard_testkit::cluster::k8s_openapi::api::apps::v1::Deployment;

/// The image the seed's Deployment runs, and its revision number.
pub fn image_of(deployment: &Deployment) -> (String, String) {
    let image = deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap_or_default();
    let revision =
        deployment.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"]
            .clone();
    (image, revision)
}

/// [`image_of`] the seed's Deployment as it is now.
pub fn image_and_revision(cluster: &FakeCluster) -> (String, String) {
    image_of(&cluster.deployment("default", "app-deployment").unwrap())
}
