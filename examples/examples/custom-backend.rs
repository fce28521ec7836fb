//! A `DeploymentBackend` for an imaginary platform, "Shipyard", that keeps an app's releases as a
//! list, and the testkit's conformance suite run against it.
//!
//! Run with `cargo run --example custom-backend`. It prints each conformance check and exits
//! non-zero if any fails.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use deployguard_core::{
    BackendCapabilities, DeploymentBackend, Error, ErrorKind, Fingerprint, MARKER_PREFIX, Result,
    Revision, RevisionId, RollbackOptions, RollbackOutcome, RolloutSnapshot,
};
use deployguard_testkit::conformance;

/// One release on Shipyard: a number, an image, and the numbers it had before a redeploy.
#[derive(Debug, Clone)]
struct Release {
    number: u64,
    image: String,
    earlier_numbers: Vec<u64>,
    verified: bool,
}

#[derive(Debug, Default)]
struct App {
    releases: Vec<Release>,
    running: String,
    paused: bool,
    instances: u32,
    labels: BTreeMap<String, String>,
}

/// The backend: bound to one Shipyard app when it is built.
#[derive(Debug)]
struct Shipyard {
    name: String,
    app: Mutex<App>,
}

impl Shipyard {
    fn new(name: &str, images: &[&str]) -> Self {
        let releases = images
            .iter()
            .enumerate()
            .map(|(i, image)| Release {
                number: i as u64 + 1,
                image: (*image).to_owned(),
                earlier_numbers: Vec::new(),
                verified: false,
            })
            .collect::<Vec<_>>();
        let running = releases.last().map(|r| r.image.clone()).unwrap_or_default();
        Self {
            name: name.to_owned(),
            app: Mutex::new(App {
                releases,
                running,
                instances: 2,
                ..App::default()
            }),
        }
    }

    fn app(&self) -> MutexGuard<'_, App> {
        self.app.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn not_found(&self, operation: &'static str, id: RevisionId) -> Error {
        Error::not_found(format!("release {id} does not exist"))
            .with_operation(operation)
            .with_object(self.target())
    }
}

fn answers_to(release: &Release, id: RevisionId) -> bool {
    release.number == id.0 || release.earlier_numbers.contains(&id.0)
}

#[async_trait]
impl DeploymentBackend for Shipyard {
    fn target(&self) -> String {
        format!("shipyard app {}", self.name)
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn capabilities(&self) -> BackendCapabilities {
        BackendCapabilities::full()
    }

    async fn observe(&self) -> Result<RolloutSnapshot> {
        let app = self.app();
        let mut snapshot = RolloutSnapshot::new(app.instances);
        snapshot.total = app.instances;
        snapshot.updated = app.instances;
        snapshot.ready = app.instances;
        snapshot.available = app.instances;
        snapshot.paused = app.paused;
        if let Some(release) = app.releases.iter().find(|r| r.image == app.running) {
            snapshot.current_revision = Some(RevisionId(release.number));
            snapshot.current_fingerprint = Some(Fingerprint::new(release.image.clone()));
        }
        Ok(snapshot)
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        let app = self.app();
        let mut history: Vec<Revision> = app
            .releases
            .iter()
            .map(|r| {
                Revision::new(
                    RevisionId(r.number),
                    Fingerprint::new(r.image.clone()),
                    vec![r.image.clone()],
                )
                .with_verified(r.verified)
                .with_previous_ids(r.earlier_numbers.iter().copied().map(RevisionId).collect())
            })
            .collect();
        history.sort_by_key(|r| r.id);
        Ok(history)
    }

    async fn rollback_to(
        &self,
        id: RevisionId,
        options: RollbackOptions,
    ) -> Result<RollbackOutcome> {
        let mut app = self.app();
        let Some(index) = app.releases.iter().position(|r| answers_to(r, id)) else {
            return Err(self.not_found("rollback_to", id));
        };
        let current = app
            .releases
            .iter()
            .find(|r| r.image == app.running)
            .map(|r| RevisionId(r.number));
        // Compare before write: only roll back from what the caller decided from.
        if let Some(expected) = options.expected_current
            && current != Some(expected)
        {
            return Err(Error::conflict(format!(
                "expected release {expected} running, found {current:?}"
            ))
            .with_operation("rollback_to")
            .with_object(self.target()));
        }
        if app.releases[index].image == app.running {
            return Ok(RollbackOutcome::AlreadyCurrent { revision: id });
        }
        if app.paused && !options.resume_if_paused {
            return Err(
                Error::new(ErrorKind::Refused, "the app is paused").with_object(self.target())
            );
        }
        // Shipyard, like Kubernetes, redeploys an old release under a new number.
        let next = app.releases.iter().map(|r| r.number).max().unwrap_or(0) + 1;
        let release = &mut app.releases[index];
        release.earlier_numbers.push(release.number);
        release.number = next;
        app.running = app.releases[index].image.clone();
        app.paused = false;
        Ok(RollbackOutcome::RolledBack {
            from: current,
            to: id,
        })
    }

    async fn set_paused(&self, paused: bool) -> Result<()> {
        self.app().paused = paused;
        Ok(())
    }

    async fn scale(&self, replicas: u32) -> Result<()> {
        self.app().instances = replicas;
        Ok(())
    }

    async fn mark_verified(&self, id: RevisionId) -> Result<()> {
        let mut app = self.app();
        let release = app
            .releases
            .iter_mut()
            .find(|r| answers_to(r, id))
            .ok_or_else(|| self.not_found("mark_verified", id))?;
        release.verified = true;
        Ok(())
    }

    async fn markers(&self) -> Result<BTreeMap<String, String>> {
        let app = self.app();
        let markers = app
            .labels
            .iter()
            .filter(|(key, _)| key.starts_with(MARKER_PREFIX));
        Ok(markers
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }

    async fn set_marker(&self, key: &str, value: Option<String>) -> Result<()> {
        // The same key rule on every backend, so guards find their markers anywhere.
        deployguard_core::check_marker_key(key)?;
        let mut app = self.app();
        match value {
            Some(value) => app.labels.insert(key.to_owned(), value),
            None => app.labels.remove(key),
        };
        Ok(())
    }
}

/// Runs the deployguard backend conformance suite against "Shipyard", an imaginary platform
/// whose backend this example implements (see the source), and says whether it passes.
#[derive(Debug, clap::Parser)]
#[command(name = "custom-backend")]
struct Args {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Args {} = clap::Parser::parse();
    let backend = Shipyard::new("shop", &["shop:1.0", "shop:1.1", "shop:1.2"]);
    match conformance::backend_suite(&backend).await {
        Ok(()) => println!("Shipyard passes the deployguard backend conformance suite"),
        Err(failure) => {
            eprintln!("{failure}");
            std::process::exit(1);
        }
    }
}
