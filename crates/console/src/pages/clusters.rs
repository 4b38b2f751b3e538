//! Clusters: the list, and one cluster with its container instances (remaining CPU and
//! memory, Availability Zone, running and pending tasks), its services (with the form
//! that creates one) and its tasks.

use super::{seg, Ctx};
use crate::client::{ApiError, ECS};
use crate::view::{self, empty, list, live, n, s, short_arn, status, url, Section};
use axum::extract::{Path, Query};
use axum::response::Response;
use maud::{html, Markup};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Page size of the lists (the APIs' own pagination does the paging).
const PAGE: i64 = 25;

/// `GET /console/clusters?next=…`
pub(crate) async fn list_page(
    ctx: &Ctx,
    next: Option<&str>,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let mut input = json!({"maxResults": PAGE});
    if let Some(t) = next {
        input["nextToken"] = json!(t);
    }
    let listed = ctx.call(ECS, "ListClusters", input).await?;
    let arns = list(&listed, "clusterArns");
    let next = listed
        .get("nextToken")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if arns.is_empty() {
        return Ok((Vec::new(), next));
    }
    let described = ctx
        .call(ECS, "DescribeClusters", json!({"clusters": arns}))
        .await?;
    Ok((list(&described, "clusters").to_vec(), next))
}

/// `GET /console/clusters`.
pub(crate) async fn list_handler(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    let next = q.get("next").map(String::as_str);
    let body = match list_page(&ctx, next).await {
        Ok((clusters, next)) => html! {
            h1 { "Clusters" }
            @if clusters.is_empty() && next.is_none() {
                (empty("There are no clusters in this region yet.", "aws ecs create-cluster --cluster-name default"))
            } @else {
                div.scroll { table {
                    thead { tr { th { "Name" } th { "Status" } th.num { "Instances" } th.num { "Services" }
                        th.num { "Running tasks" } th.num { "Pending tasks" } } }
                    tbody { @for c in &clusters {
                        tr {
                            td { a href=(url(&format!("/clusters/{}", seg(s(c, "clusterName"))))) { (s(c, "clusterName")) } }
                            td { (status(s(c, "status"))) }
                            td.num { (n(c, "registeredContainerInstancesCount")) }
                            td.num { (n(c, "activeServicesCount")) }
                            td.num { (n(c, "runningTasksCount")) }
                            td.num { (n(c, "pendingTasksCount")) }
                        }
                    } }
                } }
                (pager("/clusters?", next.as_deref()))
            }
        },
        Err(e) => html! { h1 { "Clusters" } (view::error(&e)) },
    };
    ctx.page("Clusters", Section::Clusters, body)
}

/// A "next page" link carrying the API's token.
pub(crate) fn pager(base: &str, next: Option<&str>) -> Markup {
    html! {
        @if let Some(t) = next {
            nav.pager aria-label="Pages" {
                a href=(url(&format!("{base}next={}", seg(t)))) { "Next page →" }
            }
        }
    }
}

/// `GET /console/clusters/{cluster}?status=RUNNING|STOPPED&next=…`
pub(crate) async fn show(
    ctx: Ctx,
    Path(cluster): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let desired = match q.get("status").map(String::as_str) {
        Some("STOPPED") => "STOPPED",
        _ => "RUNNING",
    };
    let body = cluster_body(
        &ctx,
        &cluster,
        desired,
        q.get("next").map(String::as_str),
        None,
    )
    .await;
    ctx.page(&cluster, Section::Clusters, body)
}

/// The cluster page's body; `notice` is an error from the create-service form, shown
/// beside it.
pub(crate) async fn cluster_body(
    ctx: &Ctx,
    cluster: &str,
    desired: &str,
    next: Option<&str>,
    notice: Option<(&ApiError, &super::Form)>,
) -> Markup {
    let here = url(&format!("/clusters/{}?status={desired}", seg(cluster)));
    let described = ctx
        .call(
            ECS,
            "DescribeClusters",
            json!({"clusters": [cluster], "include": ["STATISTICS"]}),
        )
        .await;
    let summary = match described {
        Ok(d) => match list(&d, "clusters").first() {
            Some(c) => html! {
                div.cards {
                    div.card { b { (n(c, "registeredContainerInstancesCount")) } "instances" }
                    div.card { b { (n(c, "activeServicesCount")) } "services" }
                    div.card { b { (n(c, "runningTasksCount")) } "running tasks" }
                    div.card { b { (n(c, "pendingTasksCount")) } "pending tasks" }
                }
            },
            None => {
                let reason = list(&d, "failures")
                    .first()
                    .map_or("MISSING", |f| s(f, "reason"))
                    .to_owned();
                html! { div.error role="alert" { "Cluster " code { (cluster) } ": " (reason) } }
            }
        },
        Err(e) => view::error(&e),
    };
    let instances = instances(ctx, cluster).await;
    let services = super::services::table(ctx, cluster).await;
    let tasks = super::tasks::table(ctx, cluster, None, desired, next).await;
    let create = super::services::create_form(ctx, cluster, notice);
    html! {
        p.crumbs { a href=(url("/clusters")) { "Clusters" } " / " (cluster) }
        h1 { "Cluster " (cluster) }
        (live(&here, html! {
            (summary)
            h2 { "Container instances" } (instances)
            h2 { "Services" } (services)
            h2 { "Tasks" }
            nav.filter aria-label="Task filter" {
                @for st in ["RUNNING", "STOPPED"] {
                    @if st == desired { strong { (st) } } @else {
                        a href=(url(&format!("/clusters/{}?status={st}", seg(cluster)))) { (st) }
                    }
                }
            }
            (tasks)
        }))
        (create)
    }
}

/// The container instances of `cluster`, with what is left of each.
async fn instances(ctx: &Ctx, cluster: &str) -> Markup {
    let listed = match ctx
        .call(
            ECS,
            "ListContainerInstances",
            json!({"cluster": cluster, "maxResults": 100}),
        )
        .await
    {
        Ok(l) => l,
        Err(e) => return view::error(&e),
    };
    let arns = list(&listed, "containerInstanceArns");
    if arns.is_empty() {
        return empty(
            "No container instance has joined this cluster. Start an agent on a machine with Docker:",
            &format!("stevedore agent --cluster {cluster}"),
        );
    }
    let described = match ctx
        .call(
            ECS,
            "DescribeContainerInstances",
            json!({"cluster": cluster, "containerInstances": arns}),
        )
        .await
    {
        Ok(d) => d,
        Err(e) => return view::error(&e),
    };
    let resource = |ci: &Value, field: &str, name: &str| {
        list(ci, field)
            .iter()
            .find(|r| s(r, "name") == name)
            .map_or(0, |r| n(r, "integerValue"))
    };
    let attribute = |ci: &Value, name: &str| {
        list(ci, "attributes")
            .iter()
            .find(|a| s(a, "name") == name)
            .map(|a| s(a, "value").to_owned())
            .unwrap_or_default()
    };
    html! {
        div.scroll { table {
            thead { tr { th { "Instance" } th { "Status" } th { "Agent" } th { "AZ" }
                th.num { "CPU left / total" } th.num { "Memory left / total (MiB)" }
                th.num { "Running" } th.num { "Pending" } } }
            tbody { @for ci in list(&described, "containerInstances") {
                tr {
                    td { (s(ci, "ec2InstanceId")) br; span.muted.hide-phone { (short_arn(s(ci, "containerInstanceArn"))) } }
                    td { (status(s(ci, "status"))) }
                    td { @if ci.get("agentConnected").and_then(Value::as_bool) == Some(true) { "connected" } @else { span.STOPPED { "disconnected" } } }
                    td { (attribute(ci, "ecs.availability-zone")) }
                    td.num { (resource(ci, "remainingResources", "CPU")) " / " (resource(ci, "registeredResources", "CPU")) }
                    td.num { (resource(ci, "remainingResources", "MEMORY")) " / " (resource(ci, "registeredResources", "MEMORY")) }
                    td.num { (n(ci, "runningTasksCount")) }
                    td.num { (n(ci, "pendingTasksCount")) }
                }
            } }
        } }
    }
}
