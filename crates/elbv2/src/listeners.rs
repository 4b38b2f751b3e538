//! Listeners: create, describe, modify and delete; and the checks every action list
//! goes through against the rest of the state (the target groups exist, their protocol
//! fits the load balancer, a group serves only one load balancer).

use crate::actions::{parse_actions, ActionKind, ActionSpec};
use crate::arn;
use crate::error::{invalid, Elbv2Error};
use crate::load_balancers::MAX_LISTENERS;
use crate::params::{page, paginate, port, required, tags};
use crate::state::{LbType, State, StoredListener, StoredLoadBalancer, Tags};
use crate::Elbv2;
use model::ecs::arn::ArnScope;
use wire::query::QueryView;
use wire::xml::Xml;

/// `ListenerNotFound` for an ARN.
pub fn listener_not_found(arn: &str) -> Elbv2Error {
    Elbv2Error::ListenerNotFound(format!("Listener '{arn}' not found"))
}

/// Index of the load balancer (by name) and listener with this ARN.
pub fn find_listener(w: &State, lb_name: &str, arn: &str) -> Result<usize, Elbv2Error> {
    w.lbs
        .get(lb_name)
        .and_then(|lb| lb.listeners.iter().position(|l| l.arn == arn))
        .ok_or_else(|| listener_not_found(arn))
}

/// Checks `actions` for a listener or rule of `lb` against the rest of the state.
pub fn check_actions(
    scope: &ArnScope,
    w: &State,
    lb: &StoredLoadBalancer,
    actions: &[ActionSpec],
) -> Result<(), Elbv2Error> {
    for a in actions {
        if lb.kind == LbType::Network {
            match &a.kind {
                ActionKind::Forward { target_groups, .. } if target_groups.len() == 1 => {}
                ActionKind::Forward { .. } => {
                    return Err(Elbv2Error::InvalidLoadBalancerAction(
                        "Network load balancer listeners forward to exactly one target group"
                            .into(),
                    ))
                }
                _ => {
                    return Err(Elbv2Error::InvalidLoadBalancerAction(format!(
                        "Action type '{}' is not valid for network load balancers; use forward",
                        a.type_name()
                    )))
                }
            }
        }
        for tg_arn in a.target_group_arns() {
            let tg = arn::target_group_name(scope, tg_arn)
                .ok()
                .and_then(|n| w.tgs.get(&n))
                .filter(|tg| tg.arn == tg_arn)
                .ok_or_else(|| crate::state::tg_not_found(tg_arn))?;
            let wanted = match lb.kind {
                LbType::Application => "HTTP",
                LbType::Network => "TCP",
            };
            if tg.protocol != wanted {
                return Err(Elbv2Error::IncompatibleProtocols(format!(
                    "Target group '{tg_arn}' has protocol {}, but {} load balancers forward only to {wanted} target groups",
                    tg.protocol,
                    lb.kind.as_str()
                )));
            }
            if let Some(other) = w.lbs_using(tg_arn).into_iter().find(|o| o.arn != lb.arn) {
                return Err(Elbv2Error::TargetGroupAssociationLimit(format!(
                    "Target group '{tg_arn}' is already used by load balancer '{}'; a target group can serve only one load balancer",
                    other.arn
                )));
            }
        }
    }
    Ok(())
}

/// Checks a listener protocol for a load balancer type.
fn check_protocol(kind: LbType, protocol: &str) -> Result<(), Elbv2Error> {
    match (kind, protocol) {
        (LbType::Application, "HTTP") | (LbType::Network, "TCP") => Ok(()),
        (LbType::Application, "HTTPS") | (LbType::Network, "TLS" | "UDP" | "TCP_UDP" | "QUIC" | "TCP_QUIC") => {
            Err(Elbv2Error::UnsupportedProtocol(format!(
                "Listener protocol '{protocol}' is not supported by Stevedore; {} load balancers listen on {}",
                kind.as_str(),
                kind.listener_protocol()
            )))
        }
        _ => Err(Elbv2Error::IncompatibleProtocols(format!(
            "Listener protocol '{protocol}' is not valid for {} load balancers; use {}",
            kind.as_str(),
            kind.listener_protocol()
        ))),
    }
}

