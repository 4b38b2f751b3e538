//! Listener rules: create, describe (the default rule last, with `IsDefault` and
//! priority `default`), modify, delete, and SetRulePriorities, whose all-or-nothing
//! priority swap is the pure [`plan_priorities`].

use crate::actions::{parse_actions, parse_conditions, priority};
use crate::arn;
use crate::error::{invalid, Elbv2Error};
use crate::listeners::{check_actions, find_listener, lb_arn_of};
use crate::load_balancers::MAX_RULES;
use crate::params::{page, paginate, required, tags};
use crate::state::{LbType, State, StoredListener, StoredRule, Tags};
use crate::Elbv2;
use std::collections::BTreeMap;
use wire::query::QueryView;
use wire::xml::Xml;

/// `RuleNotFound` for an ARN.
pub fn rule_not_found(arn: &str) -> Elbv2Error {
    Elbv2Error::RuleNotFound(format!("Rule '{arn}' not found"))
}

/// Where a rule ARN points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleRef {
    /// The default rule of listener `listener`.
    Default {
        /// Listener index in its load balancer.
        listener: usize,
    },
    /// Rule `rule` of listener `listener`.
    Rule {
        /// Listener index in its load balancer.
        listener: usize,
        /// Rule index in the listener.
        rule: usize,
    },
}

/// Finds the rule `arn` in load balancer `lb_name`.
pub fn find_rule(w: &State, lb_name: &str, arn: &str) -> Result<RuleRef, Elbv2Error> {
    let lb = w.lbs.get(lb_name).ok_or_else(|| rule_not_found(arn))?;
    for (li, l) in lb.listeners.iter().enumerate() {
        if l.default_rule_arn == arn {
            return Ok(RuleRef::Default { listener: li });
        }
        if let Some(ri) = l.rules.iter().position(|r| r.arn == arn) {
            return Ok(RuleRef::Rule {
                listener: li,
                rule: ri,
            });
        }
    }
    Err(rule_not_found(arn))
}

/// A rule as shown: its priority text, conditions and actions, and whether it is the
/// default.
enum Shown<'a> {
    Default(&'a StoredListener),
    Rule(&'a StoredRule),
}

fn render_rule(x: &mut Xml, rule: Shown<'_>) {
    match rule {
        Shown::Default(l) => {
            x.leaf("RuleArn", &l.default_rule_arn)
                .leaf("Priority", "default")
                .el("Conditions", |_| {})
                .list("Actions", &l.default_actions, |m, a| a.render(m))
                .leaf("IsDefault", "true");
        }
        Shown::Rule(r) => {
            x.leaf("RuleArn", &r.arn)
                .leaf("Priority", &r.priority.to_string())
                .list("Conditions", &r.conditions, |m, c| c.render(m))
                .list("Actions", &r.actions, |m, a| a.render(m))
                .leaf("IsDefault", "false");
        }
    }
}

/// A listener's rules in evaluation order: by ascending priority, the default last.
fn ordered(l: &StoredListener) -> Vec<Shown<'_>> {
    let mut rules: Vec<&StoredRule> = l.rules.iter().collect();
    rules.sort_by_key(|r| r.priority);
    let mut out: Vec<Shown<'_>> = rules.into_iter().map(Shown::Rule).collect();
    out.push(Shown::Default(l));
    out
}

pub(crate) async fn create_rule(elb: &Elbv2, q: &QueryView<'_>) -> Result<String, Elbv2Error> {
    let listener_arn = required(q, "ListenerArn")?;
    let lb_name = arn::listener_lb(&elb.scope, listener_arn)?;
    required(q, "Priority")?;
    let prio = priority(q, "Priority")?.unwrap_or(1);
    let conditions = parse_conditions(q)?;
    let actions = parse_actions(q, "Actions")?;
    if q.has("Transforms") {
        return invalid("Rule transforms are not supported by Stevedore");
    }
    let tags: Tags = tags(q, "Tags")?.into_iter().collect();
    let id = arn::new_id();
    let lb_arn = lb_arn_of(listener_arn);
    let rule = elb
        .objects
        .write("rule", |w| {
            let li = find_listener(w, &lb_name, listener_arn)?;
            let lb = w.lb(&lb_name, &lb_arn)?;
            if lb.kind == LbType::Network {
                return invalid("Network load balancer listeners have only their default rule; use ModifyListener to change its actions");
            }
            if let Some(r) = lb.listeners[li].rules.iter().find(|r| r.priority == prio) {
                return Err(Elbv2Error::PriorityInUse(format!(
                    "Priority '{prio}' is currently in use by rule '{}'",
                    r.arn
                )));
            }
            let count: usize = lb.listeners.iter().map(|l| l.rules.len()).sum();
            if count >= MAX_RULES {
                return Err(Elbv2Error::TooManyRules(format!(
                    "Load balancer '{lb_arn}' already has {MAX_RULES} rules, the limit"
                )));
            }
            check_actions(&elb.scope, w, lb, &actions)?;
            let rule = StoredRule {
                arn: arn::rule(listener_arn, &id),
                priority: prio,
                conditions: conditions.clone(),
                actions: actions.clone(),
                tags: tags.clone(),
            };
            w.lb_mut(&lb_name, &lb_arn)?.listeners[li].rules.push(rule.clone());
            Ok(rule)
        })
        .await?;
    tracing::info!(rule = %rule.arn, priority = rule.priority, "Listener rule created.");
    let mut x = Xml::new();
    x.list("Rules", [Shown::Rule(&rule)], render_rule);
    Ok(x.finish())
}

