//! The channel's task role credentials: minted into payloads, refreshed on schedule, and
//! a role that cannot be assumed stops its task.

use crate::channel::{MintedCredentials, RoleSessionError, RoleSessions};
use crate::tests::{call, fixture};
use crate::Ecs;
use model::acs::RoleType;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const TRUSTED: &str = "arn:aws:iam::000000000000:role/app";
const EXEC: &str = "arn:aws:iam::000000000000:role/exec";
const UNTRUSTED: &str = "arn:aws:iam::000000000000:role/lambda-only";

/// Mints for the two trusted roles; refuses the other as IAM does.
struct FakeSessions;

#[async_trait::async_trait]
impl RoleSessions for FakeSessions {
    async fn issue(
        &self,
        role_arn: &str,
        session_name: &str,
        duration: Duration,
    ) -> Result<MintedCredentials, RoleSessionError> {
        if role_arn == UNTRUSTED {
            return Err(RoleSessionError::CannotAssume {
                role_arn: role_arn.to_owned(),
                message: crate::channel::cannot_assume_message(role_arn),
            });
        }
        Ok(MintedCredentials {
            access_key_id: format!("ASIA{session_name}"),
            secret_access_key: "secret".into(),
            session_token: "token".into(),
            expiration: SystemTime::now() + duration,
        })
    }

    fn credentials_id(&self, task_arn: &str, role: RoleType) -> String {
        format!("{task_arn}/{role:?}")
    }
}

async fn instance(ecs: &Ecs, cluster: &str) -> String {
    call(ecs, "CreateCluster", json!({ "clusterName": cluster }))
        .await
        .expect("created");
    let reg = json!({"cluster": cluster, "totalResources": [
        {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}],
        "attributes": [{"name": "com.amazonaws.ecs.capability.task-iam-role"}]});
    let inst = call(ecs, "RegisterContainerInstance", reg)
        .await
        .expect("registered");
    inst["containerInstance"]["containerInstanceArn"]
        .as_str()
        .expect("arn")
        .to_owned()
}

async fn run(ecs: &Ecs, cluster: &str, family: &str, task_role: &str) -> String {
    let td = json!({"family": family, "taskRoleArn": task_role, "executionRoleArn": EXEC,
        "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 32}]});
    call(ecs, "RegisterTaskDefinition", td)
        .await
        .expect("registered");
    let out = call(
        ecs,
        "RunTask",
        json!({"cluster": cluster, "taskDefinition": family}),
    )
    .await
    .expect("RunTask succeeds even when the role cannot be assumed");
    out["tasks"][0]["taskArn"]
        .as_str()
        .unwrap_or_else(|| panic!("task arn in {out}"))
        .to_owned()
}

#[tokio::test]
async fn payload_tasks_carry_both_roles_credentials_and_refresh_half_way() {
    let f = fixture();
    f.ecs.set_role_sessions(Arc::new(FakeSessions));
    let arn = instance(&f.ecs, "r").await;
    let mut session = f.ecs.open_session("r", &arn).await.expect("connected");
    let task = run(&f.ecs, "r", "withroles", TRUSTED).await;
    let payload = session
        .next_payload()
        .await
        .expect("payload")
        .expect("some");
    let t = &payload.tasks[0];
    let app = t.role_credentials.as_ref().expect("task role credentials");
    assert_eq!(app.role_arn, TRUSTED);
    assert_eq!(app.credentials_id, format!("{task}/TaskApplication"));
    assert!(app.access_key_id.starts_with("ASIA"));
    assert!(app.expiration.ends_with('Z'));
    let exec = t
        .execution_role_credentials
        .as_ref()
        .expect("execution role");
    assert_eq!(exec.role_arn, EXEC);

    assert!(session.due_credentials(SystemTime::now()).await.is_empty());
    let later = SystemTime::now() + Duration::from_secs(1801);
    let mut refreshed = session.due_credentials(later).await;
    refreshed.sort_by_key(|m| format!("{:?}", m.role_type));
    assert_eq!(refreshed.len(), 2);
    assert_eq!(refreshed[0].role_type, RoleType::TaskApplication);
    assert_eq!(refreshed[0].task_arn, task);
    assert_eq!(
        refreshed[0].role_credentials.credentials_id, app.credentials_id,
        "the id containers were given stays the same"
    );
    // Rescheduled from the new issue: not due again right away.
    assert!(session.due_credentials(SystemTime::now()).await.is_empty());
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_stops_the_task_with_aws_reason() {
    let f = fixture();
    f.ecs.set_role_sessions(Arc::new(FakeSessions));
    let arn = instance(&f.ecs, "u").await;
    let mut session = f.ecs.open_session("u", &arn).await.expect("connected");
    let task = run(&f.ecs, "u", "untrusted", UNTRUSTED).await;
    // The first round stops it; the next sends it STOPPED, without credentials.
    let first = session.next_payload().await.expect("payload");
    assert!(first.is_none_or(|p| p.tasks.iter().all(|t| t.desired_status == "STOPPED")));
    let payload = session
        .next_payload()
        .await
        .expect("payload")
        .expect("the stop is sent");
    assert_eq!(payload.tasks[0].desired_status, "STOPPED");
    assert!(payload.tasks[0].role_credentials.is_none());
    let out = call(
        &f.ecs,
        "DescribeTasks",
        json!({"cluster": "u", "tasks": [task]}),
    )
    .await
    .expect("described");
    let t = &out["tasks"][0];
    assert_eq!(t["desiredStatus"], "STOPPED");
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    let reason = t["stoppedReason"].as_str().expect("reason");
    assert!(
        reason.starts_with(&format!("ECS was unable to assume the role '{UNTRUSTED}'")),
        "{reason}"
    );
    assert!(reason.len() <= 255);
}

#[tokio::test]
async fn without_a_minter_tasks_with_roles_still_run() {
    let f = fixture();
    let arn = instance(&f.ecs, "n").await;
    let mut session = f.ecs.open_session("n", &arn).await.expect("connected");
    run(&f.ecs, "n", "noroles", TRUSTED).await;
    let payload = session
        .next_payload()
        .await
        .expect("payload")
        .expect("some");
    assert_eq!(payload.tasks[0].desired_status, "RUNNING");
    assert!(payload.tasks[0].role_credentials.is_none());
}