/// Refuses `port` if another listener (other than `except`) binds it. Every load
/// balancer binds the same address, so the port must be free across all of them.
fn check_port_free(
    w: &State,
    lb: &StoredLoadBalancer,
    port: u16,
    except: Option<&str>,
) -> Result<(), Elbv2Error> {
    for other in w.lbs.values() {
        if let Some(l) = other
            .listeners
            .iter()
            .find(|l| l.port == port && Some(l.arn.as_str()) != except)
        {
            return Err(Elbv2Error::DuplicateListener(if other.arn == lb.arn {
                format!(
                    "A listener already exists on port {port} of load balancer '{}'",
                    lb.arn
                )
            } else {
                format!(
                    "Port {port} is already used by listener '{}' of load balancer '{}'; Stevedore binds every load balancer on the same address, so a port can serve only one listener",
                    l.arn, other.arn
                )
            }));
        }
    }
    Ok(())
}

pub(crate) async fn create_listener(elb: &Elbv2, q: &QueryView<'_>) -> Result<String, Elbv2Error> {
    let lb_arn = required(q, "LoadBalancerArn")?;
    let lb_name = arn::load_balancer_name(&elb.scope, lb_arn)?;
    let protocol = q.get("Protocol");
    let Some(listener_port) = port(q, "Port")? else {
        return invalid("A listener port must be specified");
    };
    let actions = parse_actions(q, "DefaultActions")?;
    let tags: Tags = tags(q, "Tags")?.into_iter().collect();
    let (id, rule_id) = (arn::new_id(), arn::new_id());
    let listener = elb
        .objects
        .write("listener", |w| {
            let lb = w.lb(&lb_name, lb_arn)?;
            let protocol = protocol.unwrap_or(lb.kind.listener_protocol());
            check_protocol(lb.kind, protocol)?;
            if let Some(same) = lb.listeners.iter().find(|l| {
                l.port == listener_port && l.protocol == protocol && l.default_actions == actions
            }) {
                return Ok(same.clone());
            }
            check_port_free(w, lb, listener_port, None)?;
            if lb.listeners.len() >= MAX_LISTENERS {
                return Err(Elbv2Error::TooManyListeners(format!(
                    "Load balancer '{lb_arn}' already has {MAX_LISTENERS} listeners, the limit"
                )));
            }
            check_actions(&elb.scope, w, lb, &actions)?;
            let arn = arn::listener(lb_arn, &id);
            let listener = StoredListener {
                default_rule_arn: arn::rule(&arn, &rule_id),
                arn,
                port: listener_port,
                protocol: protocol.to_owned(),
                default_actions: actions.clone(),
                tags: tags.clone(),
                default_rule_tags: Tags::new(),
                rules: Vec::new(),
            };
            w.lb_mut(&lb_name, lb_arn)?.listeners.push(listener.clone());
            Ok(listener)
        })
        .await?;
    tracing::info!(listener = %listener.arn, port = listener.port, "Listener created.");
    let mut x = Xml::new();
    x.list("Listeners", [&listener], |m, l| {
        render_listener(m, lb_arn, l)
    });
    Ok(x.finish())
}

/// Writes a `Listener` structure's members.
fn render_listener(x: &mut Xml, lb_arn: &str, l: &StoredListener) {
    x.leaf("ListenerArn", &l.arn)
        .leaf("LoadBalancerArn", lb_arn)
        .leaf("Port", &l.port.to_string())
        .leaf("Protocol", &l.protocol)
        .list("DefaultActions", &l.default_actions, |m, a| a.render(m));
}

