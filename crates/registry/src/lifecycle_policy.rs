//! ECR lifecycle policies: parsing with AWS's rule grammar, planning which images a
//! policy expires (shared by the preview API and the scheduled run), and applying it.
//!
//! Each image belongs to the first rule (by `rulePriority`) whose tag selection it
//! matches; a lower-priority rule never expires an image a higher one selected. Within
//! a rule, `imageCountMoreThan` keeps the N most recently pushed images and
//! `sinceImagePushed` expires images older than N days.

use crate::error::{invalid, RegistryError};
use crate::objects::{now, RepoRecord, REPO_PREFIX};
use crate::Registry;
use model::ecr::shapes::{
    ImageActionType, LifecyclePolicyPreviewResult, LifecyclePolicyRuleAction,
};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// A parsed policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Rules, any order in the text.
    pub rules: Vec<Rule>,
}

/// One rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique, positive; lower runs first.
    #[serde(rename = "rulePriority")]
    pub rule_priority: i32,
    /// Free text (accepted and kept only for the grammar's sake).
    #[serde(default)]
    #[allow(dead_code)]
    pub description: Option<String>,
    /// Which images.
    pub selection: Selection,
    /// What to do (only `expire`).
    pub action: Action,
}

/// A rule's selection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// `tagged`, `untagged` or `any`.
    #[serde(rename = "tagStatus")]
    pub tag_status: String,
    /// Tag prefixes (tagged only).
    #[serde(rename = "tagPrefixList", default)]
    pub tag_prefix_list: Option<Vec<String>>,
    /// Tag wildcard patterns (tagged only).
    #[serde(rename = "tagPatternList", default)]
    pub tag_pattern_list: Option<Vec<String>>,
    /// `imageCountMoreThan` or `sinceImagePushed`.
    #[serde(rename = "countType")]
    pub count_type: String,
    /// `days` (sinceImagePushed only).
    #[serde(rename = "countUnit", default)]
    pub count_unit: Option<String>,
    /// N.
    #[serde(rename = "countNumber")]
    pub count_number: i64,
}

/// A rule's action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// Only `expire`.
    #[serde(rename = "type")]
    pub kind: String,
}

fn refuse<T>(why: impl std::fmt::Display) -> Result<T, RegistryError> {
    invalid(format!("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: {why}'"))
}

/// Parses and validates a policy by ECR's rules.
pub fn parse_policy(text: &str) -> Result<Policy, RegistryError> {
    if text.len() < 100 || text.len() > 30720 {
        return refuse("the policy text must be 100-30720 characters");
    }
    let mut p: Policy = match serde_json::from_str(text) {
        Ok(p) => p,
        Err(e) => return refuse(format!("{e}")),
    };
    if p.rules.is_empty() {
        return refuse("the policy needs at least one rule");
    }
    p.rules.sort_by_key(|r| r.rule_priority);
    let mut seen = BTreeSet::new();
    for (i, r) in p.rules.iter().enumerate() {
        if r.rule_priority < 1 || !seen.insert(r.rule_priority) {
            return refuse(format!(
                "rulePriority {} must be a unique positive integer",
                r.rule_priority
            ));
        }
        if r.action.kind != "expire" {
            return refuse(format!(
                "action type '{}' is not supported (expire)",
                r.action.kind
            ));
        }
        let s = &r.selection;
        let lists = (
            s.tag_prefix_list.as_ref().is_some_and(|l| !l.is_empty()),
            s.tag_pattern_list.as_ref().is_some_and(|l| !l.is_empty()),
        );
        match s.tag_status.as_str() {
            "tagged" => {
                if lists == (false, false) || lists == (true, true) {
                    return refuse(
                        "a tagged rule needs exactly one of tagPrefixList or tagPatternList",
                    );
                }
            }
            "untagged" | "any" => {
                if lists != (false, false) {
                    return refuse("tag lists are only allowed with tagStatus tagged");
                }
                if s.tag_status == "any" && i + 1 != p.rules.len() {
                    return refuse("a rule with tagStatus any must have the highest rulePriority");
                }
            }
            other => {
                return refuse(format!(
                    "tagStatus '{other}' is not tagged, untagged or any"
                ))
            }
        }
        if s.count_number < 1 {
            return refuse("countNumber must be at least 1");
        }
        match (s.count_type.as_str(), s.count_unit.as_deref()) {
            ("imageCountMoreThan", None) | ("sinceImagePushed", Some("days")) => {}
            ("imageCountMoreThan", Some(_)) => {
                return refuse("countUnit is not allowed with imageCountMoreThan")
            }
            ("sinceImagePushed", _) => return refuse("sinceImagePushed needs countUnit days"),
            (other, _) => {
                return refuse(format!(
                    "countType '{other}' is not imageCountMoreThan or sinceImagePushed"
                ))
            }
        }
    }
    Ok(p)
}

