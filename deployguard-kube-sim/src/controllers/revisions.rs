//! ControllerRevisions, the history of StatefulSets and DaemonSets: one per distinct pod
//! template, named `<owner>-<hash>`, numbered; a template seen before (a rollback) takes its old
//! revision renumbered as the newest, as the real controllers do.

use std::sync::Arc;

use serde_json::{Value, json};

use super::deployment::template_hash;
use super::util::{Ctx, i, name, namespace, owned_by, owner_reference, uid};
use crate::pointer::Pointer;

/// The label pods carry with the hash of the revision they run.
pub(super) const REVISION_LABEL: &str = "controller-revision-hash";

/// The ControllerRevisions `owner` owns, oldest first.
pub(super) fn revisions_of(ctx: &Ctx<'_>, owner: &Value) -> Vec<Value> {
    let owner_uid = uid(owner);
    let ns = namespace(owner);
    let mut revisions: Vec<Value> = ctx
        .dependents("apps", "ControllerRevision", &owner_uid)
        .into_iter()
        .map(Arc::unwrap_or_clone)
        .filter(|r| namespace(r) == ns && owned_by(r, &owner_uid))
        .collect();
    revisions.sort_by_key(|r| i(r, "/revision"));
    revisions
}

/// The revision of `owner`'s current template: the one whose data matches, renumbered to the
/// newest if it was an older one (as a rollback does), or a new one. Returns its name.
pub(super) fn sync_revision(ctx: &mut Ctx<'_>, owner: &Value, kind: &str) -> Option<String> {
    let template = owner.at("/spec/template").cloned().unwrap_or(json!({}));
    let mut data_template = template.clone();
    data_template["$patch"] = json!("replace");
    let data = json!({"spec": {"template": data_template}});
    let revisions = revisions_of(ctx, owner);
    let newest = revisions.last().map_or(0, |r| i(r, "/revision"));
    if let Some(found) = revisions.iter().find(|r| r.get("data") == Some(&data)) {
        if i(found, "/revision") != newest {
            let mut renumbered = found.clone();
            renumbered["revision"] = json!(newest + 1);
            ctx.update("apps", "ControllerRevision", renumbered).ok()?;
        }
        return Some(name(found));
    }
    let hash = template_hash(&template, 0);
    let revision_name = format!("{}-{hash}", name(owner));
    let mut labels = owner
        .at("/spec/selector/matchLabels")
        .cloned()
        .unwrap_or(json!({}));
    labels[REVISION_LABEL] = json!(hash);
    let revision = json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": revision_name, "namespace": namespace(owner), "labels": labels,
            "ownerReferences": [owner_reference(owner)]},
        "data": data,
        "revision": newest + 1,
    });
    match ctx.create("apps", "ControllerRevision", &namespace(owner), revision) {
        Ok(_) => Some(revision_name),
        Err(err) => {
            tracing::warn!(
                "{kind} {}: creating its revision: {}",
                name(owner),
                err.message
            );
            None
        }
    }
}

/// Keeps at most `revisionHistoryLimit` (10) revisions no pod runs.
pub(super) fn prune_revisions(ctx: &mut Ctx<'_>, owner: &Value, in_use: &[String]) {
    let limit = usize::try_from(
        owner
            .at("/spec/revisionHistoryLimit")
            .and_then(Value::as_i64)
            .unwrap_or(10),
    )
    .unwrap_or(10);
    let unused: Vec<Value> = revisions_of(ctx, owner)
        .into_iter()
        .filter(|r| !in_use.contains(&name(r)))
        .collect();
    for old in unused.iter().take(unused.len().saturating_sub(limit)) {
        let _ = ctx.delete("apps", "ControllerRevision", old);
    }
}

/// The template a revision recorded.
pub(super) fn template_of(ctx: &Ctx<'_>, ns: &str, revision: &str) -> Option<Value> {
    let mut template = ctx
        .get("apps", "ControllerRevision", ns, revision)?
        .at("/data/spec/template")?
        .clone();
    template.as_object_mut()?.remove("$patch");
    Some(template)
}
