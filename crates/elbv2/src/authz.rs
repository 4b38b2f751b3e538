//! What each ELBv2 operation needs permission for, as the Service Authorization Reference
//! lists it ("Actions, resources, and condition keys for Elastic Load Balancing V2"):
//! `elasticloadbalancing:` actions on the load balancer, target group, listener or rule
//! ARN the request names (a load balancer or target group being created: its name with
//! any id), `*` for the Describe operations, and request tags.

use crate::arn;
use crate::Operation;
use model::ecs::arn::ArnScope;
use wire::query::QueryParams;
use wire::Access;

const ELB: &str = "elasticloadbalancing";

/// What `op` with form parameters `q` needs.
pub(crate) fn accesses(scope: &ArnScope, op: Operation, q: &QueryParams) -> Vec<Access> {
    use Operation as Op;
    let v = q.view();
    let on = |resource: &str| Access::new(ELB, op.name(), resource);
    let named = |param: &str| vec![on(v.get(param).unwrap_or("*"))];
    let mut out = match op {
        Op::CreateLoadBalancer => {
            let kind = match v.get("Type") {
                Some("network") => "net",
                Some("gateway") => "gwy",
                _ => "app",
            };
            let name = v.get("Name").unwrap_or("*");
            vec![on(&arn::load_balancer(scope, kind, name, "*"))]
        }
        Op::CreateTargetGroup => {
            vec![on(&arn::target_group(
                scope,
                v.get("Name").unwrap_or("*"),
                "*",
            ))]
        }
        Op::CreateListener
        | Op::DeleteLoadBalancer
        | Op::ModifyLoadBalancerAttributes
        | Op::SetSecurityGroups
        | Op::SetSubnets
        | Op::SetIpAddressType => named("LoadBalancerArn"),
        Op::ModifyTargetGroup
        | Op::DeleteTargetGroup
        | Op::ModifyTargetGroupAttributes
        | Op::RegisterTargets
        | Op::DeregisterTargets => named("TargetGroupArn"),
        Op::CreateRule | Op::ModifyListener | Op::DeleteListener => named("ListenerArn"),
        Op::ModifyRule | Op::DeleteRule => named("RuleArn"),
        Op::SetRulePriorities => {
            let rules: Vec<Access> = v
                .members("RulePriorities")
                .iter()
                .filter_map(|m| m.get("RuleArn"))
                .map(on)
                .collect();
            if rules.is_empty() {
                vec![on("*")]
            } else {
                rules
            }
        }
        Op::AddTags | Op::RemoveTags => {
            let arns: Vec<Access> = v.list("ResourceArns").into_iter().map(on).collect();
            if arns.is_empty() {
                vec![on("*")]
            } else {
                arns
            }
        }
        // The Describe operations (no resource type) and operations Stevedore does not
        // serve.
        _ => vec![on("*")],
    };
    let tags: Vec<(String, String)> = v
        .members("Tags")
        .iter()
        .filter_map(|t| {
            Some((
                t.get("Key")?.to_owned(),
                t.get("Value").unwrap_or("").to_owned(),
            ))
        })
        .collect();
    let tag_keys = v.list("TagKeys");
    for access in &mut out {
        if !tags.is_empty() {
            *access = access.clone().with_request_tags(tags.clone());
        }
        if !tag_keys.is_empty() {
            *access = access.clone().with_key(
                "aws:TagKeys",
                policy::ContextValue::strings(tag_keys.iter().copied()),
            );
        }
    }
    out
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

    fn mapped(op: Operation, form: &str) -> Vec<(String, String)> {
        let q = wire::query::parse_form(form.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        accesses(&scope(), op, &q)
            .iter()
            .map(|a| (a.action(), a.resource().to_owned()))
            .collect()
    }

    #[test]
    fn create_load_balancer_is_on_its_name_with_any_id_and_carries_tags() {
        let form =
            "Action=CreateLoadBalancer&Name=web&Tags.member.1.Key=team&Tags.member.1.Value=a";
        assert_eq!(
            mapped(Operation::CreateLoadBalancer, form),
            [(
                "elasticloadbalancing:CreateLoadBalancer".into(),
                "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/*".into()
            )]
        );
        let q = wire::query::parse_form(form.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let a = accesses(&scope(), Operation::CreateLoadBalancer, &q);
        assert_eq!(a[0].request_tags(), [("team".to_owned(), "a".to_owned())]);
    }

    #[test]
    fn operations_on_a_resource_name_its_arn_and_describes_are_on_any() {
        let tg = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/t/1";
        assert_eq!(
            mapped(Operation::RegisterTargets, &format!("TargetGroupArn={tg}")),
            [("elasticloadbalancing:RegisterTargets".into(), tg.into())]
        );
        assert_eq!(
            mapped(Operation::DescribeLoadBalancers, ""),
            [(
                "elasticloadbalancing:DescribeLoadBalancers".into(),
                "*".into()
            )]
        );
        assert_eq!(
            mapped(
                Operation::AddTags,
                "ResourceArns.member.1=a&ResourceArns.member.2=b"
            )
            .len(),
            2
        );
    }
}
