//! Task definitions: the families, a family's revisions, one revision as JSON with a
//! run-task form (container command and environment overrides, count), and the "create
//! new revision" editor: a JSON textarea prefilled with a revision's registrable fields,
//! sent as is to RegisterTaskDefinition, whose refusal is shown under the editor with the
//! line it points at.

use super::{see_other, seg, Ctx};
use crate::client::{ApiError, ECS};
use crate::view::{self, csrf, empty, json_block, list, s, short_arn, url, Section};
use axum::extract::{Path, Query};
use axum::response::Response;
use maud::{html, Markup};
use serde_json::{json, Map, Value};
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
            p { a href=(url(&format!("/task-definitions/{}/new", seg(&family)))) { "Create new revision" } }
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
    let body = revision_body(&ctx, &family, &revision, None).await;
    ctx.page(
        &format!("{family}:{revision}"),
        Section::TaskDefinitions,
        body,
    )
}

/// What a failed run-task attempt left to show beside its form: the form as typed, and
/// the error (AWS's, or why the console could not read a field).
struct RunNotice<'a> {
    form: &'a super::Form,
    error: Option<ApiError>,
    /// `failures` of a RunTask that answered 200 but could not place every task.
    failures: Vec<Value>,
    started: Vec<Value>,
}

async fn revision_body(
    ctx: &Ctx,
    family: &str,
    revision: &str,
    notice: Option<&RunNotice<'_>>,
) -> Markup {
    let name = format!("{family}:{revision}");
    let crumbs = html! {
        p.crumbs { a href=(url("/task-definitions")) { "Task definitions" } " / "
            a href=(url(&format!("/task-definitions/{}", seg(family)))) { (family) } " / " (revision) }
        h1 { (name) }
    };
    let input = json!({"taskDefinition": name, "include": ["TAGS"]});
    let d = match ctx.call(ECS, "DescribeTaskDefinition", input).await {
        Ok(d) => d,
        Err(e) => return html! { (crumbs) (view::error(&e)) },
    };
    let td = &d["taskDefinition"];
    let clusters = cluster_names(ctx).await;
    html! {
        (crumbs)
        p { a href=(url(&format!("/task-definitions/{}/new?from={}", seg(family), seg(revision)))) { "Create new revision from this one" } }
        @if view::s(td, "status") == "ACTIVE" {
            (run_form(ctx, family, revision, td, &clusters, notice))
        }
        h2 { "JSON" }
        (json_block(td))
    }
}

/// The names of the first 100 clusters, for the run-task form's select.
async fn cluster_names(ctx: &Ctx) -> Result<Vec<String>, ApiError> {
    let listed = ctx
        .call(ECS, "ListClusters", json!({"maxResults": 100}))
        .await?;
    Ok(list(&listed, "clusterArns")
        .iter()
        .filter_map(Value::as_str)
        .map(|arn| short_arn(arn).to_owned())
        .collect())
}

fn run_form(
    ctx: &Ctx,
    family: &str,
    revision: &str,
    td: &Value,
    clusters: &Result<Vec<String>, ApiError>,
    notice: Option<&RunNotice<'_>>,
) -> Markup {
    let typed = |k: &str| notice.map(|n| n.form.get(k).to_owned());
    let chosen = typed("cluster").unwrap_or_else(|| "default".to_owned());
    html! {
        h2 #run { "Run task" }
        form.run method="post" action=(url(&format!("/task-definitions/{}/{}/run", seg(family), seg(revision)))) {
            (csrf(&ctx.session))
            div.row {
                label for="run_cluster" { "Cluster" }
                @match clusters {
                    Ok(names) if !names.is_empty() => {
                        select #run_cluster name="cluster" {
                            @for c in names { option value=(c) selected[*c == chosen] { (c) } }
                        }
                    }
                    _ => { input #run_cluster name="cluster" value=(chosen) required; }
                }
                label for="run_count" { "Count" }
                input #run_count name="count" type="number" min="1" max="10" value=(typed("count").unwrap_or_else(|| "1".to_owned())) required;
            }
            @for c in list(td, "containerDefinitions") {
                @let cname = s(c, "name");
                fieldset {
                    legend { "Container " code { (cname) } " overrides" }
                    label for=(format!("command_{cname}")) { "Command " span.muted { "(comma-separated, or a JSON array; empty keeps the definition's)" } }
                    input.wide id=(format!("command_{cname}")) name=(format!("command:{cname}"))
                        value=(typed(&format!("command:{cname}")).unwrap_or_default())
                        placeholder=(command_text(c));
                    label for=(format!("environment_{cname}")) { "Environment " span.muted { "(NAME=value, one a line; added to the definition's)" } }
                    textarea id=(format!("environment_{cname}")) name=(format!("environment:{cname}")) rows="3" {
                        (typed(&format!("environment:{cname}")).unwrap_or_default())
                    }
                }
            }
            button type="submit" { "Run task" }
            @if let Some(n) = notice {
                @if let Some(e) = &n.error { (view::error(e)) }
                @for f in &n.failures {
                    div.error role="alert" { code { (s(f, "reason")) } ": " (s(f, "detail")) " " span.muted { (s(f, "arn")) } }
                }
                @if !n.started.is_empty() {
                    p { "Started: " @for t in &n.started {
                        @let id = short_arn(s(t, "taskArn"));
                        a href=(url(&format!("/clusters/{}/tasks/{}", seg(&chosen), seg(id)))) { (id) } " "
                    } }
                }
            }
        }
    }
}

