//! Regions as real scopes: one set of regional services (ECS, CloudWatch Logs and metrics, ELBv2, the
//! registry's ECR API) per (account, region), picked by the region of each request's
//! SigV4 credential scope. IAM and STS serve the whole account, every region of it.
//!
//! The server's default region (`--region`) is built at start-up and keeps its state
//! unprefixed in the store, so data directories from before regions keep working. Any
//! other region lives under `regions/<region>/` in the same store ([`store::Prefixed`]),
//! and its log events (`logs.db`), metrics (`metrics.db`), its vulnerability database
//! (`scan.db`), blobs and Fargate agents' state under
//! `<data dir>/regions/<region>/` (the default region's are directly in the data dir). A
//! region is built on the first authenticated request signed for it, which also records the
//! marker key `stevedore/regions/<region>` in the default view; at start-up every marked
//! region is built again, so its services keep being reconciled with no request.
//!
//! Lookups on the request path are a string compare (the default region) or a read lock
//! on a small map.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use model::ecs::arn::ArnScope;
use store::Store;
use telemetry::{supervise_task, CancellationToken, LoopName};
use wire::{AwsError, Dispatch, Keys};

/// Where the markers of the regions that hold state live (in the default region's view).
pub const MARKER_PREFIX: &str = "stevedore/regions/";
/// Where a non-default region's keys live in the store.
const STORE_PREFIX: &str = "regions/";

pub use model::region::valid as valid_region;

/// The answer to a request signed for a malformed region, as AWS words it.
pub fn invalid_region(query: bool) -> AwsError {
    let (code, status) = if query {
        ("SignatureDoesNotMatch", 403)
    } else {
        ("InvalidSignatureException", 400)
    };
    AwsError::client(code, "Credential should be scoped to a valid region.").with_status(status)
}

/// One region's services and the dispatch that serves them (with the global ones).
pub struct Regional {
    /// The region and account its ARNs name.
    pub scope: ArnScope,
    /// ECS, over the region's view of the store.
    pub ecs: ecs::Ecs,
    /// CloudWatch Logs.
    pub logs: logs::Logs,
    /// CloudWatch metrics.
    pub cloudwatch: cloudwatch::CloudWatch,
    /// ELBv2 (control side).
    pub elb: elbv2::Elbv2,
    /// EC2 Auto Scaling, and the EC2 launch templates its groups launch from.
    pub autoscaling: autoscaling::AutoScaling,
    /// Application Auto Scaling.
    pub appscaling: appscaling::AppScaling,
    /// EC2 networking (VPCs, subnets, security groups).
    pub ec2: ec2::Ec2,
    /// The registry (ECR API and `/v2/`), with the region's own blobs and token key.
    pub registry: Option<registry::Registry>,
    /// The registry's `/v2/` routes, built once.
    pub registry_routes: Option<axum::Router>,
    /// The region's services and the global ones (IAM, STS), as one API dispatch.
    pub dispatch: Dispatch,
    fargate: Option<Arc<crate::fargate::Provisioner>>,
}

/// What builds a region's services beyond the store, scope and event store: the global
/// services and the server's options. Without it (tests) regions are plain API instances.
pub struct Kit {
    /// How each region's registry is built (none: no registry).
    pub registry: Option<RegistryKit>,
    /// The default region's hidden Fargate capacity; other regions get theirs from it.
    pub fargate: Option<Arc<crate::fargate::Provisioner>>,
    /// Task roles' credentials, minted by the global IAM.
    pub role_sessions: Option<Arc<dyn ecs::channel::RoleSessions>>,
    /// `--agent-disconnect-timeout`, in seconds.
    pub disconnect_timeout: f64,
    /// `--time-scale`: how many times faster than AWS alarm periods run.
    pub time_scale: f64,
    /// How long finished ECS records (STOPPED tasks, INACTIVE services, RunTask tokens)
    /// stay before they leave the store (`--stopped-task-retention`).
    pub retention: ecs::Retention,
    /// Whether this process serves the ELBv2 listeners (not `--no-lb`).
    pub serve_lb: bool,
    /// The period of the AWS/ApplicationELB metrics (`--lb-metrics-interval`).
    pub lb_metrics_interval: std::time::Duration,
    /// Stops every region's background loops.
    pub shutdown: CancellationToken,
    /// What Auto Scaling group instances run on (`None`: records only).
    pub instances: Option<Arc<dyn autoscaling::InstanceProvider>>,
    /// Whether this replica runs the controllers now (always with SQLite).
    pub leadership: store::Leadership,
}

