//! Load balancers: the list, and one load balancer with its listeners, each listener's
//! rules in evaluation order, and the health of every target of the target groups they
//! forward to (ELBv2 speaks the query protocol, so answers are XML).

use super::{seg, Ctx};
use crate::client::{xml_members, xml_text, ApiError, ELBV2};
use crate::view::{self, empty, status, url, Section};
use axum::extract::Query;
use axum::response::Response;
use maud::{html, Markup};
use std::collections::HashMap;

fn parse(text: &str) -> Result<roxmltree::Document<'_>, ApiError> {
    roxmltree::Document::parse(text).map_err(|e| ApiError {
        code: "InternalFailure".into(),
        message: format!("ELBv2 answered a document that does not parse: {e}"),
    })
}

/// `GET /console/load-balancers`.
pub(crate) async fn list(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut params = vec![("PageSize", "50")];
    if let Some(m) = q.get("next") {
        params.push(("Marker", m.as_str()));
    }
    let body = match ctx.query(ELBV2, "DescribeLoadBalancers", &params).await {
        Ok(text) => match parse(&text) {
            Ok(doc) => {
                let lbs = xml_members(&doc, "LoadBalancers");
                let next = xml_text(doc.root(), "NextMarker");
                html! {
                    h1 { "Load balancers" }
                    @if lbs.is_empty() {
                        (empty("No load balancer yet.", "aws elbv2 create-load-balancer --name web --subnets subnet-1"))
                    } @else {
                        div.scroll { table {
                            thead { tr { th { "Name" } th { "Type" } th { "State" } th { "DNS name" } } }
                            tbody { @for lb in &lbs {
                                @let arn = xml_text(*lb, "LoadBalancerArn").unwrap_or("");
                                tr {
                                    td { a href=(url(&format!("/load-balancers/view?arn={}", seg(arn)))) { (xml_text(*lb, "LoadBalancerName").unwrap_or("")) } }
                                    td { (xml_text(*lb, "Type").unwrap_or("")) }
                                    td { (status(xml_text(*lb, "Code").unwrap_or(""))) }
                                    td { code { (xml_text(*lb, "DNSName").unwrap_or("")) } }
                                }
                            } }
                        } }
                    }
                    (super::clusters::pager("/load-balancers?", next))
                }
            }
            Err(e) => view::error(&e),
        },
        Err(e) => html! { h1 { "Load balancers" } (view::error(&e)) },
    };
    ctx.page("Load balancers", Section::LoadBalancers, body)
}

/// `GET /console/load-balancers/view?arn=…`.
pub(crate) async fn show(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    let arn = q.get("arn").cloned().unwrap_or_default();
    let name = arn.split('/').nth(2).unwrap_or(&arn).to_owned();
    let here = url(&format!("/load-balancers/view?arn={}", seg(&arn)));
    let listeners = listeners(&ctx, &arn).await;
    let groups = target_groups(&ctx, &arn).await;
    let body = html! {
        p.crumbs { a href=(url("/load-balancers")) { "Load balancers" } " / " (name) }
        h1 { (name) }
        (view::live(&here, html! {
            h2 { "Listeners" } (listeners)
            h2 { "Target groups and target health" } (groups)
        }))
    };
    ctx.page(&name, Section::LoadBalancers, body)
}

/// The members of list `list` in the answer to `action`, each as its elements' texts by
/// tag name (the first of each name: the shapes shown here repeat none that matter).
async fn members(
    ctx: &Ctx,
    action: &str,
    params: &[(&str, &str)],
    list: &str,
) -> Result<Vec<HashMap<String, String>>, ApiError> {
    let text = ctx.query(ELBV2, action, params).await?;
    let doc = parse(&text)?;
    Ok(xml_members(&doc, list)
        .into_iter()
        .map(|m| {
            let mut fields = HashMap::new();
            for n in m.descendants().filter(roxmltree::Node::is_element) {
                if let Some(t) = n.text() {
                    fields
                        .entry(n.tag_name().name().to_owned())
                        .or_insert_with(|| t.to_owned());
                }
            }
            fields
        })
        .collect())
}

