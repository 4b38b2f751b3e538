//! What each IAM and STS operation needs permission for, as the Service Authorization
//! Reference lists them: `iam:` actions on the user, role, policy or instance profile the
//! request names (a user's own keys and policies when it names none), `*` for the List
//! operations; `iam:PolicyARN` on attach and detach. STS: `GetCallerIdentity` and
//! `GetSessionToken` need no permission (AWS answers them whatever the policies say), and
//! `AssumeRole` is decided by its handler, which combines the role's trust policy with
//! the caller's identity policies as AWS does within one account.

use model::iam::operations::Operation as IamOp;
use model::sts::operations::Operation as StsOp;
use wire::query::QueryView;
use wire::{Access, Caller};

/// What IAM operation `op` with parameters `q` needs, for `caller` in `account`.
pub(crate) fn iam_accesses(
    account: &str,
    op: IamOp,
    q: &QueryView<'_>,
    caller: &Caller,
) -> Vec<Access> {
    use IamOp as Op;
    let on = |resource: String| Access::new("iam", op.name(), resource);
    let arn = |kind: &str, name: Option<&str>| {
        format!("arn:aws:iam::{account}:{kind}/{}", name.unwrap_or("*"))
    };
    // Operations on "the user" act on the caller when no UserName is given.
    let user = || match q.get("UserName") {
        Some(name) => arn("user", Some(name)),
        None => caller.principal_arn().to_owned(),
    };
    let role = || arn("role", q.get("RoleName"));
    match op {
        Op::CreateUser
        | Op::GetUser
        | Op::DeleteUser
        | Op::CreateAccessKey
        | Op::ListAccessKeys
        | Op::UpdateAccessKey
        | Op::DeleteAccessKey
        | Op::PutUserPolicy
        | Op::GetUserPolicy
        | Op::DeleteUserPolicy
        | Op::ListUserPolicies
        | Op::ListAttachedUserPolicies => vec![on(user())],
        Op::AttachUserPolicy | Op::DetachUserPolicy => {
            vec![on(user()).with_key("iam:PolicyARN", q.get("PolicyArn").unwrap_or(""))]
        }
        Op::CreateRole
        | Op::GetRole
        | Op::DeleteRole
        | Op::TagRole
        | Op::UpdateAssumeRolePolicy
        | Op::PutRolePolicy
        | Op::GetRolePolicy
        | Op::DeleteRolePolicy
        | Op::ListRolePolicies
        | Op::ListAttachedRolePolicies => vec![on(role())],
        Op::AttachRolePolicy | Op::DetachRolePolicy => {
            vec![on(role()).with_key("iam:PolicyARN", q.get("PolicyArn").unwrap_or(""))]
        }
        Op::CreateServiceLinkedRole => vec![on(format!(
            "arn:aws:iam::{account}:role/aws-service-role/{}/*",
            q.get("AWSServiceName").unwrap_or("*")
        ))
        .with_key("iam:AWSServiceName", q.get("AWSServiceName").unwrap_or(""))],
        Op::CreatePolicy => vec![on(arn("policy", q.get("PolicyName")))],
        Op::GetPolicy | Op::GetPolicyVersion | Op::CreatePolicyVersion => {
            vec![on(q.get("PolicyArn").unwrap_or("*").to_owned())]
        }
        Op::CreateInstanceProfile | Op::GetInstanceProfile => {
            vec![on(arn("instance-profile", q.get("InstanceProfileName")))]
        }
        // Adding a role to a profile hands the role to whoever launches with the profile:
        // AWS also asks for iam:PassRole on the role.
        Op::AddRoleToInstanceProfile => vec![
            on(arn("instance-profile", q.get("InstanceProfileName"))),
            Access::new("iam", "PassRole", role()),
        ],
        _ => vec![on("*".to_owned())],
    }
}

/// What STS operation `op` needs.
pub(crate) fn sts_accesses(op: StsOp) -> Vec<Access> {
    match op {
        StsOp::GetCallerIdentity | StsOp::GetSessionToken | StsOp::AssumeRole => {
            vec![Access::public("sts", op.name())]
        }
        _ => vec![Access::any("sts", op.name())],
    }
}
