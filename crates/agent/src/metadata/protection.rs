//! The task scale-in protection endpoint containers reach at
//! `$ECS_AGENT_URI/task-protection/v1/state`: `GET` answers the task's protection, `PUT`
//! with `{"ProtectionEnabled": bool, "ExpiresInMinutes": n}` sets or removes it.
//!
//! As on ECS, the agent does not decide anything itself: it calls the server's
//! `UpdateTaskProtection` / `GetTaskProtection` for the task, signed with the task role's
//! credentials, so the role's policy must allow `ecs:UpdateTaskProtection` /
//! `ecs:GetTaskProtection`. A task without a role is refused. Answers carry one of
//! `protection` (the task's state), `failure` (the call's failure entry for the task) or
//! `error` (the call itself failed), with the members' Go-style capitalised names as the
//! ECS agent writes them.

use std::time::{Duration, UNIX_EPOCH};

use model::acs::RoleType;
use model::ecs::shapes::{
    Failure, GetTaskProtectionRequest, GetTaskProtectionResponse, ProtectedTask,
    UpdateTaskProtectionRequest, UpdateTaskProtectionResponse,
};
use serde::{Deserialize, Serialize};

use crate::api::{ApiClient, ApiError};
use crate::task_credentials::{to_signing, TaskCredentials};

use super::types::format_timestamp;

/// The largest request body read (the documented body is a few dozen bytes).
pub const MAX_BODY_BYTES: usize = 4096;

/// A `PUT` body.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PutState {
    /// Protect (`true`) or release (`false`) the task.
    #[serde(rename = "ProtectionEnabled")]
    pub protection_enabled: Option<bool>,
    /// Minutes protection lasts (the server checks 1–2880; default 120).
    #[serde(rename = "ExpiresInMinutes")]
    pub expires_in_minutes: Option<i32>,
}

/// What the endpoint answers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StateResponse {
    /// The task's protection.
    #[serde(rename = "protection", skip_serializing_if = "Option::is_none")]
    pub protection: Option<ProtectionBody>,
    /// The server's failure entry for the task.
    #[serde(rename = "failure", skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureBody>,
    /// Why the call could not be made or failed.
    #[serde(rename = "error", skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `protection`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProtectionBody {
    /// RFC 3339, when protection is on.
    #[serde(rename = "ExpirationDate")]
    pub expiration_date: Option<String>,
    /// Whether the task is protected.
    #[serde(rename = "ProtectionEnabled")]
    pub protection_enabled: bool,
    /// The task's ARN.
    #[serde(rename = "TaskArn")]
    pub task_arn: String,
}

/// `failure`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailureBody {
    /// The task's ARN.
    #[serde(rename = "Arn")]
    pub arn: Option<String>,
    /// The server's reason (`TASK_NOT_VALID`, `MISSING`, `DEPLOYMENT_BLOCKED`).
    #[serde(rename = "Reason")]
    pub reason: Option<String>,
    /// The server's detail.
    #[serde(rename = "Detail")]
    pub detail: Option<String>,
}

/// `error`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorBody {
    /// The task's ARN.
    #[serde(rename = "Arn")]
    pub arn: String,
    /// An AWS error code (`InvalidParameterException`, `AccessDeniedException`, …).
    #[serde(rename = "Code")]
    pub code: String,
    /// What went wrong.
    #[serde(rename = "Message")]
    pub message: String,
}

/// An answer: HTTP status and body.
pub type Answer = (u16, StateResponse);

fn error_answer(status: u16, arn: &str, code: &str, message: impl Into<String>) -> Answer {
    (
        status,
        StateResponse {
            error: Some(ErrorBody {
                arn: arn.to_owned(),
                code: code.to_owned(),
                message: message.into(),
            }),
            ..StateResponse::default()
        },
    )
}

