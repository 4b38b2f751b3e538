//! IAM's policy size quotas and the way IAM measures a document against them.
//!
//! IAM does not count white space: a document's size is the number of characters left
//! once spaces, tabs, carriage returns and line feeds are taken out.

use crate::PolicyError;

/// Aggregate size of all inline policies of one IAM user.
pub const USER_INLINE_AGGREGATE: usize = 2_048;
/// Aggregate size of all inline policies of one IAM role.
pub const ROLE_INLINE_AGGREGATE: usize = 10_240;
/// Aggregate size of all inline policies of one IAM group.
pub const GROUP_INLINE_AGGREGATE: usize = 5_120;
/// Size of one customer managed policy (each version).
pub const MANAGED_POLICY: usize = 6_144;
/// Default size of a role's trust policy (AWS raises it on request).
pub const TRUST_POLICY_DEFAULT: usize = 2_048;
/// The longest `PolicyDocument` IAM's API model accepts, white space included.
pub const DOCUMENT_MAX_CHARS: usize = 131_072;

/// The identity owning inline policies, for [`check_inline_aggregate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InlineOwner {
    /// An IAM user: [`USER_INLINE_AGGREGATE`].
    User,
    /// An IAM role: [`ROLE_INLINE_AGGREGATE`].
    Role,
    /// An IAM group: [`GROUP_INLINE_AGGREGATE`].
    Group,
}

impl InlineOwner {
    /// The quota on this owner's inline policies taken together.
    pub fn limit(self) -> usize {
        match self {
            Self::User => USER_INLINE_AGGREGATE,
            Self::Role => ROLE_INLINE_AGGREGATE,
            Self::Group => GROUP_INLINE_AGGREGATE,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Role => "role",
            Self::Group => "group",
        }
    }
}

/// A document's size as IAM counts it: characters other than JSON white space.
pub fn policy_size(document: &str) -> usize {
    document
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\r'))
        .count()
}

/// Refuses a managed policy (version) larger than [`MANAGED_POLICY`].
pub fn check_managed_size(document: &str) -> Result<(), PolicyError> {
    if policy_size(document) > MANAGED_POLICY {
        return Err(PolicyError::PolicySizeQuota {
            limit: MANAGED_POLICY,
        });
    }
    Ok(())
}

/// Refuses a trust policy larger than `limit` (normally [`TRUST_POLICY_DEFAULT`]).
pub fn check_trust_size(document: &str, limit: usize) -> Result<(), PolicyError> {
    if policy_size(document) > limit {
        return Err(PolicyError::TrustPolicySizeQuota { limit });
    }
    Ok(())
}

/// Refuses a set of inline policies of `owner` named `name` whose sizes add up past the
/// owner's quota. `documents` are all the owner's inline policies after the change.
pub fn check_inline_aggregate<'a>(
    owner: InlineOwner,
    name: &str,
    documents: impl IntoIterator<Item = &'a str>,
) -> Result<(), PolicyError> {
    let total: usize = documents.into_iter().map(policy_size).sum();
    if total > owner.limit() {
        return Err(PolicyError::InlineSizeQuota {
            owner: owner.noun(),
            name: name.to_owned(),
            limit: owner.limit(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn white_space_is_not_counted() {
        // `{"a":"bc"}`: ten characters once the white space is gone.
        assert_eq!(policy_size("{ \"a\" :\n\t\"b c\" }\r\n"), 10);
    }

    #[test]
    fn a_managed_policy_at_the_quota_passes_and_one_more_character_fails() {
        let at = "x".repeat(MANAGED_POLICY);
        assert!(check_managed_size(&format!("{at}   ")).is_ok());
        let err = check_managed_size(&format!("{at}y")).unwrap_err();
        assert_eq!(err.to_string(), "Cannot exceed quota for PolicySize: 6144");
        assert_eq!(err.code(), "LimitExceeded");
    }

    #[test]
    fn inline_policies_count_together_against_the_owner_quota() {
        let half = "x".repeat(1_100);
        let err = check_inline_aggregate(InlineOwner::User, "alice", [&*half, &*half]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Maximum policy size of 2048 bytes exceeded for user alice"
        );
        assert!(check_inline_aggregate(InlineOwner::Role, "r", [&*half, &*half]).is_ok());
    }

    #[test]
    fn trust_policy_quota_names_acl_size_per_role() {
        let big = "x".repeat(TRUST_POLICY_DEFAULT + 1);
        let err = check_trust_size(&big, TRUST_POLICY_DEFAULT).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot exceed quota for ACLSizePerRole: 2048"
        );
    }
}
