//! ECR: repositories, and one repository's images (tags, size, push time) with each
//! image's scan findings by severity.

use super::{seg, Ctx};
use crate::client::ECR;
use crate::view::{self, empty, list, n, s, status, time, url, Section};
use axum::extract::Query;
use axum::response::Response;
use maud::{html, Markup};
use serde_json::{json, Value};
use std::collections::HashMap;

/// `GET /console/repositories?next=…`
pub(crate) async fn list_page(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut input = json!({"maxResults": 50});
    if let Some(t) = q.get("next") {
        input["nextToken"] = json!(t);
    }
    let body = match ctx.call(ECR, "DescribeRepositories", input).await {
        Ok(d) => {
            let repos = list(&d, "repositories");
            html! {
                h1 { "Repositories" }
                @if repos.is_empty() {
                    (empty("No repository yet.", "aws ecr create-repository --repository-name app"))
                } @else {
                    div.scroll { table {
                        thead { tr { th { "Repository" } th { "URI" } th { "Tags" } th { "Scan on push" } th { "Created" } } }
                        tbody { @for r in repos {
                            tr {
                                td { a href=(url(&format!("/repositories/view?name={}", seg(s(r, "repositoryName"))))) { (s(r, "repositoryName")) } }
                                td { code { (s(r, "repositoryUri")) } }
                                td { (s(r, "imageTagMutability")) }
                                td { (r.pointer("/imageScanningConfiguration/scanOnPush").and_then(Value::as_bool).unwrap_or(false)) }
                                td.num { (time(r, "createdAt")) }
                            }
                        } }
                    } }
                }
                (super::clusters::pager("/repositories?", d.get("nextToken").and_then(Value::as_str)))
            }
        }
        Err(e) => html! { h1 { "Repositories" } (view::error(&e)) },
    };
    ctx.page("Repositories", Section::Repositories, body)
}

/// `GET /console/repositories/view?name=…` (names hold slashes, so not a path segment).
pub(crate) async fn show(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    let name = q.get("name").cloned().unwrap_or_default();
    let crumbs = html! {
        p.crumbs { a href=(url("/repositories")) { "Repositories" } " / " (name) }
        h1 { (name) }
    };
    let input = json!({"repositoryName": name, "maxResults": 100});
    let body = match ctx.call(ECR, "DescribeImages", input).await {
        Ok(d) => {
            let images = list(&d, "imageDetails");
            let mut rows = Vec::new();
            for img in images {
                rows.push((img, findings(&ctx, &name, img).await));
            }
            html! {
                (crumbs)
                @if images.is_empty() {
                    (empty("No image in this repository yet.", "docker push <registry>/<repository>:<tag> (after aws ecr get-login-password | docker login)"))
                } @else {
                    div.scroll { table {
                        thead { tr { th { "Tags" } th { "Digest" } th.num { "Size (MiB)" } th { "Pushed" } th { "Scan" } } }
                        tbody { @for (img, scan) in &rows {
                            tr {
                                td { @for t in list(img, "imageTags") { code { (t.as_str().unwrap_or("")) } " " } }
                                td { code { (s(img, "imageDigest").get(..19).unwrap_or(s(img, "imageDigest"))) "…" } }
                                td.num { (format!("{:.1}", mib(n(img, "imageSizeInBytes")))) }
                                td.num { (time(img, "imagePushedAt")) }
                                td { (scan) }
                            }
                        } }
                    } }
                }
            }
        }
        Err(e) => html! { (crumbs) (view::error(&e)) },
    };
    ctx.page(&name, Section::Repositories, body)
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: i64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// One image's scan: its status and findings counted by severity, with the worst few.
async fn findings(ctx: &Ctx, repo: &str, img: &Value) -> Markup {
    let input = json!({"repositoryName": repo, "imageId": {"imageDigest": s(img, "imageDigest")}, "maxResults": 100});
    match ctx.call(ECR, "DescribeImageScanFindings", input).await {
        Ok(d) => {
            let state = d
                .pointer("/imageScanStatus/status")
                .and_then(Value::as_str)
                .unwrap_or("");
            let counts = d
                .pointer("/imageScanFindings/findingSeverityCounts")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let found = d
                .pointer("/imageScanFindings/findings")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            html! {
                (status(state))
                @for (sev, count) in &counts { " " span class=(sev) { (sev) ": " (count) } }
                @if !found.is_empty() {
                    details { summary { (found.len()) " findings" }
                        ul { @for f in found.iter().take(50) {
                            li { span class=(s(f, "severity")) { (s(f, "severity")) } " " code { (s(f, "name")) } " " (s(f, "description")) }
                        } }
                    }
                }
            }
        }
        // An image never scanned answers ScanNotFoundException: say so, not an error box.
        Err(e) if e.code == "ScanNotFoundException" => html! { span.muted { "not scanned" } },
        Err(e) => view::error(&e),
    }
}
