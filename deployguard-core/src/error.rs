//! The one error type of deployguard.
//!
//! Every backend maps its SDK's errors into [`Error`]: the [`ErrorKind`] says *what* went wrong in
//! terms the engine can act on, [`Error::is_retryable`] says whether trying again can help, and the
//! context (operation, object) says where.

use std::fmt;

/// A `Result` whose error is deployguard's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
///
/// The kind decides the default retry behaviour: see [`ErrorKind::is_retryable_by_default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object (deployment, revision, route, …) does not exist.
    NotFound,
    /// The object already exists.
    AlreadyExists,
    /// The object changed between read and write; re-read and decide again.
    Conflict,
    /// The caller is not allowed to do this.
    Forbidden,
    /// The backend cannot do this at all (for example a weighted split on an all-or-nothing router).
    Unsupported,
    /// The input is wrong; the message names the field or value.
    InvalidInput,
    /// The operation, or the whole recovery, ran out of time.
    Timeout,
    /// The platform could not be reached or answered with a transient failure.
    Unavailable,
    /// The state of the system forbids the operation (for example a migration gate).
    Refused,
    /// Anything else: a bug, or a platform answer we do not understand.
    Unexpected,
}

impl ErrorKind {
    /// Whether an error of this kind is worth retrying when nothing else is known.
    ///
    /// A [`Conflict`](ErrorKind::Conflict) is retryable because a fresh read followed by a new
    /// decision can succeed; the retry must re-read, never resend the same write.
    pub fn is_retryable_by_default(self) -> bool {
        matches!(self, Self::Conflict | Self::Timeout | Self::Unavailable)
    }

    /// A short lower-case name, as used in messages and journals.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not found",
            Self::AlreadyExists => "already exists",
            Self::Conflict => "conflict",
            Self::Forbidden => "forbidden",
            Self::Unsupported => "unsupported",
            Self::InvalidInput => "invalid input",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Refused => "refused",
            Self::Unexpected => "unexpected",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every deployguard operation.
///
/// ```
/// use deployguard_core::{Error, ErrorKind};
///
/// let err = Error::new(ErrorKind::NotFound, "revision 7 is not in the history")
///     .with_operation("rollback_to")
///     .with_object("deployment default/web");
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// assert!(!err.is_retryable());
/// assert_eq!(
///     err.to_string(),
///     "not found: revision 7 is not in the history (rollback_to on deployment default/web)"
/// );
/// ```
#[derive(thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    operation: Option<&'static str>,
    object: Option<String>,
    retryable: bool,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message saying what went wrong.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            operation: None,
            object: None,
            retryable: kind.is_retryable_by_default(),
            source: None,
        }
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error naming the field that is wrong.
    pub fn invalid_input(field: &str, problem: impl fmt::Display) -> Self {
        Self::new(ErrorKind::InvalidInput, format!("{field}: {problem}"))
    }

    /// Shorthand for an [`ErrorKind::NotFound`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for an [`ErrorKind::Conflict`] error.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// Shorthand for an [`ErrorKind::Unsupported`] error.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Names the operation that failed (`"rollback_to"`, `"apply"`, …).
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        self.operation = Some(operation);
        self
    }

    /// Names the object the operation was about (`"deployment default/web"`).
    pub fn with_object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Overrides whether retrying can help (for example a 429 mapped to `Unavailable` is retryable,
    /// a 501 mapped to `Unavailable` is not).
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether trying again (after a fresh read, for conflicts) can help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The message, without the context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The operation that failed, where known.
    pub fn operation(&self) -> Option<&'static str> {
        self.operation
    }

    /// The object the operation was about, where known.
    pub fn object(&self) -> Option<&str> {
        self.object.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        match (self.operation, &self.object) {
            (Some(op), Some(obj)) => write!(f, " ({op} on {obj})"),
            (Some(op), None) => write!(f, " ({op})"),
            (None, Some(obj)) => write!(f, " (on {obj})"),
            (None, None) => Ok(()),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Error");
        s.field("kind", &self.kind).field("message", &self.message);
        if let Some(op) = self.operation {
            s.field("operation", &op);
        }
        if let Some(obj) = &self.object {
            s.field("object", obj);
        }
        s.field("retryable", &self.retryable);
        if let Some(source) = &self.source {
            s.field("source", source);
        }
        s.finish()
    }
}

impl Clone for Error {
    /// Clones everything but the source, which is kept as its message: sources are not `Clone`.
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            message: self.message.clone(),
            operation: self.operation,
            object: self.object.clone(),
            retryable: self.retryable,
            source: self
                .source
                .as_ref()
                .map(|s| Box::new(SourceText(s.to_string())) as _),
        }
    }
}

/// A cloned source, kept as text.
#[derive(Debug)]
struct SourceText(String);

impl fmt::Display for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceText {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_follows_kind_unless_overridden() {
        assert!(Error::conflict("rv changed").is_retryable());
        assert!(Error::new(ErrorKind::Unavailable, "503").is_retryable());
        assert!(!Error::not_found("x").is_retryable());
        assert!(
            !Error::new(ErrorKind::Unavailable, "501")
                .with_retryable(false)
                .is_retryable()
        );
    }

    #[test]
    fn clone_keeps_source_text() {
        let io = std::io::Error::other("socket closed");
        let err = Error::new(ErrorKind::Unavailable, "get failed").with_source(io);
        let cloned = err.clone();
        let source = std::error::Error::source(&cloned).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("socket closed"));
    }
}