/// How a region's registry is built.
pub struct RegistryKit {
    /// `host:port` of the registry (the same for every region).
    pub host: String,
    /// `http` or `https`, as clients reach the port.
    pub scheme: String,
    /// Who registry tokens act as (IAM, global).
    pub identity: Arc<dyn registry::IdentityResolver>,
    /// Every account's registries by (account, region): each registry finds its peers
    /// (the other accounts' in its region) here, and is listed here once built.
    pub book: RegistryBook,
    /// Where replication copies to: any account's registry in any region of this server.
    pub replicas: Option<registry::Replicas>,
}

/// The registries of every account and region of this server, by (account, region);
/// weak, since each registry holds a finder over the book.
pub type RegistryBook = Arc<RwLock<HashMap<(String, String), registry::WeakRegistry>>>;

/// Every region this server serves, built once each.
pub struct Regions {
    factory: Factory,
    default: Arc<Regional>,
    others: RwLock<HashMap<String, Arc<Regional>>>,
    /// One region is built at a time, so two first requests build it once.
    building: tokio::sync::Mutex<()>,
}

/// What every region is built from.
struct Factory {
    root: Arc<dyn Store>,
    /// The server's data directory; other regions' files live under `regions/<region>/`.
    data_dir: PathBuf,
    account_id: String,
    endpoint: String,
    keys: Keys,
    iam: Option<iam::Iam>,
    kit: Option<Kit>,
    /// The background loops of every region, drained at shutdown.
    loops: Mutex<tokio::task::JoinSet<()>>,
}

impl Regions {
    /// The regions of `root` (with their files in `data_dir`), with the default one
    /// (`scope`'s) built and started now: its log events that an older server kept in
    /// the keyspace are moved to its `logs.db` first, so no read misses them. `keys` and
    /// `iam` are global; `kit` (absent in tests) starts each region's background work.
    pub async fn new(
        (root, data_dir): (Arc<dyn Store>, PathBuf),
        scope: &ArnScope,
        endpoint: String,
        (keys, iam): (Keys, Option<iam::Iam>),
        kit: Option<Kit>,
    ) -> anyhow::Result<Self> {
        let factory = Factory {
            account_id: scope.account_id.clone(),
            root: root.clone(),
            data_dir,
            endpoint,
            keys,
            iam,
            kit,
            loops: Mutex::new(tokio::task::JoinSet::new()),
        };
        let default = factory.build(&scope.region, root, true).await?;
        Ok(Self {
            factory,
            default,
            others: RwLock::default(),
            building: tokio::sync::Mutex::new(()),
        })
    }

    /// The default region (`--region`).
    pub fn default_region(&self) -> &Arc<Regional> {
        &self.default
    }

