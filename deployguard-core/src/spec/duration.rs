//! Durations as people write them: `30s`, `10m`, `1h 30m`, `250ms` (humantime), written back
//! the same way.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// How a duration looks in the JSON Schema: a string like `30s`.
#[derive(schemars::JsonSchema)]
#[schemars(
    description = "A duration: a number and a unit, as `30s`, `10m`, `1h 30m` or `250ms`.",
    extend("pattern" = r"^\s*([0-9]+\s*(ns|us|ms|s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days)\s*)+$|^off$")
)]
pub(super) struct Schema(#[allow(dead_code)] String);

fn parse<E: serde::de::Error>(text: &str) -> Result<Duration, E> {
    humantime::parse_duration(text.trim())
        .map_err(|err| E::custom(format!("invalid duration {text:?}: {err}")))
}

pub(super) fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*duration).to_string())
}

pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse(&String::deserialize(d)?)
}

/// An optional duration (absent: none).
pub(super) mod option {
    use super::*;

    pub(in crate::spec) fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::serialize(duration, s),
            None => s.serialize_none(),
        }
    }

    pub(in crate::spec) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| parse(&text))
            .transpose()
    }
}

/// A duration or `off`.
pub(super) mod or_off {
    use super::*;

    pub(in crate::spec) fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::serialize(duration, s),
            None => s.serialize_str("off"),
        }
    }

    pub(in crate::spec) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        // YAML 1.1 readers take a bare `off` for false: both mean off.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Off {
            Text(String),
            Flag(bool),
        }
        match Off::deserialize(d)? {
            Off::Flag(false) => Ok(None),
            Off::Flag(true) => Err(serde::de::Error::custom(
                "invalid duration `true`: a duration like 30s, or off",
            )),
            Off::Text(text) if text.trim() == "off" => Ok(None),
            Off::Text(text) => parse(&text).map(Some),
        }
    }
}
