//! STS: GetCallerIdentity, AssumeRole and GetSessionToken, and the role sessions minted
//! for AWS services (task and execution roles). Minting writes nothing: see [`crate::token`].

use crate::directory::{session_arn, Directory, RoleEntry};
use crate::error::IamError;
use crate::token::{Claims, Subject};
use crate::xml::{self, Xml};
use crate::{records, validate, Sts};
use model::sts::operations::{Operation, API_VERSION};
use policy::{evaluate, Decision, Policy, PolicySet, Principal, PrincipalKind, Request};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wire::query::QueryView;
use wire::{
    Access, Call, Caller, Input, OperationTable, Protocol, Service, ServiceError, ServiceSpec,
};

/// Temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    /// `ASIA…`.
    pub access_key_id: String,
    /// The 40-character secret.
    pub secret_access_key: String,
    /// The session token to send as `X-Amz-Security-Token`.
    pub session_token: String,
    /// When they stop working.
    pub expiration: SystemTime,
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration_iso8601())
            .finish_non_exhaustive()
    }
}

impl SessionCredentials {
    /// The expiration as AWS writes it: `2016-02-25T06:03:31Z`.
    pub fn expiration_iso8601(&self) -> String {
        let secs = self
            .expiration
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        xml::iso8601_secs(secs)
    }
}

/// Mints credentials for `subject` valid `seconds` from now.
fn mint(
    dir: &Directory,
    subject: Subject,
    seconds: i64,
    tags: Vec<(String, String)>,
    instance: Option<String>,
) -> SessionCredentials {
    let access_key_id = records::access_key_id("ASIA");
    let expires = dir.now().saturating_add(seconds);
    let claims = Claims {
        access_key_id: access_key_id.clone(),
        subject,
        expires,
        tags,
        instance,
    };
    SessionCredentials {
        secret_access_key: dir.token_key().secret_for(&access_key_id),
        session_token: dir.token_key().seal(&claims),
        access_key_id,
        expiration: UNIX_EPOCH + Duration::from_secs(u64::try_from(expires).unwrap_or(0)),
    }
}

fn write_credentials(x: &mut Xml, c: &SessionCredentials) {
    x.el("Credentials", |x| {
        x.leaf("AccessKeyId", &c.access_key_id)
            .leaf("SecretAccessKey", &c.secret_access_key)
            .leaf("SessionToken", &c.session_token)
            .leaf("Expiration", &c.expiration_iso8601());
    });
}

