//! The server's one extension point: something that lives beside the cluster and advances with
//! its clock. The testkit's simulated traffic is one: before every controller pass it charges
//! the seconds since the last to the endpoints that served them ([`FakeCluster::routes`]), and
//! it serves its counters at `/metrics/<name>`.

use std::any::Any;
use std::sync::Arc;

use crate::{FakeCluster, lock};

/// Something that advances with the cluster's clock. Registered with
/// [`FakeCluster::extension_or_insert_with`]; the cluster holds it for its lifetime.
///
/// An extension must not keep a [`FakeCluster`] of its own (that would keep the cluster alive
/// forever); it is handed one on every call.
pub trait Extension: Any + Send + Sync {
    /// Brings the extension up to the cluster's [`now`](FakeCluster::now). Called before every
    /// controller pass (so it sees endpoints as they were during the time it charges), and
    /// before anything the extension serves is read.
    fn advance(&self, cluster: &FakeCluster);

    /// Whether the controllers should wake every simulated second for it (default: never).
    fn wants_every_second(&self) -> bool {
        false
    }

    /// The CPU pod `namespace/pod` uses, in millicores, as a metrics server would report it,
    /// when the extension models it (default: it does not). The HorizontalPodAutoscaler reads
    /// it for pods [`FakeCluster::set_cpu_usage`] says nothing of. Called during a controller
    /// pass, with the cluster's state locked: it must not call the cluster.
    fn pod_cpu(&self, namespace: &str, pod: &str) -> Option<i64> {
        let _ = (namespace, pod);
        None
    }

    /// The text served at `GET /metrics/<name>`, when `name` is the extension's.
    fn metrics(&self, name: &str) -> Option<String> {
        let _ = name;
        None
    }
}

impl FakeCluster {
    /// The cluster's extension of type `E`, registered now with `make` if it has none.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use deployguard_kube_sim::{Extension, FakeCluster};
    ///
    /// #[derive(Default)]
    /// struct Passes(AtomicU32);
    /// impl Extension for Passes {
    ///     fn advance(&self, _: &FakeCluster) {
    ///         self.0.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// }
    ///
    /// let cluster = FakeCluster::new();
    /// let passes = cluster.extension_or_insert_with(Passes::default);
    /// cluster.reconcile();
    /// assert!(passes.0.load(Ordering::Relaxed) >= 1);
    /// assert!(std::sync::Arc::ptr_eq(&passes, &cluster.extension_or_insert_with(Passes::default)));
    /// ```
    pub fn extension_or_insert_with<E: Extension>(&self, make: impl FnOnce() -> E) -> Arc<E> {
        let mut extensions = lock(&self.shared.extensions);
        for extension in extensions.iter() {
            let any: Arc<dyn Any + Send + Sync> = Arc::<dyn Extension>::clone(extension);
            if let Ok(found) = any.downcast::<E>() {
                return found;
            }
        }
        let made = Arc::new(make());
        extensions.push(Arc::<E>::clone(&made));
        made
    }

    /// Every extension, advanced to now.
    pub(crate) fn advance_extensions(&self) -> Vec<Arc<dyn Extension>> {
        let extensions = lock(&self.shared.extensions).clone();
        for extension in &extensions {
            extension.advance(self);
        }
        extensions
    }
}
