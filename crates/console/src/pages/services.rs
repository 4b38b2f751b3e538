//! Services: the cluster's table, the create form, and one service's page with its
//! deployments, events and tasks, and its actions (desired count, a new revision of its
//! task definition, force new deployment, delete). A refused action shows AWS's error beside its control.

use super::{see_other, seg, Ctx, Form};
use crate::client::{ApiError, ECS};
use crate::view::{self, csrf, empty, list, live, n, s, status, time, url, Section};
use axum::extract::{Path, Query};
use axum::response::Response;
use maud::{html, Markup};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The services of `cluster` (first 100), with their counts.
pub(crate) async fn table(ctx: &Ctx, cluster: &str) -> Markup {
    let listed = match ctx
        .call(
            ECS,
            "ListServices",
            json!({"cluster": cluster, "maxResults": 100}),
        )
        .await
    {
        Ok(l) => l,
        Err(e) => return view::error(&e),
    };
    let arns = list(&listed, "serviceArns");
    if arns.is_empty() {
        return empty(
            "No service runs in this cluster. Create one below, or:",
            &format!("aws ecs create-service --cluster {cluster} --service-name web --task-definition web --desired-count 2"),
        );
    }
    let mut services = Vec::new();
    // DescribeServices takes at most 10 services per call.
    for chunk in arns.chunks(10) {
        match ctx
            .call(
                ECS,
                "DescribeServices",
                json!({"cluster": cluster, "services": chunk}),
            )
            .await
        {
            Ok(d) => services.extend(list(&d, "services").iter().cloned()),
            Err(e) => return view::error(&e),
        }
    }
    html! {
        div.scroll { table {
            thead { tr { th { "Service" } th { "Status" } th { "Task definition" }
                th.num { "Desired" } th.num { "Running" } th.num { "Pending" } } }
            tbody { @for svc in &services {
                tr {
                    td { a href=(url(&format!("/clusters/{}/services/{}", seg(cluster), seg(s(svc, "serviceName"))))) { (s(svc, "serviceName")) } }
                    td { (status(s(svc, "status"))) }
                    td { (view::short_arn(s(svc, "taskDefinition"))) }
                    td.num { (n(svc, "desiredCount")) }
                    td.num { (n(svc, "runningCount")) }
                    td.num { (n(svc, "pendingCount")) }
                }
            } }
        } }
    }
}

/// The form that creates a service in `cluster`, with the error of a failed attempt.
pub(crate) fn create_form(ctx: &Ctx, cluster: &str, notice: Option<(&ApiError, &Form)>) -> Markup {
    let field = |k: &str| notice.map_or("", |(_, f)| f.get(k)).to_owned();
    let count = notice.map_or_else(
        || "1".to_owned(),
        |(_, f)| f.get("desired_count").to_owned(),
    );
    html! {
        h2 #create { "Create a service" }
        form.inline method="post" action=(url(&format!("/clusters/{}/services", seg(cluster)))) {
            (csrf(&ctx.session))
            label for="service_name" { "Name" }
            input #service_name name="service_name" value=(field("service_name")) required;
            label for="task_definition" { "Task definition" }
            input #task_definition name="task_definition" value=(field("task_definition")) placeholder="family or family:revision" required;
            label for="desired_count" { "Desired count" }
            input #desired_count name="desired_count" type="number" min="0" value=(count) required;
            button type="submit" { "Create service" }
        }
        @if let Some((e, _)) = notice { (view::error(e)) }
    }
}