fn denied(caller: &str, role_arn: &str) -> IamError {
    IamError::AccessDenied(format!(
        "User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    ))
}

/// The role a role ARN of this account names (the ARN must match, path included).
fn role_by_arn(dir: &Directory, role_arn: &str) -> Option<std::sync::Arc<RoleEntry>> {
    let prefix = format!("arn:aws:iam::{}:role/", dir.account());
    role_arn.strip_prefix(&prefix)?;
    let name = role_arn.rsplit('/').next()?;
    dir.role(name).filter(|r| r.record.arn == role_arn)
}

/// Whether an `Allow` statement of the trust document names the account (`ACCT`,
/// `arn:aws:iam::ACCT:root` or `*`) for an `sts:AssumeRole` action. An account principal
/// only delegates to identity policies, which `policy::evaluate` reports as no grant, so
/// it is read here from the document.
pub(crate) fn trust_names_account(document: &str, account: &str) -> bool {
    let Ok(root) = serde_json::from_str::<Value>(document) else {
        return false;
    };
    let statements = match root.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    };
    let root_arn = format!("arn:aws:iam::{account}:root");
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    statements.into_iter().any(|st| {
        let allow = st.get("Effect").and_then(Value::as_str) == Some("Allow");
        let acts = strings(st.get("Action")).iter().any(|a| {
            let a = a.to_ascii_lowercase();
            a == "*" || a == "sts:*" || a == "sts:assumerole" || a == "sts:assumerole*"
        });
        let principal = st.get("Principal");
        let names = principal.and_then(Value::as_str) == Some("*")
            || strings(principal.and_then(|p| p.get("AWS")))
                .iter()
                .any(|p| p == "*" || p == account || *p == root_arn);
        allow && acts && names
    })
}

/// AWS's check for AssumeRole, within one account or across two: the trust policy must
/// name the caller (or its account), the caller's identity policies must allow
/// `sts:AssumeRole` on the role (root needs none), and no Deny in either may match.
fn trusts(role: &RoleEntry, caller: &Caller) -> bool {
    let Some(trust) = role.trust.as_deref() else {
        return false;
    };
    let req = Request::new(
        caller.shared_principal(),
        "sts:AssumeRole",
        &role.record.arn,
    );
    let identity: Vec<&Policy> = caller.policies().iter().collect();
    let resource = [trust];
    let all = PolicySet {
        identity: &identity,
        resource: &resource,
        session: None,
    };
    if matches!(evaluate(&req, all), Decision::ExplicitDeny(_)) {
        return false;
    }
    let same_account = caller.account() == role.record.arn.split(':').nth(4).unwrap_or("");
    let names_account = if same_account {
        role.trusts_account
    } else {
        // Another account's trust policy delegates to this one only by naming it.
        trust_names_account(&role.record.trust, caller.account())
    };
    if caller.is_root() {
        return names_account;
    }
    let only_trust = PolicySet {
        resource: &resource,
        ..PolicySet::default()
    };
    let only_identity = PolicySet {
        identity: &identity,
        ..PolicySet::default()
    };
    (names_account || evaluate(&req, only_trust).is_allowed())
        && evaluate(&req, only_identity).is_allowed()
}

/// The `Tags.member.N` session tags of an AssumeRole request.
fn session_tags(q: &QueryView<'_>) -> Result<Vec<(String, String)>, IamError> {
    Ok(crate::iam_api::tags(q)?
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect())
}

fn assume_role(
    own: &Directory,
    peers: Option<&crate::Peers>,
    q: &QueryView<'_>,
    caller: &Caller,
) -> Result<String, IamError> {
    let role_arn = q
        .get("RoleArn")
        .ok_or_else(|| IamError::missing("roleArn"))?;
    if role_arn.len() < 20 || role_arn.len() > 2048 {
        return Err(IamError::validation(
            role_arn,
            "roleArn",
            "Member must have length greater than or equal to 20",
        ));
    }
    let session = validate::session_name(q.get("RoleSessionName"))?;
    let duration = validate::number(q.get("DurationSeconds"), "durationSeconds", 900, 43_200)?;
    let tags = session_tags(q)?;
    if q.has("Policy") || !q.list("PolicyArns").is_empty() || !q.members("PolicyArns").is_empty() {
        return Err(IamError::Validation(
            "Session policies (Policy, PolicyArns) are not supported by Stevedore yet.".into(),
        ));
    }
    // A role of another account of this server is read (and its session minted) there,
    // so that account's key lookup opens the session and its resources serve it.
    let role_account = role_arn.split(':').nth(4).unwrap_or("");
    let peer;
    let dir = if role_account == own.account() {
        own
    } else {
        peer = peers
            .and_then(|find| find(role_account))
            .ok_or_else(|| denied(caller.principal_arn(), role_arn))?;
        &peer
    };
    let role = role_by_arn(dir, role_arn)
        .filter(|r| trusts(r, caller))
        .ok_or_else(|| denied(caller.principal_arn(), role_arn))?;
    let chained = matches!(caller.principal().kind(), PrincipalKind::AssumedRole { .. });
    let duration = duration.unwrap_or(3600);
    if chained && duration > 3600 {
        return Err(IamError::Validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".into(),
        ));
    }
    if duration > i64::from(role.record.max_session) {
        return Err(IamError::Validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                .into(),
        ));
    }
    let subject = Subject::Role {
        name: role.record.name.clone(),
        id: role.record.id.clone(),
        session: session.to_owned(),
    };
    let creds = mint(dir, subject, duration, tags, None);
    let mut x = Xml::new();
    write_credentials(&mut x, &creds);
    x.el("AssumedRoleUser", |x| {
        x.leaf("AssumedRoleId", &format!("{}:{session}", role.record.id))
            .leaf(
                "Arn",
                &session_arn(dir.account(), &role.record.name, session),
            );
    });
    Ok(x.finish())
}

fn get_session_token(
    dir: &Directory,
    q: &QueryView<'_>,
    caller: &Caller,
) -> Result<String, IamError> {
    // AWS refuses session credentials, whatever they act as (a user's own session too).
    if caller.is_temporary() {
        return Err(IamError::AccessDenied(
            "Cannot call GetSessionToken with session credentials".into(),
        ));
    }
    let (subject, max) = match caller.principal().kind() {
        PrincipalKind::Root => (Subject::Root, 3600),
        PrincipalKind::User { name } => (
            Subject::User {
                name: name.clone(),
                id: caller.user_id().to_owned(),
            },
            129_600,
        ),
        _ => {
            return Err(IamError::AccessDenied(
                "Cannot call GetSessionToken with session credentials".into(),
            ))
        }
    };
    let duration = validate::number(q.get("DurationSeconds"), "durationSeconds", 900, max)?
        .unwrap_or(max.min(43_200));
    let creds = mint(dir, subject, duration, Vec::new(), None);
    let mut x = Xml::new();
    write_credentials(&mut x, &creds);
    Ok(x.finish())
}

