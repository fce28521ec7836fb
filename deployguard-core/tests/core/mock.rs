//! The `mock` feature gives mockall doubles of the traits that work through `Arc<dyn _>`.

use std::sync::Arc;

use deployguard_core::{
    DeploymentBackend, DeploymentBackendExt, Error, ErrorKind, Fingerprint, MockDeploymentBackend,
    Revision, RevisionId,
};

#[tokio::test]
async fn a_mock_backend_serves_the_ext_conveniences_through_dyn() {
    let mut mock = MockDeploymentBackend::new();
    mock.expect_history().times(2).returning(|| {
        Ok(vec![
            Revision::new(RevisionId(4), Fingerprint::new("b"), vec!["app:b".into()])
                .with_previous_ids(vec![RevisionId(2)]),
        ])
    });
    mock.expect_target().returning(|| "mock deployment".into());
    let backend: Arc<dyn DeploymentBackend> = Arc::new(mock);
    // Found by the number it had before renumbering.
    assert_eq!(
        backend.revision(RevisionId(2)).await.unwrap().id,
        RevisionId(4)
    );
    let err: Error = backend.revision(RevisionId(3)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        "not found: revision 3 is not in the history (revision on mock deployment)"
    );
}
