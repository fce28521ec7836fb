//! What a person sees while the command runs, and how it asks them.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deployguard_core::engine::{EventKind, JournalEvent, JournalSink};

/// Shows the recovery as it runs, on the progress stream: one plain line per event, or on a
/// terminal a spinner line that carries the current step and the rollout's state.
pub(super) struct Progress {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    /// The spinner's text and since when it shows, when a spinner runs; `None` prints plain
    /// lines.
    spinner: Option<Arc<Mutex<(String, tokio::time::Instant)>>>,
    /// When the command started: every line's time counts from it (the engine's events count
    /// from the plan's start, the lease's retries from before it).
    started: tokio::time::Instant,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// The spinner's frames and how often it turns.
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const TURN: Duration = Duration::from_millis(100);

impl Progress {
    pub(super) fn new(
        out: Arc<Mutex<Box<dyn Write + Send>>>,
        spinner: bool,
        started: tokio::time::Instant,
    ) -> Self {
        let spinner =
            spinner.then(|| Arc::new(Mutex::new((String::new(), tokio::time::Instant::now()))));
        if let Some(text) = &spinner {
            // Redraws the spinner line until the last handle to its text is dropped.
            let text = Arc::downgrade(text);
            let out = Arc::clone(&out);
            tokio::spawn(async move {
                for frame in FRAMES.iter().cycle() {
                    tokio::time::sleep(TURN).await;
                    let Some(text) = text.upgrade() else { break };
                    let Ok((line, since)) = text.lock().map(|t| t.clone()) else {
                        break;
                    };
                    if let (false, Ok(mut out)) = (line.is_empty(), out.lock()) {
                        let elapsed = since.elapsed().as_secs();
                        let _ = write!(out, "\r\x1b[2K{frame} {line} [{elapsed}s]");
                        let _ = out.flush();
                    }
                }
            });
        }
        Self {
            out,
            spinner,
            started,
        }
    }

    /// A line that stays: clears the spinner's line first.
    fn line(&self, text: &str) {
        if let Ok(mut out) = self.out.lock() {
            let clear = if self.spinner.is_some() {
                "\r\x1b[2K"
            } else {
                ""
            };
            let _ = writeln!(out, "{clear}{text}");
        }
    }

    /// What the spinner shows from now on (a plain line without a spinner).
    fn status(&self, text: String) {
        match &self.spinner {
            Some(spinner) => {
                if let Ok(mut current) = spinner.lock() {
                    *current = (text, tokio::time::Instant::now());
                }
            }
            None => self.line(&text),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Leave no half-drawn spinner line behind.
        if let (Some(_), Ok(mut out)) = (&self.spinner, self.out.lock()) {
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
        }
    }
}

impl JournalSink for Progress {
    fn record(&self, event: &JournalEvent) {
        let at = self.started.elapsed().as_secs();
        match &event.kind {
            EventKind::StepStarted { index, step } => {
                self.status(format!("[+{at}s] step {}: {step} ...", index + 1))
            }
            EventKind::StepFinished {
                index,
                took,
                attempts,
            } => {
                let tries = if *attempts == 1 {
                    String::new()
                } else {
                    format!(", {attempts} attempts")
                };
                self.line(&format!(
                    "[+{at}s] step {} done in {:.1}s{tries}",
                    index + 1,
                    took.as_secs_f64()
                ));
            }
            EventKind::StepRetrying {
                index,
                attempt,
                error,
                wait,
            } => self.line(&format!(
                "[+{at}s] step {}: attempt {attempt} failed ({error}); trying again in {:.1}s",
                index + 1,
                wait.as_secs_f64()
            )),
            EventKind::StepFailed { index, error } => {
                self.line(&format!("[+{at}s] step {} FAILED: {error}", index + 1))
            }
            EventKind::Observed { status, .. } => {
                self.status(format!("[+{at}s] rollout: {status}"))
            }
            _ => {}
        }
    }
}

/// Asks the operator; `None` when there is no terminal to ask on.
pub trait Confirm {
    /// Asks `question`; `None` when nobody can answer.
    fn confirm(&mut self, question: &str) -> Option<bool>;
}

/// Asks on the terminal, if stdin is one.
#[derive(Debug, Default)]
pub struct Terminal;

impl Confirm for Terminal {
    fn confirm(&mut self, question: &str) -> Option<bool> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        eprint!("{question} [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).ok()?;
        Some(matches!(answer.trim(), "y" | "Y" | "yes"))
    }
}
