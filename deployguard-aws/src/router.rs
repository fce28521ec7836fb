//! [`AlbRouter`]: weighted target groups of one ALB forward action.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple, TargetHealthStateEnum,
};
use deployguard_core::{
    Error, ErrorKind, Result, RouteVersion, Routed, RouterCapabilities, TrafficRouter,
    TrafficRouterExt, TrafficSplit, Verification,
};
use tokio::sync::OnceCell;

use crate::error::from_sdk;

/// An ALB allows at most five target groups in one forward action.
pub const MAX_TARGET_GROUPS_PER_ACTION: usize = 5;

/// Which forward action the router manages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlbTarget {
    /// A listener's default action (`ModifyListener`).
    Listener(String),
    /// One listener rule's action (`ModifyRule`).
    Rule(String),
}

impl AlbTarget {
    /// The listener's or rule's ARN.
    pub fn arn(&self) -> &str {
        match self {
            Self::Listener(arn) | Self::Rule(arn) => arn,
        }
    }
}

impl std::fmt::Display for AlbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Listener(arn) => write!(f, "listener {arn}"),
            Self::Rule(arn) => write!(f, "rule {arn}"),
        }
    }
}

/// Builds an [`AlbRouter`]; every setting is checked at [`build`](Self::build).
#[derive(Debug)]
#[must_use]
pub struct AlbRouterBuilder {
    client: Client,
    target: Option<AlbTarget>,
    backends: Vec<(String, String)>,
}

impl AlbRouterBuilder {
    /// Manages the default action of listener `arn`.
    pub fn listener(mut self, arn: &str) -> Self {
        self.target = Some(AlbTarget::Listener(arn.into()));
        self
    }

    /// Manages the action of listener rule `arn`.
    pub fn rule(mut self, arn: &str) -> Self {
        self.target = Some(AlbTarget::Rule(arn.into()));
        self
    }

    /// A backend `name` (a version label: `blue`, `canary`) served by target group
    /// `target_group`, given by ARN or by name.
    pub fn backend(mut self, name: &str, target_group: &str) -> Self {
        self.backends.push((name.into(), target_group.into()));
        self
    }

    /// The router; [`ErrorKind::InvalidInput`] names what is missing or wrong (no listener or
    /// rule, an ARN that is none, fewer than two or more than five backends, a name or target
    /// group given twice).
    pub fn build(self) -> Result<AlbRouter> {
        let target = self.target.ok_or_else(|| {
            Error::invalid_input("target", "name a listener (its default action) or a rule")
        })?;
        let kind = match &target {
            AlbTarget::Listener(_) => ":listener/",
            AlbTarget::Rule(_) => ":listener-rule/",
        };
        if !target.arn().starts_with("arn:") || !target.arn().contains(kind) {
            return Err(Error::invalid_input(
                "target",
                format!(
                    "{:?} is not an ELBv2 {} ARN",
                    target.arn(),
                    kind.trim_matches(|c| c == ':' || c == '/')
                ),
            ));
        }
        if !(2..=MAX_TARGET_GROUPS_PER_ACTION).contains(&self.backends.len()) {
            return Err(Error::invalid_input(
                "backends",
                format!(
                    "an ALB forward action takes 2 to {MAX_TARGET_GROUPS_PER_ACTION} target groups here, not {}",
                    self.backends.len()
                ),
            ));
        }
        let mut backends = BTreeMap::new();
        for (name, group) in self.backends {
            if name.trim().is_empty() || group.trim().is_empty() {
                return Err(Error::invalid_input(
                    "backends",
                    "a backend name or target group is empty",
                ));
            }
            if backends.values().any(|g| *g == group) {
                return Err(Error::invalid_input(
                    "backends",
                    format!("target group {group} is given twice"),
                ));
            }
            if backends.insert(name.clone(), group).is_some() {
                return Err(Error::invalid_input(
                    "backends",
                    format!("backend {name:?} is named twice"),
                ));
            }
        }
        Ok(AlbRouter {
            client: self.client,
            target,
            backends,
            arns: OnceCell::new(),
            before_first_write: Mutex::new(None),
        })
    }
}