fn get_caller_identity(caller: &Caller) -> String {
    let mut x = Xml::new();
    x.leaf("Arn", caller.principal_arn())
        .leaf("UserId", caller.user_id())
        .leaf("Account", caller.account());
    x.finish()
}

/// Whether `role`'s trust policy lets the AWS service `service` (its Service principal,
/// e.g. `ec2.amazonaws.com`) perform `sts:AssumeRole`.
pub(crate) fn trusts_service(role: &RoleEntry, service: &str) -> bool {
    role.trust.as_deref().is_some_and(|trust| {
        let req = Request::new(
            Principal::service(service),
            "sts:AssumeRole",
            &role.record.arn,
        );
        let set = PolicySet {
            resource: &[trust],
            ..PolicySet::default()
        };
        evaluate(&req, set).is_allowed()
    })
}

/// Credentials of `role_arn` for an AWS service its trust policy names.
pub(crate) fn issue_for_service(
    dir: &Directory,
    role_arn: &str,
    session_name: &str,
    trusted_service: &str,
    duration: Duration,
) -> Result<SessionCredentials, IamError> {
    issue_for_service_as(dir, role_arn, session_name, trusted_service, duration, None)
}

/// [`issue_for_service`], sealing `instance` (an agent's `i-…` id) into the token.
pub(crate) fn issue_for_service_as(
    dir: &Directory,
    role_arn: &str,
    session_name: &str,
    trusted_service: &str,
    duration: Duration,
    instance: Option<String>,
) -> Result<SessionCredentials, IamError> {
    let session = validate::session_name(Some(session_name))?;
    let role = role_by_arn(dir, role_arn)
        .ok_or_else(|| IamError::NoSuchEntity(format!("Role {role_arn} cannot be found.")))?;
    if !trusts_service(&role, trusted_service) {
        return Err(denied(trusted_service, role_arn));
    }
    let seconds = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
    if !(900..=i64::from(role.record.max_session)).contains(&seconds) {
        return Err(IamError::Validation(format!(
            "The requested duration of {seconds} seconds is outside 900..={} for this role.",
            role.record.max_session
        )));
    }
    let subject = Subject::Role {
        name: role.record.name.clone(),
        id: role.record.id.clone(),
        session: session.to_owned(),
    };
    Ok(mint(dir, subject, seconds, Vec::new(), instance))
}

impl Service for Sts {
    type Operation = Operation;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "sts",
        title: "AWS Security Token Service",
        signing_name: "sts",
        protocols: &[Protocol::AwsQuery {
            version: API_VERSION,
        }],
    };

    const OPERATIONS: OperationTable<Operation> = OperationTable {
        all: Operation::ALL,
        from_name: Operation::from_name,
        name: Operation::name,
        errors: Operation::errors,
    };

    async fn authorize(&self, op: Operation, _call: Call<'_>) -> Result<Vec<Access>, ServiceError> {
        Ok(crate::authz::sts_accesses(op))
    }

    async fn handle(&self, op: Operation, call: Call<'_>) -> Result<Vec<u8>, ServiceError> {
        let Input::Query(params) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        let q = params.view();
        let dir = self.core.dir();
        let result = match op {
            Operation::GetCallerIdentity => Ok(get_caller_identity(call.caller)),
            Operation::AssumeRole => assume_role(dir, self.core.peers.get(), &q, call.caller),
            Operation::GetSessionToken => get_session_token(dir, &q, call.caller),
            _ => return Err(ServiceError::NotImplemented),
        };
        match result {
            Ok(body) => {
                Ok(
                    xml::envelope(xml::STS_NAMESPACE, op.name(), call.request_id, Some(&body))
                        .into_bytes(),
                )
            }
            Err(e) => Err(ServiceError::Aws(e.to_aws())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_principal_in_a_trust_policy_is_recognised_in_each_spelling() {
        let doc = |p: &str| {
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":{p}}},"Action":"sts:AssumeRole"}}]}}"#
            )
        };
        assert!(trust_names_account(
            &doc(r#""123456789012""#),
            "123456789012"
        ));
        assert!(trust_names_account(
            &doc(r#"["arn:aws:iam::123456789012:root"]"#),
            "123456789012"
        ));
        assert!(!trust_names_account(
            &doc(r#""arn:aws:iam::123456789012:user/x""#),
            "123456789012"
        ));
        assert!(!trust_names_account(
            &doc(r#""999999999999""#),
            "123456789012"
        ));
    }
}
