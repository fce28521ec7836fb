//! The IAM policy the router and the probe need, least privilege, as a JSON document in the
//! style of the Kubernetes crate's RBAC rules.

use serde_json::{Value, json};

use crate::router::AlbTarget;

/// The `Describe*` calls the router and probe make. ELBv2 grants them on `*` only (they support
/// no resource-level permissions).
pub const DESCRIBE_ACTIONS: [&str; 4] = [
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
];

/// The policy for routers over `targets` (and target-health probes): the describes, and
/// `ModifyListener` / `ModifyRule` on exactly the listeners and rules named, nothing else.
///
/// ```
/// use deployguard_aws::{AlbTarget, iam};
///
/// let rule = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
/// let policy = iam::policy(&[AlbTarget::Rule(rule.into())]);
/// assert_eq!(policy["Statement"][1]["Action"], "elasticloadbalancing:ModifyRule");
/// assert_eq!(policy["Statement"][1]["Resource"][0], rule);
/// ```
pub fn policy(targets: &[AlbTarget]) -> Value {
    let mut statements = vec![json!({
        "Sid": "DeployguardRead",
        "Effect": "Allow",
        "Action": DESCRIBE_ACTIONS,
        "Resource": "*",
    })];
    // One Modify statement per kind of target, scoped to exactly the ARNs named.
    let rules = targets.iter().filter(|t| matches!(t, AlbTarget::Rule(_)));
    let listeners = targets
        .iter()
        .filter(|t| matches!(t, AlbTarget::Listener(_)));
    statements.extend(modify("DeployguardShiftRules", "ModifyRule", rules));
    statements.extend(modify(
        "DeployguardShiftListeners",
        "ModifyListener",
        listeners,
    ));
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// An `elasticloadbalancing:{action}` statement on `targets`' ARNs; none without targets.
fn modify<'a>(
    sid: &str,
    action: &str,
    targets: impl Iterator<Item = &'a AlbTarget>,
) -> Option<Value> {
    let arns: Vec<&str> = targets.map(AlbTarget::arn).collect();
    (!arns.is_empty()).then(|| {
        json!({"Sid": sid, "Effect": "Allow", "Action": format!("elasticloadbalancing:{action}"), "Resource": arns})
    })
}