/// `POST /console/clusters/{cluster}/services`.
pub(crate) async fn create(ctx: Ctx, Path(cluster): Path<String>, body: bytes::Bytes) -> Response {
    let form = match ctx.form(&body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let input = json!({
        "cluster": cluster,
        "serviceName": form.get("service_name"),
        "taskDefinition": form.get("task_definition"),
        "desiredCount": count(form.get("desired_count")),
    });
    match ctx.call(ECS, "CreateService", input).await {
        Ok(_) => see_other(&format!(
            "/clusters/{}/services/{}",
            seg(&cluster),
            seg(form.get("service_name"))
        )),
        Err(e) => {
            let body =
                super::clusters::cluster_body(&ctx, &cluster, "RUNNING", None, Some((&e, &form)))
                    .await;
            with_status(ctx.page(&cluster, Section::Clusters, body))
        }
    }
}

/// A desired count as typed; what is not a number goes to the API as -1 so that its own
/// validation answers (never a silent zero).
fn count(text: &str) -> i64 {
    text.trim().parse().unwrap_or(-1)
}

/// `GET /console/clusters/{cluster}/services/{service}?next=…` (`next` pages its tasks).
pub(crate) async fn show(
    ctx: Ctx,
    Path((cluster, service)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let next = q.get("next").map(String::as_str);
    let body = service_body(&ctx, &cluster, &service, next, None).await;
    ctx.page(&service, Section::Clusters, body)
}

/// Which control an error belongs beside.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Control {
    Scale,
    Revision,
    Redeploy,
    Delete,
}

async fn service_body(
    ctx: &Ctx,
    cluster: &str,
    service: &str,
    next: Option<&str>,
    notice: Option<(Control, &ApiError)>,
) -> Markup {
    let path = url(&format!(
        "/clusters/{}/services/{}",
        seg(cluster),
        seg(service)
    ));
    // The live region polls the page of tasks it shows.
    let here = match next {
        Some(t) => format!("{path}?next={}", seg(t)),
        None => path.clone(),
    };
    let crumbs = html! {
        p.crumbs { a href=(url("/clusters")) { "Clusters" } " / "
            a href=(url(&format!("/clusters/{}", seg(cluster)))) { (cluster) } " / " (service) }
        h1 { "Service " (service) }
    };
    let described = ctx
        .call(
            ECS,
            "DescribeServices",
            json!({"cluster": cluster, "services": [service]}),
        )
        .await;
    let svc = match described {
        Ok(d) => match list(&d, "services").first() {
            Some(svc) => svc.clone(),
            None => {
                return html! { (crumbs) div.error role="alert" { "Service " code { (service) } " was not found in " (cluster) "." } }
            }
        },
        Err(e) => return html! { (crumbs) (view::error(&e)) },
    };
    let error_at = |c: Control| {
        notice
            .filter(|(at, _)| *at == c)
            .map(|(_, e)| view::error(e))
    };
    let action = |a: &str| format!("{path}/{a}");
    let tasks = super::tasks::table(ctx, cluster, Some(service), "RUNNING", next).await;
    let current = s(&svc, "taskDefinition");
    let revisions = family_revisions(ctx, current).await;
    html! {
        (crumbs)
        div.actions {
            form.inline method="post" action=(action("scale")) {
                (csrf(&ctx.session))
                label for="desired_count" { "Desired count" }
                input #desired_count name="desired_count" type="number" min="0" value=(n(&svc, "desiredCount")) required;
                button type="submit" { "Update" }
                @if let Some(e) = error_at(Control::Scale) { (e) }
            }
            form.inline method="post" action=(action("revision")) {
                (csrf(&ctx.session))
                label for="task_definition" { "Revision" }
                @match &revisions {
                    Ok(revs) => {
                        select #task_definition name="task_definition" {
                            @for arn in revs {
                                option value=(arn) selected[arn == current] { (view::short_arn(arn)) }
                            }
                        }
                        button type="submit" { "Deploy revision" }
                    }
                    Err(e) => (view::error(e)),
                }
                @if let Some(e) = error_at(Control::Revision) { (e) }
            }
            form.inline method="post" action=(action("redeploy")) {
                (csrf(&ctx.session))
                button.plain type="submit" { "Force new deployment" }
                @if let Some(e) = error_at(Control::Redeploy) { (e) }
            }
            form.inline method="post" action=(action("delete")) hx-confirm="Delete this service? Its tasks stop." {
                (csrf(&ctx.session))
                button.danger type="submit" { "Delete service" }
                @if let Some(e) = error_at(Control::Delete) { (e) }
            }
        }
        (live(&here, html! {
            div.cards {
                div.card { b { (status(s(&svc, "status"))) } "status" }
                div.card { b { (n(&svc, "desiredCount")) } "desired" }
                div.card { b { (n(&svc, "runningCount")) } "running" }
                div.card { b { (n(&svc, "pendingCount")) } "pending" }
            }
            p { "Task definition " code { (s(&svc, "taskDefinition")) } }
            h2 { "Deployments" }
            div.scroll { table {
                thead { tr { th { "Deployment" } th { "Status" } th { "Rollout" } th { "Task definition" }
                    th.num { "Desired" } th.num { "Running" } th.num { "Pending" } th.num { "Failed" } } }
                tbody { @for d in list(&svc, "deployments") {
                    tr {
                        td { (s(d, "id")) }
                        td { (status(s(d, "status"))) }
                        td { (status(s(d, "rolloutState"))) " " span.muted { (s(d, "rolloutStateReason")) } }
                        td { (view::short_arn(s(d, "taskDefinition"))) }
                        td.num { (n(d, "desiredCount")) }
                        td.num { (n(d, "runningCount")) }
                        td.num { (n(d, "pendingCount")) }
                        td.num { (n(d, "failedTasks")) }
                    }
                } }
            } }
            h2 { "Tasks" }
            (tasks)
            h2 { "Events" }
            (events(&svc))
        }))
    }
}

