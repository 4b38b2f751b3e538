//! `awslogs`: containers whose log configuration is `awslogs` run with Docker's json-file
//! driver (see [`super::spec`]); a shipper per container follows Docker's log API and
//! sends the lines to the control plane's CloudWatch Logs API, stream
//! `<prefix>/<container>/<task id>`. The timestamp of the last line sent is saved, so a
//! restarted agent resumes where it stopped.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use model::acs;
use serde_json::{json, Value};

use super::spec::compute_task_id;
use super::{Shared, SubmitError};
use crate::api::LOGS_SERVICE;
use crate::runtime::Runtime;

/// Where a container's lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsLogs {
    /// `awslogs-group`.
    pub group: String,
    /// The stream name.
    pub stream: String,
    /// `awslogs-create-group`.
    pub create_group: bool,
}

/// The `awslogs` settings of `c`, if its log driver is `awslogs`.
pub fn compute_awslogs(
    task: &acs::Task,
    c: &acs::Container,
    container_id: &str,
) -> Option<AwsLogs> {
    let raw = c.docker_config.as_ref()?.host_config.as_ref()?;
    let host: Value = serde_json::from_str(raw).ok()?;
    let lc = host.get("LogConfig")?;
    if lc.get("Type")?.as_str()? != "awslogs" {
        return None;
    }
    let opt = |k: &str| {
        lc.get("Config")
            .and_then(|c| c.get(k))
            .and_then(Value::as_str)
    };
    let group = opt("awslogs-group")?.to_owned();
    let stream = match opt("awslogs-stream-prefix") {
        Some(p) if !p.is_empty() => format!("{p}/{}/{}", c.name, compute_task_id(&task.arn)),
        _ => container_id.to_owned(),
    };
    Some(AwsLogs {
        group,
        stream,
        create_group: opt("awslogs-create-group") == Some("true"),
    })
}

/// Where log events go (the Logs API in the agent).
#[async_trait]
pub trait LogSink: Send + Sync + 'static {
    /// Creates a group (an existing one is fine).
    async fn create_group(&self, group: &str) -> Result<(), SubmitError>;
    /// Creates a stream (an existing one is fine).
    async fn create_stream(&self, group: &str, stream: &str) -> Result<(), SubmitError>;
    /// Sends events `(epoch ms, message)`, in order.
    async fn put(
        &self,
        group: &str,
        stream: &str,
        events: &[(i64, String)],
    ) -> Result<(), SubmitError>;

    /// The same sink signing with `credentials` (a task's execution role), when it signs
    /// at all.
    fn with_role(&self, _credentials: crate::Credentials) -> Option<Arc<dyn LogSink>> {
        None
    }
}

/// A sink for a task with an execution role: each call signs with the role's current
/// credentials (they are refreshed while the task runs), or the agent's own before any
/// arrived (after a restart, until the channel is back).
struct ExecutionRoleSink {
    base: Arc<dyn LogSink>,
    store: Arc<crate::task_credentials::TaskCredentials>,
    task_arn: String,
}

impl ExecutionRoleSink {
    fn current(&self) -> Arc<dyn LogSink> {
        self.store
            .get(&self.task_arn, acs::RoleType::TaskExecution)
            .and_then(|c| self.base.with_role(crate::task_credentials::to_signing(&c)))
            .unwrap_or_else(|| self.base.clone())
    }
}

#[async_trait]
impl LogSink for ExecutionRoleSink {
    async fn create_group(&self, group: &str) -> Result<(), SubmitError> {
        self.current().create_group(group).await
    }

    async fn create_stream(&self, group: &str, stream: &str) -> Result<(), SubmitError> {
        self.current().create_stream(group, stream).await
    }

    async fn put(
        &self,
        group: &str,
        stream: &str,
        events: &[(i64, String)],
    ) -> Result<(), SubmitError> {
        self.current().put(group, stream, events).await
    }
}

fn exists_ok(r: Result<Value, crate::ApiError>) -> Result<(), SubmitError> {
    match r {
        Ok(_) => Ok(()),
        Err(e)
            if e.aws_type()
                .is_some_and(|t| t.contains("ResourceAlreadyExists")) =>
        {
            Ok(())
        }
        Err(e) => Err(SubmitError {
            message: e.to_string(),
            transient: e.is_transient(),
        }),
    }
}

#[async_trait]
impl LogSink for crate::ApiClient {
    async fn create_group(&self, group: &str) -> Result<(), SubmitError> {
        exists_ok(
            self.call_service(
                &LOGS_SERVICE,
                "CreateLogGroup",
                &json!({"logGroupName": group}),
            )
            .await,
        )
    }

    async fn create_stream(&self, group: &str, stream: &str) -> Result<(), SubmitError> {
        let req = json!({"logGroupName": group, "logStreamName": stream});
        exists_ok(
            self.call_service(&LOGS_SERVICE, "CreateLogStream", &req)
                .await,
        )
    }

    async fn put(
        &self,
        group: &str,
        stream: &str,
        events: &[(i64, String)],
    ) -> Result<(), SubmitError> {
        let events: Vec<Value> = events
            .iter()
            .map(|(t, m)| json!({"timestamp": t, "message": m}))
            .collect();
        let req = json!({"logGroupName": group, "logStreamName": stream, "logEvents": events});
        exists_ok(self.call_service(&LOGS_SERVICE, "PutLogEvents", &req).await)
    }

    fn with_role(&self, credentials: crate::Credentials) -> Option<Arc<dyn LogSink>> {
        Some(Arc::new(self.with_credentials(credentials)))
    }
}

