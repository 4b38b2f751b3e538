//! What each CloudWatch Logs operation needs permission for, as the Service Authorization
//! Reference lists it ("Actions, resources, and condition keys for Amazon CloudWatch
//! Logs"): `logs:` actions on log-group ARNs (`…:log-group:NAME`) or log-stream ARNs
//! (`…:log-group:NAME:log-stream:STREAM`, for PutLogEvents and GetLogEvents), `*` for
//! DescribeLogGroups and operations without a resource type, and request tags.

use crate::Operation;
use model::ecs::arn::ArnScope;
use model::logs::names::{log_group_arn, log_group_from_identifier, log_stream_arn};
use serde::Deserialize;
use std::collections::BTreeMap;
use wire::Access;

const LOGS: &str = "logs";

/// The request members authorization looks at.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Fields {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_group_names: Option<Vec<String>>,
    log_group_identifiers: Option<Vec<String>>,
    log_stream_name: Option<String>,
    resource_arn: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    tag_keys: Option<Vec<String>>,
}

/// What `op` with JSON `body` needs (a body that does not decode maps to what can be
/// read; the handler answers its error).
pub(crate) fn accesses(scope: &ArnScope, op: Operation, body: &[u8]) -> Vec<Access> {
    let fields: Fields = serde_json::from_slice(body).unwrap_or_default();
    map(scope, op, &fields)
}

/// The accesses of `op` given its decoded `fields`.
pub(crate) fn map(scope: &ArnScope, op: Operation, f: &Fields) -> Vec<Access> {
    use Operation as Op;
    let (region, account) = (scope.region.as_str(), scope.account_id.as_str());
    let group = f.log_group_name.as_deref().or_else(|| {
        f.log_group_identifier
            .as_deref()
            .and_then(log_group_from_identifier)
    });
    let on = |resource: String| Access::new(LOGS, op.name(), resource);
    let group_arn = || group.map_or_else(|| "*".to_owned(), |g| log_group_arn(region, account, g));
    if op == Op::StartQuery {
        // A query needs logs:StartQuery on every group it reads.
        let groups: Vec<&str> = group
            .into_iter()
            .chain(f.log_group_names.iter().flatten().map(String::as_str))
            .chain(
                f.log_group_identifiers
                    .iter()
                    .flatten()
                    .filter_map(|i| log_group_from_identifier(i)),
            )
            .collect();
        if !groups.is_empty() {
            return groups
                .into_iter()
                .map(|g| on(log_group_arn(region, account, g)))
                .collect();
        }
    }
    let mut access = match op {
        Op::PutLogEvents | Op::GetLogEvents => match (group, f.log_stream_name.as_deref()) {
            (Some(g), Some(s)) => on(log_stream_arn(region, account, g, s)),
            _ => on(group_arn()),
        },
        Op::CreateLogGroup
        | Op::DeleteLogGroup
        | Op::PutRetentionPolicy
        | Op::DeleteRetentionPolicy
        | Op::CreateLogStream
        | Op::DeleteLogStream
        | Op::DescribeLogStreams
        | Op::FilterLogEvents
        | Op::TagLogGroup
        | Op::UntagLogGroup
        | Op::ListTagsLogGroup
        | Op::GetLogGroupFields
        | Op::PutMetricFilter
        | Op::DeleteMetricFilter
        | Op::DescribeMetricFilters => on(group_arn()),
        Op::TagResource | Op::UntagResource | Op::ListTagsForResource => on(f
            .resource_arn
            .as_deref()
            .map_or_else(|| "*".to_owned(), |a| a.trim_end_matches(":*").to_owned())),
        // DescribeLogGroups, ListLogGroups, TestMetricFilter, the resource policy
        // operations (account-level in the Service Authorization Reference) and
        // operations Stevedore does not serve.
        _ => on("*".to_owned()),
    };
    if let Some(tags) = &f.tags {
        access =
            access.with_request_tags(tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    }
    if let Some(keys) = &f.tag_keys {
        access = access.with_key(
            "aws:TagKeys",
            policy::ContextValue::strings(keys.iter().cloned()),
        );
    }
    vec![access]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> ArnScope {
        ArnScope {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
        }
    }

    fn mapped(op: Operation, body: serde_json::Value) -> (String, String) {
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let a = accesses(&scope(), op, &body);
        assert_eq!(a.len(), 1);
        (a[0].action(), a[0].resource().to_owned())
    }

    #[test]
    fn put_log_events_is_on_the_log_stream() {
        assert_eq!(
            mapped(
                Operation::PutLogEvents,
                json!({"logGroupName": "/ecs/app", "logStreamName": "web/1", "logEvents": []})
            ),
            (
                "logs:PutLogEvents".into(),
                "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/app:log-stream:web/1".into()
            )
        );
    }

    #[test]
    fn group_operations_are_on_the_log_group_and_describe_groups_on_any() {
        assert_eq!(
            mapped(
                Operation::CreateLogGroup,
                json!({"logGroupName": "g", "tags": {"a": "b"}})
            ),
            (
                "logs:CreateLogGroup".into(),
                "arn:aws:logs:us-east-1:000000000000:log-group:g".into()
            )
        );
        assert_eq!(
            mapped(
                Operation::DescribeLogStreams,
                json!({"logGroupIdentifier": "arn:aws:logs:us-east-1:000000000000:log-group:g:*"})
            )
            .1,
            "arn:aws:logs:us-east-1:000000000000:log-group:g"
        );
        assert_eq!(
            mapped(Operation::DescribeLogGroups, json!({})),
            ("logs:DescribeLogGroups".into(), "*".into())
        );
    }

    #[test]
    fn start_query_needs_every_group_it_reads() {
        let body = serde_json::to_vec(&json!({"logGroupNames": ["a", "b"], "startTime": 0, "endTime": 1, "queryString": "fields @message"}))
            .unwrap_or_default();
        let a = accesses(&scope(), Operation::StartQuery, &body);
        let resources: Vec<&str> = a.iter().map(|a| a.resource()).collect();
        assert_eq!(
            resources,
            [
                "arn:aws:logs:us-east-1:000000000000:log-group:a",
                "arn:aws:logs:us-east-1:000000000000:log-group:b"
            ]
        );
    }

    #[test]
    fn create_log_group_carries_its_request_tags() {
        let body = serde_json::to_vec(&json!({"logGroupName": "g", "tags": {"team": "a"}}))
            .unwrap_or_default();
        let a = accesses(&scope(), Operation::CreateLogGroup, &body);
        assert_eq!(a[0].request_tags(), [("team".to_owned(), "a".to_owned())]);
    }
}
