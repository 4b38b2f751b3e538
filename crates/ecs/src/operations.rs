//! The ECS operation table (generated from botocore in `model::ecs::operations`) and its
//! one exhaustive match: every operation either runs its handler or is answered as not
//! implemented, so an operation botocore adds fails to compile until it is decided.

use crate::decode::parse_request;
use crate::error::EcsError;
use crate::{
    account_settings, attributes, capacity_providers, clusters, container_instances, services,
    tags, task_definitions, tasks, Caller, Ecs,
};
pub use model::ecs::operations::Operation;
use serde::Serialize;
use wire::{
    Access, Call, Input, JsonVersion, OperationTable, Protocol, Service, ServiceError, ServiceSpec,
};

impl Ecs {
    /// Runs `op` on a JSON `body`; returns the JSON response.
    pub(crate) async fn execute(
        &self,
        op: Operation,
        body: &[u8],
        caller: &Caller,
    ) -> Result<Vec<u8>, EcsError> {
        use Operation as Op;
        macro_rules! run {
            ($handler:path) => {
                respond(&$handler(self, parse_request(body)?, caller).await?)
            };
        }
        match op {
            Op::CreateCluster => run!(clusters::create_cluster),
            Op::DescribeClusters => run!(clusters::describe_clusters),
            Op::ListClusters => run!(clusters::list_clusters),
            Op::UpdateCluster => run!(clusters::update_cluster),
            Op::UpdateClusterSettings => run!(clusters::update_cluster_settings),
            Op::DeleteCluster => run!(clusters::delete_cluster),
            Op::RegisterTaskDefinition => run!(task_definitions::register_task_definition),
            Op::DescribeTaskDefinition => run!(task_definitions::describe_task_definition),
            Op::ListTaskDefinitions => run!(task_definitions::list_task_definitions),
            Op::ListTaskDefinitionFamilies => run!(task_definitions::list_task_definition_families),
            Op::DeregisterTaskDefinition => run!(task_definitions::deregister_task_definition),
            Op::DeleteTaskDefinitions => run!(task_definitions::delete_task_definitions),
            Op::RegisterContainerInstance => run!(container_instances::register_container_instance),
            Op::DeregisterContainerInstance => {
                run!(container_instances::deregister_container_instance)
            }
            Op::DescribeContainerInstances => {
                run!(container_instances::describe_container_instances)
            }
            Op::ListContainerInstances => run!(container_instances::list_container_instances),
            Op::UpdateContainerInstancesState => {
                run!(container_instances::update_container_instances_state)
            }
            Op::PutAttributes => run!(attributes::put_attributes),
            Op::DeleteAttributes => run!(attributes::delete_attributes),
            Op::ListAttributes => run!(attributes::list_attributes),
            Op::TagResource => run!(tags::tag_resource),
            Op::UntagResource => run!(tags::untag_resource),
            Op::ListTagsForResource => run!(tags::list_tags_for_resource),
            Op::ListAccountSettings => run!(account_settings::list_account_settings),
            Op::PutAccountSetting => run!(account_settings::put_account_setting),
            Op::PutAccountSettingDefault => run!(account_settings::put_account_setting_default),
            Op::RunTask => run!(tasks::launch::run_task),
            Op::StartTask => run!(tasks::launch::start_task),
            Op::StopTask => run!(tasks::report::stop_task),
            Op::DescribeTasks => run!(tasks::query::describe_tasks),
            Op::ListTasks => run!(tasks::query::list_tasks),
            Op::SubmitTaskStateChange => run!(tasks::report::submit_task_state_change),
            Op::SubmitContainerStateChange => run!(tasks::report::submit_container_state_change),
            Op::DiscoverPollEndpoint => run!(clusters::discover_poll_endpoint),
            Op::CreateService => run!(services::api::create_service),
            Op::UpdateService => run!(services::api::update_service),
            Op::DeleteService => run!(services::api::delete_service),
            Op::DescribeServices => run!(services::api::describe_services),
            Op::ListServices => run!(services::api::list_services),
            Op::PutClusterCapacityProviders => run!(clusters::put_cluster_capacity_providers),
            Op::CreateCapacityProvider => run!(capacity_providers::create_capacity_provider),
            Op::DescribeCapacityProviders => run!(capacity_providers::describe_capacity_providers),
            Op::UpdateCapacityProvider => run!(capacity_providers::update_capacity_provider),
            Op::DeleteCapacityProvider => run!(capacity_providers::delete_capacity_provider),
            Op::UpdateTaskProtection => run!(tasks::protection::update_task_protection),
            Op::GetTaskProtection => run!(tasks::protection::get_task_protection),
            Op::ListServiceDeployments => run!(services::history_api::list_service_deployments),
            Op::DescribeServiceDeployments => {
                run!(services::history_api::describe_service_deployments)
            }
            Op::DescribeServiceRevisions => run!(services::history_api::describe_service_revisions),
            Op::StopServiceDeployment => run!(services::history_api::stop_service_deployment),
            Op::CreateTaskSet => run!(services::task_sets::api::create_task_set),
            Op::DescribeTaskSets => run!(services::task_sets::api::describe_task_sets),
            Op::UpdateTaskSet => run!(services::task_sets::api::update_task_set),
            Op::DeleteTaskSet => run!(services::task_sets::api::delete_task_set),
            Op::UpdateServicePrimaryTaskSet => {
                run!(services::task_sets::api::update_service_primary_task_set)
            }
            Op::AssociateGatewayWithCluster
            | Op::ContinueServiceDeployment
            | Op::CreateDaemon
            | Op::CreateExpressGatewayService
            | Op::CreateGateway
            | Op::DeleteAccountSetting
            | Op::DeleteDaemon
            | Op::DeleteDaemonTaskDefinition
            | Op::DeleteExpressGatewayService
            | Op::DeleteGateway
            | Op::DescribeDaemon
            | Op::DescribeDaemonDeployments
            | Op::DescribeDaemonRevisions
            | Op::DescribeDaemonTaskDefinition
            | Op::DescribeExpressGatewayService
            | Op::DescribeGateway
            | Op::DescribeGatewayResources
            | Op::DescribeGatewayRoute
            | Op::DisassociateGatewayFromCluster
            | Op::ExecuteCommand
            | Op::ListDaemonDeployments
            | Op::ListDaemonTaskDefinitions
            | Op::ListDaemons
            | Op::ListGatewayClusterAssociations
            | Op::ListGatewayRoutes
            | Op::ListGateways
            | Op::ListServicesByNamespace
            | Op::RegisterDaemonTaskDefinition
            | Op::SubmitAttachmentStateChanges
            | Op::UpdateContainerAgent
            | Op::UpdateDaemon
            | Op::UpdateExpressGatewayService
            | Op::UpdateGateway => Err(EcsError::NotImplemented(op)),
        }
    }
}

