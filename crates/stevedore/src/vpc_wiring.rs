//! EC2 networking wired to ECS and to the host's packet filter.
//!
//! - Each region's ECS checks awsvpc launches against its EC2 ([`EcsNetworks`]), and
//!   EC2 lists ECS's task interfaces ([`EcsInterfaces`]) for DescribeNetworkInterfaces
//!   and for the dependency checks of DeleteSubnet and DeleteSecurityGroup.
//! - One loop per server ([`start_packet_filter`]) keeps the nftables table
//!   `inet stevedore` equal to what every account's and region's groups and task
//!   interfaces and guarded load balancer listeners say: it recomputes the rule set
//!   every [`FILTER_EVERY`] and, when it changed, applies the difference as one atomic
//!   batch. Its first round after a start rebuilds the whole table from the state, so
//!   stale rules from an earlier run never survive.
//!
//! The filter runs where the server runs: it covers the tasks of agents on the server's
//! own host (Fargate's hidden capacity, `stevedore up`, agents beside the server). Tasks
//! of agents on other hosts are not filtered yet.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use model::ecs::arn::ArnScope;
use store::Store;
use telemetry::{supervise_task, CancellationToken, LoopName};

/// How often the packet filter loop recomputes the rule set: changes apply well within
/// the second AWS users expect.
const FILTER_EVERY: Duration = Duration::from_millis(200);

/// Whether the host's packet filter can be used: unknown until the server probed it.
static FILTER: AtomicU8 = AtomicU8::new(FILTER_UNKNOWN);
const FILTER_UNKNOWN: u8 = 0;
const FILTER_READY: u8 = 1;
const FILTER_MISSING: u8 = 2;

/// Builds a region's EC2 over its `store` and wires it both ways with its `ecs`, and
/// to its `elb` and `ecs` for the groups their load balancers and instances hold.
pub fn wire_region(
    ecs: &mut ecs::Ecs,
    elb: &elbv2::Elbv2,
    store: Arc<dyn Store>,
    scope: &ArnScope,
) -> ec2::Ec2 {
    let mut ec2 = ec2::Ec2::new(store, &scope.region, &scope.account_id);
    ecs.set_networks(Arc::new(EcsNetworks(ec2.clone())));
    ec2.set_interfaces(Arc::new(EcsInterfaces(ecs.clone())));
    ec2.set_group_users(Arc::new(GroupHolders {
        ecs: ecs.clone(),
        elb: elb.clone(),
    }));
    ec2
}

/// The groups load balancers (ELBv2) and container instances (ECS's
/// `stevedore.security-groups` attribute) hold, for DeleteSecurityGroup's check.
struct GroupHolders {
    ecs: ecs::Ecs,
    elb: elbv2::Elbv2,
}

#[async_trait::async_trait]
impl ec2::GroupUsers for GroupHolders {
    async fn groups_in_use(&self) -> Result<Vec<Vec<String>>, String> {
        let mut held = self
            .elb
            .load_balancer_groups()
            .await
            .map_err(|e| e.to_string())?;
        let instances = self
            .ecs
            .guarded_instances()
            .await
            .map_err(|e| e.to_string())?;
        held.extend(instances.into_iter().map(|i| i.security_groups));
        Ok(held)
    }
}

/// ELBv2's check of load balancers' security groups against the region's EC2.
pub struct Elbv2Groups(pub ec2::Ec2);

#[async_trait::async_trait]
impl elbv2::SecurityGroups for Elbv2Groups {
    async fn check(&self, ids: &[String]) -> Result<(), Vec<String>> {
        if FILTER.load(Ordering::Relaxed) == FILTER_MISSING {
            // Nothing could enforce them: refuse rather than store them.
            return Err(ids.to_vec());
        }
        let state = self.0.snapshot().await.map_err(|_| ids.to_vec())?;
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !state.groups.contains_key(*id))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing)
        }
    }
}

/// ECS's view of EC2's subnets and groups.
struct EcsNetworks(ec2::Ec2);

