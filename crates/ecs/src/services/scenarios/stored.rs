//! Observe → plan → execute through `Ecs`, against a real SQLite store: what the pure
//! scenarios cannot show (commits, retries, restarts, the order of effects).

use crate::services::targets::{Registration, TargetGroupView, TargetGroups, TargetState};
use crate::tests::call;
use crate::Ecs;
use model::ecs::arn::ArnScope;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use store::Store;
use testkit::{CommitRecorder, TempStore};

const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/1";

/// A server over a temporary store, with every commit recorded.
struct Server {
    ecs: Ecs,
    recorder: Arc<CommitRecorder>,
    temp: TempStore,
    _sessions: Vec<crate::Session>,
}

fn ecs_over(store: Arc<dyn Store>) -> Ecs {
    let scope = ArnScope {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
    };
    Ecs::new(store, scope, "http://127.0.0.1:1/".into())
}

impl Server {
    fn new() -> Server {
        let temp = TempStore::new().expect("store");
        let recorder = CommitRecorder::new(temp.store());
        Server {
            ecs: ecs_over(recorder.clone()),
            recorder,
            temp,
            _sessions: Vec::new(),
        }
    }

    async fn call(&self, op: &str, body: Value) -> Value {
        call(&self.ecs, op, body)
            .await
            .unwrap_or_else(|e| panic!("{op} failed: {e:?}"))
    }

    /// Cluster `c` with `n` connected instances and task definition `web` (revision 1).
    async fn cluster(&mut self, n: usize) {
        self.call("CreateCluster", json!({"clusterName": "c"}))
            .await;
        for _ in 0..n {
            let reg = json!({"cluster": "c", "totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 8192}]});
            let v = self.call("RegisterContainerInstance", reg).await;
            let arn = v["containerInstance"]["containerInstanceArn"]
                .as_str()
                .expect("arn")
                .to_owned();
            self.connect(&arn).await;
        }
        self.register_td().await;
    }

    async fn connect(&mut self, arn: &str) {
        let s = self.ecs.open_session("c", arn).await.expect("connected");
        self._sessions.push(s);
    }

    async fn register_td(&self) {
        let td = json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "busybox",
            "memory": 64, "portMappings": [{"containerPort": 80, "hostPort": 0}]}]});
        self.call("RegisterTaskDefinition", td).await;
    }

    async fn create_service(&self, desired: i32, extra: Value) {
        let mut body = json!({"cluster": "c", "serviceName": "web", "taskDefinition": "web",
            "desiredCount": desired});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.call("CreateService", body).await;
    }

    async fn round(&self) {
        self.ecs.reconcile_all().await.expect("round");
    }

    /// The cluster's tasks: (id, startedBy, lastStatus, desiredStatus).
    async fn tasks(&self) -> Vec<(String, String, String, String)> {
        let list = self
            .call(
                "ListTasks",
                json!({"cluster": "c", "desiredStatus": "RUNNING"}),
            )
            .await;
        let mut arns: Vec<Value> = list["taskArns"].as_array().cloned().unwrap_or_default();
        let stopped = self
            .call(
                "ListTasks",
                json!({"cluster": "c", "desiredStatus": "STOPPED"}),
            )
            .await;
        arns.extend(stopped["taskArns"].as_array().cloned().unwrap_or_default());
        if arns.is_empty() {
            return Vec::new();
        }
        let d = self
            .call("DescribeTasks", json!({"cluster": "c", "tasks": arns}))
            .await;
        let mut out: Vec<(String, String, String, String)> = d["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| {
                let s = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
                let arn = s("taskArn");
                let id = arn.rsplit('/').next().unwrap_or_default().to_owned();
                (id, s("startedBy"), s("lastStatus"), s("desiredStatus"))
            })
            .collect();
        out.sort();
        out
    }

    async fn live(&self) -> Vec<(String, String, String, String)> {
        self.tasks()
            .await
            .into_iter()
            .filter(|t| t.3 == "RUNNING")
            .collect()
    }

    /// The agent reports a task RUNNING, its container bound to `host_port`.
    async fn report_running(&self, id: &str, host_port: u16) {
        let body = json!({"cluster": "c", "task": id, "status": "RUNNING",
            "containers": [{"containerName": "app", "status": "RUNNING",
                "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": host_port, "protocol": "tcp"}]}]});
        self.call("SubmitTaskStateChange", body).await;
    }

    async fn report_stopped(&self, id: &str) {
        let body = json!({"cluster": "c", "task": id, "status": "STOPPED"});
        self.call("SubmitTaskStateChange", body).await;
    }

    async fn service(&self) -> Value {
        let d = self
            .call(
                "DescribeServices",
                json!({"cluster": "c", "services": ["web"]}),
            )
            .await;
        d["services"][0].clone()
    }

    async fn events(&self) -> Vec<String> {
        let s = self.service().await;
        let mut out: Vec<String> = s["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str().map(str::to_owned))
            .collect();
        out.reverse();
        out
    }

    /// Reports every pending task RUNNING and every stopping task STOPPED.
    async fn agents_catch_up(&self) {
        for (n, (id, _, last, desired)) in self.tasks().await.into_iter().enumerate() {
            if desired == "STOPPED" && last != "STOPPED" {
                self.report_stopped(&id).await;
            } else if desired == "RUNNING" && last != "RUNNING" {
                self.report_running(&id, 32768 + u16::try_from(n).expect("few"))
                    .await;
            }
        }
    }
}

