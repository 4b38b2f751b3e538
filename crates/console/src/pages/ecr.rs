//! ECR: repositories, and one repository's images (tags, size, push time) with each
//! image's scan findings by severity, and its lifecycle policy (shown, and put from a
//! JSON editor whose refusal is shown under it).

use super::{see_other, seg, Ctx};
use crate::client::{ApiError, ECR};
use crate::view::{self, csrf, empty, list, n, s, status, time, url, Section};
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
    let body = repository_body(&ctx, &name, None).await;
    ctx.page(&name, Section::Repositories, body)
}

/// A refused PutLifecyclePolicy: the text as typed and AWS's error.
struct PolicyNotice<'a> {
    text: &'a str,
    error: ApiError,
}

async fn repository_body(ctx: &Ctx, name: &str, notice: Option<&PolicyNotice<'_>>) -> Markup {
    let name = name.to_owned();
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
                rows.push((img, findings(ctx, &name, img).await));
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
    let policy = lifecycle_policy(ctx, &name, notice).await;
    html! { (body) (policy) }
}

/// The repository's lifecycle policy and the editor that puts a new one.
async fn lifecycle_policy(ctx: &Ctx, name: &str, notice: Option<&PolicyNotice<'_>>) -> Markup {
    let got = ctx
        .call(ECR, "GetLifecyclePolicy", json!({"repositoryName": name}))
        .await;
    let (current, shown) = match &got {
        Ok(p) => {
            let text = s(p, "lifecyclePolicyText");
            // Shown pretty when it parses (it was stored as the caller sent it).
            let pretty = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| text.to_owned());
            (
                pretty,
                html! { @if p.get("lastEvaluatedAt").is_some() { p.muted { "Last evaluated " (time(p, "lastEvaluatedAt")) } } },
            )
        }
        Err(e) if e.code == "LifecyclePolicyNotFoundException" => (
            String::new(),
            empty(
                "This repository has no lifecycle policy: images stay until deleted. Write one below, or:",
                &format!("aws ecr put-lifecycle-policy --repository-name {name} --lifecycle-policy-text file://policy.json"),
            ),
        ),
        Err(e) => (String::new(), view::error(e)),
    };
    let text = notice.map_or(current.as_str(), |n| n.text);
    let example = r#"{"rules":[{"rulePriority":1,"description":"keep 10 images","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}]}"#;
    html! {
        h2 #lifecycle { "Lifecycle policy" }
        (shown)
        form method="post" action=(url("/repositories/lifecycle-policy")) {
            (csrf(&ctx.session))
            input type="hidden" name="name" value=(name);
            label for="policy" { "Policy JSON" }
            textarea.code #policy name="policy" rows="14" spellcheck="false" placeholder=(example)
                aria-invalid=[notice.map(|_| "true")] { (text) }
            @if let Some(n) = notice { (view::error(&n.error)) }
            p { button type="submit" { "Save lifecycle policy" } }
        }
    }
}

/// `POST /console/repositories/lifecycle-policy` (name in the form: it holds slashes).
pub(crate) async fn put_lifecycle_policy(ctx: Ctx, body: bytes::Bytes) -> Response {
    let form = match ctx.form(&body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let name = form.get("name");
    let input = json!({"repositoryName": name, "lifecyclePolicyText": form.get("policy")});
    match ctx.call(ECR, "PutLifecyclePolicy", input).await {
        Ok(_) => see_other(&format!("/repositories/view?name={}#lifecycle", seg(name))),
        Err(error) => {
            let notice = PolicyNotice {
                text: form.get("policy"),
                error,
            };
            let body = repository_body(&ctx, name, Some(&notice)).await;
            super::services::with_status(ctx.page(name, Section::Repositories, body))
        }
    }
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