fn field<'a>(m: &'a HashMap<String, String>, name: &str) -> &'a str {
    m.get(name).map_or("", String::as_str)
}

async fn listeners(ctx: &Ctx, lb: &str) -> Markup {
    let listeners = match members(
        ctx,
        "DescribeListeners",
        &[("LoadBalancerArn", lb)],
        "Listeners",
    )
    .await
    {
        Ok(l) => l,
        Err(e) => return view::error(&e),
    };
    let mut rules = Vec::new();
    for l in &listeners {
        rules.push(listener_rules(ctx, field(l, "ListenerArn")).await);
    }
    html! {
        @if listeners.is_empty() { p.muted { "No listener." } } @else {
            table {
                thead { tr { th { "Protocol" } th.num { "Port" } th { "Default action" } } }
                tbody { @for l in &listeners {
                    tr {
                        td { (field(l, "Protocol")) }
                        td.num { (field(l, "Port")) }
                        td { (field(l, "Type")) " " span.muted { (target_group_name(field(l, "TargetGroupArn"))) } }
                    }
                } }
            }
            @for (l, r) in listeners.iter().zip(&rules) {
                h3 { "Rules of " (field(l, "Protocol")) ":" (field(l, "Port")) }
                (r)
            }
        }
    }
}

/// A target group's name, from its ARN (`…:targetgroup/NAME/ID`).
fn target_group_name(arn: &str) -> &str {
    arn.split('/').nth(1).unwrap_or(arn)
}

/// One rule as the page shows it: priority, conditions and actions in words.
#[derive(Debug, PartialEq, Eq)]
struct Rule {
    priority: String,
    conditions: Vec<String>,
    actions: Vec<String>,
}