#[tokio::test]
async fn a_round_from_the_store_starts_the_desired_tasks_and_the_next_repeats_nothing() {
    let mut s = Server::new();
    s.cluster(2).await;
    s.create_service(3, json!({})).await;
    s.round().await;
    let first = s.live().await;
    assert_eq!(first.len(), 3);
    s.round().await;
    assert_eq!(s.live().await, first, "a second round starts nothing more");
    let events = s.events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.contains("has started 3 tasks"))
            .count(),
        1,
        "{events:?}"
    );
}

#[tokio::test]
async fn a_restart_mid_deployment_repeats_nothing_and_loses_nothing() {
    let mut s = Server::new();
    s.cluster(2).await;
    s.create_service(2, json!({})).await;
    s.round().await;
    s.agents_catch_up().await;
    s.round().await;
    let old: Vec<String> = s.live().await.into_iter().map(|t| t.0).collect();
    // A new revision, and one round of its deployment: two new tasks pending.
    s.register_td().await;
    s.call(
        "UpdateService",
        json!({"cluster": "c", "service": "web", "taskDefinition": "web:2"}),
    )
    .await;
    s.round().await;
    let before = s.tasks().await;
    assert_eq!(before.iter().filter(|t| t.3 == "RUNNING").count(), 4);
    // Restart: the controller's state is gone; only the store remains.
    let instances = s
        .call("ListContainerInstances", json!({"cluster": "c"}))
        .await;
    s._sessions.clear();
    let store = s.temp.reopen().await.expect("reopened");
    s.recorder = CommitRecorder::new(store);
    s.ecs = ecs_over(s.recorder.clone());
    for arn in instances["containerInstanceArns"].as_array().expect("arns") {
        s.connect(arn.as_str().expect("arn")).await;
    }
    s.round().await;
    assert_eq!(
        s.tasks().await,
        before,
        "the first round after a restart repeats nothing"
    );
    // The deployment then finishes from where it was.
    for _ in 0..4 {
        s.agents_catch_up().await;
        s.round().await;
    }
    let live = s.live().await;
    assert_eq!(live.len(), 2);
    assert!(
        live.iter().all(|t| !old.contains(&t.0)),
        "only new tasks remain"
    );
    let svc = s.service().await;
    assert_eq!(svc["deployments"].as_array().map(Vec::len), Some(1));
    assert_eq!(svc["deployments"][0]["rolloutState"], "COMPLETED");
    assert_eq!(svc["runningCount"], 2);
}

#[tokio::test]
async fn a_task_commit_rejected_once_is_retried_without_duplicate_tasks() {
    let mut s = Server::new();
    s.cluster(2).await;
    s.create_service(3, json!({})).await;
    s.recorder.reject_once_writing("ecs/task/");
    s.round().await;
    assert_eq!(s.recorder.rejections(), 1);
    assert_eq!(s.live().await.len(), 3);
    s.round().await;
    assert_eq!(s.live().await.len(), 3);
}

#[tokio::test]
async fn a_service_record_commit_rejected_once_is_written_once() {
    let mut s = Server::new();
    s.cluster(1).await;
    s.create_service(2, json!({})).await;
    s.recorder.reject_once_writing("ecs/service/");
    s.round().await;
    assert_eq!(s.recorder.rejections(), 1);
    let events = s.events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.contains("has started 2 tasks"))
            .count(),
        1,
        "{events:?}"
    );
    // Counts come from the tasks themselves, so the next round shows them.
    s.round().await;
    assert_eq!(s.service().await["pendingCount"], 2);
}