    /// The region `name` if it is built already.
    pub fn get(&self, name: &str) -> Option<Arc<Regional>> {
        if name == self.default.scope.region {
            return Some(self.default.clone());
        }
        self.others
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// The region `name`, built (and marked in the store) when this is its first use.
    /// Only call this for an authenticated request: every region costs background loops.
    pub async fn get_or_build(&self, name: &str) -> anyhow::Result<Arc<Regional>> {
        if let Some(r) = self.get(name) {
            return Ok(r);
        }
        anyhow::ensure!(valid_region(name), "'{name}' is not a region name");
        let _building = self.building.lock().await;
        if let Some(r) = self.get(name) {
            return Ok(r);
        }
        let marker = format!("{MARKER_PREFIX}{name}");
        let root = &self.factory.root;
        if root.get(&marker).await?.is_none() {
            root.txn(store::Txn::new().put(marker, bytes::Bytes::new()))
                .await
                .context("recording the region")?;
        }
        let view: Arc<dyn Store> = Arc::new(store::Prefixed::new(
            root.clone(),
            format!("{STORE_PREFIX}{name}/"),
        ));
        let built = self.factory.build(name, view, false).await?;
        self.others
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), built.clone());
        tracing::info!(region = name, "Region in service.");
        Ok(built)
    }

    /// Builds again every region that holds state (a marker), so that their services
    /// keep running after a restart.
    pub async fn resume(&self) -> anyhow::Result<()> {
        let marked = self
            .factory
            .root
            .range(MARKER_PREFIX, None, usize::MAX)
            .await?;
        for kv in marked.items {
            let name = kv.key.trim_start_matches(MARKER_PREFIX);
            if let Err(error) = self.get_or_build(name).await {
                tracing::warn!(region = name, %error, "Could not bring a region back.");
            }
        }
        Ok(())
    }

    /// Every region built so far, the default first.
    pub fn all(&self) -> Vec<Arc<Regional>> {
        let mut all = vec![self.default.clone()];
        all.extend(
            self.others
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .values()
                .cloned(),
        );
        all
    }

    /// Stops every region's Fargate agents and waits for every region's loops.
    pub async fn stop(&self, within: std::time::Duration) -> usize {
        for region in self.all() {
            if let Some(fargate) = &region.fargate {
                fargate.stop(within).await;
            }
        }
        let mut loops = std::mem::take(
            &mut *self
                .factory
                .loops
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let stopped =
            tokio::time::timeout(within, async { while loops.join_next().await.is_some() {} })
                .await;
        if stopped.is_ok() {
            0
        } else {
            loops.len()
        }
    }
}