pub(crate) async fn describe_listeners(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let lb_arn = q.get("LoadBalancerArn");
    let arns = q.list("ListenerArns");
    let (after, size) = page(q, "listener")?;
    let (world, _, _) = elb.objects.load().await?;
    let mut found: Vec<(String, (&str, &StoredListener))> = Vec::new();
    match (lb_arn, arns.is_empty()) {
        (Some(_), false) => return invalid("Give LoadBalancerArn or ListenerArns, not both"),
        (None, true) => {
            return invalid("Give LoadBalancerArn or ListenerArns to describe listeners")
        }
        (Some(lb_arn), true) => {
            let lb = world.lb(&arn::load_balancer_name(&elb.scope, lb_arn)?, lb_arn)?;
            for l in &lb.listeners {
                found.push((format!("{:05}", l.port), (lb.arn.as_str(), l)));
            }
        }
        (None, false) => {
            for (i, a) in arns.iter().enumerate() {
                let lb_name = arn::listener_lb(&elb.scope, a)?;
                let idx = find_listener(&world, &lb_name, a)?;
                let lb = world.lb(&lb_name, &lb_arn_of(a))?;
                found.push((format!("{i:05}"), (lb.arn.as_str(), &lb.listeners[idx])));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let (items, next) = paginate("listener", found, after.as_deref(), size);
    let mut x = Xml::new();
    x.list("Listeners", items, |m, (lb_arn, l)| {
        render_listener(m, lb_arn, l)
    });
    x.opt("NextMarker", next.as_deref());
    Ok(x.finish())
}

/// The load balancer ARN a listener or rule ARN belongs to.
pub fn lb_arn_of(arn: &str) -> String {
    let (head, rest) = match arn.split_once(":listener-rule/") {
        Some(p) => p,
        None => arn.split_once(":listener/").unwrap_or((arn, "")),
    };
    let segs: Vec<&str> = rest.split('/').take(3).collect();
    format!("{head}:loadbalancer/{}", segs.join("/"))
}

pub(crate) async fn modify_listener(elb: &Elbv2, q: &QueryView<'_>) -> Result<String, Elbv2Error> {
    let arn = required(q, "ListenerArn")?;
    let lb_name = arn::listener_lb(&elb.scope, arn)?;
    let new_port = port(q, "Port")?;
    let protocol = q.get("Protocol");
    let actions = if q.members("DefaultActions").is_empty() {
        None
    } else {
        Some(parse_actions(q, "DefaultActions")?)
    };
    let lb_arn = lb_arn_of(arn);
    let listener = elb
        .objects
        .write("listener", |w| {
            let idx = find_listener(w, &lb_name, arn)?;
            let lb = w.lb(&lb_name, &lb_arn)?;
            if let Some(p) = protocol {
                check_protocol(lb.kind, p)?;
            }
            if let Some(p) = new_port {
                check_port_free(w, lb, p, Some(arn))?;
            }
            if let Some(a) = &actions {
                check_actions(&elb.scope, w, lb, a)?;
            }
            let l = &mut w.lb_mut(&lb_name, &lb_arn)?.listeners[idx];
            if let Some(p) = new_port {
                l.port = p;
            }
            if let Some(p) = protocol {
                l.protocol = p.to_owned();
            }
            if let Some(a) = &actions {
                l.default_actions = a.clone();
            }
            Ok(l.clone())
        })
        .await?;
    let mut x = Xml::new();
    x.list("Listeners", [&listener], |m, l| {
        render_listener(m, &lb_arn, l)
    });
    Ok(x.finish())
}

pub(crate) async fn delete_listener(elb: &Elbv2, q: &QueryView<'_>) -> Result<String, Elbv2Error> {
    let arn = required(q, "ListenerArn")?;
    let lb_name = arn::listener_lb(&elb.scope, arn)?;
    let lb_arn = lb_arn_of(arn);
    elb.objects
        .write("listener", |w| {
            let idx = find_listener(w, &lb_name, arn)?;
            w.lb_mut(&lb_name, &lb_arn)?.listeners.remove(idx);
            Ok(())
        })
        .await?;
    tracing::info!(listener = %arn, "Listener deleted.");
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lb_arn_of_strips_listener_and_rule_ids() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/0123456789abcdef";
        let l = arn::listener(lb, "1111111111111111");
        let r = arn::rule(&l, "2222222222222222");
        assert_eq!(lb_arn_of(&l), lb);
        assert_eq!(lb_arn_of(&r), lb);
    }

    #[test]
    fn listener_protocol_must_fit_the_load_balancer() {
        assert!(check_protocol(LbType::Application, "HTTP").is_ok());
        assert!(check_protocol(LbType::Network, "TCP").is_ok());
        assert!(matches!(
            check_protocol(LbType::Application, "TCP"),
            Err(Elbv2Error::IncompatibleProtocols(_))
        ));
        assert!(matches!(
            check_protocol(LbType::Application, "HTTPS"),
            Err(Elbv2Error::UnsupportedProtocol(_))
        ));
        assert!(matches!(
            check_protocol(LbType::Network, "HTTP"),
            Err(Elbv2Error::IncompatibleProtocols(_))
        ));
    }
}