#[async_trait::async_trait]
impl ecs::Networks for EcsNetworks {
    async fn resolve(&self, subnets: &[String], groups: &[String]) -> Result<ecs::Network, String> {
        if FILTER.load(Ordering::Relaxed) == FILTER_MISSING {
            return Err("This host cannot enforce security groups (no usable nftables: see the server's log at start), so awsvpc tasks are refused rather than run unfiltered.".into());
        }
        let n = self.0.resolve_network(subnets, groups).await.map_err(|e| {
            let (what, ids) = match &e {
                ec2::Ec2Error::SubnetNotFound(_) => ("subnet", subnets),
                _ => ("security group", groups),
            };
            format!(
                "Error retrieving {what} information for [{}]: {e} (ErrorCode: {})",
                ids.join(", "),
                e.code()
            )
        })?;
        Ok(ecs::Network {
            subnet_id: n.subnet_id,
            vpc_id: n.vpc_id,
            cidr: (n.cidr.addr(), n.cidr.len()),
            security_groups: n.security_groups,
        })
    }
}

/// EC2's view of ECS's task interfaces.
struct EcsInterfaces(ecs::Ecs);

#[async_trait::async_trait]
impl ec2::Interfaces for EcsInterfaces {
    async fn list(&self) -> Result<Vec<ec2::NetworkInterface>, String> {
        let enis = self
            .0
            .network_interfaces()
            .await
            .map_err(|e| e.to_string())?;
        Ok(enis
            .into_iter()
            .map(|i| ec2::NetworkInterface {
                id: i.eni.eni_id,
                subnet_id: i.eni.subnet_id,
                address: i.eni.address,
                mac: i.eni.mac,
                private_dns_name: i.eni.private_dns_name,
                groups: i.eni.security_groups,
                description: format!("arn:aws:ecs:attachment/{}", i.eni.attachment_id),
                attachment_id: i.eni.attachment_id,
            })
            .collect())
    }
}

/// Probes the host's packet filter, says at start what it found, and starts the loop
/// that keeps Stevedore's table equal to the state.
pub async fn start_packet_filter(
    loops: &mut tokio::task::JoinSet<()>,
    accounts: Arc<crate::accounts::Accounts>,
    shutdown: &CancellationToken,
) {
    let probed = tokio::task::spawn_blocking(netfilter::probe).await;
    match probed {
        Ok(Ok(())) => {
            FILTER.store(FILTER_READY, Ordering::Relaxed);
            tracing::info!(
                table = %format!("inet {}", netfilter::TABLE),
                "Security groups are enforced with nftables."
            );
        }
        Ok(Err(error)) => {
            FILTER.store(FILTER_MISSING, Ordering::Relaxed);
            tracing::warn!(%error, "This host has no usable nftables: awsvpc tasks are refused, since their security groups could not be enforced.");
            return;
        }
        Err(error) => {
            FILTER.store(FILTER_MISSING, Ordering::Relaxed);
            tracing::warn!(%error, "Probing nftables failed: awsvpc tasks are refused.");
            return;
        }
    }
    let stop = shutdown.clone();
    loops.spawn(supervise_task(
        LoopName::PacketFilter,
        shutdown.clone(),
        move || run_filter(accounts.clone(), stop.clone()),
    ));
}

