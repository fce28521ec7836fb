//! Simulated controllers: Deployment, ReplicaSet, scheduler and kubelet, Endpoints and
//! EndpointSlices, Jobs. One task runs them in passes: after every change and whenever a
//! controller asked to be woken (a pod becoming ready, a progress deadline), on tokio's clock.

pub(crate) mod autoscaler;
mod behaviour;
pub(crate) mod command;
mod cron;
mod cronjob;
mod daemonset;
pub(crate) mod deployment;
mod disruption;
mod endpoints;
mod gate;
mod jobs;
mod kubelet;
mod quota;
mod replicaset;
mod revisions;
mod scheduler;
mod signer;
mod statefulset;
pub(crate) mod util;
mod volumes;

use std::sync::{Arc, Weak};
use std::time::Duration;

pub(crate) use behaviour::Behaviours;
pub use behaviour::DEFAULT_IMAGES;
pub use behaviour::ImageBehaviour;

/// Each controller's gate, in [`CONTROLLERS`] order.
pub(crate) type Gates = [Gate; CONTROLLERS.len()];

use crate::{Shared, lock};
use gate::{Controller, Gate, Reads, Run};
use util::Ctx;

/// Passes per trigger before the loop yields (each pass converges one step further).
const MAX_SUB_PASSES: usize = 16;

/// The controllers, in the order a pass runs them, and what each reads (the mesh, which reads
/// its own state as well, runs every pass: it is one list of VirtualServices).
const CONTROLLERS: [Controller; 16] = [
    Controller {
        reads: Reads::Kinds(&["apps/deployments", "apps/replicasets", "/namespaces"]),
        follows_images: false,
        run: Run::ByObject {
            kind: ("apps", "Deployment"),
            owned: "apps/replicasets",
            one: deployment::reconcile_one,
        },
    },
    Controller {
        reads: Reads::Kinds(&["apps/replicasets", "/pods", "/namespaces"]),
        follows_images: false,
        run: Run::ByObject {
            kind: ("apps", "ReplicaSet"),
            owned: "/pods",
            one: replicaset::reconcile_one,
        },
    },
    Controller {
        reads: Reads::Kinds(&[
            "apps/statefulsets",
            "apps/controllerrevisions",
            "/pods",
            "/namespaces",
        ]),
        follows_images: false,
        run: Run::ByObject {
            kind: ("apps", "StatefulSet"),
            owned: "/pods",
            one: statefulset::reconcile_one,
        },
    },
    Controller {
        reads: Reads::Kinds(&[
            "apps/daemonsets",
            "apps/controllerrevisions",
            "/pods",
            "/nodes",
            "/namespaces",
        ]),
        follows_images: false,
        run: Run::Whole(reconcile_daemonsets),
    },
    Controller {
        reads: Reads::Kinds(&[
            "policy/poddisruptionbudgets",
            "/pods",
            "apps/replicasets",
            "apps/statefulsets",
        ]),
        follows_images: false,
        run: Run::Whole(disruption::reconcile),
    },
    Controller {
        reads: Reads::Everything,
        follows_images: false,
        run: Run::Whole(finish_foreground_deletions),
    },
    Controller {
        // Counts of any kind a quota may name.
        reads: Reads::Everything,
        follows_images: false,
        run: Run::Whole(reconcile_quotas),
    },
    Controller {
        reads: Reads::Kinds(&[
            "/persistentvolumeclaims",
            "/persistentvolumes",
            "/pods",
            "storage.k8s.io/storageclasses",
        ]),
        follows_images: false,
        run: Run::Whole(volumes::reconcile),
    },
    Controller {
        reads: Reads::Kinds(&["/pods", "/configmaps", "/secrets", "/namespaces", "/nodes"]),
        follows_images: true,
        run: Run::Whole(kubelet::reconcile),
    },
    Controller {
        reads: Reads::Kinds(&[
            "autoscaling/horizontalpodautoscalers",
            "apps/deployments",
            "apps/statefulsets",
            "apps/replicasets",
            "/pods",
        ]),
        follows_images: false,
        run: Run::Whole(autoscaler::reconcile),
    },
    Controller {
        reads: Reads::Kinds(&["certificates.k8s.io/certificatesigningrequests"]),
        follows_images: false,
        run: Run::Whole(signer::reconcile),
    },
    Controller {
        reads: Reads::Kinds(&["batch/cronjobs", "batch/jobs", "/namespaces"]),
        follows_images: false,
        run: Run::Whole(cronjob::reconcile),
    },
    Controller {
        reads: Reads::Kinds(&["batch/jobs", "/pods", "/namespaces"]),
        follows_images: false,
        run: Run::Whole(jobs::reconcile),
    },
    Controller {
        reads: Reads::Kinds(&[
            "/services",
            "/pods",
            "/endpoints",
            "discovery.k8s.io/endpointslices",
            "/namespaces",
        ]),
        follows_images: false,
        run: Run::Whole(endpoints::reconcile),
    },
    Controller {
        reads: Reads::Everything,
        follows_images: false,
        run: Run::Whole(finish_terminating_namespaces),
    },
    Controller {
        reads: Reads::Kinds(&["/namespaces", "/serviceaccounts", "/configmaps"]),
        follows_images: false,
        run: Run::Whole(default_service_accounts),
    },
];

