//! ECR lifecycle policies as ECR evaluates them: the rule grammar and its validation
//! ([`parse_policy`]), the pure evaluation deciding which images a policy expires
//! ([`compute_expiries`], shared by the preview API and the scheduled run), and the
//! scheduled run ([`apply_all`]), which records when it last evaluated each repository
//! (GetLifecyclePolicy's `lastEvaluatedAt`).
//!
//! Evaluation follows ECR's documented rules:
//! - rules apply by ascending `rulePriority`;
//! - a `tagged` rule selects an image only when *every* entry of its `tagPrefixList`
//!   (or `tagPatternList`) matches at least one of the image's tags — the entries are
//!   ANDed, never ORed, so a multi-item list expires fewer images, not more;
//! - within a rule, images are ordered newest push first: `imageCountMoreThan N` marks
//!   all but the N newest, `sinceImagePushed N days` those pushed more than N days ago;
//! - an image a higher-priority rule selected is never expired by a lower one, yet it
//!   still counts in the lower rule's window (ECR's "prod and beta" examples);
//! - each image is expired by at most one rule, and an image a manifest list of the
//!   repository references is not expired while that list exists.

use crate::ecr::tags_by_digest;
use crate::error::{invalid, RegistryError};
use crate::objects::{encode, lifecycle_run_key, now, repo_key, RepoRecord, Step, REPO_PREFIX};
use crate::Registry;
use model::ecr::shapes::{
    ImageActionType, LifecyclePolicyPreviewResult, LifecyclePolicyRuleAction,
};
use oci::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use store::Txn;

/// ECR's limits on a policy.
const MIN_TEXT_CHARS: usize = 100;
const MAX_TEXT_CHARS: usize = 30720;
const MAX_RULES: usize = 50;
/// ECR allows at most this many `*` in one `tagPatternList` entry.
const MAX_WILDCARDS: usize = 4;
const SECONDS_PER_DAY: f64 = 86400.0;

/// A parsed, validated policy; its rules sorted by ascending `rulePriority`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Rules.
    pub rules: Vec<Rule>,
}

/// One rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique and positive; lower applies first.
    #[serde(rename = "rulePriority")]
    pub rule_priority: i32,
    /// Free text; part of the grammar, never evaluated.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: Option<String>,
    /// Which images.
    pub selection: Selection,
    /// What happens to them: parsed so that anything but `expire` is refused, and
    /// never read after (expire is all there is).
    #[allow(dead_code)]
    pub action: Action,
}

/// The policy grammar's `tagStatus` (lower case, unlike the API's `TagStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleTagStatus {
    /// Images with at least one tag matching the rule's list.
    Tagged,
    /// Images without tags.
    Untagged,
    /// Every image.
    Any,
}

/// How a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CountType {
    /// Keep the `countNumber` most recently pushed images.
    #[serde(rename = "imageCountMoreThan")]
    ImageCountMoreThan,
    /// Expire images pushed more than `countNumber` `countUnit`s ago.
    #[serde(rename = "sinceImagePushed")]
    SinceImagePushed,
}

/// The unit of `sinceImagePushed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CountUnit {
    /// Days.
    Days,
}

/// A rule's selection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// `tagged`, `untagged` or `any`.
    #[serde(rename = "tagStatus")]
    pub tag_status: RuleTagStatus,
    /// Tag prefixes, all of which must match (tagged only).
    #[serde(rename = "tagPrefixList", default)]
    pub tag_prefix_list: Option<Vec<String>>,
    /// Tag wildcard patterns, all of which must match (tagged only).
    #[serde(rename = "tagPatternList", default)]
    pub tag_pattern_list: Option<Vec<String>>,
    /// How the rule counts.
    #[serde(rename = "countType")]
    pub count_type: CountType,
    /// `days` (sinceImagePushed only).
    #[serde(rename = "countUnit", default)]
    pub count_unit: Option<CountUnit>,
    /// N.
    #[serde(rename = "countNumber")]
    pub count_number: i64,
}

/// The only action ECR's expire rules take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionType {
    /// Delete the image.
    Expire,
}