pub(crate) async fn describe_rules(elb: &Elbv2, q: &QueryView<'_>) -> Result<String, Elbv2Error> {
    let listener_arn = q.get("ListenerArn");
    let arns = q.list("RuleArns");
    let (after, size) = page(q, "rule")?;
    let (world, _, _) = elb.objects.load().await?;
    let mut found: Vec<Shown<'_>> = Vec::new();
    match (listener_arn, arns.is_empty()) {
        (Some(_), false) => return invalid("Give ListenerArn or RuleArns, not both"),
        (None, true) => return invalid("Give ListenerArn or RuleArns to describe rules"),
        (Some(la), true) => {
            let lb_name = arn::listener_lb(&elb.scope, la)?;
            let li = find_listener(&world, &lb_name, la)?;
            let lb = world.lb(&lb_name, &lb_arn_of(la))?;
            found = ordered(&lb.listeners[li]);
        }
        (None, false) => {
            for a in &arns {
                let lb_name = arn::rule_lb(&elb.scope, a)?;
                let lb = world.lbs.get(&lb_name).ok_or_else(|| rule_not_found(a))?;
                found.push(match find_rule(&world, &lb_name, a)? {
                    RuleRef::Default { listener } => Shown::Default(&lb.listeners[listener]),
                    RuleRef::Rule { listener, rule } => {
                        Shown::Rule(&lb.listeners[listener].rules[rule])
                    }
                });
            }
        }
    }
    let keyed: Vec<(String, Shown<'_>)> = found
        .into_iter()
        .enumerate()
        .map(|(i, r)| (format!("{i:06}"), r))
        .collect();
    let (items, next) = paginate("rule", keyed, after.as_deref(), size);
    let mut x = Xml::new();
    x.list("Rules", items, render_rule);
    x.opt("NextMarker", next.as_deref());
    Ok(x.finish())
}

pub(crate) async fn modify_rule(elb: &Elbv2, q: &QueryView<'_>) -> Result<String, Elbv2Error> {
    let arn = required(q, "RuleArn")?;
    let lb_name = arn::rule_lb(&elb.scope, arn)?;
    let conditions = if q.members("Conditions").is_empty() {
        None
    } else {
        Some(parse_conditions(q)?)
    };
    let actions = if q.members("Actions").is_empty() {
        None
    } else {
        Some(parse_actions(q, "Actions")?)
    };
    if q.has("Transforms") {
        return invalid("Rule transforms are not supported by Stevedore");
    }
    let lb_arn = lb_arn_of(arn);
    let (listener, rule) = elb
        .objects
        .write("rule", |w| {
            let at = find_rule(w, &lb_name, arn)?;
            if let Some(a) = &actions {
                check_actions(&elb.scope, w, w.lb(&lb_name, &lb_arn)?, a)?;
            }
            let lb = w.lb_mut(&lb_name, &lb_arn)?;
            match at {
                RuleRef::Default { listener } => {
                    if conditions.is_some() {
                        return Err(Elbv2Error::OperationNotPermitted(
                            "The default rule has no conditions and none can be added; create a rule instead".into(),
                        ));
                    }
                    let l = &mut lb.listeners[listener];
                    if let Some(a) = &actions {
                        l.default_actions = a.clone();
                    }
                    Ok((Some(l.clone()), None))
                }
                RuleRef::Rule { listener, rule } => {
                    let r = &mut lb.listeners[listener].rules[rule];
                    if let Some(c) = &conditions {
                        r.conditions = c.clone();
                    }
                    if let Some(a) = &actions {
                        r.actions = a.clone();
                    }
                    Ok((None, Some(r.clone())))
                }
            }
        })
        .await?;
    let mut x = Xml::new();
    let shown = match (&listener, &rule) {
        (Some(l), _) => Shown::Default(l),
        (None, Some(r)) => Shown::Rule(r),
        (None, None) => return Ok(x.finish()),
    };
    x.list("Rules", [shown], render_rule);
    Ok(x.finish())
}

pub(crate) async fn delete_rule(elb: &Elbv2, q: &QueryView<'_>) -> Result<String, Elbv2Error> {
    let arn = required(q, "RuleArn")?;
    let lb_name = arn::rule_lb(&elb.scope, arn)?;
    let lb_arn = lb_arn_of(arn);
    elb.objects
        .write("rule", |w| match find_rule(w, &lb_name, arn)? {
            RuleRef::Default { .. } => Err(Elbv2Error::OperationNotPermitted(
                "The default rule cannot be deleted; it goes with its listener (DeleteListener)"
                    .into(),
            )),
            RuleRef::Rule { listener, rule } => {
                w.lb_mut(&lb_name, &lb_arn)?.listeners[listener]
                    .rules
                    .remove(rule);
                Ok(())
            }
        })
        .await?;
    Ok(String::new())
}

/// The priorities a listener's rules end up with after SetRulePriorities assigns
/// `changes` (rule ARN → new priority) to some of them: all or nothing, so two rules can
/// swap priorities in one call. Fails with PriorityInUse if two rules would share one.
pub fn plan_priorities(
    current: &[(String, u32)],
    changes: &BTreeMap<String, u32>,
) -> Result<Vec<(String, u32)>, Elbv2Error> {
    let planned: Vec<(String, u32)> = current
        .iter()
        .map(|(arn, p)| (arn.clone(), changes.get(arn).copied().unwrap_or(*p)))
        .collect();
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for (arn, p) in &planned {
        if let Some(other) = seen.insert(*p, arn) {
            let moved = if changes.contains_key(arn.as_str()) {
                arn.as_str()
            } else {
                other
            };
            return Err(Elbv2Error::PriorityInUse(format!(
                "Priority '{p}' would be used by two rules (including '{moved}'); choose distinct priorities"
            )));
        }
    }
    Ok(planned)
}

pub(crate) async fn set_rule_priorities(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let mut changes: BTreeMap<String, u32> = BTreeMap::new();
    let mut lbs: Vec<String> = Vec::new();
    for m in q.members("RulePriorities") {
        let arn = required(&m, "RuleArn")?;
        required(&m, "Priority")?;
        let p = priority(&m, "Priority")?.unwrap_or(1);
        let lb = arn::rule_lb(&elb.scope, arn)?;
        if changes.insert(arn.to_owned(), p).is_some() {
            return invalid(format!(
                "Rule '{arn}' appears more than once in RulePriorities"
            ));
        }
        if !lbs.contains(&lb) {
            lbs.push(lb);
        }
    }
    if changes.is_empty() {
        return invalid("At least one rule must be given in RulePriorities");
    }
    let rules = elb
        .objects
        .write("rule", |w| {
            for arn in changes.keys() {
                let lb_name = arn::rule_lb(&elb.scope, arn)?;
                if let RuleRef::Default { .. } = find_rule(w, &lb_name, arn)? {
                    return Err(Elbv2Error::OperationNotPermitted(
                        "The default rule's priority cannot be changed; it is always evaluated last".into(),
                    ));
                }
            }
            let mut changed = Vec::new();
            for lb_name in &lbs {
                let Some(lb) = w.lbs.get_mut(lb_name) else { continue };
                for l in &mut lb.listeners {
                    let current: Vec<(String, u32)> = l.rules.iter().map(|r| (r.arn.clone(), r.priority)).collect();
                    let planned = plan_priorities(&current, &changes)?;
                    for (r, (_, p)) in l.rules.iter_mut().zip(planned) {
                        r.priority = p;
                        if changes.contains_key(&r.arn) {
                            changed.push(r.clone());
                        }
                    }
                }
            }
            Ok(changed)
        })
        .await?;
    let mut x = Xml::new();
    x.list("Rules", rules.iter().map(Shown::Rule), render_rule);
    Ok(x.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> Vec<(String, u32)> {
        vec![("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]
    }

    #[test]
    fn two_rules_can_swap_priorities_in_one_call() {
        let changes = BTreeMap::from([("a".to_owned(), 2), ("b".to_owned(), 1)]);
        let planned = plan_priorities(&current(), &changes).expect("swap is allowed");
        assert_eq!(
            planned,
            vec![("a".into(), 2), ("b".into(), 1), ("c".into(), 3)]
        );
    }

    #[test]
    fn moving_onto_an_unmoved_rules_priority_is_priority_in_use() {
        let changes = BTreeMap::from([("a".to_owned(), 3)]);
        let err = plan_priorities(&current(), &changes).expect_err("collides with c");
        assert!(matches!(err, Elbv2Error::PriorityInUse(_)));
        assert!(err.to_string().contains("'a'"), "{err}");
    }

    #[test]
    fn two_moved_rules_cannot_share_a_priority() {
        let changes = BTreeMap::from([("a".to_owned(), 9), ("b".to_owned(), 9)]);
        assert!(plan_priorities(&current(), &changes).is_err());
    }
}
