//! Task definitions: the families, a family's revisions, and one revision as JSON.

use super::{seg, Ctx};
use crate::client::ECS;
use crate::view::{self, empty, json_block, list, url, Section};
use axum::extract::{Path, Query};
use axum::response::Response;
use maud::html;
use serde_json::{json, Value};
use std::collections::HashMap;

/// `GET /console/task-definitions?next=…&prefix=…`
pub(crate) async fn families(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    let prefix = q.get("prefix").map_or("", String::as_str);
    let mut input = json!({"status": "ACTIVE", "maxResults": 50});
    if !prefix.is_empty() {
        input["familyPrefix"] = json!(prefix);
    }
    if let Some(t) = q.get("next") {
        input["nextToken"] = json!(t);
    }
    let body = match ctx.call(ECS, "ListTaskDefinitionFamilies", input).await {
        Ok(l) => {
            let next = l.get("nextToken").and_then(Value::as_str);
            html! {
                h1 { "Task definitions" }
                form.filter method="get" action=(url("/task-definitions")) role="search" {
                    label for="prefix" { "Family starts with" }
                    input #prefix name="prefix" value=(prefix);
                    button type="submit" { "Filter" }
                }
                @if list(&l, "families").is_empty() {
                    (empty("No active task definition family.", "aws ecs register-task-definition --cli-input-json file://taskdef.json"))
                } @else {
                    ul { @for f in list(&l, "families") {
                        @let f = f.as_str().unwrap_or("");
                        li { a href=(url(&format!("/task-definitions/{}", seg(f)))) { (f) } }
                    } }
                }
                (super::clusters::pager(&format!("/task-definitions?prefix={}&", seg(prefix)), next))
            }
        }
        Err(e) => html! { h1 { "Task definitions" } (view::error(&e)) },
    };
    ctx.page("Task definitions", Section::TaskDefinitions, body)
}

/// `GET /console/task-definitions/{family}`.
pub(crate) async fn revisions(ctx: Ctx, Path(family): Path<String>) -> Response {
    let input = json!({"familyPrefix": family, "sort": "DESC", "maxResults": 100});
    let body = match ctx.call(ECS, "ListTaskDefinitions", input).await {
        Ok(l) => html! {
            p.crumbs { a href=(url("/task-definitions")) { "Task definitions" } " / " (family) }
            h1 { (family) }
            ul { @for arn in list(&l, "taskDefinitionArns") {
                @let name = view::short_arn(arn.as_str().unwrap_or(""));
                // familyPrefix matches other families that start with this one: keep ours.
                @if name.rsplit_once(':').map(|(f, _)| f) == Some(family.as_str()) {
                    @let rev = name.rsplit(':').next().unwrap_or("");
                    li { a href=(url(&format!("/task-definitions/{}/{}", seg(&family), seg(rev)))) { (name) } }
                }
            } }
        },
        Err(e) => view::error(&e),
    };
    ctx.page(&family, Section::TaskDefinitions, body)
}

/// `GET /console/task-definitions/{family}/{revision}`.
pub(crate) async fn show(ctx: Ctx, Path((family, revision)): Path<(String, String)>) -> Response {
    let name = format!("{family}:{revision}");
    let input = json!({"taskDefinition": name, "include": ["TAGS"]});
    let body = match ctx.call(ECS, "DescribeTaskDefinition", input).await {
        Ok(d) => html! {
            p.crumbs { a href=(url("/task-definitions")) { "Task definitions" } " / "
                a href=(url(&format!("/task-definitions/{}", seg(&family)))) { (family) } " / " (revision) }
            h1 { (name) }
            (json_block(&d["taskDefinition"]))
        },
        Err(e) => view::error(&e),
    };
    ctx.page(&name, Section::TaskDefinitions, body)
}
