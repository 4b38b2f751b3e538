//! AWS managed policies that ECS users attach, embedded as AWS documents them
//! (`docs.aws.amazon.com/aws-managed-policy/latest/reference/<Name>.html`), with their ARNs
//! under `arn:aws:iam::aws:policy/`.
//!
//! `ReadOnlyAccess` is abbreviated: the real policy lists read actions of every AWS
//! service; this one keeps the entries (as AWS writes them) of the services Stevedore
//! serves (ECS, ECR, CloudWatch Logs, Elastic Load Balancing, IAM, Auto Scaling), and its
//! version is Stevedore's own `v1`. `AmazonECS_FullAccess` is AWS's `v21`; AWS has since
//! published a `v22` whose changes were not available when this was written.

/// An AWS managed policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagedPolicy {
    /// The policy name (`AmazonECSTaskExecutionRolePolicy`).
    pub name: &'static str,
    /// The IAM path (`/` or `/service-role/`).
    pub path: &'static str,
    /// `arn:aws:iam::aws:policy` + path + name.
    pub arn: &'static str,
    /// The default version AWS documents for this document (`v1`, ...).
    pub version: &'static str,
    /// AWS's description.
    pub description: &'static str,
    /// The JSON policy document.
    pub document: &'static str,
}

macro_rules! managed {
    ($name:literal, $path:literal, $version:literal, $description:literal) => {
        ManagedPolicy {
            name: $name,
            path: $path,
            arn: concat!("arn:aws:iam::aws:policy", $path, $name),
            version: $version,
            description: $description,
            document: include_str!(concat!("managed/", $name, ".json")),
        }
    };
}

/// Every AWS managed policy Stevedore ships.
pub const AWS_MANAGED_POLICIES: &[ManagedPolicy] = &[
    managed!(
        "AdministratorAccess",
        "/",
        "v1",
        "Provides full access to AWS services and resources."
    ),
    managed!(
        "ReadOnlyAccess",
        "/",
        "v1",
        "Provides read-only access to AWS services and resources."
    ),
    managed!(
        "AmazonECS_FullAccess",
        "/",
        "v21",
        "Provides administrative access to Amazon ECS resources and enables ECS features through access to other AWS service resources, including VPCs, Auto Scaling groups, and CloudFormation stacks."
    ),
    managed!(
        "AmazonEC2ContainerServiceforEC2Role",
        "/service-role/",
        "v10",
        "Default policy for the Amazon EC2 Role for Amazon EC2 Container Service."
    ),
    managed!(
        "AmazonECSTaskExecutionRolePolicy",
        "/service-role/",
        "v1",
        "Provides access to other AWS service resources that are required to run Amazon ECS tasks"
    ),
    managed!(
        "AmazonEC2ContainerRegistryReadOnly",
        "/",
        "v3",
        "Provides read-only access to Amazon EC2 Container Registry repositories."
    ),
    managed!(
        "AmazonEC2ContainerRegistryPowerUser",
        "/",
        "v3",
        "Provides full access to Amazon EC2 Container Registry repositories, but does not allow repository deletion or policy changes."
    ),
    managed!(
        "AmazonEC2ContainerRegistryFullAccess",
        "/",
        "v3",
        "Provides administrative access to Amazon ECR resources"
    ),
    managed!(
        "CloudWatchLogsFullAccess",
        "/",
        "v8",
        "Provides full access to CloudWatch Logs"
    ),
];

/// The managed policy with this ARN.
pub fn by_arn(arn: &str) -> Option<&'static ManagedPolicy> {
    AWS_MANAGED_POLICIES.iter().find(|p| p.arn == arn)
}

/// The managed policy with this name.
pub fn by_name(name: &str) -> Option<&'static ManagedPolicy> {
    AWS_MANAGED_POLICIES.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Policy, PolicyKind};

    #[test]
    fn every_managed_policy_parses_as_an_identity_policy() {
        for p in AWS_MANAGED_POLICIES {
            let parsed = Policy::parse(p.document, PolicyKind::Identity);
            assert!(parsed.is_ok(), "{}: {:?}", p.name, parsed.err());
            assert!(
                crate::size::check_managed_size(p.document).is_ok(),
                "{}",
                p.name
            );
        }
    }

    #[test]
    fn arns_carry_their_paths() {
        assert_eq!(
            by_name("AmazonECSTaskExecutionRolePolicy").map(|p| p.arn),
            Some("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
        );
        assert!(by_arn("arn:aws:iam::aws:policy/AdministratorAccess").is_some());
        assert!(
            by_arn("arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role")
                .is_some()
        );
    }
}