impl Factory {
    async fn build(
        &self,
        region: &str,
        store: Arc<dyn Store>,
        default: bool,
    ) -> anyhow::Result<Arc<Regional>> {
        let scope = ArnScope {
            region: region.to_owned(),
            account_id: self.account_id.clone(),
        };
        let region_dir = if default {
            self.data_dir.clone()
        } else {
            self.data_dir.join("regions").join(region)
        };
        // Log events live beside the keyspace, read on demand, so memory does not grow
        // with logs; opening the database blocks.
        let (dir, fresh) = (region_dir.clone(), !default);
        let events = tokio::task::spawn_blocking(move || {
            // The default region's directory is the data dir, made by the server.
            if fresh {
                agent::modes::private_dir(&dir)?;
            }
            let events =
                logs::SqliteEventStore::open(dir.join("logs.db")).map_err(anyhow::Error::from)?;
            let metrics = cloudwatch::MetricStore::open(dir.join("metrics.db"))
                .context("opening the metric store")?;
            Ok::<_, anyhow::Error>((events, metrics))
        })
        .await
        .context("opening the log event and metric stores")?
        .with_context(|| format!("opening the log event and metric stores of {region}"))?;
        let (events, metrics) = events;
        // Alarms are configuration: they live in the region's state store.
        // Alarm actions naming scaling policies go to Application Auto Scaling's loop.
        let (triggers, trigger_rx) = appscaling::trigger_channel();
        let cloudwatch = cloudwatch::CloudWatch::new(Arc::new(metrics), scope.clone())
            .with_alarms(store.clone())
            .with_actions(Arc::new(crate::appscaling_wiring::ScalingActions(triggers)))
            .with_time_scale(self.kit.as_ref().map_or(1.0, |k| k.time_scale));
        let elb = elbv2::Elbv2::new(store.clone(), scope.clone(), None);
        let mut autoscaling = autoscaling::AutoScaling::new(store.clone(), scope.clone());
        if let Some(provider) = self.kit.as_ref().and_then(|k| k.instances.clone()) {
            autoscaling = autoscaling.with_provider(provider);
        }
        let mut ecs = ecs::Ecs::new(store.clone(), scope.clone(), self.endpoint.clone())
            .with_target_groups(Arc::new(crate::lb_wiring::EcsTargets(elb.clone())))
            .with_auto_scaling_groups(Arc::new(crate::capacity_wiring::EcsGroups(
                autoscaling.clone(),
            )));
        // Before any clone of `ecs` is handed out: they all check awsvpc launches
        // against EC2. EC2 actions it does not serve (launch templates) go to Auto Scaling.
        let ec2 = crate::vpc_wiring::wire_region(&mut ecs, &elb, store.clone(), &scope)
            .with_fallback(Arc::new(crate::ec2_launch_templates::LaunchTemplates(
                autoscaling.clone(),
            )));
        elb.set_security_groups(Arc::new(crate::vpc_wiring::Elbv2Groups(ec2.clone())));
        let logs = logs::Logs::new(store.clone(), Arc::new(events), scope.clone())
            .with_metric_sink(Arc::new(crate::logs_metrics_wiring::CloudWatchLogMetrics(
                cloudwatch.clone(),
            )));
        if default {
            // A data dir from before logs.db holds the default region's log events in the
            // keyspace (other regions came later and never did): they move once, before
            // the API answers and before the retention sweep starts.
            logs.migrate_keyspace_events()
                .await
                .context("moving log events from the state store to logs.db")?;
        }
        let mut registry = None;
        let mut fargate = None;
        if let Some(kit) = &self.kit {
            if let Some(reg) = &kit.registry {
                let blobs = blobstore::FsBlobStore::open(region_dir.join("blobs"))
                    .context("opening the registry's blob storage")?;
                let mut config = registry::RegistryConfig::new(
                    reg.host.clone(),
                    region.to_owned(),
                    self.account_id.clone(),
                );
                // The token realm Docker is sent to must use the scheme it reached us with.
                config.scheme = reg.scheme.clone();
                // The vulnerability database is a file beside logs.db (opening blocks).
                let path = region_dir.join("scan.db");
                let vulnerabilities =
                    tokio::task::spawn_blocking(move || scan::Database::open(&path))
                        .await
                        .context("opening the vulnerability database")?
                        .with_context(|| {
                            format!("opening the vulnerability database of {region}")
                        })?;
                let book = reg.book.clone();
                let here = region.to_owned();
                let built = registry::Registry::new(store.clone(), Arc::new(blobs), config)
                    .with_identity(reg.identity.clone())
                    .with_scan_database(Arc::new(vulnerabilities))
                    .with_peers(Arc::new(move |account: &str| {
                        let book = book
                            .read()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        book.get(&(account.to_owned(), here.clone()))?.upgrade()
                    }));
                let built = match &reg.replicas {
                    Some(replicas) => built.with_replicas(replicas.clone()),
                    None => built,
                };
                reg.book
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(
                        (self.account_id.clone(), region.to_owned()),
                        built.downgrade(),
                    );
                registry = Some(built);
            }
            if let Some(base) = &kit.fargate {
                let provisioner = if default {
                    base.clone()
                } else {
                    base.for_region(region, region_dir.join("fargate"))
                };
                ecs = ecs.with_fargate(provisioner.clone());
                fargate = Some(provisioner);
            }
        }
        // Managed draining: Auto Scaling asks ECS before a group instance goes.
        let autoscaling =
            autoscaling.with_gate(Arc::new(crate::capacity_wiring::EcsDraining(ecs.clone())));
        let appscaling = appscaling::AppScaling::new(
            store.clone(),
            scope.clone(),
            (
                Arc::new(crate::appscaling_wiring::EcsCapacity(ecs.clone())),
                Arc::new(crate::appscaling_wiring::CloudWatchAlarms(
                    cloudwatch.clone(),
                )),
            ),
            trigger_rx,
        )
        .with_time_scale(self.kit.as_ref().map_or(1.0, |k| k.time_scale));
        let dispatch = Dispatch::new(self.keys.clone())
            .with_observer(Arc::new(crate::metrics::RequestMetrics))
            .register(ecs.clone())
            .register(logs.clone())
            .register(cloudwatch.clone())
            .register(elb.clone())
            .register(autoscaling.clone())
            .register(appscaling.clone())
            .register(ec2.clone());
        let dispatch = match &registry {
            Some(reg) => dispatch.register(reg.clone()),
            None => dispatch,
        };
        let dispatch = match &self.iam {
            Some(iam) => dispatch.register(iam.clone()).register(iam.sts()),
            None => dispatch,
        };
        let regional = Arc::new(Regional {
            scope,
            ecs,
            logs,
            cloudwatch,
            elb,
            autoscaling,
            appscaling,
            ec2,
            registry_routes: registry.as_ref().map(registry::Registry::router),
            registry,
            dispatch,
            fargate,
        });
        if let Some(kit) = &self.kit {
            self.start(&regional, kit);
        }
        Ok(regional)
    }