/// Matches `*` wildcards.
pub(crate) fn wildcard(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first)
        || !s[first.len()..].ends_with(last)
        || s.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn selects(s: &Selection, tags: &[String]) -> bool {
    match s.tag_status.as_str() {
        "untagged" => tags.is_empty(),
        "any" => true,
        _ => tags.iter().any(|t| {
            s.tag_prefix_list
                .iter()
                .flatten()
                .any(|p| t.starts_with(p.as_str()))
                || s.tag_pattern_list.iter().flatten().any(|p| wildcard(p, t))
        }),
    }
}

/// The images `policy` expires in repository `name` at time `now`.
pub async fn plan(
    reg: &Registry,
    name: &str,
    policy: &Policy,
    now: f64,
) -> Result<Vec<LifecyclePolicyPreviewResult>, RegistryError> {
    let mut tags: BTreeMap<oci::Digest, Vec<String>> = BTreeMap::new();
    for (t, rec) in reg.tags(name).await? {
        tags.entry(rec.digest).or_default().push(t);
    }
    let mut images = reg.manifests(name).await?;
    images.sort_by(|a, b| b.pushed_at.total_cmp(&a.pushed_at));
    let mut taken = BTreeSet::new();
    let mut out = Vec::new();
    for rule in &policy.rules {
        let mut kept = 0i64;
        for m in &images {
            let t = tags.get(&m.digest).cloned().unwrap_or_default();
            if taken.contains(&m.digest) || !selects(&rule.selection, &t) {
                continue;
            }
            taken.insert(m.digest.clone());
            let expire = match rule.selection.count_type.as_str() {
                "imageCountMoreThan" => {
                    kept += 1;
                    kept > rule.selection.count_number
                }
                _ => now - m.pushed_at > rule.selection.count_number as f64 * 86400.0,
            };
            if expire {
                out.push(LifecyclePolicyPreviewResult {
                    image_tags: Some(t),
                    image_digest: Some(m.digest.to_string()),
                    image_pushed_at: Some(m.pushed_at),
                    action: Some(LifecyclePolicyRuleAction {
                        type_: Some(ImageActionType::Expire),
                        target_storage_class: None,
                    }),
                    applied_rule_priority: Some(rule.rule_priority),
                    storage_class: None,
                });
            }
        }
    }
    Ok(out)
}

/// Applies every repository's lifecycle policy (the scheduled run).
pub async fn apply_all(reg: &Registry) -> Result<usize, RegistryError> {
    let mut expired = 0;
    for (_, rec, _) in reg.objects().list::<RepoRecord>(REPO_PREFIX).await? {
        let (Some(text), Some(name)) = (&rec.lifecycle_policy, &rec.repository.repository_name)
        else {
            continue;
        };
        let Ok(policy) = parse_policy(text) else {
            continue;
        };
        for r in plan(reg, name, &policy, now()).await? {
            let Some(d) = r
                .image_digest
                .as_deref()
                .and_then(|d| oci::Digest::parse(d).ok())
            else {
                continue;
            };
            match reg.delete_manifest(name, &d).await {
                Ok(_) | Err(RegistryError::ImageNotFound(_)) => expired += 1,
                Err(e) => return Err(e),
            }
            tracing::info!(repository = %name, digest = %d, rule = r.applied_rule_priority, "Lifecycle policy expired an image.");
        }
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &str) -> String {
        format!(r#"{{"rules":[{rules}]}}{}"#, " ".repeat(100))
    }

    #[test]
    fn grammar_is_enforced() {
        let ok = policy(
            r#"{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}"#,
        );
        assert!(parse_policy(&ok).is_ok());
        let tagged_without_list = policy(
            r#"{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}"#,
        );
        assert!(parse_policy(&tagged_without_list).is_err());
        let any_not_last = policy(
            r#"{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}"#,
        );
        assert!(parse_policy(&any_not_last).is_err());
        let unit_on_count = policy(
            r#"{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countUnit":"days","countNumber":1},"action":{"type":"expire"}}"#,
        );
        assert!(parse_policy(&unit_on_count).is_err());
    }

    #[test]
    fn wildcards_match_like_ecr() {
        assert!(wildcard("prod*", "prod-1"));
        assert!(wildcard("*-rc*", "v1-rc2"));
        assert!(!wildcard("prod*", "dev"));
        assert!(wildcard("exact", "exact"));
    }
}
