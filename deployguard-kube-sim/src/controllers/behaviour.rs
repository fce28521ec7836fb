//! How the containers of an image behave in the simulated kubelet.

use std::collections::{HashMap, HashSet};
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
    /// Starts slowly (refusing connections, as an app that does not listen yet) for `startup`,
    /// then runs and answers its readiness probe with an error, for ever.
    FailsAfterStart {
        /// Time from pod creation until the app answers.
        startup: Duration,
        /// The probe's output once it answers (`HTTP probe failed with statuscode: 503`).
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

/// The images a new cluster's registry holds: they run and are ready after 2 s. Any other image
/// must be declared (`FakeClusterBuilder::images`, `FakeCluster::add_images`, a behaviour, or
/// `fake-cluster --image`), or its pull fails as a real registry's would.
pub const DEFAULT_IMAGES: &[&str] = &[
    "nginx:1.25",
    "nginx:1.26",
    "nginx:1.27",
    "nginx:latest",
    "busybox:1.36",
    "busybox:latest",
    "registry.k8s.io/pause:3.10",
];

/// The reference a runtime pulls: `docker.io/library/` dropped, `:latest` added when no tag or
/// digest is given.
pub(crate) fn canonical_image(image: &str) -> String {
    let short = image
        .strip_prefix("docker.io/library/")
        .or_else(|| image.strip_prefix("docker.io/"))
        .unwrap_or(image);
    let last = short.rsplit('/').next().unwrap_or(short);
    if last.contains(':') || last.contains('@') {
        short.to_owned()
    } else {
        format!("{short}:latest")
    }
}

/// Image behaviours by image, and the registry's catalogue: a catalogued image without a
/// behaviour is ready after 2 s, an image in neither cannot be pulled.
#[derive(Debug, Clone)]
pub(crate) struct Behaviours {
    by_image: HashMap<String, ImageBehaviour>,
    catalogue: HashSet<String>,
    /// Moves on with every change: the kubelet runs again when it does.
    version: u64,
}

impl Default for Behaviours {
    fn default() -> Self {
        Self {
            by_image: HashMap::new(),
            catalogue: DEFAULT_IMAGES.iter().map(|i| (*i).to_owned()).collect(),
            version: 0,
        }
    }
}

impl Behaviours {
    pub(crate) fn set(&mut self, image: &str, behaviour: ImageBehaviour) {
        self.by_image.insert(canonical_image(image), behaviour);
        self.version += 1;
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// Adds images to the registry's catalogue.
    pub(crate) fn add_images<'a>(&mut self, images: impl IntoIterator<Item = &'a str>) {
        self.catalogue
            .extend(images.into_iter().map(canonical_image));
        self.version += 1;
    }

    pub(crate) fn of(&self, image: &str) -> ImageBehaviour {
        let image = canonical_image(image);
        if let Some(behaviour) = self.by_image.get(&image) {
            return behaviour.clone();
        }
        if self.catalogue.contains(&image) {
            return ImageBehaviour::Ready {
                startup: Duration::from_secs(2),
            };
        }
        let reference = match image.split_once('/') {
            Some((host, _)) if host.contains('.') || host.contains(':') || host == "localhost" => {
                image.clone()
            }
            Some(_) => format!("docker.io/{image}"),
            None => format!("docker.io/library/{image}"),
        };
        ImageBehaviour::PullFails {
            error: format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": {reference}: not found"
            ),
        }
    }
}