async fn with_retries<F, Fut>(mut f: F) -> Result<(), SubmitError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), SubmitError>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if e.transient && attempt < 30 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

/// Ships one container's lines until its log stream ends (the container exited).
pub(crate) fn spawn_shipper<R: Runtime>(
    shared: Arc<Shared<R>>,
    sink: Arc<dyn LogSink>,
    task_arn: String,
    container: String,
    id: String,
    cfg: AwsLogs,
) {
    tokio::spawn(async move {
        let (g, s) = (cfg.group.as_str(), cfg.stream.as_str());
        let setup = async {
            if cfg.create_group {
                with_retries(|| sink.create_group(g)).await?;
            }
            with_retries(|| sink.create_stream(g, s)).await
        };
        if let Err(e) = setup.await {
            tracing::warn!(task = %task_arn, %container, error = %e.message, "Cannot ship logs: the log stream could not be created.");
            return;
        }
        let mut cursor = shared
            .state
            .snapshot()
            .tasks
            .get(&task_arn)
            .and_then(|r| r.log_cursors.get(&container).copied())
            .unwrap_or(0);
        let since = i64::try_from(cursor / 1_000_000_000).unwrap_or(0);
        let mut lines = shared.runtime.follow_logs(&id, since);
        let mut open = true;
        while open {
            let mut batch: Vec<(i64, String)> = Vec::new();
            let mut last = cursor;
            let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
            while batch.len() < 500 {
                match tokio::time::timeout_at(deadline, lines.recv()).await {
                    Ok(Some(Ok(l))) if l.timestamp_ns > cursor => {
                        last = last.max(l.timestamp_ns);
                        let ms = i64::try_from(l.timestamp_ns / 1_000_000).unwrap_or(0);
                        batch.push((ms, l.message));
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(e))) => {
                        tracing::debug!(error = %e, "The log stream ended on an error.");
                        open = false;
                        break;
                    }
                    Ok(None) => {
                        open = false;
                        break;
                    }
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = with_retries(|| sink.put(g, s, &batch)).await {
                tracing::warn!(task = %task_arn, %container, error = %e.message, "Log events dropped.");
            }
            cursor = last;
            let (arn, name) = (task_arn.clone(), container.clone());
            // A cursor lost in a crash only re-ships a few lines: not waited for.
            shared.state.update(|doc| {
                if let Some(r) = doc.tasks.get_mut(&arn) {
                    r.log_cursors.insert(name, cursor);
                }
            });
        }
    });
}

/// Starts a shipper for member `c` of `task` when it logs to `awslogs` and a sink exists.
pub(crate) fn start_if_awslogs<R: Runtime>(
    shared: &Arc<Shared<R>>,
    task: &acs::Task,
    c: &acs::Container,
    id: &str,
) {
    let Some(mut sink) = shared.logs.clone() else {
        return;
    };
    if task.execution_role_credentials.is_some() {
        sink = Arc::new(ExecutionRoleSink {
            base: sink,
            store: shared.credentials.clone(),
            task_arn: task.arn.clone(),
        });
    }
    if let Some(cfg) = compute_awslogs(task, c, id) {
        spawn_shipper(
            shared.clone(),
            sink,
            task.arn.clone(),
            c.name.clone(),
            id.to_owned(),
            cfg,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_credentials::TaskCredentials;
    use std::sync::Mutex;

    /// Records which key signed each call ("agent" for the agent's own).
    struct Recorder {
        key: String,
        calls: Arc<Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl LogSink for Recorder {
        async fn create_group(&self, _: &str) -> Result<(), SubmitError> {
            self.calls.lock().expect("lock").push(self.key.clone());
            Ok(())
        }
        async fn create_stream(&self, _: &str, _: &str) -> Result<(), SubmitError> {
            self.calls.lock().expect("lock").push(self.key.clone());
            Ok(())
        }
        async fn put(&self, _: &str, _: &str, _: &[(i64, String)]) -> Result<(), SubmitError> {
            self.calls.lock().expect("lock").push(self.key.clone());
            Ok(())
        }
        fn with_role(&self, credentials: crate::Credentials) -> Option<Arc<dyn LogSink>> {
            Some(Arc::new(Recorder {
                key: credentials.access_key_id().to_owned(),
                calls: self.calls.clone(),
            }))
        }
    }

    #[tokio::test]
    async fn log_writes_sign_with_the_current_execution_role_credentials() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::new(TaskCredentials::default());
        let sink = ExecutionRoleSink {
            base: Arc::new(Recorder {
                key: "agent".into(),
                calls: calls.clone(),
            }),
            store: store.clone(),
            task_arn: "t1".into(),
        };
        // Before any credentials arrived (a restarted agent): its own.
        sink.create_stream("g", "s").await.expect("ok");
        let creds = |key: &str| acs::RoleCredentials {
            credentials_id: "ex".into(),
            access_key_id: key.into(),
            secret_access_key: "s".into(),
            session_token: "t".into(),
            expiration: "2099-01-01T00:00:00Z".into(),
            role_arn: "arn:aws:iam::1:role/exec".into(),
        };
        store.put("t1", acs::RoleType::TaskExecution, creds("ASIAFIRST"));
        sink.put("g", "s", &[(1, "line".into())]).await.expect("ok");
        // A refresh is picked up by the next write.
        store.put("t1", acs::RoleType::TaskExecution, creds("ASIASECOND"));
        sink.put("g", "s", &[(2, "line".into())]).await.expect("ok");
        assert_eq!(
            *calls.lock().expect("lock"),
            vec!["agent", "ASIAFIRST", "ASIASECOND"]
        );
    }
}
