//! The agent channel's transport: the SigV4-signed WebSocket upgrade at `/ws` and the
//! loop that pumps an [`ecs::Session`]'s payloads and heartbeats to the agent and its
//! acknowledgements back. What to send is the session's business, not this module's.

use crate::http::{authenticate_request, App};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use model::acs::{Frame, HeartbeatMessage};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often the server tells an idle agent it is alive (the agent gives up after a
/// minute of silence).
const HEARTBEAT: Duration = Duration::from_secs(20);
/// How often unacknowledged payloads are reconsidered for resending.
const RESEND_TICK: Duration = Duration::from_secs(5);

pub async fn upgrade(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    // The region of the signature is the region whose cluster the agent joins.
    let (caller, region) = match authenticate_request(
        &app,
        &method,
        &uri,
        &headers,
        &[],
        Some(model::ecs::SIGNING_NAME),
    )
    .await
    {
        Ok(c) => c,
        Err(err) => return crate::http::aws_error(&err),
    };
    let (Some(cluster), Some(instance)) =
        (params.get("clusterArn"), params.get("containerInstanceArn"))
    else {
        return crate::http::client_error(
            "InvalidParameterException",
            "The channel needs clusterArn and containerInstanceArn query parameters.",
        );
    };
    // Holding the channel is ECS's `ecs:Poll` on the container instance (what
    // AmazonEC2ContainerServiceforEC2Role grants agents), in its cluster.
    let poll = wire::Access::new("ecs", "Poll", instance.clone())
        .with_key("ecs:cluster", cluster.as_str());
    if let Err(err) = wire::dispatch::authorize(&caller, vec![poll], None) {
        tracing::info!(principal = caller.principal_arn(), %instance, "Channel refused: the caller may not poll for the instance.");
        return crate::http::aws_error(&err.with_status(403));
    }
    // Only the instance's owner may hold its channel (ecs::ownership); a refusal is
    // answered before any upgrade.
    let session = match region.ecs.open_session_as(cluster, instance, &caller).await {
        Ok(s) => s,
        Err(e) => {
            let mut err = e.to_aws();
            if err.code == "AccessDeniedException" {
                err = err.with_status(403);
                tracing::info!(principal = caller.principal_arn(), %instance, "Channel refused to a caller that does not own the instance.");
            }
            return crate::http::aws_error(&err);
        }
    };
    // Small buffers: a server holds one socket per instance (10,000 and more), and the
    // defaults (128 KiB each way) would cost gigabytes. Larger frames still work.
    ws.read_buffer_size(4096)
        .write_buffer_size(0)
        .on_upgrade(move |socket| pump(socket, session))
        .into_response()
}

async fn send(socket: &mut WebSocket, frame: &Frame) -> bool {
    match serde_json::to_string(frame) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn pump(mut socket: WebSocket, mut session: ecs::Session) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut resend = tokio::time::interval(RESEND_TICK);
    loop {
        match session.next_payload().await {
            Ok(Some(p)) => {
                let count = p.tasks.len();
                if !send(&mut socket, &Frame::PayloadMessage(p)).await {
                    break;
                }
                tracing::debug!(instance = %session.instance_arn(), tasks = count, "Payload sent to agent.");
                continue;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, instance = %session.instance_arn(), "Could not compute the agent's payload.")
            }
        }
        tokio::select! {
            () = session.changed() => {}
            _ = resend.tick() => {
                for message in session.due_credentials(std::time::SystemTime::now()).await {
                    let (task, role) = (message.task_arn.clone(), message.role_type);
                    if !send(&mut socket, &Frame::IAMRoleCredentialsMessage(message)).await {
                        break;
                    }
                    tracing::debug!(instance = %session.instance_arn(), %task, ?role, "Task credentials refreshed.");
                }
            }
            _ = heartbeat.tick() => {
                let hb = Frame::HeartbeatMessage(HeartbeatMessage { healthy: true, message_id: uuid::Uuid::new_v4().to_string() });
                if !send(&mut socket, &hb).await {
                    break;
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Frame>(&text) {
                    Ok(Frame::AckRequest(a)) => session.ack(&a.message_id),
                    // Lost refreshes are covered: the next one comes well before expiry.
                    Ok(Frame::IAMRoleCredentialsAckRequest(_)) => {}
                    Ok(Frame::NackRequest(n)) => session.nack(&n.message_id),
                    Ok(Frame::PublishHealthRequest(h)) => {
                        if let Err(error) = session.publish_health(&h).await {
                            tracing::warn!(%error, instance = %session.instance_arn(), "Could not record an agent's health report.");
                        }
                    }
                    Ok(Frame::PublishMetricsRequest(m)) => {
                        if let Err(error) = session.publish_usage(&m).await {
                            tracing::warn!(%error, instance = %session.instance_arn(), "Could not record an agent's usage report.");
                        }
                    }
                    Ok(_) => {}
                    Err(error) => tracing::debug!(%error, "Ignoring an unreadable frame from an agent."),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    session.close().await;
}
