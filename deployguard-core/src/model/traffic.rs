//! Traffic splits and what a router can express.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// How traffic is shared between named backends ("stable"/"canary", "blue"/"green"), in whole
/// percent.
///
/// A split always sums to 100 and names each backend once: there is no way to build one that
/// does not.
///
/// ```
/// use deployguard_core::TrafficSplit;
///
/// let split = TrafficSplit::new([("stable", 90), ("canary", 10)])?;
/// assert_eq!(split.weight("canary"), Some(10));
///
/// let err = TrafficSplit::new([("stable", 90), ("canary", 20)]).unwrap_err();
/// assert_eq!(err.to_string(), "invalid input: traffic split: weights sum to 110, not 100");
/// # Ok::<(), deployguard_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TrafficSplit {
    weights: BTreeMap<String, u8>,
}

impl TrafficSplit {
    /// A split from `(backend, percent)` pairs.
    ///
    /// Fails with [`ErrorKind::InvalidInput`] when the list is empty, a name is empty or repeated,
    /// or the weights do not sum to 100.
    pub fn new<I, S>(weights: I) -> Result<Self>
    where
        I: IntoIterator<Item = (S, u8)>,
        S: Into<String>,
    {
        let mut map = BTreeMap::new();
        let mut sum: u32 = 0;
        for (name, weight) in weights {
            let name = name.into();
            if name.trim().is_empty() {
                return Err(Error::invalid_input(
                    "traffic split",
                    "a backend name is empty",
                ));
            }
            if map.insert(name.clone(), weight).is_some() {
                return Err(Error::invalid_input(
                    "traffic split",
                    format!("backend {name:?} is named twice"),
                ));
            }
            sum += u32::from(weight);
        }
        if map.is_empty() {
            return Err(Error::invalid_input("traffic split", "no backends"));
        }
        if sum != 100 {
            return Err(Error::invalid_input(
                "traffic split",
                format!("weights sum to {sum}, not 100"),
            ));
        }
        Ok(Self { weights: map })
    }

    /// Everything to `backend`, 0 to each of `others`.
    pub fn all_to(backend: &str, others: &[&str]) -> Result<Self> {
        Self::new(std::iter::once((backend, 100)).chain(others.iter().map(|name| (*name, 0))))
    }

    /// `candidate` gets `percent`, `stable` the rest.
    pub fn two_way(stable: &str, candidate: &str, percent: u8) -> Result<Self> {
        if percent > 100 {
            return Err(Error::invalid_input(
                "traffic split",
                format!("candidate weight {percent} is over 100"),
            ));
        }
        Self::new([(stable, 100 - percent), (candidate, percent)])
    }

    /// The weight of `backend`, if the split names it.
    pub fn weight(&self, backend: &str) -> Option<u8> {
        self.weights.get(backend).copied()
    }

    /// `(backend, percent)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u8)> {
        self.weights.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// How many backends the split names (with weight 0 included).
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Always false: a split names at least one backend. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Backends that get any traffic.
    pub fn receiving(&self) -> impl Iterator<Item = &str> {
        self.iter().filter(|(_, w)| *w > 0).map(|(k, _)| k)
    }
}

impl fmt::Display for TrafficSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, weight) in self.iter() {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{name}={weight}%")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for TrafficSplit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let weights = BTreeMap::<String, u8>::deserialize(deserializer)?;
        Self::new(weights).map_err(serde::de::Error::custom)
    }
}

/// How a router moves traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RoutingMode {
    /// Any whole-percent split (Istio, ALB weighted target groups).
    Weighted,
    /// One backend gets everything (a Service selector).
    AllOrNothing,
}

/// What a router can express. The engine plans only what the router can do, and the router
/// refuses anything else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RouterCapabilities {
    /// Weighted or all-or-nothing.
    pub mode: RoutingMode,
    /// Weights must be multiples of this many percent (1 for any).
    pub granularity: u8,
    /// The most backends one split may name.
    pub max_backends: usize,
    /// The backend names this router knows.
    pub backends: Vec<String>,
}

impl RouterCapabilities {
    /// A weighted router over `backends` with 1% granularity.
    pub fn weighted<S: Into<String>>(backends: impl IntoIterator<Item = S>) -> Self {
        let backends: Vec<String> = backends.into_iter().map(Into::into).collect();
        Self {
            mode: RoutingMode::Weighted,
            granularity: 1,
            max_backends: backends.len(),
            backends,
        }
    }

    /// An all-or-nothing router over `backends`.
    pub fn all_or_nothing<S: Into<String>>(backends: impl IntoIterator<Item = S>) -> Self {
        Self {
            mode: RoutingMode::AllOrNothing,
            ..Self::weighted(backends)
        }
    }

