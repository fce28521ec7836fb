//! The replay as a person reads it: one scenario side by side with its guarded timeline, or
//! every scenario in a confusion table against its ground truth.

use std::fmt::Write as _;
use std::time::Duration;

use deployguard_core::Result;
use deployguard_testkit::cluster::scenarios::{self, Truth};
use serde::Serialize;

use super::{ANALYSIS_INTERVAL, Action, NEW, Run, replay};

/// `text` with each ReplicaSet hash that stands alone named by its image:
/// `app:v2.4.0 [56986757b7]` (a hash inside a pod name stays as it is).
fn name_hashes(text: &str, images: &[(String, String)]) -> String {
    let mut text = text.to_owned();
    for (hash, image) in images {
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find(hash.as_str()) {
            let before = rest[..at].chars().last();
            let after = rest[at + hash.len()..].chars().next();
            let alone = |c: Option<char>| c.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '-');
            out.push_str(&rest[..at]);
            // `app:v2.4.0 (56986757b7)`: the engine has named it already.
            let named = before == Some('(');
            if alone(before) && alone(after) && !named {
                out.push_str(&format!("{image} [{hash}]"));
            } else {
                out.push_str(hash);
            }
            rest = &rest[at + hash.len()..];
        }
        out.push_str(rest);
        text = out;
    }
    text
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

fn failed(r: &Run) -> String {
    let share = if r.requests > 0 {
        r.failed as f64 / r.requests as f64 * 100.0
    } else {
        0.0
    };
    format!(
        "{} of {} ({share:.1}%), {} by {NEW}",
        r.failed, r.requests, r.failed_by_new_version
    )
}

/// The side-by-side table and the guarded timeline of one scenario.
pub fn render(scenario: &str, horizon: Duration, unguarded: &Run, guarded: &Run) -> String {
    let mut out = String::new();
    let truth = scenarios::catalogue()
        .into_iter()
        .find(|s| s.name == scenario)
        .and_then(|s| s.truth)
        .map_or_else(String::new, |t| format!(", ground truth: {t}"));
    let _ = writeln!(
        out,
        "deployguard incident replay: scenario {scenario}{truth} ({} min of simulated time, seed {})\n",
        horizon.as_secs() / 60,
        guarded.seed
    );
    let row = |out: &mut String, label: &str, unguarded: &str, guarded: &str| {
        let _ = writeln!(out, "{label:<18} {unguarded:<42} {guarded}");
    };
    row(
        &mut out,
        "",
        "unguarded (Kubernetes alone)",
        "guarded by deployguard",
    );
    let detect = |r: &Run| match (&r.detected, &r.detected_by) {
        (Some(at), Some(how)) if r.label == "unguarded" => format!("{} ({how})", seconds(*at)),
        (Some(at), _) => seconds(*at),
        _ => "never".to_owned(),
    };
    let recover = |r: &Run| r.recovered.map_or("never".to_owned(), seconds);
    let recovered_label = "settled at";
    row(
        &mut out,
        "what it did",
        &unguarded.action.to_string(),
        &guarded.action.to_string(),
    );
    row(
        &mut out,
        "time to act",
        &detect(unguarded),
        &detect(guarded),
    );
    row(
        &mut out,
        recovered_label,
        &recover(unguarded),
        &recover(guarded),
    );
    row(
        &mut out,
        "failed requests",
        &failed(unguarded),
        &failed(guarded),
    );
    if let Some(why) = &guarded.detected_by {
        let _ = writeln!(out, "\nwhy: {why}");
    }
    let _ = writeln!(
        out,
        "outcome: {}",
        name_hashes(&guarded.outcome, &guarded.hashes)
    );
    let _ = writeln!(out, "\nguarded timeline:");
    for (at, line) in &guarded.timeline {
        let line = name_hashes(line, &guarded.hashes);
        let _ = writeln!(out, "  +{:<6} {line}", seconds(*at));
    }
    out
}

