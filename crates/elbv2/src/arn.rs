//! ELBv2 ARNs, built and parsed in one place, and the random ids inside them.
//!
//! Shapes, as AWS writes them:
//! - `arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>`
//!   (`net` for network load balancers)
//! - `…:targetgroup/<name>/<id>`
//! - `…:listener/app/<lb name>/<lb id>/<listener id>`
//! - `…:listener-rule/app/<lb name>/<lb id>/<listener id>/<rule id>`

use crate::error::Elbv2Error;
use model::ecs::arn::ArnScope;

/// A resource an ARN names, reduced to what locates it in the stored state (the full ARN
/// is then compared with the stored one, so a stale id never matches a re-created name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElbArn {
    /// A load balancer.
    LoadBalancer {
        /// Its name.
        name: String,
    },
    /// A target group.
    TargetGroup {
        /// Its name.
        name: String,
    },
    /// A listener.
    Listener {
        /// Its load balancer's name.
        lb: String,
    },
    /// A listener rule.
    Rule {
        /// Its load balancer's name.
        lb: String,
    },
}

/// The ARN prefix of every ELBv2 resource in `scope`.
fn prefix(scope: &ArnScope) -> String {
    format!(
        "arn:aws:elasticloadbalancing:{}:{}:",
        scope.region, scope.account_id
    )
}

/// A fresh 16-hex-digit id, as AWS uses in load balancer, target group, listener and rule
/// ARNs.
pub fn new_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    hex[..16].to_owned()
}

/// ARN of a load balancer; `kind` is `app` or `net`.
pub fn load_balancer(scope: &ArnScope, kind: &str, name: &str, id: &str) -> String {
    format!("{}loadbalancer/{kind}/{name}/{id}", prefix(scope))
}

/// ARN of a target group.
pub fn target_group(scope: &ArnScope, name: &str, id: &str) -> String {
    format!("{}targetgroup/{name}/{id}", prefix(scope))
}

/// ARN of a listener of the load balancer whose ARN is `lb_arn`.
pub fn listener(lb_arn: &str, id: &str) -> String {
    format!(
        "{}/{id}",
        lb_arn.replacen(":loadbalancer/", ":listener/", 1)
    )
}

/// ARN of a rule of the listener whose ARN is `listener_arn`.
pub fn rule(listener_arn: &str, id: &str) -> String {
    format!(
        "{}/{id}",
        listener_arn.replacen(":listener/", ":listener-rule/", 1)
    )
}

/// Parses an ARN of this scope; `None` when it is not an ELBv2 ARN of this region and
/// account.
pub fn parse(scope: &ArnScope, arn: &str) -> Option<ElbArn> {
    let rest = arn.strip_prefix(&prefix(scope))?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let lb_kind = |k: &str| k == "app" || k == "net";
    match parts.as_slice() {
        ["loadbalancer", k, name, _id] if lb_kind(k) => Some(ElbArn::LoadBalancer {
            name: (*name).to_owned(),
        }),
        ["targetgroup", name, _id] => Some(ElbArn::TargetGroup {
            name: (*name).to_owned(),
        }),
        ["listener", k, lb, _lb_id, _id] if lb_kind(k) => Some(ElbArn::Listener {
            lb: (*lb).to_owned(),
        }),
        ["listener-rule", k, lb, _lb_id, _l_id, _id] if lb_kind(k) => Some(ElbArn::Rule {
            lb: (*lb).to_owned(),
        }),
        _ => None,
    }
}

/// The load balancer name inside a load balancer ARN, or a ValidationError.
pub fn load_balancer_name(scope: &ArnScope, arn: &str) -> Result<String, Elbv2Error> {
    match parse(scope, arn) {
        Some(ElbArn::LoadBalancer { name }) => Ok(name),
        _ => Err(Elbv2Error::Validation(format!(
            "'{arn}' is not a valid load balancer ARN"
        ))),
    }
}

/// The target group name inside a target group ARN, or a ValidationError.
pub fn target_group_name(scope: &ArnScope, arn: &str) -> Result<String, Elbv2Error> {
    match parse(scope, arn) {
        Some(ElbArn::TargetGroup { name }) => Ok(name),
        _ => Err(Elbv2Error::Validation(format!(
            "'{arn}' is not a valid target group ARN"
        ))),
    }
}

/// The load balancer name inside a listener ARN, or a ValidationError.
pub fn listener_lb(scope: &ArnScope, arn: &str) -> Result<String, Elbv2Error> {
    match parse(scope, arn) {
        Some(ElbArn::Listener { lb }) => Ok(lb),
        _ => Err(Elbv2Error::Validation(format!(
            "'{arn}' is not a valid listener ARN"
        ))),
    }
}

/// The load balancer name inside a rule ARN, or a ValidationError.
pub fn rule_lb(scope: &ArnScope, arn: &str) -> Result<String, Elbv2Error> {
    match parse(scope, arn) {
        Some(ElbArn::Rule { lb }) => Ok(lb),
        _ => Err(Elbv2Error::Validation(format!(
            "'{arn}' is not a valid listener rule ARN"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> ArnScope {
        ArnScope {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
        }
    }

    #[test]
    fn builds_and_parses_every_kind() {
        let s = scope();
        let lb = load_balancer(&s, "app", "web", "0123456789abcdef");
        assert_eq!(
            lb,
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/0123456789abcdef"
        );
        let l = listener(&lb, "1111111111111111");
        assert!(l.ends_with(":listener/app/web/0123456789abcdef/1111111111111111"));
        let r = rule(&l, "2222222222222222");
        assert!(r.ends_with(
            ":listener-rule/app/web/0123456789abcdef/1111111111111111/2222222222222222"
        ));
        let tg = target_group(&s, "api", "3333333333333333");
        assert_eq!(
            parse(&s, &lb),
            Some(ElbArn::LoadBalancer { name: "web".into() })
        );
        assert_eq!(parse(&s, &l), Some(ElbArn::Listener { lb: "web".into() }));
        assert_eq!(parse(&s, &r), Some(ElbArn::Rule { lb: "web".into() }));
        assert_eq!(
            parse(&s, &tg),
            Some(ElbArn::TargetGroup { name: "api".into() })
        );
        assert_eq!(new_id().len(), 16);
    }

    #[test]
    fn refuses_foreign_or_malformed_arns() {
        let s = scope();
        for bad in [
            "",
            "web",
            "arn:aws:elasticloadbalancing:eu-west-1:000000000000:targetgroup/a/b",
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/gwy/a/b",
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup//b",
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/a/b/c",
        ] {
            assert_eq!(parse(&s, bad), None, "{bad}");
        }
        assert!(target_group_name(&s, "nope").is_err());
    }
}
