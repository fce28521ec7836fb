//! Fault injection per verb and resource, and the request log tests and benchmarks read.

use std::time::Duration;

use crate::rng::Rng;

/// An API verb, as RBAC names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verb {
    /// GET of one object (or a subresource).
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH.
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
    /// Discovery and other non-resource paths.
    Discovery,
}

impl Verb {
    /// Whether the verb writes.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::Create | Self::Update | Self::Patch | Self::Delete | Self::DeleteCollection
        )
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Answer with this HTTP status and a matching `Status` body; nothing is written.
    Status(u16),
    /// Wait this long (tokio's clock) before serving the request normally.
    Latency(Duration),
    /// Answer a write with the real 409 Conflict; nothing is written.
    Conflict,
    /// End a watch stream right after it starts (clients must re-watch).
    DropWatch,
    /// Close the connection without an answer; nothing is written (a reset).
    Reset,
    /// Serve the request (a write takes effect), then close the connection without the answer:
    /// the client cannot tell whether it happened.
    LoseResponse,
    /// Say nothing for this long, then answer with this HTTP status (a gateway timing out).
    HangThenStatus(Duration, u16),
}

/// How often a fault fires.
#[derive(Debug, Clone, PartialEq)]
enum Budget {
    Always,
    Times(u32),
    /// Fires on a deterministic share of matching requests (0.25 → every fourth).
    Rate {
        rate: f64,
        credit: f64,
    },
    /// Fires on each matching request with this probability, drawn from a seeded generator:
    /// the same seed fires on the same requests.
    Random {
        probability: f64,
        rng: Rng,
    },
}

/// One injected fault: which requests it matches, what it does, how often.
///
/// ```
/// use deployguard_kube_sim::{Fault, Verb};
///
/// let fault = Fault::status(503).on(Verb::Get).resource("deployments").times(2);
/// # let _ = fault;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    verb: Option<Verb>,
    resource: Option<String>,
    action: FaultAction,
    budget: Budget,
}

impl Fault {
    /// Answers matching requests with HTTP `code`.
    pub fn status(code: u16) -> Self {
        Self::new(FaultAction::Status(code))
    }

    /// Delays matching requests.
    pub fn latency(delay: Duration) -> Self {
        Self::new(FaultAction::Latency(delay))
    }

    /// Closes the connection without answering matching requests (nothing is written).
    pub fn reset() -> Self {
        Self::new(FaultAction::Reset)
    }

    /// Serves matching requests, then closes the connection without the answer.
    pub fn lose_response() -> Self {
        Self::new(FaultAction::LoseResponse)
    }

    /// Says nothing for `delay`, then answers matching requests with HTTP `code` (504 for a
    /// gateway timing out).
    pub fn hang_then(delay: Duration, code: u16) -> Self {
        Self::new(FaultAction::HangThenStatus(delay, code))
    }

    /// Answers matching writes with 409 Conflict.
    pub fn conflict() -> Self {
        Self::new(FaultAction::Conflict)
    }

    /// Ends matching watches at once.
    pub fn drop_watch() -> Self {
        Self::new(FaultAction::DropWatch).on(Verb::Watch)
    }

    fn new(action: FaultAction) -> Self {
        Self {
            verb: None,
            resource: None,
            action,
            budget: Budget::Always,
        }
    }

    /// Only requests of this verb.
    pub fn on(mut self, verb: Verb) -> Self {
        self.verb = Some(verb);
        self
    }

    /// Only requests for this resource (plural: `deployments`, `pods`).
    pub fn resource(mut self, plural: &str) -> Self {
        self.resource = Some(plural.into());
        self
    }

    /// Fires `count` times, then never.
    pub fn times(mut self, count: u32) -> Self {
        self.budget = Budget::Times(count);
        self
    }

    /// Fires on this share of matching requests, deterministically spread.
    pub fn rate(mut self, rate: f64) -> Self {
        self.budget = Budget::Rate {
            rate: rate.clamp(0.0, 1.0),
            credit: 0.0,
        };
        self
    }

    /// Fires on each matching request with `probability`, drawn from a generator seeded with
    /// `seed`: a run is reproducible, and different seeds hit different requests.
    pub fn probability(mut self, probability: f64, seed: u64) -> Self {
        self.budget = Budget::Random {
            probability: probability.clamp(0.0, 1.0),
            rng: Rng::with_state(seed),
        };
        self
    }

    fn matches(&self, verb: Verb, resource: Option<&str>) -> bool {
        self.verb.is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| Some(r) == resource)
    }

    /// Spends one firing if the budget allows.
    fn fire(&mut self) -> bool {
        match &mut self.budget {
            Budget::Always => true,
            Budget::Times(0) => false,
            Budget::Times(n) => {
                *n -= 1;
                true
            }
            Budget::Rate { rate, credit } => {
                *credit += *rate;
                if *credit >= 1.0 - 1e-9 {
                    *credit -= 1.0;
                    true
                } else {
                    false
                }
            }
            Budget::Random { probability, rng } => rng.unit() < *probability,
        }
    }
}

/// The faults that fire for one request.
pub(crate) fn firing(
    faults: &mut Vec<Fault>,
    verb: Verb,
    resource: Option<&str>,
) -> Vec<FaultAction> {
    let fired: Vec<FaultAction> = faults
        .iter_mut()
        .filter(|f| f.matches(verb, resource))
        .filter_map(|f| f.fire().then(|| f.action.clone()))
        .collect();
    faults.retain(|f| f.budget != Budget::Times(0));
    fired
}

/// A fault's spelling on the `fake-cluster` command line: `503`, `500`, `429`, `reset`,
/// `lost-response`, `hang-504` (10 s, then 504), `conflict`, or `latency-<ms>`; `None` for
/// anything else.
pub fn parse_fault(kind: &str) -> Option<Fault> {
    Some(match kind {
        "reset" => Fault::reset(),
        "lost-response" => Fault::lose_response(),
        "hang-504" => Fault::hang_then(Duration::from_secs(10), 504),
        "conflict" => Fault::conflict(),
        other => match other.strip_prefix("latency-") {
            Some(ms) => Fault::latency(Duration::from_millis(ms.parse().ok()?)),
            None => {
                let code: u16 = other.parse().ok()?;
                if !(400..=599).contains(&code) {
                    return None;
                }
                Fault::status(code)
            }
        },
    })
}

/// One served request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `PATCH`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The verb it was served as.
    pub verb: Verb,
    /// The HTTP status answered (0: none, the connection was reset; a lost response records
    /// the status that was not delivered, and says so in `fault`).
    pub status: u16,
    /// Time to the response head (tokio's clock; for watches, not the stream's length).
    pub duration: Duration,
    /// What injected faults did to it, in words (`None`: none fired).
    pub fault: Option<String>,
}