/// Moves traffic between the target groups of one ALB forward action — a listener's default
/// action or one rule's — by weight: N-way splits (up to five target groups, as the ALB
/// allows), whole percentages.
///
/// ELBv2 has no ETags, so a write is conditional the only way it can be: the
/// [`RouteVersion`] is a digest of the actions as read; [`apply`](TrafficRouter::apply) reads
/// them again immediately before `ModifyListener`/`ModifyRule` and refuses with
/// [`ErrorKind::Conflict`] if they changed, then reads them back after the write and reports a
/// change made in between as a `Conflict` too. Only the forward action's target-group weights
/// change: its stickiness settings, the other actions (authentication, say) and their order
/// are written back as they were. A backend whose weight rises from 0 must have a healthy
/// target ([`ErrorKind::Refused`] otherwise).
///
/// ```no_run
/// use deployguard_aws::AlbRouter;
/// use deployguard_core::{TrafficRouterExt, TrafficSplit};
///
/// # async fn run(sdk: aws_types::SdkConfig) -> deployguard_core::Result<()> {
/// let router = AlbRouter::builder(&sdk)
///     .listener("arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2")
///     .backend("blue", "shop-blue")
///     .backend("green", "shop-green")
///     .build()?;
/// router.switch(&TrafficSplit::two_way("blue", "green", 10)?).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct AlbRouter {
    client: Client,
    target: AlbTarget,
    /// Backend name → target group as given (ARN or name).
    backends: BTreeMap<String, String>,
    /// Backend name → target group ARN, resolved once.
    arns: OnceCell<BTreeMap<String, String>>,
    /// The split read before this router's first write, for [`AlbRouter::restore`].
    before_first_write: Mutex<Option<TrafficSplit>>,
}

/// The actions as read, the index of the forward action, and each backend's weight.
struct Read {
    actions: Vec<Action>,
    forward: usize,
    weights: BTreeMap<String, u8>,
    version: RouteVersion,
}

impl Read {
    fn split(&self) -> Result<TrafficSplit> {
        TrafficSplit::new(self.weights.iter().map(|(k, v)| (k.as_str(), *v)))
    }
}

impl AlbRouter {
    /// A builder whose client is made from `sdk` (its credentials chain, region, profile,
    /// endpoint URL and HTTP client).
    pub fn builder(sdk: &aws_types::SdkConfig) -> AlbRouterBuilder {
        Self::builder_with_client(Client::new(sdk))
    }

    /// A builder over an ELBv2 client of your own.
    pub fn builder_with_client(client: Client) -> AlbRouterBuilder {
        AlbRouterBuilder {
            client,
            target: None,
            backends: Vec::new(),
        }
    }

    /// The listener or rule this router manages.
    pub fn alb_target(&self) -> &AlbTarget {
        &self.target
    }

    /// The target group ARN of each backend (names resolved with `DescribeTargetGroups`,
    /// once).
    pub async fn target_group_arns(&self) -> Result<BTreeMap<String, String>> {
        self.arns
            .get_or_try_init(|| resolve_target_groups(&self.client, &self.backends))
            .await
            .cloned()
    }

    async fn actions(&self, operation: &'static str) -> Result<Vec<Action>> {
        let arn = self.target.arn().to_owned();
        match &self.target {
            AlbTarget::Listener(_) => {
                let answer = self
                    .client
                    .describe_listeners()
                    .listener_arns(&arn)
                    .send()
                    .await
                    .map_err(|e| from_sdk(e, operation, &arn))?;
                let listener = answer.listeners().first().ok_or_else(|| {
                    Error::not_found(format!("listener {arn}")).with_operation(operation)
                })?;
                Ok(listener.default_actions().to_vec())
            }
            AlbTarget::Rule(_) => {
                let answer = self
                    .client
                    .describe_rules()
                    .rule_arns(&arn)
                    .send()
                    .await
                    .map_err(|e| from_sdk(e, operation, &arn))?;
                let rule = answer.rules().first().ok_or_else(|| {
                    Error::not_found(format!("rule {arn}")).with_operation(operation)
                })?;
                Ok(rule.actions().to_vec())
            }
        }
    }