/// A rule's action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// Only `expire` (parsed to refuse anything else, never read after).
    #[serde(rename = "type")]
    #[allow(dead_code)]
    pub kind: ActionType,
}

fn refuse<T>(why: impl std::fmt::Display) -> Result<T, RegistryError> {
    invalid(format!("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: {why}'"))
}

/// ECR refuses `null` anywhere in the policy rather than reading it as absent.
fn has_null(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.iter().any(has_null),
        serde_json::Value::Object(o) => o.values().any(has_null),
        _ => false,
    }
}

/// Parses and validates a policy by ECR's rules; the rules come back sorted by
/// priority.
pub fn parse_policy(text: &str) -> Result<Policy, RegistryError> {
    let chars = text.chars().count();
    if !(MIN_TEXT_CHARS..=MAX_TEXT_CHARS).contains(&chars) {
        return refuse(format!(
            "the policy text must be {MIN_TEXT_CHARS}-{MAX_TEXT_CHARS} characters"
        ));
    }
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return refuse(format!("the policy is not JSON: {e}")),
    };
    if has_null(&value) {
        return refuse("null values are not allowed");
    }
    let mut p: Policy = match serde_json::from_value(value) {
        Ok(p) => p,
        Err(e) => return refuse(e),
    };
    if p.rules.is_empty() || p.rules.len() > MAX_RULES {
        return refuse(format!("a policy has 1-{MAX_RULES} rules"));
    }
    p.rules.sort_by_key(|r| r.rule_priority);
    let mut priorities = BTreeSet::new();
    let mut prefix_sets = BTreeSet::new();
    let mut untagged_rules = 0;
    let last = p.rules.len() - 1;
    for (i, r) in p.rules.iter().enumerate() {
        if r.rule_priority < 1 || !priorities.insert(r.rule_priority) {
            return refuse(format!(
                "rulePriority {} must be a unique positive integer",
                r.rule_priority
            ));
        }
        check_selection(&r.selection, i == last)?;
        if r.selection.tag_status == RuleTagStatus::Untagged {
            untagged_rules += 1;
        }
        if let Some(list) = &r.selection.tag_prefix_list {
            let set: BTreeSet<&str> = list.iter().map(String::as_str).collect();
            if !prefix_sets.insert(set) {
                return refuse("the rules must contain a unique set of tag prefixes");
            }
        }
    }
    if untagged_rules > 1 {
        return refuse("only one rule may select untagged images");
    }
    Ok(p)
}

/// One rule's selection by ECR's grammar; `last` says whether it has the highest
/// priority number.
fn check_selection(s: &Selection, last: bool) -> Result<(), RegistryError> {
    let prefixes = s.tag_prefix_list.as_deref();
    let patterns = s.tag_pattern_list.as_deref();
    match s.tag_status {
        RuleTagStatus::Tagged => match (prefixes, patterns) {
            (Some(l), None) | (None, Some(l)) if !l.is_empty() => {
                if l.iter().any(String::is_empty) {
                    return refuse("tag prefixes and patterns must not be empty");
                }
            }
            _ => {
                return refuse(
                    "a tagged rule needs exactly one non-empty tagPrefixList or tagPatternList",
                )
            }
        },
        RuleTagStatus::Untagged | RuleTagStatus::Any => {
            if prefixes.is_some() || patterns.is_some() {
                return refuse(
                    "tagPrefixList and tagPatternList are only allowed with tagStatus tagged",
                );
            }
            if s.tag_status == RuleTagStatus::Any && !last {
                return refuse("a rule with tagStatus any must have the highest rulePriority");
            }
        }
    }
    if let Some(p) = patterns
        .into_iter()
        .flatten()
        .find(|p| p.matches('*').count() > MAX_WILDCARDS)
    {
        return refuse(format!(
            "tag pattern '{p}' has more than {MAX_WILDCARDS} wildcards"
        ));
    }
    if s.count_number < 1 {
        return refuse("countNumber must be at least 1");
    }
    match (s.count_type, s.count_unit) {
        (CountType::ImageCountMoreThan, None) | (CountType::SinceImagePushed, Some(_)) => Ok(()),
        (CountType::ImageCountMoreThan, Some(_)) => {
            refuse("countUnit is not allowed with imageCountMoreThan")
        }
        (CountType::SinceImagePushed, None) => refuse("sinceImagePushed needs countUnit days"),
    }
}

