//! Target registration and health: RegisterTargets, DeregisterTargets (draining for the
//! deregistration delay when the group is in use), DescribeTargetHealth, and the same
//! operations as a Rust API for the ECS service integration, sharing one code path.

use crate::arn;
use crate::error::{invalid, Elbv2Error};
use crate::health::{compute_health, live_targets, Registration, TargetHealthView};
use crate::load_balancers::MAX_TARGETS;
use crate::params::{port, required};
use crate::state::{StoredTarget, StoredTargetGroup};
use crate::target_groups::deregistration_delay_ms;
use crate::{Elbv2, TargetKey};
use wire::query::QueryView;
use wire::xml::Xml;

/// Each registered or draining target of a group with its health state and reason.
pub type TargetHealthRows = Vec<(TargetKey, model::lb::TargetHealthState, Option<String>)>;

/// A target as a request names it: the port may be left to the group's default.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TargetRef {
    id: String,
    port: Option<u16>,
    az: Option<String>,
    /// Stevedore's own hint of where an instance target is reached.
    address: Option<String>,
}

fn parse_targets(q: &QueryView<'_>, required_list: bool) -> Result<Vec<TargetRef>, Elbv2Error> {
    let mut out = Vec::new();
    for m in q.members("Targets") {
        out.push(TargetRef {
            id: required(&m, "Id")?.to_owned(),
            port: port(&m, "Port")?,
            az: m.get("AvailabilityZone").map(str::to_owned),
            address: None,
        });
    }
    if required_list && out.is_empty() {
        return invalid("At least one target must be given in Targets");
    }
    Ok(out)
}

/// Refuses target ids that do not fit the group's target type.
fn check_ids(tg: &StoredTargetGroup, targets: &[TargetRef]) -> Result<(), Elbv2Error> {
    let bad: Vec<&str> = targets
        .iter()
        .map(|t| t.id.as_str())
        .filter(|id| match tg.target_type.as_str() {
            "ip" => id.parse::<std::net::IpAddr>().is_err(),
            _ => !id.strip_prefix("i-").is_some_and(|rest| {
                !rest.is_empty()
                    && rest.len() <= 64
                    && rest.chars().all(|c| c.is_ascii_alphanumeric())
            }),
        })
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let what = if tg.target_type == "ip" {
        "IP addresses"
    } else {
        "instance ids (i-...)"
    };
    Err(Elbv2Error::InvalidTarget(format!(
        "The following targets are not valid {what} for target group '{}': {}",
        tg.arn,
        bad.join(", ")
    )))
}

impl Elbv2 {
    /// Registers `targets` in the target group `tg_arn` (RegisterTargets). A draining
    /// target registered again stops draining.
    pub async fn register_targets(
        &self,
        tg_arn: &str,
        targets: &[TargetKey],
    ) -> Result<(), Elbv2Error> {
        self.apply_register(tg_arn, &refs(targets)).await
    }

    /// [`Elbv2::register_targets`] with where each instance target is reached (`None`:
    /// the server's resolver, or 127.0.0.1), kept with the target for the data plane.
    pub async fn register_targets_at(
        &self,
        tg_arn: &str,
        targets: &[(TargetKey, Option<String>)],
    ) -> Result<(), Elbv2Error> {
        let refs: Vec<TargetRef> = targets
            .iter()
            .map(|(key, address)| TargetRef {
                id: key.id.clone(),
                port: Some(key.port),
                az: None,
                address: address.clone(),
            })
            .collect();
        self.apply_register(tg_arn, &refs).await
    }

    /// Deregisters `targets` from the target group `tg_arn` (DeregisterTargets): they
    /// drain for the group's deregistration delay if a listener uses the group.
    pub async fn deregister_targets(
        &self,
        tg_arn: &str,
        targets: &[TargetKey],
    ) -> Result<(), Elbv2Error> {
        self.apply_deregister(tg_arn, &refs(targets)).await
    }

