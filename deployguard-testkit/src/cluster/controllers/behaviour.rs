//! How the containers of an image behave in the simulated kubelet.

use std::collections::HashMap;
use std::time::Duration;

/// What a container running an image does.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ImageBehaviour {
    /// Starts, and passes readiness `startup` after the pod was created.
    Ready {
        /// Time from pod creation to Ready.
        startup: Duration,
    },
    /// Runs, but its readiness probe never passes.
    NeverReady {
        /// The probe's output (`HTTP probe failed with statuscode: 503`).
        probe_output: String,
    },
    /// Becomes ready and unready in turn, each for `period`.
    Flapping {
        /// How long each half lasts.
        period: Duration,
    },
    /// Exits with `exit_code` right after starting, over and over (CrashLoopBackOff).
    CrashLoop {
        /// The exit code.
        exit_code: i32,
        /// What it logs before exiting.
        logs: Vec<String>,
    },
    /// Is killed for using too much memory, over and over.
    OomKilled,
    /// Cannot be pulled (ErrImagePull, then ImagePullBackOff).
    PullFails {
        /// The registry's error.
        error: String,
    },
    /// Runs to completion after `after` (a Job's container).
    Completes {
        /// Run time.
        after: Duration,
        /// Exit code: 0 succeeds, anything else fails.
        exit_code: i32,
        /// What it logs.
        logs: Vec<String>,
    },
}

impl ImageBehaviour {
    /// Ready after `seconds`.
    pub fn ready_after(seconds: u64) -> Self {
        Self::Ready {
            startup: Duration::from_secs(seconds),
        }
    }

    /// Readiness failing with an HTTP 503.
    pub fn never_ready() -> Self {
        Self::NeverReady {
            probe_output: "HTTP probe failed with statuscode: 503".into(),
        }
    }

    /// A crash loop that logs `line`.
    pub fn crash_loop(line: &str) -> Self {
        Self::CrashLoop {
            exit_code: 1,
            logs: vec![line.into()],
        }
    }

    /// An image the registry does not have.
    pub fn pull_fails(image: &str) -> Self {
        Self::PullFails {
            error: format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"
            ),
        }
    }
}

/// Image behaviours by image; unknown images are ready after 2 s.
#[derive(Debug, Clone, Default)]
pub(crate) struct Behaviours {
    by_image: HashMap<String, ImageBehaviour>,
}

impl Behaviours {
    pub(crate) fn set(&mut self, image: &str, behaviour: ImageBehaviour) {
        self.by_image.insert(image.into(), behaviour);
    }

    pub(crate) fn of(&self, image: &str) -> ImageBehaviour {
        self.by_image
            .get(image)
            .cloned()
            .unwrap_or(ImageBehaviour::Ready {
                startup: Duration::from_secs(2),
            })
    }
}