/// One row of the confusion table: a scenario, its truth, and what each run did.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The scenario.
    pub scenario: String,
    /// Its ground truth.
    pub truth: String,
    /// The unguarded run.
    pub unguarded: Run,
    /// The guarded run.
    pub guarded: Run,
}

impl Row {
    /// Whether the guard did what the truth asks: promote a healthy rollout, roll back (or,
    /// past an incompatible migration, refuse and pause) a broken version, never roll back
    /// for a shared cause.
    pub fn guard_is_right(&self) -> bool {
        let truth = scenarios::catalogue()
            .into_iter()
            .find(|s| s.name == self.scenario)
            .and_then(|s| s.truth);
        match truth {
            Some(Truth::Healthy) => self.guarded.action == Action::Rollout,
            Some(Truth::VersionAtFault) if self.scenario == "migration-job-failed" => {
                self.guarded.action == Action::Paused
            }
            Some(Truth::VersionAtFault) => self.guarded.action == Action::RolledBack,
            Some(Truth::CapacityAtFault) => {
                matches!(self.guarded.action, Action::Paused | Action::Rollout)
            }
            _ => false,
        }
    }
}

/// Runs `scenario` unguarded and guarded.
pub async fn row(scenario: &str, horizon: Duration, seed: u64) -> Result<Row> {
    let unguarded = replay(scenario, false, horizon, seed).await?;
    let guarded = replay(scenario, true, horizon, seed).await?;
    let truth = scenarios::catalogue()
        .into_iter()
        .find(|s| s.name == scenario)
        .and_then(|s| s.truth)
        .map_or_else(String::new, |t| t.to_string());
    Ok(Row {
        scenario: scenario.to_owned(),
        truth,
        unguarded,
        guarded,
    })
}

/// The confusion table: per scenario its truth, what Kubernetes alone and the guard did, the
/// guard's time to act in analysis intervals, and failed requests guarded vs unguarded.
pub fn render_table(rows: &[Row], horizon: Duration) -> String {
    let mut out = String::new();
    let seed = rows.first().map_or(1, |r| r.guarded.seed);
    let _ = writeln!(
        out,
        "deployguard incident replay: every scenario, {} min of simulated time each, seed {seed}\n",
        horizon.as_secs() / 60
    );
    let width = rows
        .iter()
        .map(|r| r.scenario.len())
        .max()
        .unwrap_or(0)
        .max(22);
    let _ = writeln!(
        out,
        "{:<width$} {:<18} {:<22} {:<19} {:<9} {:>15} {:>15}  right?",
        "scenario",
        "ground truth",
        "Kubernetes alone",
        "deployguard",
        "acted in",
        "failed, alone",
        "failed, guarded",
    );
    for row in rows {
        let acted = row.guarded.detected.map_or("-".to_owned(), |d| {
            format!(
                "{:.1} int",
                d.as_secs_f64() / ANALYSIS_INTERVAL.as_secs_f64()
            )
        });
        let _ = writeln!(
            out,
            "{:<width$} {:<18} {:<22} {:<19} {:<9} {:>15} {:>15}  {}",
            row.scenario,
            row.truth,
            row.unguarded.action.to_string(),
            row.guarded.action.to_string(),
            acted,
            format!(
                "{} ({})",
                row.unguarded.failed, row.unguarded.failed_by_new_version
            ),
            format!(
                "{} ({})",
                row.guarded.failed, row.guarded.failed_by_new_version
            ),
            if row.guard_is_right() { "yes" } else { "NO" }
        );
    }
    let _ = writeln!(
        out,
        "\nacted in: from the rollout's start to the guard's decision, in {}s analysis intervals; \
         failed: all failed requests (those served by {NEW} in brackets)",
        ANALYSIS_INTERVAL.as_secs()
    );
    for row in rows {
        if let Some(why) = &row.guarded.detected_by {
            let _ = writeln!(out, "  {}: {why}", row.scenario);
        }
        if row.guarded.action == Action::Paused {
            let _ = writeln!(out, "    then: {}", row.guarded.outcome);
        }
    }
    out
}
