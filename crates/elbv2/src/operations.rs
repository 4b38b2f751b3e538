//! The ELBv2 operation table (generated from botocore in `model::elbv2::operations`) and
//! its one exhaustive match: every operation either runs its handler or is answered as not
//! implemented, so an operation botocore adds fails to compile until it is decided.

use crate::error::Elbv2Error;
use crate::{
    listeners, load_balancers, rules, tags, target_groups, targets, Elbv2, API_VERSION,
    SIGNING_NAME, XML_NAMESPACE,
};
pub use model::elbv2::operations::Operation;
use wire::query::{QueryParams, QueryView};
use wire::{Access, Call, Input, OperationTable, Protocol, Service, ServiceError, ServiceSpec};

impl Elbv2 {
    /// Runs `op` on its decoded parameters; returns the `<OpResult>` content.
    async fn execute(&self, op: Operation, q: &QueryView<'_>) -> Result<String, Elbv2Error> {
        use Operation as Op;
        match op {
            Op::CreateLoadBalancer => load_balancers::create_load_balancer(self, q).await,
            Op::DescribeLoadBalancers => load_balancers::describe_load_balancers(self, q).await,
            Op::DeleteLoadBalancer => load_balancers::delete_load_balancer(self, q).await,
            Op::DescribeLoadBalancerAttributes => {
                load_balancers::describe_load_balancer_attributes(self, q).await
            }
            Op::ModifyLoadBalancerAttributes => {
                load_balancers::modify_load_balancer_attributes(self, q).await
            }
            Op::SetSecurityGroups => load_balancers::set_security_groups(self, q).await,
            Op::DescribeAccountLimits => load_balancers::describe_account_limits(self, q).await,
            Op::CreateTargetGroup => target_groups::create_target_group(self, q).await,
            Op::DescribeTargetGroups => target_groups::describe_target_groups(self, q).await,
            Op::ModifyTargetGroup => target_groups::modify_target_group(self, q).await,
            Op::DeleteTargetGroup => target_groups::delete_target_group(self, q).await,
            Op::DescribeTargetGroupAttributes => {
                target_groups::describe_target_group_attributes(self, q).await
            }
            Op::ModifyTargetGroupAttributes => {
                target_groups::modify_target_group_attributes(self, q).await
            }
            Op::CreateListener => listeners::create_listener(self, q).await,
            Op::DescribeListeners => listeners::describe_listeners(self, q).await,
            Op::ModifyListener => listeners::modify_listener(self, q).await,
            Op::DeleteListener => listeners::delete_listener(self, q).await,
            Op::CreateRule => rules::create_rule(self, q).await,
            Op::DescribeRules => rules::describe_rules(self, q).await,
            Op::ModifyRule => rules::modify_rule(self, q).await,
            Op::DeleteRule => rules::delete_rule(self, q).await,
            Op::SetRulePriorities => rules::set_rule_priorities(self, q).await,
            Op::RegisterTargets => targets::register_targets_op(self, q).await,
            Op::DeregisterTargets => targets::deregister_targets_op(self, q).await,
            Op::DescribeTargetHealth => targets::describe_target_health(self, q).await,
            Op::AddTags => tags::add_tags(self, q).await,
            Op::RemoveTags => tags::remove_tags(self, q).await,
            Op::DescribeTags => tags::describe_tags(self, q).await,
            Op::AddListenerCertificates
            | Op::AddTrustStoreRevocations
            | Op::CreateTrustStore
            | Op::DeleteSharedTrustStoreAssociation
            | Op::DeleteTrustStore
            | Op::DescribeCapacityReservation
            | Op::DescribeListenerAttributes
            | Op::DescribeListenerCertificates
            | Op::DescribeSSLPolicies
            | Op::DescribeTrustStoreAssociations
            | Op::DescribeTrustStoreRevocations
            | Op::DescribeTrustStores
            | Op::GetResourcePolicy
            | Op::GetTrustStoreCaCertificatesBundle
            | Op::GetTrustStoreRevocationContent
            | Op::ModifyCapacityReservation
            | Op::ModifyIpPools
            | Op::ModifyListenerAttributes
            | Op::ModifyTrustStore
            | Op::RemoveListenerCertificates
            | Op::RemoveTrustStoreRevocations
            | Op::SetIpAddressType
            | Op::SetSubnets => Err(Elbv2Error::NotImplemented(op)),
        }
    }

    /// Runs `op` on `params`; returns the XML response document, whose `RequestId` is
    /// `request_id`.
    pub(crate) async fn run(
        &self,
        op: Operation,
        params: &QueryParams,
        request_id: &str,
    ) -> Result<String, Elbv2Error> {
        let result = self.execute(op, &params.view()).await?;
        Ok(wire::xml::envelope(
            XML_NAMESPACE,
            op.name(),
            request_id,
            Some(&result),
        ))
    }
}

impl Service for Elbv2 {
    type Operation = Operation;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "elbv2",
        title: "Elastic Load Balancing 2015-12-01",
        signing_name: SIGNING_NAME,
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

    async fn authorize(&self, op: Operation, call: Call<'_>) -> Result<Vec<Access>, ServiceError> {
        let Input::Query(params) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        Ok(crate::authz::accesses(&self.scope, op, params))
    }

    async fn resource_tags(&self, resource: &str) -> Vec<(String, String)> {
        crate::tags::resource_tags(self, resource).await
    }

    async fn handle(&self, op: Operation, call: Call<'_>) -> Result<Vec<u8>, ServiceError> {
        let Input::Query(params) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        match self.run(op, params, call.request_id).await {
            Ok(xml) => Ok(xml.into_bytes()),
            Err(Elbv2Error::NotImplemented(_)) => Err(ServiceError::NotImplemented),
            Err(e) => Err(ServiceError::Aws(e.to_aws())),
        }
    }
}