/// The rules of a DescribeRules answer.
fn parse_rules(doc: &roxmltree::Document<'_>) -> Vec<Rule> {
    xml_members(doc, "Rules")
        .into_iter()
        .map(|rule| {
            let items = |list: &str, head: &str| -> Vec<String> {
                rule.children()
                    .find(|n| n.has_tag_name(list))
                    .map(|l| {
                        l.children()
                            .filter(|n| n.has_tag_name("member"))
                            .map(|m| describe_item(m, head))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            Rule {
                priority: xml_text(rule, "Priority").unwrap_or("").to_owned(),
                conditions: items("Conditions", "Field"),
                actions: items("Actions", "Type"),
            }
        })
        .collect()
}

/// A condition or action in words: its `head` element (Field, Type), then every other
/// leaf's text once, target group ARNs by name (`path-pattern: /api/*`,
/// `forward: TargetGroupArn=api`).
fn describe_item(node: roxmltree::Node<'_, '_>, head: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    // Stickiness that is off is every forward's default: not worth a word.
    let sticky_off = |n: &roxmltree::Node<'_, '_>| {
        n.ancestors().any(|a| {
            a.has_tag_name("TargetGroupStickinessConfig") && xml_text(a, "Enabled") != Some("true")
        })
    };
    for leaf in node
        .descendants()
        .filter(|n| n.is_element() && !n.children().any(|c| c.is_element()) && !sticky_off(n))
    {
        let name = leaf.tag_name().name();
        let Some(text) = leaf.text() else { continue };
        if name == head || name == "Order" {
            continue;
        }
        let shown = match name {
            // …:targetgroup/NAME/ID
            "TargetGroupArn" => format!("{name}={}", target_group_name(text)),
            "member" => text.to_owned(),
            _ => format!("{name}={text}"),
        };
        if !seen.contains(&shown) {
            seen.push(shown);
        }
    }
    let head = xml_text(node, head).unwrap_or("");
    if seen.is_empty() {
        head.to_owned()
    } else {
        format!("{head}: {}", seen.join(", "))
    }
}

async fn listener_rules(ctx: &Ctx, listener: &str) -> Markup {
    let text = match ctx
        .query(ELBV2, "DescribeRules", &[("ListenerArn", listener)])
        .await
    {
        Ok(t) => t,
        Err(e) => return view::error(&e),
    };
    let rules = match parse(&text) {
        Ok(doc) => parse_rules(&doc),
        Err(e) => return view::error(&e),
    };
    html! {
        table.rules {
            thead { tr { th.num { "Priority" } th { "Conditions" } th { "Actions" } } }
            tbody { @for r in &rules {
                tr {
                    td.num { (r.priority) }
                    td { @if r.conditions.is_empty() { span.muted { "(every request not matched above)" } }
                        @for c in &r.conditions { code { (c) } br; } }
                    td { @for a in &r.actions { code { (a) } br; } }
                }
            } }
        }
    }
}

async fn target_groups(ctx: &Ctx, lb: &str) -> Markup {
    let groups = match members(
        ctx,
        "DescribeTargetGroups",
        &[("LoadBalancerArn", lb)],
        "TargetGroups",
    )
    .await
    {
        Ok(g) => g,
        Err(e) => return view::error(&e),
    };
    let mut out = Vec::new();
    for tg in &groups {
        out.push((
            field(tg, "TargetGroupName"),
            health(ctx, field(tg, "TargetGroupArn")).await,
        ));
    }
    html! {
        @if out.is_empty() { p.muted { "No target group forwards from this load balancer." } }
        @for (name, health) in &out { h3 { (name) } (health) }
    }
}

async fn health(ctx: &Ctx, tg: &str) -> Markup {
    let targets = match members(
        ctx,
        "DescribeTargetHealth",
        &[("TargetGroupArn", tg)],
        "TargetHealthDescriptions",
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return view::error(&e),
    };
    html! {
        @if targets.is_empty() { p.muted { "No registered target." } } @else {
            table {
                thead { tr { th { "Target" } th.num { "Port" } th { "State" } th { "Reason" } } }
                tbody { @for t in &targets {
                    tr {
                        td { (field(t, "Id")) }
                        td.num { (field(t, "Port")) }
                        td { (status(field(t, "State"))) }
                        td { (t.get("Description").or_else(|| t.get("Reason")).map_or("", String::as_str)) }
                    }
                } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_priority_conditions_and_actions_in_words() {
        let xml = r#"<DescribeRulesResponse><DescribeRulesResult><Rules>
<member><RuleArn>r1</RuleArn><Priority>10</Priority><Conditions><member><Field>path-pattern</Field>
<Values><member>/api/*</member></Values><PathPatternConfig><Values><member>/api/*</member></Values></PathPatternConfig></member></Conditions>
<Actions><member><Type>forward</Type><Order>1</Order><TargetGroupArn>arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/api/abc</TargetGroupArn></member></Actions><IsDefault>false</IsDefault></member>
<member><RuleArn>r2</RuleArn><Priority>default</Priority><Conditions/><Actions><member><Type>fixed-response</Type>
<FixedResponseConfig><StatusCode>404</StatusCode></FixedResponseConfig></member><member><Type>forward</Type>
<ForwardConfig><TargetGroups><member><TargetGroupArn>arn:x:targetgroup/web/1</TargetGroupArn><Weight>1</Weight></member></TargetGroups>
<TargetGroupStickinessConfig><Enabled>false</Enabled></TargetGroupStickinessConfig></ForwardConfig></member></Actions><IsDefault>true</IsDefault></member>
</Rules></DescribeRulesResult></DescribeRulesResponse>"#;
        let doc = roxmltree::Document::parse(xml).expect("xml");
        assert_eq!(
            parse_rules(&doc),
            vec![
                Rule {
                    priority: "10".into(),
                    conditions: vec!["path-pattern: /api/*".into()],
                    actions: vec!["forward: TargetGroupArn=api".into()],
                },
                Rule {
                    priority: "default".into(),
                    conditions: vec![],
                    actions: vec![
                        "fixed-response: StatusCode=404".into(),
                        "forward: TargetGroupArn=web, Weight=1".into()
                    ],
                },
            ]
        );
    }
}
