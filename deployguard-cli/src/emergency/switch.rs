//! Putting a route back on its stable side, for any router that can say whether a side can
//! serve: a Service selector, an Istio route, a Gateway API HTTPRoute, an ALB listener or rule. Read, check the stable
//! side, dry run, consent, a write conditional on the read the person consented to, then
//! verification within the deadline.

use std::io::Write;
use std::time::Duration;

use async_trait::async_trait;
use deployguard_aws::AlbRouter;
use deployguard_core::{ErrorKind, Result, TrafficRouter, TrafficSplit, Verification};
use deployguard_istio::IstioRouter;
use deployguard_k8s::{GatewayRouter, ServiceSelectorRouter};

use super::{Confirm, Exit, Options, consent};

/// A router the command can put back on its stable side.
#[async_trait]
pub(super) trait SwitchBack: TrafficRouter {
    /// Refuses unless `backend` can serve (ready pods, healthy targets); reads only.
    async fn can_serve(&self, backend: &str) -> Result<()>;
}

#[async_trait]
impl SwitchBack for IstioRouter {
    async fn can_serve(&self, backend: &str) -> Result<()> {
        self.check_ready(backend).await
    }
}

#[async_trait]
impl SwitchBack for ServiceSelectorRouter {
    async fn can_serve(&self, backend: &str) -> Result<()> {
        self.check_ready(backend).await
    }
}

#[async_trait]
impl SwitchBack for GatewayRouter {
    async fn can_serve(&self, backend: &str) -> Result<()> {
        self.check_ready(backend).await
    }
}

#[async_trait]
impl SwitchBack for AlbRouter {
    async fn can_serve(&self, backend: &str) -> Result<()> {
        self.check_healthy(backend).await
    }
}

/// How the messages name things.
pub(super) struct Words {
    /// What is switched: `virtualservice default/myapp`, `listener arn:…`.
    pub(super) target: String,
    /// The stable side: `subset stable`, `target group shop-blue`.
    pub(super) stable: String,
    /// `Istio`, `ALB`.
    pub(super) platform: &'static str,
    /// What a match means: `applied by the mesh`, `verified`.
    pub(super) applied: &'static str,
}

fn refused_or_failed(err: &deployguard_core::Error) -> Exit {
    if err.kind() == ErrorKind::Refused {
        Exit::Refused
    } else {
        Exit::Failed
    }
}

/// Sends everything to `stable` and nothing to the router's other backends.
pub(super) async fn switch_back(
    router: &dyn SwitchBack,
    stable: &str,
    words: &Words,
    options: &Options,
    confirm: &mut (dyn Confirm + Send),
    out: &mut (dyn Write + Send),
    what: &str,
) -> Exit {
    let Words {
        target,
        stable: stable_words,
        platform,
        applied,
    } = words;
    let others: Vec<String> = router
        .capabilities()
        .backends
        .into_iter()
        .filter(|b| b != stable)
        .collect();
    let others: Vec<&str> = others.iter().map(String::as_str).collect();
    let wanted = match TrafficSplit::all_to(stable, &others) {
        Ok(split) => split,
        Err(err) => {
            let _ = writeln!(out, "error: {err}");
            return Exit::Failed;
        }
    };
    let current = match router.current().await {
        Ok(c) => c,
        Err(err) => {
            let _ = writeln!(out, "error: {err}");
            return Exit::Failed;
        }
    };
    if current.split == wanted {
        let _ = writeln!(
            out,
            "{what}: traffic is already on {stable_words} ({target})"
        );
        return Exit::Ok;
    }
    if let Err(err) = router.can_serve(stable).await {
        let _ = writeln!(out, "refusing: {err}");
        return refused_or_failed(&err);
    }
    if options.dry_run {
        let _ = writeln!(
            out,
            "dry run: would set {target} from {} to {wanted}; nothing was written",
            current.split
        );
        return Exit::Ok;
    }
    let question = format!(
        "Send all of {target}'s traffic to {stable_words} (now {})?",
        current.split
    );
    let action = format!("send {target}'s traffic to {stable_words}");
    if let Some(refused) = consent(options, confirm, out, &question, &action) {
        return refused;
    }
    if let Err(err) = router.apply(&wanted, &current.version).await {
        let _ = writeln!(out, "{platform} rollback FAILED: {err}");
        return refused_or_failed(&err);
    }
    let deadline = tokio::time::Instant::now() + options.max_rollback_time;
    loop {
        match router.verify(&wanted).await {
            Ok(Verification::Matches) => {
                let _ = writeln!(
                    out,
                    "{target}: all traffic on {stable_words} ({wanted}), {applied}"
                );
                return Exit::Ok;
            }
            Ok(Verification::Differs(actual)) => {
                let _ = writeln!(
                    out,
                    "{platform} rollback FAILED: wrote {wanted}, but {target} now routes {actual}"
                );
                return Exit::Failed;
            }
            Ok(Verification::Unknown(why)) if tokio::time::Instant::now() >= deadline => {
                let _ = writeln!(
                    out,
                    "{target}: wrote {wanted}; the platform has not confirmed it yet ({why})"
                );
                return Exit::Failed;
            }
            Ok(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            Err(err) => {
                let _ = writeln!(out, "{platform} rollback FAILED: {err}");
                return Exit::Failed;
            }
        }
    }
}