/// Recomputes and applies the rule set until `shutdown`. The first round (and any
/// round after a failed change) rebuilds the whole table, which removes whatever the
/// state no longer describes; later rounds apply only what changed.
async fn run_filter(accounts: Arc<crate::accounts::Accounts>, shutdown: CancellationToken) {
    let mut applied: Option<String> = None;
    loop {
        match compute_ruleset(&accounts).await {
            Ok(rules) => {
                let script = netfilter::compile_script(&rules);
                if applied.as_deref() != Some(script.as_str()) {
                    let started = std::time::Instant::now();
                    let change = applied
                        .as_deref()
                        .and_then(|old| netfilter::compile_update_parts(old, &script));
                    let whole = change.is_none();
                    let (batch, cleanup) =
                        change.unwrap_or_else(|| (script.clone(), String::new()));
                    // The change first (the new rules are in force when it returns), then
                    // the removal of what nothing uses any more, a second transaction.
                    let apply = move || {
                        netfilter::apply(&batch)?;
                        netfilter::apply(&cleanup)
                    };
                    match tokio::task::spawn_blocking(apply).await {
                        Ok(Ok(())) => {
                            tracing::info!(
                                interfaces = rules.interfaces.len(),
                                listeners = rules.listeners.len(),
                                instances = rules.hosts.len(),
                                whole,
                                elapsed_ms = u64::try_from(started.elapsed().as_millis())
                                    .unwrap_or(u64::MAX),
                                "Packet filter applied."
                            );
                            applied = Some(script);
                        }
                        Ok(Err(error)) => {
                            // The table is not what we last wrote: rebuild it next round.
                            applied = None;
                            tracing::warn!(%error, whole, "Packet filter could not be applied; retrying.")
                        }
                        Err(error) => {
                            applied = None;
                            tracing::warn!(%error, "Packet filter apply did not finish; retrying.")
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "Packet filter rules could not be computed; retrying.")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(FILTER_EVERY) => {}
        }
    }
}

/// Every enforced interface (awsvpc tasks whose groups EC2 resolved), every guarded
/// load balancer listener, every container instance with groups (its published ports)
/// and every group, across all accounts and regions of this server.
async fn compute_ruleset(
    accounts: &crate::accounts::Accounts,
) -> Result<netfilter::Ruleset, String> {
    let mut rules = netfilter::Ruleset::default();
    for region in accounts.regions() {
        let enis = region
            .ecs
            .network_interfaces()
            .await
            .map_err(|e| e.to_string())?;
        let enforced: Vec<_> = enis
            .into_iter()
            .filter(|i| !i.eni.security_groups.is_empty())
            .collect();
        let guarded = region
            .elb
            .guarded_listeners()
            .await
            .map_err(|e| e.to_string())?;
        let instances = region
            .ecs
            .guarded_instances()
            .await
            .map_err(|e| e.to_string())?;
        if enforced.is_empty() && guarded.is_empty() && instances.is_empty() {
            continue;
        }
        for i in instances {
            let port = |proto: &str| -> Vec<u16> {
                i.ports
                    .iter()
                    .filter(|(p, _)| p == proto)
                    .map(|(_, n)| *n)
                    .collect()
            };
            rules.hosts.push(netfilter::HostPorts {
                // The instance id (the ARN's last part): random, so unique across
                // clusters, regions and accounts, and short enough for a chain name.
                id: i
                    .container_instance_arn
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                groups: i.security_groups.clone(),
                tcp: port("tcp"),
                udp: port("udp"),
            });
        }
        for l in guarded {
            rules.listeners.push(netfilter::Listener {
                address: match l.address {
                    std::net::IpAddr::V4(a) if !a.is_unspecified() => Some(a),
                    _ => None,
                },
                port: l.port,
                groups: l.security_groups,
                marks: l
                    .target_groups
                    .iter()
                    .map(|tg| model::lb::socket_mark(tg))
                    .collect(),
            });
        }
        let state = region.ec2.snapshot().await.map_err(|e| e.to_string())?;
        for g in state.groups.values() {
            rules.groups.insert(g.id.clone(), compute_group(g));
        }
        for i in enforced {
            let Ok(address) = i.eni.address.parse::<Ipv4Addr>() else {
                continue;
            };
            rules.interfaces.push(netfilter::Interface {
                id: i.eni.eni_id,
                address,
                groups: i.eni.security_groups,
            });
        }
    }
    Ok(rules)
}

fn compute_group(g: &ec2::SecurityGroup) -> netfilter::Group {
    let convert = |rules: &[ec2::SgRule]| rules.iter().filter_map(compute_rule).collect();
    netfilter::Group {
        ingress: convert(&g.ingress),
        egress: convert(&g.egress),
    }
}

/// One EC2 rule as the filter takes it; IPv6 peers have nothing to match here (task
/// interfaces are IPv4 only).
fn compute_rule(r: &ec2::SgRule) -> Option<netfilter::Rule> {
    let port = |p: Option<i32>| p.and_then(|p| u16::try_from(p).ok());
    let icmp = |p: Option<i32>| p.and_then(|p| u8::try_from(p).ok());
    let protocol = match r.protocol.as_str() {
        "-1" => netfilter::Protocol::All,
        "tcp" => netfilter::Protocol::Tcp {
            from: port(r.from_port)?,
            to: port(r.to_port)?,
        },
        "udp" => netfilter::Protocol::Udp {
            from: port(r.from_port)?,
            to: port(r.to_port)?,
        },
        "icmp" => netfilter::Protocol::Icmp {
            icmp_type: icmp(r.from_port),
            code: icmp(r.to_port),
        },
        n => netfilter::Protocol::Number(n.parse().ok()?),
    };
    let peer = match &r.peer {
        ec2::Peer::Cidr(c) => netfilter::Peer::Cidr(c.addr(), c.len()),
        ec2::Peer::Cidr6(_) => return None,
        ec2::Peer::Group { group_id, .. } => netfilter::Peer::Group(group_id.clone()),
    };
    Some(netfilter::Rule { protocol, peer })
}