/// Matches `*` wildcards (zero or more characters each).
pub(crate) fn wildcard(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == s;
    };
    if s.len() < first.len() + last.len() || !s.starts_with(first) || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in middle {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `s` selects an image tagged `tags`: for a tagged rule, every list entry
/// must match one of the tags.
fn selects(s: &Selection, tags: &[String]) -> bool {
    match s.tag_status {
        RuleTagStatus::Untagged => tags.is_empty(),
        RuleTagStatus::Any => true,
        RuleTagStatus::Tagged => {
            let prefixes = s.tag_prefix_list.as_deref().unwrap_or_default();
            let patterns = s.tag_pattern_list.as_deref().unwrap_or_default();
            // An empty list would select every tagged image; validation refuses it, and
            // evaluation never reads it as "all".
            !(prefixes.is_empty() && patterns.is_empty())
                && prefixes
                    .iter()
                    .all(|p| tags.iter().any(|t| t.starts_with(p.as_str())))
                && patterns.iter().all(|p| tags.iter().any(|t| wildcard(p, t)))
        }
    }
}

/// An image as evaluation sees it.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Its digest.
    pub digest: Digest,
    /// Its tags (empty when untagged).
    pub tags: Vec<String>,
    /// When it was pushed (epoch seconds).
    pub pushed_at: f64,
    /// A manifest list of the repository references it, so it cannot expire.
    pub referenced: bool,
}

/// An image a policy expires.
#[derive(Clone, Debug, PartialEq)]
pub struct Expiry {
    /// Index into the candidates.
    pub index: usize,
    /// The rule that expires it.
    pub rule_priority: i32,
}

/// The images `policy` expires among `images` at time `now`, oldest push first.
pub fn compute_expiries(policy: &Policy, images: &[Candidate], now: f64) -> Vec<Expiry> {
    let mut order: Vec<usize> = (0..images.len())
        .filter(|&i| !images[i].referenced)
        .collect();
    order.sort_by(|&a, &b| {
        images[b]
            .pushed_at
            .total_cmp(&images[a].pushed_at)
            .then_with(|| images[a].digest.cmp(&images[b].digest))
    });
    let mut seen: BTreeSet<usize> = BTreeSet::new();
    let mut out = Vec::new();
    for rule in &policy.rules {
        let s = &rule.selection;
        let matched: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| selects(s, &images[i].tags))
            .collect();
        let marked: Vec<usize> = match s.count_type {
            CountType::ImageCountMoreThan => matched
                .iter()
                .copied()
                .skip(usize::try_from(s.count_number).unwrap_or(usize::MAX))
                .collect(),
            CountType::SinceImagePushed => {
                let max_age = s.count_number as f64 * SECONDS_PER_DAY;
                matched
                    .iter()
                    .copied()
                    .filter(|&i| now - images[i].pushed_at > max_age)
                    .collect()
            }
        };
        // Marked images a higher rule already selected stay with that rule's verdict.
        out.extend(
            marked
                .into_iter()
                .filter(|i| !seen.contains(i))
                .map(|index| Expiry {
                    index,
                    rule_priority: rule.rule_priority,
                }),
        );
        seen.extend(matched);
    }
    out.sort_by(|a, b| {
        images[a.index]
            .pushed_at
            .total_cmp(&images[b.index].pushed_at)
    });
    out
}

/// Repository `name`'s images as evaluation sees them.
async fn candidates(reg: &Registry, name: &str) -> Result<Vec<Candidate>, RegistryError> {
    let tags = tags_by_digest(reg, name).await?;
    let manifests = reg.manifests(name).await?;
    let referenced: BTreeSet<&Digest> = manifests.iter().flat_map(|m| &m.children).collect();
    Ok(manifests
        .iter()
        .map(|m| Candidate {
            digest: m.digest.clone(),
            tags: tags.get(&m.digest).cloned().unwrap_or_default(),
            pushed_at: m.pushed_at,
            referenced: referenced.contains(&m.digest),
        })
        .collect())
}

