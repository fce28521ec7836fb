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
///
/// Its `Debug` names what is set and shows no secret: no header value (an API key travels in
/// one), no password or token, no user-info of the URL.
///
/// ```
/// use deployguard_prometheus::PrometheusConfig;
///
/// let config = PrometheusConfig::new("https://admin:hunter2@prometheus.example:9090")?
///     .bearer_token("t0ken")
///     .header("X-Api-Key", "s3cret")?;
/// let shown = format!("{config:?}");
/// assert!(!shown.contains("hunter2") && !shown.contains("t0ken") && !shown.contains("s3cret"));
/// assert!(shown.contains("prometheus.example:9090") && shown.contains("x-api-key"));
/// // The URL's user-info is basic auth, and gone from the URL.
/// let basic = PrometheusConfig::new("https://admin:hunter2@prometheus.example:9090")?;
/// assert_eq!(basic.base_url(), "https://prometheus.example:9090");
/// assert_eq!(format!("{:?}", basic).matches("hunter2").count(), 0);
/// # Ok::<(), deployguard_core::Error>(())
/// ```
#[derive(Clone)]
pub struct PrometheusConfig {
    pub(crate) base: http::Uri,
    pub(crate) auth: Option<Auth>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) timeout: Duration,
}

impl fmt::Debug for PrometheusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, _)| format!("{name}: <redacted>"))
            .collect();
        f.debug_struct("PrometheusConfig")
            .field("base", &self.base_url())
            .field("auth", &self.auth)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .finish()
    }
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
        crate::http::check_scheme(&base, "prometheus url")?;
        // `https://user:password@host` authenticates as curl would: basic auth, and the URL
        // keeps no secret to show in a log or an error.
        let mut auth = None;
        let mut base = base;
        let split = base.authority().and_then(|authority| {
            let (userinfo, host) = authority.as_str().rsplit_once('@')?;
            Some((userinfo.to_owned(), host.to_owned()))
        });
        if let Some((userinfo, host)) = split {
            let (user, password) = userinfo.split_once(':').unwrap_or((&userinfo, ""));
            auth = Some(Auth::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            });
            let mut parts = base.into_parts();
            parts.authority = Some(host.parse().map_err(|_| bad())?);
            base = http::Uri::from_parts(parts).map_err(|_| bad())?;
        }
        Ok(Self {
            base,
            auth,
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

    /// The base URL (never with user-info: that became basic auth).
    pub fn base_url(&self) -> String {
        self.base.to_string().trim_end_matches('/').to_owned()
    }
}