/// Decodes a `PUT` body; the refusal is the endpoint's 400 answer (boxed: it is large
/// beside the decoded pair).
pub fn parse_put_state(arn: &str, body: &[u8]) -> Result<(bool, Option<i32>), Box<Answer>> {
    let state: PutState = serde_json::from_slice(body).map_err(|e| {
        Box::new(error_answer(
            400,
            arn,
            "InvalidParameterException",
            format!("The request body is not a valid task protection state: {e}"),
        ))
    })?;
    let Some(enabled) = state.protection_enabled else {
        return Err(Box::new(error_answer(
            400,
            arn,
            "InvalidParameterException",
            "The request body must give ProtectionEnabled (true or false).",
        )));
    };
    Ok((enabled, state.expires_in_minutes))
}

/// The answer for the server's response about the task `arn`.
pub fn compute_answer(
    arn: &str,
    protected: Option<Vec<ProtectedTask>>,
    failures: Option<Vec<Failure>>,
) -> Answer {
    if let Some(f) = failures.unwrap_or_default().into_iter().next() {
        return (
            200,
            StateResponse {
                failure: Some(FailureBody {
                    arn: f.arn,
                    reason: f.reason,
                    detail: f.detail,
                }),
                ..StateResponse::default()
            },
        );
    }
    match protected.unwrap_or_default().into_iter().next() {
        Some(p) => (
            200,
            StateResponse {
                protection: Some(ProtectionBody {
                    expiration_date: p.expiration_date.map(|secs| {
                        format_timestamp(UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0)))
                    }),
                    protection_enabled: p.protection_enabled.unwrap_or(false),
                    task_arn: p.task_arn.unwrap_or_else(|| arn.to_owned()),
                }),
                ..StateResponse::default()
            },
        ),
        None => error_answer(
            500,
            arn,
            "ServerException",
            "The server answered with neither the task's protection nor a failure.",
        ),
    }
}

/// The answer for a call that failed.
pub fn compute_error_answer(arn: &str, e: &ApiError) -> Answer {
    match e {
        ApiError::Service {
            status,
            aws_type,
            message,
            ..
        } => error_answer(*status, arn, aws_type, message.clone()),
        ApiError::Timeout { .. } | ApiError::Transport { .. } => {
            error_answer(503, arn, "ServerException", e.to_string())
        }
        _ => error_answer(500, arn, "ServerException", e.to_string()),
    }
}

/// Where the endpoint's calls go, and with whose credentials.
#[derive(Clone, Debug)]
pub struct ProtectionCalls {
    /// The server's API (the agent's own client; each call re-signs with the task role).
    pub api: ApiClient,
}