#[tokio::test]
async fn a_cluster_without_room_records_a_placement_failure_event() {
    let mut s = Server::new();
    s.cluster(0).await;
    s.create_service(1, json!({})).await;
    s.round().await;
    assert!(s.live().await.is_empty());
    let events = s.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.contains("was unable to place a task")
                && e.contains("No Container Instances were found")),
        "{events:?}"
    );
}

/// Target groups held in memory. Each call is logged with how many of the service's
/// tasks the store shows DEACTIVATING at that moment, so a test sees the order of effects.
struct FakeGroups {
    store: Arc<dyn Store>,
    view: Mutex<TargetGroupView>,
    calls: Mutex<Vec<(String, usize)>>,
}

impl FakeGroups {
    async fn deactivating_in_store(&self) -> usize {
        let page = self
            .store
            .range("ecs/task/", None, usize::MAX)
            .await
            .expect("range");
        page.items
            .iter()
            .filter(|kv| {
                serde_json::from_slice::<Value>(&kv.value)
                    .is_ok_and(|v| v["deactivating"] == json!(true))
            })
            .count()
    }
}

#[async_trait::async_trait]
impl TargetGroups for FakeGroups {
    async fn describe(&self, arn: &str) -> Result<Option<TargetGroupView>, String> {
        Ok((arn == TG).then(|| self.view.lock().expect("lock").clone()))
    }

    async fn register(&self, _: &str, targets: &[Registration]) -> Result<(), String> {
        let n = self.deactivating_in_store().await;
        self.calls
            .lock()
            .expect("lock")
            .push(("register".into(), n));
        let mut view = self.view.lock().expect("lock");
        for t in targets {
            view.targets.push(TargetState {
                id: t.id.clone(),
                port: t.port,
                state: model::lb::TargetHealthState::parse("healthy").expect("a target state"),
                reason: None,
            });
        }
        Ok(())
    }

    async fn deregister(&self, _: &str, targets: &[(String, u16)]) -> Result<(), String> {
        let n = self.deactivating_in_store().await;
        self.calls
            .lock()
            .expect("lock")
            .push(("deregister".into(), n));
        let mut view = self.view.lock().expect("lock");
        for t in &mut view.targets {
            if targets
                .iter()
                .any(|(id, port)| *id == t.id && *port == t.port)
            {
                t.state = model::lb::TargetHealthState::parse("draining").expect("a target state");
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_task_is_marked_deactivating_before_its_targets_are_deregistered() {
    let temp = TempStore::new().expect("store");
    let recorder = CommitRecorder::new(temp.store());
    let groups = Arc::new(FakeGroups {
        store: recorder.clone(),
        view: Mutex::new(TargetGroupView {
            target_type: "instance".into(),
            targets: Vec::new(),
        }),
        calls: Mutex::default(),
    });
    let mut s = Server {
        ecs: ecs_over(recorder.clone()).with_target_groups(groups.clone()),
        recorder,
        temp,
        _sessions: Vec::new(),
    };
    s.cluster(1).await;
    let lbs = json!({"loadBalancers": [{"targetGroupArn": TG, "containerName": "app", "containerPort": 80}]});
    s.create_service(1, lbs).await;
    s.round().await;
    s.agents_catch_up().await;
    s.round().await;
    assert_eq!(
        groups.calls.lock().expect("lock").as_slice(),
        [("register".to_owned(), 0)]
    );
    // Scale in: the task leaves through its target's drain.
    s.call(
        "UpdateService",
        json!({"cluster": "c", "service": "web", "desiredCount": 0}),
    )
    .await;
    s.round().await;
    let calls = groups.calls.lock().expect("lock").clone();
    assert_eq!(
        calls.last(),
        Some(&("deregister".to_owned(), 1)),
        "{calls:?}"
    );
    let tasks = s.tasks().await;
    assert_eq!(tasks[0].2, "DEACTIVATING");
    // Drained: the next round stops it.
    groups.view.lock().expect("lock").targets.clear();
    s.round().await;
    let tasks = s.tasks().await;
    assert_eq!(tasks[0].3, "STOPPED");
    assert_ne!(tasks[0].2, "DEACTIVATING");
}
