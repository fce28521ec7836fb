//! Mapping kube-rs errors into deployguard's [`Error`].

use deployguard_core::{Error, ErrorKind};

/// Maps a kube-rs error for `operation` on `object` into deployguard's error: the API status
/// code decides the kind and whether a retry can help.
pub fn from_kube(err: kube::Error, operation: &'static str, object: &str) -> Error {
    let mapped = match &err {
        kube::Error::Api(status) => {
            let kind = match (status.code, status.reason.as_str()) {
                (404, _) => ErrorKind::NotFound,
                (409, "AlreadyExists") => ErrorKind::AlreadyExists,
                (409, _) => ErrorKind::Conflict,
                (401 | 403, _) => ErrorKind::Forbidden,
                (400 | 422, _) => ErrorKind::InvalidInput,
                (405, _) => ErrorKind::Unsupported,
                (408 | 504, _) => ErrorKind::Timeout,
                (429 | 500 | 502 | 503, _) => ErrorKind::Unavailable,
                _ => ErrorKind::Unexpected,
            };
            Error::new(
                kind,
                format!("{} ({}): {}", status.reason, status.code, status.message),
            )
        }
        // A connection that broke, a stream cut short (a watch's events): the next attempt
        // (a re-watch) is the remedy.
        // kube-rs's own prefix ("ServiceError: ") says nothing a person can act on.
        kube::Error::Service(inner) => Error::new(ErrorKind::Unavailable, inner.to_string()),
        kube::Error::HyperError(_) | kube::Error::ReadEvents(_) => {
            Error::new(ErrorKind::Unavailable, err.to_string())
        }
        _ => Error::new(ErrorKind::Unexpected, err.to_string()),
    };
    mapped
        .with_operation(operation)
        .with_object(object.to_owned())
        .with_source(err)
}
