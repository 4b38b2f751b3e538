//! The operation table and the one dispatch over it: the operations this crate serves,
//! every other name of EC2's model as [`Operation::Other`] (for the fallback, or "not
//! implemented"), and unknown names refused by the wire dispatch as `InvalidAction`.

use wire::query::QueryParams;
use wire::{Access, Call, Input, OperationTable, Protocol, Service, ServiceError, ServiceSpec};

use crate::error::Ec2Error;
use crate::groups::Direction;
use crate::model_names::MODEL_OPERATIONS;
use crate::{Ec2, SIGNING_NAME};

macro_rules! operations {
    ($($op:ident),* $(,)?) => {
        /// An EC2 operation.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Operation {
            $(
                #[doc = concat!("`", stringify!($op), "`.")]
                $op,
            )*
            /// Another operation of EC2's model, which this crate does not serve.
            Other(&'static str),
        }

        impl Operation {
            /// The operations served here.
            pub const ALL: &'static [Operation] = &[$(Operation::$op),*];

            /// The wire name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$op => stringify!($op),)*
                    Operation::Other(name) => name,
                }
            }

            /// The operation named `name`: one served here, another of the model, or
            /// `None` for a name EC2 does not have.
            pub fn from_name(name: &str) -> Option<Operation> {
                match name {
                    $(stringify!($op) => Some(Operation::$op),)*
                    other => MODEL_OPERATIONS
                        .binary_search(&other)
                        .ok()
                        .map(|i| Operation::Other(MODEL_OPERATIONS[i])),
                }
            }
        }
    };
}

operations!(
    AuthorizeSecurityGroupEgress,
    AuthorizeSecurityGroupIngress,
    CreateSecurityGroup,
    CreateSubnet,
    CreateTags,
    CreateVpc,
    DeleteSecurityGroup,
    DeleteSubnet,
    DeleteTags,
    DeleteVpc,
    DescribeAvailabilityZones,
    DescribeNetworkInterfaces,
    DescribeSecurityGroupRules,
    DescribeSecurityGroups,
    DescribeSubnets,
    DescribeVpcs,
    RevokeSecurityGroupEgress,
    RevokeSecurityGroupIngress,
);

impl Operation {
    /// The error codes an operation may answer with (beyond the common ones).
    pub fn errors(self) -> &'static [&'static str] {
        match self {
            Self::AuthorizeSecurityGroupEgress | Self::AuthorizeSecurityGroupIngress => &[
                "InvalidGroup.NotFound",
                "InvalidPermission.Duplicate",
                "InvalidParameterValue",
                "RulesPerSecurityGroupLimitExceeded",
            ],
            Self::RevokeSecurityGroupEgress | Self::RevokeSecurityGroupIngress => {
                &["InvalidGroup.NotFound", "InvalidPermission.NotFound"]
            }
            Self::CreateSecurityGroup => &["InvalidGroup.Duplicate", "InvalidVpcID.NotFound"],
            Self::DeleteSecurityGroup => &[
                "InvalidGroup.NotFound",
                "DependencyViolation",
                "CannotDelete",
            ],
            Self::CreateSubnet => &[
                "InvalidSubnet.Range",
                "InvalidSubnet.Conflict",
                "InvalidVpcID.NotFound",
            ],
            Self::DeleteSubnet => &["InvalidSubnetID.NotFound", "DependencyViolation"],
            Self::DeleteVpc => &["InvalidVpcID.NotFound", "DependencyViolation"],
            Self::CreateVpc => &["InvalidVpc.Range"],
            _ => &[],
        }
    }
}

impl Ec2 {
    /// Runs a served operation; the answer's members as XML.
    async fn run(&self, op: Operation, q: &QueryParams) -> Result<String, Ec2Error> {
        if q.get("DryRun") == Some("true") {
            return Err(Ec2Error::DryRun);
        }
        match op {
            Operation::CreateVpc => self.create_vpc(q).await,
            Operation::DescribeVpcs => self.describe_vpcs(q).await,
            Operation::DeleteVpc => self.delete_vpc(q).await,
            Operation::CreateSubnet => self.create_subnet(q).await,
            Operation::DescribeSubnets => self.describe_subnets(q).await,
            Operation::DeleteSubnet => self.delete_subnet(q).await,
            Operation::DescribeAvailabilityZones => self.describe_availability_zones(q),
            Operation::CreateTags => self.create_tags(q, false).await,
            Operation::DeleteTags => self.create_tags(q, true).await,
            Operation::CreateSecurityGroup => self.create_security_group(q).await,
            Operation::DescribeSecurityGroups => self.describe_security_groups(q).await,
            Operation::DeleteSecurityGroup => self.delete_security_group(q).await,
            Operation::AuthorizeSecurityGroupIngress => self.authorize(q, Direction::Ingress).await,
            Operation::AuthorizeSecurityGroupEgress => self.authorize(q, Direction::Egress).await,
            Operation::RevokeSecurityGroupIngress => self.revoke(q, Direction::Ingress).await,
            Operation::RevokeSecurityGroupEgress => self.revoke(q, Direction::Egress).await,
            Operation::DescribeSecurityGroupRules => self.describe_security_group_rules(q).await,
            Operation::DescribeNetworkInterfaces => self.describe_network_interfaces(q).await,
            Operation::Other(name) => Err(Ec2Error::Internal(format!("{name} is not served here"))),
        }
    }
}

impl Service for Ec2 {
    type Operation = Operation;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "ec2",
        title: "Amazon EC2",
        signing_name: SIGNING_NAME,
        protocols: &[Protocol::Ec2Query {
            version: wire::ec2::API_VERSION,
        }],
    };

    const OPERATIONS: OperationTable<Operation> = OperationTable {
        all: Operation::ALL,
        from_name: Operation::from_name,
        name: Operation::name,
        errors: Operation::errors,
    };

    async fn authorize(&self, op: Operation, _call: Call<'_>) -> Result<Vec<Access>, ServiceError> {
        // EC2's networking actions are authorized on `*` here: resource-level ARNs and
        // condition keys (ec2:Vpc, ec2:ResourceTag) are not modelled yet.
        Ok(vec![Access::any("ec2", op.name())])
    }

    async fn handle(&self, op: Operation, call: Call<'_>) -> Result<Vec<u8>, ServiceError> {
        let Input::Query(params) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        if let Operation::Other(name) = op {
            return match &self.fallback {
                Some(f) => match f
                    .serve(name, params, call.caller.principal_arn(), call.request_id)
                    .await
                {
                    Some(answer) => answer.map_err(ServiceError::Aws),
                    None => Err(ServiceError::NotImplemented),
                },
                None => Err(ServiceError::NotImplemented),
            };
        }
        let body = self.run(op, params).await?;
        Ok(wire::ec2::envelope(op.name(), call.request_id, &body).into_bytes())
    }
}
