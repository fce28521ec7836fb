//! Bearer tokens: the ones a test issues to users, and ServiceAccount tokens as `kubectl create
//! token` asks for them (an hour of cluster time, void once the account is gone).

use super::*;

/// One issued bearer token.
#[derive(Debug, Clone)]
pub(super) struct Credential {
    pub(super) identity: Identity,
    /// Cluster time after which the token no longer authenticates.
    pub(super) expires: Option<SystemTime>,
    /// A ServiceAccount token is valid only while its account (this uid) exists.
    pub(super) account: Option<(String, String, String)>,
}

/// The tokens issued so far.
#[derive(Default)]
pub(crate) struct Tokens {
    pub(super) issued: HashMap<String, Credential>,
    pub(super) counter: u64,
}

impl std::fmt::Debug for Tokens {
    // Tokens are credentials: Debug says how many there are, never what they are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("issued", &self.issued.len())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    pub(super) fn mint(&mut self, prefix: &str, claims: &Value) -> String {
        self.counter += 1;
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let signature = format!(
            "{:016x}{:016x}",
            mix(seed ^ self.counter),
            mix(self.counter.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed.rotate_left(17))
        );
        // Service account tokens are JWTs on a real cluster, and people decode them; a test
        // user's token is an opaque string, as a static token file's would be.
        if claims.is_null() {
            return format!("{prefix}.{signature}");
        }
        format!(
            "{}.{}.{}",
            base64url(br#"{"alg":"RS256","kid":"deployguard-fake-cluster"}"#),
            base64url(claims.to_string().as_bytes()),
            base64url(signature.as_bytes())
        )
    }

    /// A token for a user the test names.
    pub(crate) fn issue_user(&mut self, name: &str, groups: &[&str]) -> String {
        self.issue_static(Identity::user(name, groups))
    }

    /// A token for the admin, for a kubeconfig that must carry a credential (over TLS, kubectl
    /// asks for a password when the user has none).
    pub(crate) fn issue_admin(&mut self) -> String {
        self.issue_static(Identity::admin())
    }

    pub(super) fn issue_static(&mut self, identity: Identity) -> String {
        let token = self.mint(&format!("user-{}", self.counter + 1), &Value::Null);
        self.issued.insert(
            token.clone(),
            Credential {
                identity,
                expires: None,
                account: None,
            },
        );
        token
    }

    /// A token for ServiceAccount `account` (a stored object) valid for `lifetime` from `now`.
    pub(super) fn issue_account(
        &mut self,
        account: &Value,
        now: SystemTime,
        lifetime: Duration,
        audiences: &[String],
    ) -> (String, SystemTime) {
        let text = |pointer: &str| {
            account
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let (namespace, name, uid) = (
            text("/metadata/namespace"),
            text("/metadata/name"),
            text("/metadata/uid"),
        );
        let issued_at = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let expires = now + lifetime;
        let identity = Identity::service_account(namespace, name, uid);
        let claims = json!({
            "aud": audiences,
            "exp": issued_at + lifetime.as_secs(),
            "iat": issued_at,
            "iss": "https://kubernetes.default.svc.cluster.local",
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
            "nbf": issued_at,
            "sub": identity.name,
        });
        let token = self.mint("", &claims);
        self.issued.insert(
            token.clone(),
            Credential {
                identity,
                expires: Some(expires),
                account: Some((namespace.into(), name.into(), uid.into())),
            },
        );
        (token, expires)
    }
}

/// SplitMix64's output function over `x`: the simulation's one generator, one step from `x`.
pub(super) fn mix(x: u64) -> u64 {
    crate::rng::Rng::with_state(x).next_u64()
}

pub(super) fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Standard base64 with padding (kubeconfig `*-data` fields).
pub(crate) fn base64_standard(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Issues a token for ServiceAccount `account` from a TokenRequest `body` (`kubectl create
/// token`): the TokenRequest answer, or 422 for a lifetime the server would refuse.
pub(crate) fn token_request(
    tokens: &mut Tokens,
    account: &Value,
    body: &Value,
    now: SystemTime,
) -> Result<Value, ApiError> {
    let name = text(account, "/metadata/name");
    let seconds = body
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME.as_secs());
    if seconds < MIN_TOKEN_LIFETIME {
        let rt = ResourceType::custom(
            "authentication.k8s.io",
            "v1",
            "TokenRequest",
            "tokenrequests",
        );
        return Err(ApiError::invalid(
            &rt,
            name,
            "spec.expirationSeconds",
            &format!("Invalid value: {seconds}: may not specify a duration less than 10 minutes"),
        ));
    }
    let mut audiences: Vec<String> = strings(body.pointer("/spec/audiences"))
        .into_iter()
        .map(str::to_owned)
        .collect();
    if audiences.is_empty() {
        audiences.push(API_AUDIENCE.into());
    }
    let (token, expires) =
        tokens.issue_account(account, now, Duration::from_secs(seconds), &audiences);
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": text(account, "/metadata/namespace"), "creationTimestamp": null},
        "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": null},
        "status": {"token": token, "expirationTimestamp": rfc3339(expires)},
    }))
}