    /// Every registered or draining target of `tg_arn` with its `TargetHealth.State`.
    pub async fn target_health(
        &self,
        tg_arn: &str,
    ) -> Result<Vec<(TargetKey, model::lb::TargetHealthState)>, Elbv2Error> {
        let (_, rows) = self.health_rows(tg_arn, &[]).await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.key(), r.health.state))
            .collect())
    }

    /// A target group's `TargetType` and each registered or draining target with its
    /// `TargetHealth` state and reason: what ECS services need to register their tasks
    /// and wait for them. `None` when the group does not exist.
    pub async fn target_group_health(
        &self,
        tg_arn: &str,
    ) -> Result<Option<(String, TargetHealthRows)>, Elbv2Error> {
        let (target_type, rows) = match self.health_rows(tg_arn, &[]).await {
            Ok(found) => found,
            Err(Elbv2Error::TargetGroupNotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let targets = rows
            .into_iter()
            .map(|r| (r.key(), r.health.state, r.health.reason))
            .collect();
        Ok(Some((target_type, targets)))
    }

    /// Every (target group ARN, target) still registered or draining: read-only, for
    /// checking health reports from a standalone data plane against what is registered.
    pub async fn registered_targets(
        &self,
    ) -> Result<std::collections::HashSet<(String, TargetKey)>, Elbv2Error> {
        let now = self.now_ms();
        let (world, _, _) = self.objects.load().await?;
        let mut out = std::collections::HashSet::new();
        for tg in world.tgs.values() {
            for (t, _) in live_targets(tg, now) {
                let key = TargetKey {
                    id: t.id.clone(),
                    port: t.port,
                };
                out.insert((tg.arn.clone(), key));
            }
        }
        Ok(out)
    }

    /// Replaces what the data plane last concluded about these targets.
    pub fn report_health(&self, reports: Vec<model::lb::HealthReport>) {
        let mut table = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for r in reports {
            table.insert((r.target_group_arn, r.target), r.health);
        }
    }

    /// Drops the health reports of a deleted target group.
    pub(crate) fn forget_health(&self, tg_arn: &str) {
        let mut table = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table.retain(|(tg, _), _| tg != tg_arn);
    }

    fn forget_target_health(&self, tg_arn: &str, keys: &[TargetKey]) {
        let mut table = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for k in keys {
            table.remove(&(tg_arn.to_owned(), k.clone()));
        }
    }

    async fn apply_register(&self, tg_arn: &str, targets: &[TargetRef]) -> Result<(), Elbv2Error> {
        let name = arn::target_group_name(&self.scope, tg_arn)?;
        let now = self.now_ms();
        let added = self
            .objects
            .write("target group", |w| {
                crate::health::sweep_expired(w, now);
                let tg = w.tg_mut(&name, tg_arn)?;
                check_ids(tg, targets)?;
                let mut added = Vec::new();
                for t in targets {
                    let port = t.port.unwrap_or(tg.port);
                    match tg
                        .targets
                        .iter_mut()
                        .find(|s| s.id == t.id && s.port == port)
                    {
                        Some(s) => {
                            if s.deregistered_ms.take().is_some() {
                                s.registered_ms = now;
                            }
                            if t.az.is_some() {
                                s.az.clone_from(&t.az);
                            }
                            if t.address.is_some() {
                                s.address.clone_from(&t.address);
                            }
                        }
                        None => {
                            tg.targets.push(StoredTarget {
                                id: t.id.clone(),
                                port,
                                az: t.az.clone(),
                                registered_ms: now,
                                deregistered_ms: None,
                                address: t.address.clone(),
                            });
                            added.push(TargetKey {
                                id: t.id.clone(),
                                port,
                            });
                        }
                    }
                }
                if tg.targets.len() > MAX_TARGETS {
                    return Err(Elbv2Error::TooManyTargets(format!(
                        "Target group '{tg_arn}' would have {} targets; the limit is {MAX_TARGETS}",
                        tg.targets.len()
                    )));
                }
                Ok(added)
            })
            .await?;
        self.forget_target_health(tg_arn, &added);
        tracing::info!(target_group = %tg_arn, targets = targets.len(), "Targets registered.");
        Ok(())
    }

    async fn apply_deregister(
        &self,
        tg_arn: &str,
        targets: &[TargetRef],
    ) -> Result<(), Elbv2Error> {
        let name = arn::target_group_name(&self.scope, tg_arn)?;
        let now = self.now_ms();
        self.objects
            .write("target group", |w| {
                crate::health::sweep_expired(w, now);
                let in_use = !w.lbs_using(tg_arn).is_empty();
                let tg = w.tg_mut(&name, tg_arn)?;
                check_ids(tg, targets)?;
                let delay = deregistration_delay_ms(tg);
                let immediate = !in_use || delay == 0;
                for t in targets {
                    // Without a port, every registration of the id is meant.
                    let matches =
                        |s: &StoredTarget| s.id == t.id && t.port.is_none_or(|p| p == s.port);
                    if !tg.targets.iter().any(&matches) {
                        return Err(Elbv2Error::InvalidTarget(format!(
                            "Target '{}{}' is not registered in target group '{tg_arn}'",
                            t.id,
                            t.port.map(|p| format!(":{p}")).unwrap_or_default()
                        )));
                    }
                    if immediate {
                        tg.targets.retain(|s| !matches(s));
                    } else {
                        for s in tg
                            .targets
                            .iter_mut()
                            .filter(|s| matches(s) && s.deregistered_ms.is_none())
                        {
                            s.deregistered_ms = Some(now);
                        }
                    }
                }
                Ok(())
            })
            .await?;
        tracing::info!(target_group = %tg_arn, targets = targets.len(), "Targets deregistered.");
        Ok(())
    }

    /// The group's `TargetType`, and one row per registered or draining target (or per
    /// target asked about), from one read of the state.
    async fn health_rows(
        &self,
        tg_arn: &str,
        asked: &[TargetRef],
    ) -> Result<(String, Vec<HealthRow>), Elbv2Error> {
        let name = arn::target_group_name(&self.scope, tg_arn)?;
        let now = self.now_ms();
        let (world, _, _) = self.objects.load().await?;
        let tg = world.tg(&name, tg_arn)?;
        check_ids(tg, asked)?;
        let in_use = !world.lbs_using(tg_arn).is_empty();
        let table = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let row = |t: &StoredTarget, reg: Registration| {
            let key = TargetKey {
                id: t.id.clone(),
                port: t.port,
            };
            let report = table.get(&(tg_arn.to_owned(), key));
            HealthRow {
                health: compute_health(reg, in_use, tg.health_check.enabled, report),
                health_check_port: if tg.health_check.port == "traffic-port" {
                    t.port.to_string()
                } else {
                    tg.health_check.port.clone()
                },
                target: t.clone(),
            }
        };
        let mut out = Vec::new();
        if asked.is_empty() {
            for (t, reg) in live_targets(tg, now) {
                out.push(row(t, reg));
            }
            return Ok((tg.target_type.clone(), out));
        }
        for a in asked {
            let found: Vec<(&StoredTarget, Registration)> = live_targets(tg, now)
                .filter(|(t, _)| t.id == a.id && a.port.is_none_or(|p| p == t.port))
                .collect();
            if found.is_empty() {
                let ghost = StoredTarget {
                    id: a.id.clone(),
                    port: a.port.unwrap_or(tg.port),
                    az: a.az.clone(),
                    registered_ms: now,
                    deregistered_ms: None,
                    address: None,
                };
                out.push(row(&ghost, Registration::None));
            }
            for (t, reg) in found {
                out.push(row(t, reg));
            }
        }
        Ok((tg.target_type.clone(), out))
    }
}

/// One `TargetHealthDescription`.
struct HealthRow {
    target: StoredTarget,
    health_check_port: String,
    health: TargetHealthView,
}

impl HealthRow {
    /// The target's id and port.
    fn key(&self) -> TargetKey {
        TargetKey {
            id: self.target.id.clone(),
            port: self.target.port,
        }
    }
}

/// API-level references for targets named by id and port.
fn refs(targets: &[TargetKey]) -> Vec<TargetRef> {
    targets
        .iter()
        .map(|t| TargetRef {
            id: t.id.clone(),
            port: Some(t.port),
            az: None,
            address: None,
        })
        .collect()
}

pub(crate) async fn register_targets_op(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let tg_arn = required(q, "TargetGroupArn")?;
    let targets = parse_targets(q, true)?;
    elb.apply_register(tg_arn, &targets).await?;
    Ok(String::new())
}

pub(crate) async fn deregister_targets_op(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let tg_arn = required(q, "TargetGroupArn")?;
    let targets = parse_targets(q, true)?;
    elb.apply_deregister(tg_arn, &targets).await?;
    Ok(String::new())
}

pub(crate) async fn describe_target_health(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let tg_arn = required(q, "TargetGroupArn")?;
    let asked = parse_targets(q, false)?;
    let (_, rows) = elb.health_rows(tg_arn, &asked).await?;
    let mut x = Xml::new();
    x.list("TargetHealthDescriptions", rows, |m, r| {
        m.el("Target", |t| {
            t.leaf("Id", &r.target.id)
                .leaf("Port", &r.target.port.to_string())
                .opt("AvailabilityZone", r.target.az.as_deref());
        })
        .leaf("HealthCheckPort", &r.health_check_port)
        .el("TargetHealth", |h| {
            h.leaf("State", r.health.state.as_str())
                .opt("Reason", r.health.reason.as_deref())
                .opt("Description", r.health.description.as_deref());
        });
    });
    Ok(x.finish())
}
