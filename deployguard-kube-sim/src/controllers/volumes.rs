//! The volume binder and a local-path provisioner: a claim of a StorageClass is bound to a new
//! PersistentVolume (`pvc-<claim uid>`, the size it requests) at once, or — with
//! `WaitForFirstConsumer`, as kind's `standard` class — once a pod mounts it. A claim of a class
//! that does not exist stays Pending with the provisioner's complaint. A released volume whose
//! policy is `Delete` is removed with its claim.

use std::sync::Arc;

use serde_json::{Value, json};

use super::util::{Ctx, name, namespace, s, uid};
use crate::pointer::Pointer;

pub(super) fn reconcile(ctx: &mut Ctx<'_>) {
    let pods = ctx.all_shared("", "Pod");
    let mounted = |ns: &str, claim: &str| {
        pods.iter().any(|p| {
            namespace(p) == ns
                && !matches!(s(p, "/status/phase"), "Succeeded" | "Failed")
                && p.at("/spec/volumes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|v| s(v, "/persistentVolumeClaim/claimName") == claim)
        })
    };
    let claims = ctx.all_shared("", "PersistentVolumeClaim");
    for claim in &claims {
        if s(claim, "/status/phase") == "Bound" || claim.at("/metadata/deletionTimestamp").is_some()
        {
            continue;
        }
        let ns = namespace(claim);
        let class_name = s(claim, "/spec/storageClassName").to_owned();
        let Some(class) = ctx.get("storage.k8s.io", "StorageClass", "", &class_name) else {
            pending(
                ctx,
                claim,
                "Warning",
                "ProvisioningFailed",
                &format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
            );
            continue;
        };
        if s(&class, "/volumeBindingMode") == "WaitForFirstConsumer" && !mounted(&ns, &name(claim))
        {
            pending(
                ctx,
                claim,
                "Normal",
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            );
            continue;
        }
        bind(ctx, claim, &class);
    }
    // Released volumes of claims that are gone.
    for volume in ctx.all_shared("", "PersistentVolume") {
        let claim_ns = s(&volume, "/spec/claimRef/namespace");
        let claim_name = s(&volume, "/spec/claimRef/name");
        let claim_uid = s(&volume, "/spec/claimRef/uid");
        let bound = claims
            .iter()
            .any(|c| namespace(c) == claim_ns && name(c) == claim_name && uid(c) == claim_uid);
        if !bound && s(&volume, "/spec/persistentVolumeReclaimPolicy") == "Delete" {
            let _ = ctx.delete("", "PersistentVolume", &volume);
        }
    }
}

fn pending(ctx: &mut Ctx<'_>, claim: &Arc<Value>, kind: &str, reason: &str, message: &str) {
    if s(claim, "/status/phase") != "Pending" {
        let mut pending = Value::clone(claim);
        pending["status"] = json!({"phase": "Pending"});
        let _ = ctx.update_status("", "PersistentVolumeClaim", pending);
        ctx.event(
            claim,
            kind,
            reason,
            message,
            "persistentvolume-controller",
            None,
        );
    }
}

fn bind(ctx: &mut Ctx<'_>, claim: &Arc<Value>, class: &Value) {
    let volume_name = format!("pvc-{}", uid(claim));
    let size = match s(claim, "/spec/resources/requests/storage") {
        "" => "1Gi".to_owned(),
        size => size.to_owned(),
    };
    let modes = claim
        .at("/spec/accessModes")
        .cloned()
        .unwrap_or(json!(["ReadWriteOnce"]));
    let provisioner = s(class, "/provisioner").to_owned();
    let volume = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": volume_name,
            "annotations": {"pv.kubernetes.io/provisioned-by": provisioner}},
        "spec": {
            "capacity": {"storage": size}, "accessModes": modes,
            "persistentVolumeReclaimPolicy": match s(class, "/reclaimPolicy") { "" => "Delete", p => p },
            "storageClassName": name(class), "volumeMode": "Filesystem",
            "hostPath": {"path": format!("/var/local-path-provisioner/{volume_name}_{}_{}", namespace(claim), name(claim)), "type": "DirectoryOrCreate"},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": namespace(claim), "name": name(claim), "uid": uid(claim)},
        },
    });
    if ctx.get("", "PersistentVolume", "", &volume_name).is_none() {
        match ctx.create("", "PersistentVolume", "", volume) {
            Ok(mut created) => {
                created["status"] = json!({"phase": "Bound"});
                let _ = ctx.update_status("", "PersistentVolume", created);
            }
            Err(err) => {
                tracing::warn!("provisioning {volume_name}: {}", err.message);
                return;
            }
        }
    }
    let mut bound = Value::clone(claim);
    bound["spec"]["volumeName"] = json!(volume_name);
    let annotations = bound["metadata"]
        .as_object_mut()
        .map(|m| m.entry("annotations").or_insert_with(|| json!({})));
    if let Some(annotations) = annotations {
        annotations["pv.kubernetes.io/bind-completed"] = json!("yes");
        annotations["pv.kubernetes.io/bound-by-controller"] = json!("yes");
        annotations["volume.kubernetes.io/storage-provisioner"] = json!(provisioner);
    }
    let Ok(mut bound) = ctx.update("", "PersistentVolumeClaim", bound) else {
        return;
    };
    bound["status"] =
        json!({"phase": "Bound", "accessModes": modes, "capacity": {"storage": size}});
    if ctx
        .update_status("", "PersistentVolumeClaim", bound)
        .is_ok()
    {
        ctx.event(
            claim,
            "Normal",
            "ProvisioningSucceeded",
            &format!("Successfully provisioned volume {volume_name}"),
            &provisioner,
            None,
        );
    }
}