    async fn read(&self, operation: &'static str) -> Result<Read> {
        let arns = self.target_group_arns().await?;
        let actions = self.actions(operation).await?;
        let fail = |kind: ErrorKind, message: String| {
            Error::new(kind, format!("{}: {message}", self.target))
                .with_operation(operation)
                .with_object(self.target.arn().to_owned())
        };
        let forward = actions
            .iter()
            .position(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
            .ok_or_else(|| {
                fail(
                    ErrorKind::Unsupported,
                    "has no forward action (it redirects or answers itself); nothing to weigh"
                        .into(),
                )
            })?;
        // Both shapes: a forward config with weights, or a single target group ARN.
        let action = &actions[forward];
        let groups: Vec<(String, i64)> = match action.forward_config() {
            Some(config) if !config.target_groups().is_empty() => config
                .target_groups()
                .iter()
                .map(|t| {
                    (
                        t.target_group_arn().unwrap_or_default().to_owned(),
                        i64::from(t.weight().unwrap_or(1)),
                    )
                })
                .collect(),
            _ => vec![(action.target_group_arn().unwrap_or_default().to_owned(), 1)],
        };
        let total: i64 = groups.iter().map(|(_, w)| *w).sum();
        if total <= 0 {
            return Err(fail(
                ErrorKind::Unsupported,
                "its forward action's weights are all 0".into(),
            ));
        }
        let mut weights: BTreeMap<String, u8> =
            self.backends.keys().map(|b| (b.clone(), 0)).collect();
        for (arn, weight) in &groups {
            let backend = arns.iter().find(|(_, a)| *a == arn).map(|(b, _)| b.clone());
            match backend {
                Some(backend) => {
                    // Weights are relative; a split of whole percentages is what deployguard
                    // reads and writes.
                    if (weight * 100) % total != 0 {
                        return Err(fail(
                            ErrorKind::Unsupported,
                            format!(
                                "weight {weight} of {total} for {arn} is not a whole percentage; set the weights to percentages first"
                            ),
                        ));
                    }
                    weights.insert(backend, u8::try_from(weight * 100 / total).unwrap_or(100));
                }
                None if *weight > 0 => {
                    return Err(fail(
                        ErrorKind::Unsupported,
                        format!(
                            "forwards {weight} of {total} to target group {arn}, which is none of this router's backends ({})",
                            self.backends.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                None => {}
            }
        }
        let version = digest(&actions);
        let read = Read {
            actions,
            forward,
            weights,
            version,
        };
        read.split()
            .map_err(|e| fail(ErrorKind::Unsupported, e.to_string()))?;
        Ok(read)
    }

    /// Refuses ([`ErrorKind::Refused`]) when `backend`'s target group has no healthy target;
    /// reads only. A dry run asks this, so it promises nothing the real switch would refuse.
    pub async fn check_healthy(&self, backend: &str) -> Result<()> {
        let arns = self.target_group_arns().await?;
        let arn = arns.get(backend).ok_or_else(|| {
            Error::invalid_input(
                "backend",
                format!("{backend:?} is none of this router's backends"),
            )
        })?;
        let answer = self
            .client
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(|e| from_sdk(e, "check_healthy", arn))?;
        let healthy = answer
            .target_health_descriptions()
            .iter()
            .filter(|d| {
                d.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy)
            })
            .count();
        if healthy == 0 {
            return Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "target group {arn} (backend {backend}) has no healthy target of {}; refusing to send it traffic",
                    answer.target_health_descriptions().len()
                ),
            )
            .with_object(arn.clone()));
        }
        Ok(())
    }

    /// Puts back the split the action had before this router's first write (the pre-rollout
    /// split), conditional on a fresh read.
    pub async fn restore(&self) -> Result<TrafficSplit> {
        let before = self
            .before_first_write
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("this router has not written {} to restore", self.target),
                )
            })?;
        self.switch(&before).await?;
        Ok(before)
    }

    /// The actions with the forward action's target groups set to `split`'s weights; the
    /// stickiness settings and every other action stay as they were.
    fn rewritten(
        &self,
        read: &Read,
        split: &TrafficSplit,
        arns: &BTreeMap<String, String>,
    ) -> Vec<Action> {
        let old = &read.actions[read.forward];
        let mut config = ForwardActionConfig::builder();
        for (backend, weight) in split.iter() {
            config = config.target_groups(
                TargetGroupTuple::builder()
                    .target_group_arn(&arns[backend])
                    .weight(i32::from(weight))
                    .build(),
            );
        }
        if let Some(stickiness) = old
            .forward_config()
            .and_then(|c| c.target_group_stickiness_config())
        {
            config = config.target_group_stickiness_config(stickiness.clone());
        }
        let mut action = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(config.build());
        if let Some(order) = old.order() {
            action = action.order(order);
        }
        let mut actions = read.actions.clone();
        actions[read.forward] = action.build();
        actions
    }

    async fn write(&self, actions: Vec<Action>) -> Result<()> {
        let arn = self.target.arn().to_owned();
        match &self.target {
            AlbTarget::Listener(_) => self
                .client
                .modify_listener()
                .listener_arn(&arn)
                .set_default_actions(Some(actions))
                .send()
                .await
                .map(drop)
                .map_err(|e| from_sdk(e, "apply", &arn)),
            AlbTarget::Rule(_) => self
                .client
                .modify_rule()
                .rule_arn(&arn)
                .set_actions(Some(actions))
                .send()
                .await
                .map(drop)
                .map_err(|e| from_sdk(e, "apply", &arn)),
        }
    }
}