/// The ACTIVE revisions of the family of `task_definition` (an ARN), newest first: what
/// the service may be updated to.
async fn family_revisions(ctx: &Ctx, task_definition: &str) -> Result<Vec<String>, ApiError> {
    let family = family_of(task_definition);
    let listed = ctx
        .call(
            ECS,
            "ListTaskDefinitions",
            json!({"familyPrefix": family, "status": "ACTIVE", "sort": "DESC", "maxResults": 100}),
        )
        .await?;
    Ok(list(&listed, "taskDefinitionArns")
        .iter()
        .filter_map(Value::as_str)
        // familyPrefix also matches longer families that start with this one.
        .filter(|arn| family_of(arn) == family)
        .map(str::to_owned)
        .collect())
}

/// The family of a task definition ARN or `family:revision`.
pub(crate) fn family_of(task_definition: &str) -> &str {
    let name = view::short_arn(task_definition);
    name.rsplit_once(':').map_or(name, |(family, _)| family)
}

fn events(svc: &Value) -> Markup {
    let events = list(svc, "events");
    html! {
        @if events.is_empty() { p.muted { "No events yet." } } @else {
            div.scroll { table {
                thead { tr { th { "Time" } th { "Message" } } }
                tbody { @for e in events.iter().take(25) {
                    tr { td.num { (time(e, "createdAt")) } td { (s(e, "message")) } }
                } }
            } }
        }
    }
}

/// `POST /console/clusters/{cluster}/services/{service}/{scale|revision|redeploy|delete}`.
pub(crate) async fn act(
    ctx: Ctx,
    Path((cluster, service, action)): Path<(String, String, String)>,
    body: bytes::Bytes,
) -> Response {
    let form = match ctx.form(&body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let (control, op, input) = match action.as_str() {
        "scale" => (
            Control::Scale,
            "UpdateService",
            json!({"cluster": cluster, "service": service, "desiredCount": count(form.get("desired_count"))}),
        ),
        "revision" => (
            Control::Revision,
            "UpdateService",
            json!({"cluster": cluster, "service": service, "taskDefinition": form.get("task_definition")}),
        ),
        "redeploy" => (
            Control::Redeploy,
            "UpdateService",
            json!({"cluster": cluster, "service": service, "forceNewDeployment": true}),
        ),
        "delete" => (
            Control::Delete,
            "DeleteService",
            json!({"cluster": cluster, "service": service, "force": true}),
        ),
        _ => return axum::response::IntoResponse::into_response(http::StatusCode::NOT_FOUND),
    };
    match ctx.call(ECS, op, input).await {
        Ok(_) if control == Control::Delete => see_other(&format!("/clusters/{}", seg(&cluster))),
        Ok(_) => see_other(&format!(
            "/clusters/{}/services/{}",
            seg(&cluster),
            seg(&service)
        )),
        Err(e) => {
            let body = service_body(&ctx, &cluster, &service, None, Some((control, &e))).await;
            with_status(ctx.page(&service, Section::Clusters, body))
        }
    }
}

/// A page re-rendered because its action failed answers 400, as the API did.
pub(crate) fn with_status(mut resp: Response) -> Response {
    *resp.status_mut() = http::StatusCode::BAD_REQUEST;
    resp
}
