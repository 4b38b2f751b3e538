//! The EC2 API's launch template operations, served by `autoscaling::launch_templates`
//! (SigV4 service `ec2`, query `Version=2016-11-15`). This file only adapts them to the
//! dispatch; when the EC2 API (VPCs, subnets, security groups) is served by its own
//! crate, its dispatcher falls through to [`autoscaling::AutoScaling::serve_ec2_action`]
//! instead and this file goes.

use wire::{Access, Call, Input, OperationTable, Protocol, Service, ServiceError, ServiceSpec};

/// The launch template operations of EC2.
pub struct LaunchTemplates(pub autoscaling::AutoScaling);

/// One of [`autoscaling::launch_templates::ACTIONS`], by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchTemplateOp(usize);

const ALL: [LaunchTemplateOp; 4] = [
    LaunchTemplateOp(0),
    LaunchTemplateOp(1),
    LaunchTemplateOp(2),
    LaunchTemplateOp(3),
];

fn from_name(name: &str) -> Option<LaunchTemplateOp> {
    autoscaling::launch_templates::ACTIONS
        .iter()
        .position(|a| *a == name)
        .map(LaunchTemplateOp)
}

fn name(op: LaunchTemplateOp) -> &'static str {
    autoscaling::launch_templates::ACTIONS
        .get(op.0)
        .copied()
        .unwrap_or("")
}

fn errors(_op: LaunchTemplateOp) -> &'static [&'static str] {
    &[]
}

impl Service for LaunchTemplates {
    type Operation = LaunchTemplateOp;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "ec2",
        title: "Amazon EC2 2016-11-15",
        signing_name: "ec2",
        protocols: &[Protocol::AwsQuery {
            version: "2016-11-15",
        }],
    };

    const OPERATIONS: OperationTable<LaunchTemplateOp> = OperationTable {
        all: &ALL,
        from_name,
        name,
        errors,
    };

    async fn authorize(
        &self,
        op: LaunchTemplateOp,
        _call: Call<'_>,
    ) -> Result<Vec<Access>, ServiceError> {
        Ok(vec![Access::any("ec2", name(op))])
    }

    async fn handle(&self, op: LaunchTemplateOp, call: Call<'_>) -> Result<Vec<u8>, ServiceError> {
        let Input::Query(params) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        match self
            .0
            .serve_ec2_action(
                name(op),
                params,
                call.caller.principal_arn(),
                call.request_id,
            )
            .await
        {
            Some(Ok(xml)) => Ok(xml.into_bytes()),
            Some(Err(e)) => Err(ServiceError::Aws(e.to_aws())),
            None => Err(ServiceError::NotImplemented),
        }
    }
}