fn respond<T: Serialize>(out: &T) -> Result<Vec<u8>, EcsError> {
    serde_json::to_vec(out).map_err(|e| {
        EcsError::Store(store::StoreError::Backend(format!(
            "response encoding failed: {e}"
        )))
    })
}

impl Service for Ecs {
    type Operation = Operation;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "ecs",
        title: "Amazon ECS",
        signing_name: model::ecs::SIGNING_NAME,
        protocols: &[Protocol::AwsJson {
            version: JsonVersion::V1_1,
            target_prefix: model::ecs::TARGET_PREFIX,
        }],
    };

    const OPERATIONS: OperationTable<Operation> = OperationTable {
        all: Operation::ALL,
        from_name: Operation::from_name,
        name: Operation::name,
        errors: Operation::errors,
    };

    async fn authorize(&self, op: Operation, call: Call<'_>) -> Result<Vec<Access>, ServiceError> {
        let Input::Json(body) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        self.accesses(op, body)
            .await
            .map_err(|e| ServiceError::Aws(e.to_aws()))
    }

    async fn resource_tags(&self, resource: &str) -> Vec<(String, String)> {
        crate::tags::resource_tags(self, resource).await
    }

    async fn handle(&self, op: Operation, call: Call<'_>) -> Result<Vec<u8>, ServiceError> {
        let Input::Json(body) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        let ran = match self.refuse_foreign_regions(body) {
            Ok(()) => self.run(op, body, call.caller).await,
            Err(e) => Err(e),
        };
        ran.map_err(|e| match e {
            EcsError::NotImplemented(_) => ServiceError::NotImplemented,
            e => ServiceError::Aws(e.to_aws()),
        })
    }
}

impl Ecs {
    /// ECS refuses a reference to another region's resource (a request signed for
    /// us-east-2 naming a us-east-1 cluster ARN) with `InvalidParameterException: Invalid
    /// Region in ARN` instead of looking the ARN's name up in its own region. References
    /// are the request's top-level strings and lists of strings (`cluster`, `services`,
    /// `taskDefinition`, `resourceArn`…); nested values (environment variables, tags) are
    /// data, not references. Bodies naming no ECS ARN at all are not parsed again.
    fn refuse_foreign_regions(&self, body: &[u8]) -> Result<(), EcsError> {
        const MARK: &[u8] = b"arn:aws:ecs:";
        if !body.windows(MARK.len()).any(|w| w == MARK) {
            return Ok(());
        }
        // A body that is not a JSON object is the operation's to refuse, in its words.
        let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(body) else {
            return Ok(());
        };
        let foreign = |v: &serde_json::Value| {
            v.as_str()
                .is_some_and(|r| self.scope().is_foreign_region(r))
        };
        let names_foreign = fields.values().any(|value| match value {
            serde_json::Value::Array(items) => items.iter().any(foreign),
            other => foreign(other),
        });
        if names_foreign {
            return Err(EcsError::InvalidParameter("Invalid Region in ARN".into()));
        }
        Ok(())
    }
}
