//! Which controllers a pass runs. A controller runs again only when something it reads has
//! changed since its last run (a kind it reads, or the image behaviours the kubelet follows) or
//! the time it asked to be woken at has come, as an informer-driven controller does nothing
//! until an event or a requeue: a pass on a simulated second where only traffic moved costs
//! nothing. Every controller's output is a function of what it reads and of the clock, and every
//! clock-driven change asks for a wake, so a skipped run could only have repeated the last one.

use std::time::SystemTime;

use super::super::store::Store;

/// What a controller reads, by store key (`group/plural`).
pub(super) enum Reads {
    Kinds(&'static [&'static str]),
    /// Any object of any kind (the namespace controller waits for a namespace to empty).
    Everything,
}

/// One controller, as a pass runs it.
pub(super) struct Controller {
    pub(super) reads: Reads,
    /// Whether it follows the image behaviours (the kubelet).
    pub(super) follows_images: bool,
    pub(super) run: fn(&mut super::util::Ctx<'_>),
}

/// What a controller's last run saw: the store's resourceVersion, the behaviours' version and
/// the wake it asked for.
#[derive(Debug, Default, Clone)]
pub(crate) struct Gate {
    ran: bool,
    seen: u64,
    behaviours: u64,
    wake: Option<SystemTime>,
}

impl Gate {
    /// Whether `controller` has something to do.
    pub(super) fn due(
        &self,
        controller: &Controller,
        store: &Store,
        now: SystemTime,
        behaviours: u64,
    ) -> bool {
        !self.ran
            || self.wake.is_some_and(|at| at <= now)
            || (controller.follows_images && behaviours != self.behaviours)
            || match controller.reads {
                Reads::Everything => store.resource_version() > self.seen,
                Reads::Kinds(kinds) => kinds.iter().any(|k| store.last_change_of(k) > self.seen),
            }
    }

    /// Records a run that starts now: its own writes count as changes for its next run (it
    /// may have more to do once they are made, as a requeue would have it).
    pub(super) fn starting(&mut self, store: &Store, behaviours: u64) {
        self.ran = true;
        self.seen = store.resource_version();
        self.behaviours = behaviours;
    }

    pub(super) fn finished(&mut self, wake: Option<SystemTime>) {
        self.wake = wake;
    }

    pub(super) fn wake(&self) -> Option<SystemTime> {
        self.wake
    }
}
