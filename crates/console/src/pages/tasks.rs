//! Tasks: a cluster's or a service's table, one task's page (containers with status,
//! exit codes, reasons, network bindings and health; the ENI of `awsvpc` tasks; stop),
//! and its containers' logs followed live (`awslogs` streams read with GetLogEvents, as
//! `aws logs tail --follow` does).

use super::{html as html_response, see_other, seg, Ctx};
use crate::client::{ApiError, ECS, LOGS};
use crate::view::{self, csrf, empty, list, live, n, s, short_arn, status, time, url, Section};
use axum::extract::Path;
use axum::response::Response;
use maud::{html, Markup};
use serde_json::{json, Value};

/// The tasks of `cluster` (of `service` when given) whose desired status is `desired`,
/// one page of them.
pub(crate) async fn table(
    ctx: &Ctx,
    cluster: &str,
    service: Option<&str>,
    desired: &str,
    next: Option<&str>,
) -> Markup {
    let mut input = json!({"cluster": cluster, "desiredStatus": desired, "maxResults": 50});
    if let Some(svc) = service {
        input["serviceName"] = json!(svc);
    }
    if let Some(t) = next {
        input["nextToken"] = json!(t);
    }
    let listed = match ctx.call(ECS, "ListTasks", input).await {
        Ok(l) => l,
        Err(e) => return view::error(&e),
    };
    let arns = list(&listed, "taskArns");
    if arns.is_empty() {
        return empty(
            &format!("No task with desired status {desired}."),
            &format!("aws ecs run-task --cluster {cluster} --task-definition <family>"),
        );
    }
    let described = match ctx
        .call(
            ECS,
            "DescribeTasks",
            json!({"cluster": cluster, "tasks": arns}),
        )
        .await
    {
        Ok(d) => d,
        Err(e) => return view::error(&e),
    };
    let next = listed.get("nextToken").and_then(Value::as_str);
    html! {
        div.scroll { table {
            thead { tr { th { "Task" } th { "Last status" } th { "Desired" } th { "Task definition" }
                th.hide-phone { "Started by" } th { "Stopped reason" } } }
            tbody { @for t in list(&described, "tasks") {
                @let id = short_arn(s(t, "taskArn"));
                tr {
                    td { a href=(url(&format!("/clusters/{}/tasks/{}", seg(cluster), seg(id)))) { (id) } }
                    td { (status(s(t, "lastStatus"))) }
                    td { (s(t, "desiredStatus")) }
                    td { (short_arn(s(t, "taskDefinitionArn"))) }
                    td.hide-phone { (s(t, "startedBy")) }
                    td { (s(t, "stoppedReason")) }
                }
            } }
        } }
        @if let Some(t) = next {
            @if let Some(svc) = service {
                (super::clusters::pager(&format!("/clusters/{}/services/{}?", seg(cluster), seg(svc)), Some(t)))
            } @else {
                (super::clusters::pager(&format!("/clusters/{}?status={desired}&", seg(cluster)), Some(t)))
            }
        }
    }
}

/// `GET /console/clusters/{cluster}/tasks/{task}`.
pub(crate) async fn show(ctx: Ctx, Path((cluster, task)): Path<(String, String)>) -> Response {
    let body = task_body(&ctx, &cluster, &task, None).await;
    ctx.page(&task, Section::Clusters, body)
}

async fn describe(ctx: &Ctx, cluster: &str, task: &str) -> Result<Option<Value>, ApiError> {
    let d = ctx
        .call(
            ECS,
            "DescribeTasks",
            json!({"cluster": cluster, "tasks": [task]}),
        )
        .await?;
    Ok(list(&d, "tasks").first().cloned())
}

async fn task_body(ctx: &Ctx, cluster: &str, task: &str, notice: Option<&ApiError>) -> Markup {
    let here = url(&format!("/clusters/{}/tasks/{}", seg(cluster), seg(task)));
    let crumbs = html! {
        p.crumbs { a href=(url("/clusters")) { "Clusters" } " / "
            a href=(url(&format!("/clusters/{}", seg(cluster)))) { (cluster) } " / " (task) }
        h1 { "Task " (task) }
    };
    let t = match describe(ctx, cluster, task).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            return html! { (crumbs) div.error role="alert" { "Task " code { (task) } " was not found (stopped tasks leave after a while)." } }
        }
        Err(e) => return html! { (crumbs) (view::error(&e)) },
    };
    let streams = log_streams(ctx, &t).await;
    html! {
        (crumbs)
        @if s(&t, "desiredStatus") != "STOPPED" {
            form.inline method="post" action=(format!("{here}/stop")) {
                (csrf(&ctx.session))
                label for="reason" { "Reason" }
                input #reason name="reason" value="Stopped from the Stevedore console";
                button.danger type="submit" { "Stop task" }
                @if let Some(e) = notice { (view::error(e)) }
            }
        } @else if let Some(e) = notice { (view::error(e)) }
        (live(&here, details(&t)))
        h2 { "Logs" }
        @if streams.is_empty() {
            p.muted { "No container of this task logs with the awslogs driver, so there is nothing to follow." }
        }
        @for (container, _) in &streams {
            h3 { (container) }
            div hx-get=(format!("{here}/logs/{}", seg(container))) hx-trigger="load, every 2s" hx-swap="innerHTML" {
                p.muted { "Loading logs…" }
            }
        }
    }
}

