//! Who deployguard's writes are recorded as: one field manager, so the API server's
//! `managedFields` tell its writes from everyone else's (a recovery that finds the pod template
//! changed by another manager stops rather than fight it).

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{PatchParams, PostParams};

/// The field manager every deployguard write is recorded under.
pub const FIELD_MANAGER: &str = "deployguard";

/// Patch parameters that record the write as deployguard's.
pub fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// Create and replace parameters that record the write as deployguard's.
pub fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

/// The field manager that last changed what `deployment` runs: the owner of its containers'
/// images in `managedFields` (a write owns what it changed, so the image's owner wrote it
/// last), else the latest entry touching the pod template.
pub(crate) fn template_writer(deployment: &Deployment) -> Option<String> {
    let entries = deployment.metadata.managed_fields.as_ref()?;
    let template_of =
        |entry: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry| {
            entry
                .fields_v1
                .as_ref()
                .and_then(|f| f.0.get("f:spec"))
                .and_then(|spec| spec.get("f:template"))
                .cloned()
        };
    let owns_image = |template: &serde_json::Value| {
        template
            .get("f:spec")
            .and_then(|spec| spec.get("f:containers"))
            .and_then(serde_json::Value::as_object)
            .is_some_and(|containers| containers.values().any(|c| c.get("f:image").is_some()))
    };
    let latest = |filter: &dyn Fn(&serde_json::Value) -> bool| {
        entries
            .iter()
            .filter(|e| template_of(e).is_some_and(|t| filter(&t)))
            .max_by_key(|e| e.time.as_ref().map(|t| t.0))
            .and_then(|e| e.manager.clone())
    };
    latest(&owns_image).or_else(|| latest(&|_| true))
}

/// [`template_writer`], unless it is deployguard.
pub(crate) fn changed_elsewhere(deployment: &Deployment) -> Option<String> {
    template_writer(deployment).filter(|m| m != FIELD_MANAGER)
}