    /// Starts what runs in the background for one region: what every replica needs
    /// (sinks, the load balancer data plane) now, the controllers while it leads.
    fn start(&self, region: &Arc<Regional>, kit: &Kit) {
        let mut loops = self
            .loops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let shutdown = &kit.shutdown;
        // Agents' usage reports become AWS/ECS metrics in this region's CloudWatch.
        region
            .ecs
            .set_usage_sink(Arc::new(crate::usage_wiring::CloudWatchUsage(
                region.cloudwatch.clone(),
            )));
        if let Some(roles) = &kit.role_sessions {
            // Task roles: the channel mints their credentials with IAM.
            region.ecs.set_role_sessions(roles.clone());
        }
        // The load balancer data plane serves the ELBv2 listeners from this process.
        if kit.serve_lb {
            crate::server::spawn_data_plane(
                &mut loops,
                (&region.elb, &region.cloudwatch),
                kit.lb_metrics_interval,
                shutdown,
            );
        }
        region.ecs.set_disconnect_timeout(kit.disconnect_timeout);
        // Every replica shows it is alive while it holds agent sessions (ecs::presence).
        let (ecs, stop) = (region.ecs.clone(), shutdown.clone());
        loops.spawn(async move { ecs.run_presence(stop).await });
        let (region, retention, time_scale) = (Arc::clone(region), kit.retention, kit.time_scale);
        crate::leader_wiring::while_leader(
            &mut loops,
            kit.leadership.clone(),
            shutdown.clone(),
            move |loops, stop| start_controllers(&region, (retention, time_scale), loops, stop),
        );
    }
}