/// Runs every controller with something to do until nothing changes; returns the cluster time
/// to run again at.
pub(crate) fn pass(shared: &Shared) -> (Option<std::time::SystemTime>, u64) {
    // Cloned before the store is locked: one lock at a time.
    let extensions = lock(&shared.extensions).clone();
    let types = lock(&shared.types).clone();
    let behaviours = lock(&shared.behaviours).clone();
    let mut store = lock(&shared.store);
    let mut logs = lock(&shared.logs);
    let mut mesh = lock(&shared.mesh);
    let mut gateways = lock(&shared.gateways);
    let mut gates = lock(&shared.gates);
    let usage = lock(&shared.cpu_usage).clone();
    let mut wake = None;
    for _ in 0..MAX_SUB_PASSES {
        let before = store.resource_version();
        let mut ctx = Ctx {
            store: &mut store,
            types: &types,
            behaviours: &behaviours,
            logs: &mut logs,
            usage: &usage,
            extensions: &extensions,
            wake: None,
        };
        for (controller, gate) in CONTROLLERS.iter().zip(gates.iter_mut()) {
            if gate.due(controller, ctx.store, ctx.now(), behaviours.version()) {
                gate.run(controller, &mut ctx, behaviours.version());
            }
        }
        ctx.wake = None;
        crate::mesh::reconcile(&mut ctx, &mut mesh);
        crate::gateway::reconcile(&mut ctx, &mut gateways);
        wake = gates.iter().filter_map(Gate::wake).chain(ctx.wake).min();
        if store.resource_version() == before {
            break;
        }
    }
    (wake, store.resource_version())
}

/// The controller task. Holds the cluster weakly: it ends when the last handle is dropped.
pub(crate) async fn run(weak: Weak<Shared>) {
    let mut changes = match weak.upgrade() {
        Some(shared) => lock(&shared.store).changes.subscribe(),
        None => return,
    };
    loop {
        let Some(shared) = weak.upgrade() else { return };
        // Extensions (traffic) charge the time up to now to the endpoints as they were before
        // this pass.
        let extensions = crate::FakeCluster::from_shared(Arc::clone(&shared)).advance_extensions();
        let (wake, seen) = pass(&shared);
        let every_second = extensions.iter().any(|e| e.wants_every_second());
        drop(extensions);
        // The wake is in cluster time; tokio sleeps in its own, which a time scale divides.
        let delay = wake
            .map(|at| {
                let clock = &lock(&shared.store).clock;
                clock.to_real(at.duration_since(clock.now()).unwrap_or(Duration::ZERO))
            })
            .unwrap_or(Duration::from_secs(3600));
        // An extension that asks for it (simulated traffic) advances second by second.
        let second = lock(&shared.store).clock.to_real(Duration::from_secs(1));
        let delay = if every_second {
            delay.min(second)
        } else {
            delay
        };
        drop(shared);
        let sleep = tokio::time::sleep(delay.max(Duration::from_millis(1)));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    // Our own writes come back here; only what came after the pass counts.
                    Ok(change) if change.rv <= seen => continue,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                () = &mut sleep => break,
            }
        }
    }
}

/// Starts the controller task for `shared`.
pub(crate) fn start(shared: &Arc<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(Arc::downgrade(shared)))
}

/// Whether a pod is ready (and not being deleted), as the controllers count it.
pub(crate) fn pod_ready(pod: &serde_json::Value) -> bool {
    replicaset::pod_is_ready(pod)
}