impl ProtectionCalls {
    /// Answers a `GET` (`put` = `None`) or a `PUT` for task `arn` of `cluster`.
    pub async fn answer(
        &self,
        credentials: &TaskCredentials,
        cluster: &str,
        arn: &str,
        put: Option<(bool, Option<i32>)>,
    ) -> Answer {
        let Some(role) = credentials.get(arn, RoleType::TaskApplication) else {
            return error_answer(
                403,
                arn,
                "AccessDeniedException",
                "The task has no task role: task protection is set with the task role's credentials (it needs ecs:UpdateTaskProtection and ecs:GetTaskProtection).",
            );
        };
        let api = self.api.with_credentials(to_signing(&role));
        let outcome = match put {
            Some((enabled, minutes)) => api
                .call::<_, UpdateTaskProtectionResponse>(
                    "UpdateTaskProtection",
                    &UpdateTaskProtectionRequest {
                        cluster: cluster.to_owned(),
                        tasks: vec![arn.to_owned()],
                        protection_enabled: enabled,
                        expires_in_minutes: minutes,
                    },
                )
                .await
                .map(|r| (r.protected_tasks, r.failures)),
            None => api
                .call::<_, GetTaskProtectionResponse>(
                    "GetTaskProtection",
                    &GetTaskProtectionRequest {
                        cluster: cluster.to_owned(),
                        tasks: Some(vec![arn.to_owned()]),
                    },
                )
                .await
                .map(|r| (r.protected_tasks, r.failures)),
        };
        match outcome {
            Ok((protected, failures)) => compute_answer(arn, protected, failures),
            Err(e) => {
                tracing::warn!(task = %arn, error = %e, "A task protection call failed.");
                compute_error_answer(arn, &e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:ecs:us-east-1:000000000000:task/demo/t1";

    #[test]
    fn put_body_needs_protection_enabled() {
        assert_eq!(
            parse_put_state(ARN, br#"{"ProtectionEnabled":true,"ExpiresInMinutes":60}"#),
            Ok((true, Some(60)))
        );
        assert_eq!(
            parse_put_state(ARN, br#"{"ProtectionEnabled":false}"#),
            Ok((false, None))
        );
        let Err(refusal) = parse_put_state(ARN, br#"{"ExpiresInMinutes":60}"#) else {
            panic!("a body without ProtectionEnabled is refused");
        };
        let (status, body) = *refusal;
        assert_eq!(status, 400);
        assert_eq!(
            body.error.map(|e| e.code).as_deref(),
            Some("InvalidParameterException")
        );
        let Err(refusal) = parse_put_state(ARN, b"not json") else {
            panic!("a body that is not JSON is refused");
        };
        assert_eq!(refusal.0, 400);
    }

    #[test]
    fn protection_is_answered_with_the_agent_member_names() {
        let (status, body) = compute_answer(
            ARN,
            Some(vec![ProtectedTask {
                task_arn: Some(ARN.into()),
                protection_enabled: Some(true),
                expiration_date: Some(1_800_000_000.0),
            }]),
            Some(vec![]),
        );
        assert_eq!(status, 200);
        let json = serde_json::to_value(&body).unwrap_or_default();
        assert_eq!(json["protection"]["ProtectionEnabled"], true);
        assert_eq!(json["protection"]["TaskArn"], ARN);
        assert!(json["protection"]["ExpirationDate"]
            .as_str()
            .is_some_and(|d| d.starts_with("2027-01-15T08:00:00")));
        assert!(json.get("error").is_none() && json.get("failure").is_none());
    }

    #[test]
    fn a_failure_entry_is_answered_as_failure() {
        let (status, body) = compute_answer(
            ARN,
            Some(vec![]),
            Some(vec![Failure {
                arn: Some(ARN.into()),
                reason: Some("TASK_NOT_VALID".into()),
                detail: None,
            }]),
        );
        assert_eq!(status, 200);
        let json = serde_json::to_value(&body).unwrap_or_default();
        assert_eq!(json["failure"]["Reason"], "TASK_NOT_VALID");
    }

    #[test]
    fn a_service_error_keeps_its_status_and_code() {
        let e = ApiError::Service {
            operation: "UpdateTaskProtection",
            status: 400,
            aws_type: "InvalidParameterException".into(),
            message: "expiresInMinutes must be between 1 and 2880 minutes; 5000 was given.".into(),
        };
        let (status, body) = compute_error_answer(ARN, &e);
        assert_eq!(status, 400);
        let json = serde_json::to_value(&body).unwrap_or_default();
        assert_eq!(json["error"]["Code"], "InvalidParameterException");
        assert_eq!(json["error"]["Arn"], ARN);
    }

    #[tokio::test]
    async fn a_task_without_a_role_is_refused_before_any_call() {
        let api = ApiClient::new(crate::api::ApiConfig::new(
            "http://127.0.0.1:9",
            "us-east-1",
            crate::Credentials::new("AKID", "secret", None),
        ));
        let Ok(api) = api else {
            panic!("client for a loopback endpoint");
        };
        let calls = ProtectionCalls { api };
        let (status, body) = calls
            .answer(&TaskCredentials::default(), "demo", ARN, None)
            .await;
        assert_eq!(status, 403);
        assert_eq!(
            body.error.map(|e| e.code).as_deref(),
            Some("AccessDeniedException")
        );
    }
}
