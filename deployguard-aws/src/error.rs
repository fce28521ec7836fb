//! AWS SDK errors as deployguard's [`Error`]: the kind from the error code and HTTP status,
//! whether a retry helps, and the ARN in the message.

use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use deployguard_core::{Error, ErrorKind};

/// Maps an SDK error of `operation` on `object` (an ARN): throttling and 5xx are
/// [`ErrorKind::Unavailable`] (retryable), access denied is [`ErrorKind::Forbidden`], a missing
/// listener, rule or target group is [`ErrorKind::NotFound`], a rejected request
/// [`ErrorKind::InvalidInput`], a timeout [`ErrorKind::Timeout`].
pub(crate) fn from_sdk<E>(err: SdkError<E>, operation: &'static str, object: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let (kind, detail) = match &err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let code = inner.code().unwrap_or("Unknown").to_owned();
            let message = inner.message().unwrap_or("").to_owned();
            (kind_of(&code, status), format!("{code}: {message}"))
        }
        SdkError::TimeoutError(_) => (ErrorKind::Timeout, "the request timed out".to_owned()),
        SdkError::DispatchFailure(failure) => (
            if failure.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Unavailable
            },
            "the request could not be sent (connection failed)".to_owned(),
        ),
        SdkError::ResponseError(_) => (
            ErrorKind::Unavailable,
            format!(
                "the response could not be read (HTTP {})",
                status.map_or("?".into(), |s| s.to_string())
            ),
        ),
        _ => (
            ErrorKind::Unexpected,
            "the request could not be built".to_owned(),
        ),
    };
    Error::new(kind, format!("{object}: {detail}"))
        .with_operation(operation)
        .with_object(object.to_owned())
        .with_source(err)
}

fn kind_of(code: &str, status: Option<u16>) -> ErrorKind {
    match code {
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException" => ErrorKind::Unavailable,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken" => ErrorKind::Forbidden,
        "ListenerNotFound" | "RuleNotFound" | "TargetGroupNotFound" | "LoadBalancerNotFound" => {
            ErrorKind::NotFound
        }
        "ValidationError" | "InvalidConfigurationRequest" | "InvalidTarget" => {
            ErrorKind::InvalidInput
        }
        _ => match status {
            Some(500..=599) => ErrorKind::Unavailable,
            Some(403) => ErrorKind::Forbidden,
            Some(404) => ErrorKind::NotFound,
            Some(400..=499) => ErrorKind::InvalidInput,
            _ => ErrorKind::Unexpected,
        },
    }
}