/// A container's command as the placeholder shows it.
fn command_text(c: &Value) -> String {
    let words: Vec<&str> = list(c, "command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if words.is_empty() {
        "(the image's command)".to_owned()
    } else {
        serde_json::to_string(&words).unwrap_or_default()
    }
}

/// A typed command: a JSON array of strings, or words separated by commas (as the AWS
/// console takes it). `None` when empty.
fn parse_command(text: &str) -> Result<Option<Vec<String>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.starts_with('[') {
        return serde_json::from_str::<Vec<String>>(text)
            .map(Some)
            .map_err(|e| format!("The command is not a JSON array of strings: {e}."));
    }
    Ok(Some(text.split(',').map(|w| w.trim().to_owned()).collect()))
}

/// Typed environment lines (`NAME=value`) as ECS key-value pairs.
fn parse_environment(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!(
                "Environment line {}: '{line}' is not NAME=value.",
                i + 1
            ));
        };
        out.push(json!({"name": name.trim(), "value": value}));
    }
    Ok(out)
}

/// The RunTask request the form asks for, or why a field cannot be read.
fn run_input(
    family: &str,
    revision: &str,
    td: &Value,
    form: &super::Form,
) -> Result<Value, String> {
    let mut overrides = Vec::new();
    for c in list(td, "containerDefinitions") {
        let cname = s(c, "name");
        let command = parse_command(form.get(&format!("command:{cname}")))
            .map_err(|e| format!("Container '{cname}': {e}"))?;
        let environment = parse_environment(form.get(&format!("environment:{cname}")))
            .map_err(|e| format!("Container '{cname}': {e}"))?;
        if command.is_none() && environment.is_empty() {
            continue;
        }
        let mut o = json!({"name": cname});
        if let Some(cmd) = command {
            o["command"] = json!(cmd);
        }
        if !environment.is_empty() {
            o["environment"] = json!(environment);
        }
        overrides.push(o);
    }
    // What is not a number goes to the API as 0 so that its own validation answers.
    let count: i64 = form.get("count").trim().parse().unwrap_or(0);
    let mut input = json!({
        "cluster": form.get("cluster"),
        "taskDefinition": format!("{family}:{revision}"),
        "count": count,
        "startedBy": "stevedore-console",
    });
    if !overrides.is_empty() {
        input["overrides"] = json!({"containerOverrides": overrides});
    }
    Ok(input)
}