/// The images `policy` expires in repository `name` at time `now`, as preview results.
pub async fn plan(
    reg: &Registry,
    name: &str,
    policy: &Policy,
    now: f64,
) -> Result<Vec<LifecyclePolicyPreviewResult>, RegistryError> {
    let images = candidates(reg, name).await?;
    Ok(compute_expiries(policy, &images, now)
        .into_iter()
        .map(|e| {
            let m = &images[e.index];
            LifecyclePolicyPreviewResult {
                image_tags: Some(m.tags.clone()),
                image_digest: Some(m.digest.to_string()),
                image_pushed_at: Some(m.pushed_at),
                action: Some(LifecyclePolicyRuleAction {
                    type_: Some(ImageActionType::Expire),
                    target_storage_class: None,
                }),
                applied_rule_priority: Some(e.rule_priority),
                storage_class: None,
            }
        })
        .collect())
}

/// When the lifecycle policy last ran for a repository (`ecr/lifecycle-run/<name>`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LifecycleRun {
    /// Epoch seconds.
    pub evaluated_at: f64,
}

/// When the scheduled run last evaluated repository `name`'s policy.
pub async fn last_evaluated_at(reg: &Registry, name: &str) -> Result<Option<f64>, RegistryError> {
    Ok(reg
        .objects()
        .get::<LifecycleRun>(&lifecycle_run_key(name))
        .await?
        .map(|(r, _)| r.evaluated_at))
}

/// Applies every repository's lifecycle policy (the scheduled run); returns how many
/// images it expired. One repository's failure is logged and does not stop the others.
pub async fn apply_all(reg: &Registry) -> Result<usize, RegistryError> {
    let mut expired = 0;
    for (_, rec, _) in reg.objects().list::<RepoRecord>(REPO_PREFIX).await? {
        let (Some(text), Some(name)) = (&rec.lifecycle_policy, &rec.repository.repository_name)
        else {
            continue;
        };
        match apply_one(reg, name, text).await {
            Ok(n) => expired += n,
            Err(error) => {
                tracing::warn!(repository = %name, %error, "Lifecycle policy run failed for a repository.");
            }
        }
    }
    Ok(expired)
}

/// Applies repository `name`'s policy `text`, then records the run.
async fn apply_one(reg: &Registry, name: &str, text: &str) -> Result<usize, RegistryError> {
    // Stored policies were validated when put; one that no longer parses was stored by
    // an older version with looser rules and expires nothing until it is replaced.
    let policy = parse_policy(text)?;
    let at = now();
    let mut expired = 0;
    let planned = plan(reg, name, &policy, at).await?;
    // Deleting a manifest drops every tag on it: an image tagged since it was planned
    // is left for the next run to judge with its new tags.
    let current = tags_by_digest(reg, name).await?;
    for r in planned {
        let Some(d) = r
            .image_digest
            .as_deref()
            .and_then(|d| Digest::parse(d).ok())
        else {
            continue;
        };
        let mut now_tags = current.get(&d).cloned().unwrap_or_default();
        let mut planned_tags = r.image_tags.clone().unwrap_or_default();
        now_tags.sort();
        planned_tags.sort();
        if now_tags != planned_tags {
            tracing::info!(repository = %name, digest = %d, "Image retagged while the lifecycle policy ran; left for the next run.");
            continue;
        }
        match reg.delete_manifest(name, &d).await {
            Ok(_) | Err(RegistryError::ImageNotFound(_)) => expired += 1,
            Err(e) => return Err(e),
        }
        tracing::info!(repository = %name, digest = %d, rule = r.applied_rule_priority, "Lifecycle policy expired an image.");
    }
    let run = encode(&LifecycleRun { evaluated_at: at })?;
    // Recorded only while the repository exists, so a deleted one leaves nothing behind.
    reg.objects()
        .retry(&format!("lifecycle run of {name}"), || {
            let run = run.clone();
            async move {
                let (_, rev) = reg.repo(name).await?;
                Ok(Step::Commit(
                    Txn::new()
                        .when(repo_key(name), rev)
                        .put(lifecycle_run_key(name), run),
                    (),
                ))
            }
        })
        .await?;
    Ok(expired)
}

#[cfg(test)]
mod tests;