/// The garbage collector's last step of a foreground deletion: an owner whose dependents are
/// all gone loses its `foregroundDeletion` finalizer, and with it goes.
fn finish_foreground_deletions(ctx: &mut util::Ctx<'_>) {
    let pending = std::mem::take(&mut ctx.store.foreground);
    for (rt, ns, name) in pending {
        let Ok(mut owner) = ctx.store.get(&rt, &ns, &name) else {
            continue;
        };
        if ctx.store.has_dependents(&util::uid(&owner)) {
            ctx.store.foreground.push((rt, ns, name));
            continue;
        }
        if let Some(serde_json::Value::Array(finalizers)) =
            owner.pointer_mut("/metadata/finalizers")
        {
            finalizers.retain(|f| f != "foregroundDeletion");
        }
        if let Err(err) = ctx
            .store
            .update(&rt, &ns, &name, owner, crate::store::Part::Main, false)
        {
            tracing::warn!(
                "finishing the foreground deletion of {name}: {}",
                err.message
            );
        }
    }
}

/// The quota controller, skipped outright when no namespace has a quota.
fn reconcile_quotas(ctx: &mut util::Ctx<'_>) {
    if !ctx.all_shared("", "ResourceQuota").is_empty() {
        quota::reconcile(ctx);
    }
}

/// The DaemonSet controller, over every DaemonSet: a node's change concerns them all.
fn reconcile_daemonsets(ctx: &mut util::Ctx<'_>) {
    for ds in ctx.all("apps", "DaemonSet") {
        daemonset::reconcile_one(ctx, &ds);
    }
}

/// The ServiceAccount controller: every active namespace has a `default` account, which pods
/// run as unless they name another.
fn default_service_accounts(ctx: &mut util::Ctx<'_>) {
    let accounts = ctx.rt("", "ServiceAccount");
    let maps = ctx.rt("", "ConfigMap");
    for namespace in ctx.all("", "Namespace") {
        let ns = util::name(&namespace);
        // The root-ca-cert-publisher's ConfigMap, in every namespace.
        if util::s(&namespace, "/status/phase") != "Terminating"
            && ctx.store.get(&maps, &ns, "kube-root-ca.crt").is_err()
            && let Err(err) = ctx.create("", "ConfigMap", &ns, crate::furniture::root_ca(&ns))
        {
            tracing::warn!("creating kube-root-ca.crt in {ns}: {}", err.message);
        }
        if util::s(&namespace, "/status/phase") == "Terminating"
            || ctx.store.get(&accounts, &ns, "default").is_ok()
        {
            continue;
        }
        let account = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
        if let Err(err) = ctx.create("", "ServiceAccount", &ns, account) {
            tracing::warn!(
                "creating the default ServiceAccount in {ns}: {}",
                err.message
            );
        }
    }
}

/// The namespace controller's last step: a terminating namespace whose objects are all gone is
/// removed.
fn finish_terminating_namespaces(ctx: &mut util::Ctx<'_>) {
    let namespaces = ctx.rt("", "Namespace");
    for namespace in ctx.all("", "Namespace") {
        if util::s(&namespace, "/status/phase") == "Terminating" {
            let name = util::name(&namespace);
            crate::api::finish_namespace(ctx.store, ctx.types, &namespaces, &name);
        }
    }
}

/// When a pod was marked for deletion: its `deletionTimestamp` less its grace period.
pub(crate) fn deletion_marked(pod: &serde_json::Value) -> Option<std::time::SystemTime> {
    let deadline = util::time_at(pod, "/metadata/deletionTimestamp")?;
    let grace = std::time::Duration::from_secs(
        pod.pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
    );
    Some(deadline.checked_sub(grace).unwrap_or(deadline))
}

/// How long a pod's preStop hook keeps its process serving after it is marked for deletion:
/// the first container's `lifecycle.preStop` — `sleep: {seconds: N}`, or an `exec` of `sleep N`
/// (`sh -c "sleep N"` too). Other hooks take no time here.
pub(crate) fn pre_stop(pod: &serde_json::Value) -> std::time::Duration {
    use serde_json::Value;
    let hook = pod.pointer("/spec/containers/0/lifecycle/preStop");
    let seconds = hook
        .and_then(|h| h.pointer("/sleep/seconds"))
        .and_then(Value::as_f64)
        .or_else(|| {
            let command: Vec<&str> = hook
                .and_then(|h| h.pointer("/exec/command"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let words: Vec<&str> = match command.as_slice() {
                [shell, "-c", script] if shell.ends_with("sh") => {
                    script.split_whitespace().collect()
                }
                other => other.to_vec(),
            };
            match words.as_slice() {
                [sleep, n] if sleep.ends_with("sleep") => n.parse().ok(),
                _ => None,
            }
        })
        .unwrap_or(0.0);
    std::time::Duration::from_secs_f64(seconds.max(0.0))
}