/// `POST /console/task-definitions/{family}/{revision}/run`.
pub(crate) async fn run(
    ctx: Ctx,
    Path((family, revision)): Path<(String, String)>,
    body: bytes::Bytes,
) -> Response {
    let form = match ctx.form(&body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let name = format!("{family}:{revision}");
    let described = ctx
        .call(
            ECS,
            "DescribeTaskDefinition",
            json!({"taskDefinition": name}),
        )
        .await;
    let mut notice = RunNotice {
        form: &form,
        error: None,
        failures: Vec::new(),
        started: Vec::new(),
    };
    match described.map(|d| run_input(&family, &revision, &d["taskDefinition"], &form)) {
        Err(e) => notice.error = Some(e),
        Ok(Err(why)) => {
            notice.error = Some(ApiError {
                code: "InvalidInput".into(),
                message: why,
            });
        }
        Ok(Ok(input)) => match ctx.call(ECS, "RunTask", input).await {
            Ok(r) => {
                let tasks = list(&r, "tasks");
                let failures = list(&r, "failures");
                if failures.is_empty() {
                    let cluster = seg(form.get("cluster"));
                    return match tasks {
                        [one] => see_other(&format!(
                            "/clusters/{cluster}/tasks/{}",
                            seg(short_arn(s(one, "taskArn")))
                        )),
                        _ => see_other(&format!("/clusters/{cluster}")),
                    };
                }
                notice.failures = failures.to_vec();
                notice.started = tasks.to_vec();
            }
            Err(e) => notice.error = Some(e),
        },
    }
    let body = revision_body(&ctx, &family, &revision, Some(&notice)).await;
    super::services::with_status(ctx.page(&name, Section::TaskDefinitions, body))
}

/// RegisterTaskDefinition's members: what the editor keeps of a described revision.
const REGISTRABLE: [&str; 19] = [
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "tags",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
    "trustedExecutionConfiguration",
];

/// A DescribeTaskDefinition answer as a RegisterTaskDefinition request: its registrable
/// fields (not the ARN, revision, status, compatibilities or registration times) and its
/// tags when it has any.
fn registrable(described: &Value) -> Value {
    let td = &described["taskDefinition"];
    let mut out = Map::new();
    for key in REGISTRABLE {
        let v = if key == "tags" {
            &described["tags"]
        } else {
            &td[key]
        };
        let empty = v.is_null() || v.as_array().is_some_and(Vec::is_empty);
        if !empty {
            out.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// `GET /console/task-definitions/{family}/new?from=REVISION` (the latest without `from`).
pub(crate) async fn editor(
    ctx: Ctx,
    Path(family): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let source = match q.get("from") {
        Some(rev) => format!("{family}:{rev}"),
        None => family.clone(),
    };
    let input = json!({"taskDefinition": source, "include": ["TAGS"]});
    let body = match ctx.call(ECS, "DescribeTaskDefinition", input).await {
        Ok(d) => {
            let text = serde_json::to_string_pretty(&registrable(&d)).unwrap_or_default();
            editor_body(&ctx.session, &family, &text, None)
        }
        Err(e) => html! { (editor_crumbs(&family)) (view::error(&e)) },
    };
    ctx.page(
        &format!("New revision of {family}"),
        Section::TaskDefinitions,
        body,
    )
}

fn editor_crumbs(family: &str) -> Markup {
    html! {
        p.crumbs { a href=(url("/task-definitions")) { "Task definitions" } " / "
            a href=(url(&format!("/task-definitions/{}", seg(family)))) { (family) } " / new revision" }
        h1 { "New revision of " (family) }
    }
}

/// Where an error points in the editor's text: a 1-based line, when it can be told.
struct Located {
    error: ApiError,
    line: Option<usize>,
}

fn editor_body(
    session: &crate::session::Session,
    family: &str,
    text: &str,
    error: Option<&Located>,
) -> Markup {
    let lines = text.lines().count().clamp(12, 40);
    let line = error.and_then(|e| e.line);
    html! {
        (editor_crumbs(family))
        p.muted { "The JSON is a RegisterTaskDefinition request (as "
            code { "aws ecs register-task-definition --cli-input-json" } " takes it), prefilled from the latest revision. Registering creates the next revision of its family." }
        form method="post" action=(url(&format!("/task-definitions/{}/new", seg(family)))) {
            (csrf(session))
            label for="definition" { "Task definition JSON" }
            textarea.code #definition name="definition" rows=(lines) spellcheck="false"
                aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "definition-error")]
                data-error-line=[line] { (text) }
            @if let Some(e) = error {
                div #definition-error.error role="alert" {
                    code { (e.error.code) } ": " (e.error.message)
                    @if let Some(l) = line {
                        br; span { "At line " (l) ": " code { (text.lines().nth(l - 1).unwrap_or("").trim()) } }
                    }
                }
            }
            p { button type="submit" { "Register new revision" } }
        }
    }
}

/// The line of `text` an API validation message points at, from the names it quotes
/// (`Invalid 'memory' setting for container 'app'`): the member it names inside the
/// container it names (a line `"memory": …` indented as that container's `"name"` line,
/// in the same object), else the container's `"name"` line, else the least indented
/// line of a member it names (`Invalid 'cpu' setting for task`).
fn line_of(text: &str, message: &str) -> Option<usize> {
    let quoted: Vec<&str> = message.split('\'').skip(1).step_by(2).collect();
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let is_member = |l: &str, name: &str| l.trim_start().starts_with(&format!("\"{name}\""));
    let container = quoted.iter().find_map(|q| {
        let needle = format!("\"{q}\"");
        lines
            .iter()
            .position(|l| is_member(l, "name") && l.contains(&needle))
            .map(|i| (i, *q))
    });
    if let Some((at, name)) = container {
        let depth = indent(lines[at]);
        // The container's object: the lines around its name not less indented than it.
        let first = (0..at)
            .rev()
            .find(|&i| indent(lines[i]) < depth)
            .map_or(0, |i| i + 1);
        let last = (at..lines.len())
            .find(|&i| indent(lines[i]) < depth)
            .unwrap_or(lines.len());
        let member = quoted.iter().filter(|q| **q != name).find_map(|q| {
            (first..last).find(|&i| indent(lines[i]) == depth && is_member(lines[i], q))
        });
        return Some(member.unwrap_or(at) + 1);
    }
    quoted.iter().find_map(|q| {
        (0..lines.len())
            .filter(|&i| is_member(lines[i], q))
            .min_by_key(|&i| indent(lines[i]))
            .map(|i| i + 1)
    })
}

/// `POST /console/task-definitions/{family}/new`.
pub(crate) async fn register(ctx: Ctx, Path(family): Path<String>, body: bytes::Bytes) -> Response {
    let form = match ctx.form(&body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let text = form.get("definition");
    let located = match serde_json::from_str::<Value>(text) {
        Err(e) => Located {
            error: ApiError {
                code: "SerializationException".into(),
                message: format!("The JSON does not parse: {e}."),
            },
            line: Some(e.line().max(1)),
        },
        Ok(v) if !v.is_object() => Located {
            error: ApiError {
                code: "SerializationException".into(),
                message: "The JSON must be an object (a RegisterTaskDefinition request).".into(),
            },
            line: Some(1),
        },
        Ok(input) => match ctx.call(ECS, "RegisterTaskDefinition", input).await {
            Ok(r) => {
                let td = &r["taskDefinition"];
                return see_other(&format!(
                    "/task-definitions/{}/{}",
                    seg(s(td, "family")),
                    view::n(td, "revision")
                ));
            }
            Err(e) => Located {
                line: line_of(text, &e.message),
                error: e,
            },
        },
    };
    let body = editor_body(&ctx.session, &family, text, Some(&located));
    super::services::with_status(ctx.page(
        &format!("New revision of {family}"),
        Section::TaskDefinitions,
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_read_as_json_arrays_or_comma_separated_words() {
        assert_eq!(parse_command("  "), Ok(None));
        assert_eq!(
            parse_command("sh, -c ,echo hi"),
            Ok(Some(vec!["sh".into(), "-c".into(), "echo hi".into()]))
        );
        assert_eq!(
            parse_command(r#"["sh","-c","echo a,b"]"#),
            Ok(Some(vec!["sh".into(), "-c".into(), "echo a,b".into()]))
        );
        assert!(parse_command("[1, 2]").is_err());
    }

    #[test]
    fn environment_lines_need_an_equals_sign() {
        let env = parse_environment("A=1\n\nB=x=y\r\n").expect("parses");
        assert_eq!(
            env,
            vec![
                json!({"name": "A", "value": "1"}),
                json!({"name": "B", "value": "x=y"})
            ]
        );
        let err = parse_environment("A=1\nnope").expect_err("refused");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn the_editor_keeps_only_registrable_fields_and_non_empty_tags() {
        let described = json!({
            "taskDefinition": {"family": "web", "revision": 3, "status": "ACTIVE",
                "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3",
                "containerDefinitions": [{"name": "app"}], "volumes": [],
                "requiresAttributes": [{"name": "x"}], "registeredAt": 1.0, "networkMode": "bridge"},
            "tags": []
        });
        assert_eq!(
            registrable(&described),
            json!({"family": "web", "containerDefinitions": [{"name": "app"}], "networkMode": "bridge"})
        );
    }

    #[test]
    fn a_message_points_at_the_member_it_names_in_the_container_it_names() {
        let text = "{\n  \"containerDefinitions\": [\n    {\n      \"memory\": 2,\n      \"name\": \"side\"\n    },\n    {\n      \"memory\": 2,\n      \"name\": \"app\",\n      \"cpu\": 1\n    }\n  ],\n  \"cpu\": \"9\"\n}";
        assert_eq!(
            line_of(
                text,
                "Invalid 'memory' setting for container 'app': 2 MiB. The minimum is 6 MiB."
            ),
            Some(8)
        );
        assert_eq!(
            line_of(text, "Invalid setting for container 'app'. At least one of 'memoryReservation' must be specified."),
            Some(9)
        );
        assert_eq!(
            line_of(text, "Invalid 'cpu' setting for task: '9'."),
            Some(13)
        );
        assert_eq!(line_of(text, "Container list cannot be empty."), None);
    }
}
