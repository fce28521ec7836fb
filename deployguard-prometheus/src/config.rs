//! [`PrometheusConfig`]: where Prometheus is and how to talk to it.

use std::fmt;
use std::time::Duration;

use deployguard_core::{Error, Result};
use http::{HeaderName, HeaderValue};

/// How requests authenticate. Secrets are never logged: `Debug` shows which kind, not the value.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic <base64(user:password)>`.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Self::Basic { user, .. } => write!(f, "Basic({user}:<redacted>)"),
        }
    }
}

/// Where Prometheus (or Thanos, Cortex, Mimir: anything that serves `/api/v1/query`) is.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    pub(crate) base: http::Uri,
    pub(crate) auth: Option<Auth>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) timeout: Duration,
}

impl PrometheusConfig {
    /// Prometheus at `base_url` (`http://prometheus:9090`, or a path prefix such as
    /// `https://thanos.example/query`), 10 s timeout, no auth.
    ///
    /// ```
    /// use deployguard_prometheus::PrometheusConfig;
    ///
    /// let err = PrometheusConfig::new("prometheus:9090").unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid input: prometheus url: \"prometheus:9090\" is not an http:// or https:// URL"
    /// );
    /// ```
    pub fn new(base_url: &str) -> Result<Self> {
        let bad = || {
            Error::invalid_input(
                "prometheus url",
                format!("{base_url:?} is not an http:// or https:// URL"),
            )
        };
        let base: http::Uri = base_url.trim_end_matches('/').parse().map_err(|_| bad())?;
        if !matches!(base.scheme_str(), Some("http" | "https")) || base.host().is_none() {
            return Err(bad());
        }
        Ok(Self {
            base,
            auth: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
        })
    }

    /// Authenticates with a bearer token (an empty token is none).
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.auth = (!token.is_empty()).then_some(Auth::Bearer(token));
        self
    }

    /// Authenticates with basic auth.
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some(Auth::Basic {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Adds a header to every request (`X-Scope-OrgID` for a Cortex or Mimir tenant).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self> {
        let name = HeaderName::try_from(name).map_err(|_| {
            Error::invalid_input(
                "prometheus header",
                format!("{name:?} is not a header name"),
            )
        })?;
        let value = HeaderValue::try_from(value).map_err(|_| {
            Error::invalid_input(
                "prometheus header",
                format!("the value of {name} is not a header value"),
            )
        })?;
        self.headers.push((name, value));
        Ok(self)
    }

    /// How long one query may take, connection included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> String {
        self.base.to_string().trim_end_matches('/').to_owned()
    }
}
