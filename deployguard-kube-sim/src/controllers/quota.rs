//! The resource quota controller: each ResourceQuota's `status.hard` (its spec's) and
//! `status.used` — pods, CPU and memory requested and limited by them, and the count of each
//! object kind it names (`services`, `configmaps`, `secrets`, `persistentvolumeclaims`,
//! `count/<resource>`), counted as admission counts them ([`crate::admission`] refuses what
//! would exceed them).

use serde_json::{Map, Value, json};

use super::util::{Ctx, namespace};
use crate::admission::{counted, usage};
use crate::pointer::Pointer;

pub(super) fn reconcile(ctx: &mut Ctx<'_>) {
    for quota in ctx.all("", "ResourceQuota") {
        let ns = namespace(&quota);
        let hard = quota
            .at("/spec/hard")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut used = Map::new();
        for resource in hard.keys() {
            let Some((key, unit)) = counted(resource) else {
                continue;
            };
            let objects = ctx.store.objects_in(&key, &ns);
            used.insert(
                resource.clone(),
                json!(unit.text(usage(resource, &objects))),
            );
        }
        let status = json!({"hard": hard, "used": used});
        if quota.get("status") != Some(&status) {
            let mut quota = quota;
            quota["status"] = status;
            let _ = ctx.update_status("", "ResourceQuota", quota);
        }
    }
}