fn details(t: &Value) -> Markup {
    html! {
        div.cards {
            div.card { b { (status(s(t, "lastStatus"))) } "last status" }
            div.card { b { (s(t, "desiredStatus")) } "desired" }
            div.card { b { (s(t, "launchType")) } "launch type" }
            div.card { b { (s(t, "healthStatus")) } "health" }
        }
        p { "Task definition " code { (s(t, "taskDefinitionArn")) } }
        p.muted { "Created " (time(t, "createdAt")) @if t.get("startedAt").is_some() { " · started " (time(t, "startedAt")) }
            @if t.get("stoppedAt").is_some() { " · stopped " (time(t, "stoppedAt")) } }
        @if !s(t, "stoppedReason").is_empty() {
            p { "Stopped: " code { (s(t, "stopCode")) } " " (s(t, "stoppedReason")) }
        }
        h2 { "Containers" }
        div.scroll { table {
            thead { tr { th { "Container" } th { "Status" } th.num { "Exit code" } th { "Reason" }
                th { "Network bindings" } th { "Health" } } }
            tbody { @for c in list(t, "containers") {
                tr {
                    td { (s(c, "name")) br; span.muted.hide-phone { (s(c, "image")) } }
                    td { (status(s(c, "lastStatus"))) }
                    td.num { @if let Some(code) = c.get("exitCode").and_then(Value::as_i64) { (code) } }
                    td { (s(c, "reason")) }
                    td { @for b in list(c, "networkBindings") {
                        (s(b, "bindIP")) ":" (n(b, "hostPort")) " → " (n(b, "containerPort")) "/" (s(b, "protocol")) br;
                    } }
                    td { (status(s(c, "healthStatus"))) }
                }
            } }
        } }
        @for a in list(t, "attachments") {
            @if s(a, "type") == "ElasticNetworkInterface" {
                h2 { "Network interface" }
                p { (s(a, "status")) " · "
                    @for d in list(a, "details") { (s(d, "name")) "=" (s(d, "value")) " " } }
            }
        }
    }
}

/// The awslogs stream of each container of `task` that has one: (container, (group, stream)).
async fn log_streams(ctx: &Ctx, task: &Value) -> Vec<(String, (String, String))> {
    let Ok(def) = ctx
        .call(
            ECS,
            "DescribeTaskDefinition",
            json!({"taskDefinition": s(task, "taskDefinitionArn")}),
        )
        .await
    else {
        return Vec::new();
    };
    let id = short_arn(s(task, "taskArn"));
    list(&def["taskDefinition"], "containerDefinitions")
        .iter()
        .filter_map(|c| {
            let conf = c.get("logConfiguration")?;
            (s(conf, "logDriver") == "awslogs").then_some(())?;
            let opts = conf.get("options")?;
            let group = s(opts, "awslogs-group");
            let prefix = s(opts, "awslogs-stream-prefix");
            // AWS names the stream prefix/container/task-id; without a prefix there is
            // no stream name the console can know.
            (!group.is_empty() && !prefix.is_empty()).then(|| {
                let name = s(c, "name");
                (
                    name.to_owned(),
                    (group.to_owned(), format!("{prefix}/{name}/{id}")),
                )
            })
        })
        .collect()
}

/// `GET /console/clusters/{cluster}/tasks/{task}/logs/{container}`: the newest lines of
/// one container's stream (a fragment the task page polls).
pub(crate) async fn logs(
    ctx: Ctx,
    Path((cluster, task, container)): Path<(String, String, String)>,
) -> Response {
    let fragment = match describe(&ctx, &cluster, &task).await {
        Ok(Some(t)) => {
            let streams = log_streams(&ctx, &t).await;
            match streams.into_iter().find(|(c, _)| *c == container) {
                Some((_, (group, stream))) => {
                    let input = json!({"logGroupName": group, "logStreamName": stream, "startFromHead": false, "limit": 200});
                    match ctx.call(LOGS, "GetLogEvents", input).await {
                        Ok(events) => html! {
                            p.muted { "Following " code { (group) " " (stream) } " (newest 200 lines, refreshed every 2 s)" }
                            pre.logs #log-lines aria-live="polite" {
                                @for e in list(&events, "events") {
                                    span.muted { (view::epoch_text(e.get("timestamp").and_then(Value::as_f64).unwrap_or(0.0) / 1000.0)) } " " (s(e, "message")) "\n"
                                }
                            }
                        },
                        Err(e) => view::error(&e),
                    }
                }
                None => {
                    html! { p.muted { "Container " (container) " does not log with awslogs." } }
                }
            }
        }
        Ok(None) => html! { p.muted { "The task is gone." } },
        Err(e) => view::error(&e),
    };
    html_response(fragment)
}

/// `POST /console/clusters/{cluster}/tasks/{task}/stop`.
pub(crate) async fn stop(
    ctx: Ctx,
    Path((cluster, task)): Path<(String, String)>,
    body: bytes::Bytes,
) -> Response {
    let form = match ctx.form(&body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let input = json!({"cluster": cluster, "task": task, "reason": form.get("reason")});
    match ctx.call(ECS, "StopTask", input).await {
        Ok(_) => see_other(&format!("/clusters/{}/tasks/{}", seg(&cluster), seg(&task))),
        Err(e) => {
            let body = task_body(&ctx, &cluster, &task, Some(&e)).await;
            super::services::with_status(ctx.page(&task, Section::Clusters, body))
        }
    }
}