    /// Sets the granularity.
    pub fn with_granularity(mut self, percent: u8) -> Self {
        self.granularity = percent;
        self
    }

    /// Whether this router can apply `split`; the error names what it cannot express.
    ///
    /// Every router calls this before writing, so an inexpressible split never reaches the
    /// platform.
    pub fn check(&self, split: &TrafficSplit) -> Result<()> {
        if let Some((name, _)) = split
            .iter()
            .find(|(name, _)| !self.backends.iter().any(|b| b == name))
        {
            return Err(Error::invalid_input(
                "traffic split",
                format!(
                    "backend {name:?} is not routed by this router (known: {})",
                    self.backends.join(", ")
                ),
            ));
        }
        if split.len() > self.max_backends {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "split names {} backends, the router takes at most {}",
                    split.len(),
                    self.max_backends
                ),
            ));
        }
        match self.mode {
            RoutingMode::AllOrNothing => {
                if split.receiving().count() != 1 {
                    return Err(Error::unsupported(format!(
                        "split {split} is weighted; this router sends all traffic to one backend"
                    )));
                }
            }
            RoutingMode::Weighted => {
                let granularity = self.granularity.max(1);
                if let Some((name, weight)) = split.iter().find(|(_, w)| w % granularity != 0) {
                    return Err(Error::unsupported(format!(
                        "weight {weight} for {name:?} is not a multiple of {granularity}%"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The version of a route as a router read it (a resourceVersion, an ETag, a digest of what
/// was read): what a write is conditional on. Opaque; compare, never parse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RouteVersion(pub String);

impl fmt::Display for RouteVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A split as the router read it, with the version a write must be conditional on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Routed {
    /// What the route sends where.
    pub split: TrafficSplit,
    /// The version it was read at.
    pub version: RouteVersion,
}

impl Routed {
    /// A split read at `version`.
    pub fn new(split: TrafficSplit, version: RouteVersion) -> Self {
        Self { split, version }
    }
}

/// Whether the platform routes what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Verification {
    /// The platform routes exactly the split.
    Matches,
    /// The platform routes something else.
    Differs(TrafficSplit),
    /// The platform cannot tell yet (propagation under way, no data plane to ask).
    Unknown(String),
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Matches => f.write_str("matches"),
            Self::Differs(actual) => write!(f, "routes {actual} instead"),
            Self::Unknown(why) => write!(f, "cannot tell yet ({why})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_splits_are_refused_with_the_reason() {
        let cases: &[(&[(&str, u8)], &str)] = &[
            (&[], "invalid input: traffic split: no backends"),
            (
                &[("a", 50), ("a", 50)],
                "invalid input: traffic split: backend \"a\" is named twice",
            ),
            (
                &[("", 100)],
                "invalid input: traffic split: a backend name is empty",
            ),
            (
                &[("a", 60), ("b", 60)],
                "invalid input: traffic split: weights sum to 120, not 100",
            ),
            (
                &[("a", 99)],
                "invalid input: traffic split: weights sum to 99, not 100",
            ),
        ];
        for (weights, expected) in cases {
            let err = TrafficSplit::new(weights.iter().copied()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert_eq!(&err.to_string(), expected);
        }
    }

    #[test]
    fn deserializing_validates() {
        let err = serde_json::from_str::<TrafficSplit>(r#"{"a":10,"b":10}"#).unwrap_err();
        assert!(err.to_string().contains("weights sum to 20"), "{err}");
        let ok: TrafficSplit = serde_json::from_str(r#"{"a":10,"b":90}"#).unwrap();
        assert_eq!(ok.to_string(), "a=10%, b=90%");
    }

    #[test]
    fn capabilities_refuse_what_they_cannot_express() {
        let selector = RouterCapabilities::all_or_nothing(["blue", "green"]);
        assert!(
            selector
                .check(&TrafficSplit::all_to("green", &["blue"]).unwrap())
                .is_ok()
        );
        let weighted = TrafficSplit::two_way("blue", "green", 30).unwrap();
        assert_eq!(
            selector.check(&weighted).unwrap_err().kind(),
            ErrorKind::Unsupported
        );

        let coarse = RouterCapabilities::weighted(["stable", "canary"]).with_granularity(5);
        let odd = TrafficSplit::two_way("stable", "canary", 7).unwrap();
        assert_eq!(
            coarse.check(&odd).unwrap_err().kind(),
            ErrorKind::Unsupported
        );

        let unknown = TrafficSplit::all_to("preview", &[]).unwrap();
        let err = coarse.check(&unknown).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("\"preview\""), "{err}");
    }
}