/// The ARN of each entry of `groups` (a label → a target group ARN or name), names resolved
/// with one `DescribeTargetGroups`; a name that does not exist is [`ErrorKind::NotFound`].
pub(crate) async fn resolve_target_groups(
    client: &Client,
    groups: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let names: Vec<String> = groups
        .values()
        .filter(|g| !g.starts_with("arn:"))
        .cloned()
        .collect();
    let mut resolved = BTreeMap::new();
    if !names.is_empty() {
        let answer = client
            .describe_target_groups()
            .set_names(Some(names.clone()))
            .send()
            .await
            .map_err(|e| {
                from_sdk(
                    e,
                    "describe_target_groups",
                    &format!("target groups {}", names.join(", ")),
                )
            })?;
        for group in answer.target_groups() {
            if let (Some(name), Some(arn)) = (group.target_group_name(), group.target_group_arn()) {
                resolved.insert(name.to_owned(), arn.to_owned());
            }
        }
    }
    groups
        .iter()
        .map(|(label, group)| {
            let arn = if group.starts_with("arn:") {
                group.clone()
            } else {
                resolved.get(group).cloned().ok_or_else(|| {
                    Error::not_found(format!("target group {group} (for {label})"))
                })?
            };
            Ok((label.clone(), arn))
        })
        .collect()
}

/// The version of a set of actions: a digest of everything read, so any change to them — by
/// anyone — is a different version.
fn digest(actions: &[Action]) -> RouteVersion {
    let mut hasher = std::hash::DefaultHasher::new();
    format!("{actions:?}").hash(&mut hasher);
    RouteVersion(format!("{:016x}", hasher.finish()))
}

#[async_trait]
impl TrafficRouter for AlbRouter {
    fn target(&self) -> String {
        self.target.to_string()
    }

    fn capabilities(&self) -> RouterCapabilities {
        RouterCapabilities::weighted(self.backends.keys().cloned())
    }

    async fn current(&self) -> Result<Routed> {
        let read = self.read("current").await?;
        Ok(Routed::new(read.split()?, read.version))
    }

    async fn apply(&self, split: &TrafficSplit, expected: &RouteVersion) -> Result<RouteVersion> {
        self.capabilities().check(split).map_err(|e| {
            e.with_operation("apply")
                .with_object(self.target.arn().to_owned())
        })?;
        let conflict = |what: &str| {
            Error::conflict(format!("{} {what}", self.target))
                .with_operation("apply")
                .with_object(self.target.arn().to_owned())
        };
        let first = self.read("apply").await?;
        if first.version != *expected {
            return Err(conflict("changed since it was read"));
        }
        let current = first.split()?;
        if current == *split {
            return Ok(expected.clone());
        }
        // Never send traffic to a side that cannot serve it.
        for (backend, weight) in split.iter() {
            if weight > 0 && current.weight(backend) == Some(0) {
                self.check_healthy(backend).await?;
            }
        }
        let arns = self.target_group_arns().await?;
        // ELBv2 has no preconditions: compare with what is there immediately before writing.
        let read = self.read("apply").await?;
        if read.version != *expected {
            return Err(conflict("changed since it was read"));
        }
        let actions = self.rewritten(&read, split, &arns);
        self.write(actions).await?;
        self.before_first_write
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(current);
        // And read back: a write that raced another one may not be what is there now.
        let after = self.read("apply").await?;
        if after.split()? != *split {
            return Err(conflict(&format!(
                "was changed while it was written: it forwards {} instead of {split}",
                after.split()?
            )));
        }
        Ok(after.version)
    }

    async fn verify(&self, split: &TrafficSplit) -> Result<Verification> {
        // The load balancer applies a listener's actions as the API returns them: the action is
        // the data plane's configuration.
        let configured = self.read("verify").await?.split()?;
        Ok(if configured == *split {
            Verification::Matches
        } else {
            Verification::Differs(configured)
        })
    }
}
