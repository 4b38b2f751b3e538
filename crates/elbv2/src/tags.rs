//! Tags on load balancers, target groups, listeners and rules: AddTags, RemoveTags and
//! DescribeTags, each taking up to 20 resource ARNs of any of those kinds.

use crate::arn::{self, ElbArn};
use crate::error::{invalid, Elbv2Error};
use crate::listeners::listener_not_found;
use crate::params::{merge_tags, tags};
use crate::rules::rule_not_found;
use crate::state::{State, Tags};
use crate::Elbv2;
use model::ecs::arn::ArnScope;
use wire::query::QueryView;
use wire::xml::Xml;

/// The most resources one tagging call may name.
const MAX_RESOURCES: usize = 20;

fn resource_arns<'a>(q: &QueryView<'a>) -> Result<Vec<&'a str>, Elbv2Error> {
    let arns = q.list("ResourceArns");
    if arns.is_empty() {
        return invalid("At least one ARN must be given in ResourceArns");
    }
    if arns.len() > MAX_RESOURCES {
        return invalid(format!(
            "At most {MAX_RESOURCES} resources can be given in ResourceArns; {} were given",
            arns.len()
        ));
    }
    Ok(arns)
}

/// The tags of the resource `arn`.
fn tags_mut<'w>(scope: &ArnScope, w: &'w mut State, arn: &str) -> Result<&'w mut Tags, Elbv2Error> {
    let Some(parsed) = arn::parse(scope, arn) else {
        return invalid(format!(
            "'{arn}' is not a valid load balancer, target group, listener or rule ARN"
        ));
    };
    match parsed {
        ElbArn::LoadBalancer { name } => Ok(&mut w.lb_mut(&name, arn)?.tags),
        ElbArn::TargetGroup { name } => Ok(&mut w.tg_mut(&name, arn)?.tags),
        ElbArn::Listener { lb } => w
            .lbs
            .get_mut(&lb)
            .and_then(|b| b.listeners.iter_mut().find(|l| l.arn == arn))
            .map(|l| &mut l.tags)
            .ok_or_else(|| listener_not_found(arn)),
        ElbArn::Rule { lb } => {
            let b = w.lbs.get_mut(&lb).ok_or_else(|| rule_not_found(arn))?;
            for l in &mut b.listeners {
                if l.default_rule_arn == arn {
                    return Ok(&mut l.default_rule_tags);
                }
                if let Some(r) = l.rules.iter_mut().find(|r| r.arn == arn) {
                    return Ok(&mut r.tags);
                }
            }
            Err(rule_not_found(arn))
        }
    }
}

/// The tags of the load balancer, target group, listener or rule `arn` names, for
/// `aws:ResourceTag/KEY`; nothing for an ARN that names none.
pub(crate) async fn resource_tags(elb: &Elbv2, arn: &str) -> Vec<(String, String)> {
    let Ok((mut world, _, _)) = elb.objects.load().await else {
        return Vec::new();
    };
    tags_mut(&elb.scope, &mut world, arn)
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

pub(crate) async fn add_tags(elb: &Elbv2, q: &QueryView<'_>) -> Result<String, Elbv2Error> {
    let arns = resource_arns(q)?;
    let new = tags(q, "Tags")?;
    if new.is_empty() {
        return invalid("At least one tag must be given in Tags");
    }
    elb.objects
        .write("tags", |w| {
            for a in &arns {
                merge_tags(tags_mut(&elb.scope, w, a)?, &new, a)?;
            }
            Ok(())
        })
        .await?;
    Ok(String::new())
}

pub(crate) async fn remove_tags(elb: &Elbv2, q: &QueryView<'_>) -> Result<String, Elbv2Error> {
    let arns = resource_arns(q)?;
    let keys = q.list("TagKeys");
    if keys.is_empty() {
        return invalid("At least one key must be given in TagKeys");
    }
    elb.objects
        .write("tags", |w| {
            for a in &arns {
                let t = tags_mut(&elb.scope, w, a)?;
                for k in &keys {
                    t.remove(*k);
                }
            }
            Ok(())
        })
        .await?;
    Ok(String::new())
}

pub(crate) async fn describe_tags(elb: &Elbv2, q: &QueryView<'_>) -> Result<String, Elbv2Error> {
    let arns = resource_arns(q)?;
    let (mut world, _, _) = elb.objects.load().await?;
    let mut found = Vec::new();
    for a in &arns {
        found.push((*a, tags_mut(&elb.scope, &mut world, a)?.clone()));
    }
    let mut x = Xml::new();
    x.list("TagDescriptions", found, |m, (arn, tags)| {
        m.leaf("ResourceArn", arn).list("Tags", &tags, |t, (k, v)| {
            t.leaf("Key", k).leaf("Value", v);
        });
    });
    Ok(x.finish())
}