/// Spawns one region's controllers, which stop with `shutdown` (the end of this
/// replica's term as leader, or of the process).
fn start_controllers(
    region: &Regional,
    (retention, time_scale): (ecs::Retention, f64),
    loops: &mut crate::leader_wiring::TermLoops,
    shutdown: &CancellationToken,
) {
    if let Some(registry) = &region.registry {
        loops.spawn(registry.clone().run_background(shutdown.clone()));
    }
    if let Some(provisioner) = &region.fargate {
        let (ecs, provisioner) = (region.ecs.clone(), provisioner.clone());
        loops.spawn(supervise_task(
            LoopName::FargateResume,
            shutdown.clone(),
            move || crate::fargate::resume(ecs.clone(), provisioner.clone()),
        ));
    }
    // CloudWatch Logs retention: the sweep only reclaims space (reads already hide
    // expired events), so stopping it mid-sweep loses nothing.
    let (logs, stop) = (region.logs.clone(), shutdown.clone());
    loops.spawn(async move { logs.run_retention(stop).await });
    // CloudWatch metrics retention: reads already ignore expired buckets, so stopping
    // mid-sweep loses nothing.
    let (metrics, stop) = (region.cloudwatch.clone(), shutdown.clone());
    loops.spawn(async move { metrics.run_retention(stop).await });
    // CloudWatch alarms: each round reads the alarms afresh and commits transitions
    // with compare-and-swap, so stopping mid-round loses nothing.
    let (alarms, stop) = (region.cloudwatch.clone(), shutdown.clone());
    loops.spawn(async move { alarms.run_alarms(stop).await });
    // Application Auto Scaling: policies run when their alarms fire, scheduled actions
    // when due; each change is a compare-and-swap write, so stopping loses nothing.
    let (scaling, stop) = (region.appscaling.clone(), shutdown.clone());
    loops.spawn(async move { scaling.run(stop).await });
    // ELBv2: ends target draining on time (a committed write the data plane hears of).
    let (elb, stop) = (region.elb.clone(), shutdown.clone());
    loops.spawn(async move { elb.run_sweeper(stop).await });
    // Auto Scaling's group controller is level-triggered: a restart observes again.
    let (groups, stop) = (region.autoscaling.clone(), shutdown.clone());
    loops.spawn(async move { groups.run_groups(stop).await });
    // Managed scaling of capacity providers: each round reads everything afresh.
    let (ecs, groups, metrics, stop) = (
        region.ecs.clone(),
        region.autoscaling.clone(),
        region.cloudwatch.clone(),
        shutdown.clone(),
    );
    loops.spawn(async move {
        crate::capacity_wiring::run_managed_scaling(ecs, groups, metrics, time_scale, stop).await;
    });
    // The service controller is level-triggered: stopping it mid-round loses nothing.
    let (ecs, stop) = (region.ecs.clone(), shutdown.clone());
    loops.spawn(async move { ecs.run_services(stop).await });
    // Agents whose replica is gone show disconnected on every replica.
    let (ecs, stop) = (region.ecs.clone(), shutdown.clone());
    loops.spawn(async move { ecs.run_presence_sweep(stop).await });
    // Finished records leave the store after their window, so state stops growing.
    let (ecs, stop) = (region.ecs.clone(), shutdown.clone());
    loops.spawn(async move { ecs.run_retention(retention, stop).await });
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn regions() -> (tempfile::TempDir, Arc<dyn Store>, Regions) {
        let dir = tempfile::tempdir().expect("temp dir");
        let root: Arc<dyn Store> = Arc::new(
            store::SqliteStore::open(store::SqliteConfig::new(dir.path().join("s.db")))
                .expect("open"),
        );
        let regions = open_regions(&root, dir.path()).await;
        (dir, root, regions)
    }

    /// The server's regions over `root`, with files under `dir` (us-east-1 the default).
    async fn open_regions(root: &Arc<dyn Store>, dir: &std::path::Path) -> Regions {
        let scope = ArnScope {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
        };
        let keys = iam::admin_only_keys("000000000000", "AK".into(), "SK".into());
        Regions::new(
            (root.clone(), dir.to_owned()),
            &scope,
            "http://x/".into(),
            (keys, None),
            None,
        )
        .await
        .expect("regions")
    }

    #[tokio::test]
    async fn a_region_is_built_once_marked_and_brought_back() {
        let (dir, root, regions) = regions().await;
        assert!(regions.get("us-east-2").is_none());
        let east2 = regions.get_or_build("us-east-2").await.expect("built");
        assert_eq!(east2.scope.region, "us-east-2");
        // Its log events have their own database; the default region's is the data dir's.
        assert!(dir.path().join("regions/us-east-2/logs.db").is_file());
        assert!(dir.path().join("regions/us-east-2/metrics.db").is_file());
        assert!(dir.path().join("logs.db").is_file());
        let again = regions.get_or_build("us-east-2").await.expect("built");
        assert!(Arc::ptr_eq(&east2, &again));
        assert!(regions.get_or_build("bad").await.is_err());
        assert_eq!(regions.all().len(), 2);
        assert!(root
            .get("stevedore/regions/us-east-2")
            .await
            .expect("get")
            .is_some());
        // A server starting on the same store brings the marked region back.
        let restarted = open_regions(&root, dir.path()).await;
        assert!(restarted.get("us-east-2").is_none());
        restarted.resume().await.expect("resume");
        assert!(restarted.get("us-east-2").is_some());
    }
}
