//! The CloudWatch Logs operation table (generated from botocore in
//! `model::logs::operations`) and its one exhaustive match: every operation either runs
//! its handler or is answered as not implemented, so an operation botocore adds fails to
//! compile until it is decided.

use crate::decode::parse_request;
use crate::error::LogsError;
use crate::{
    events, filter, groups, metric_filters, queries, resource_policies, streams, tags, Logs,
};
pub use model::logs::operations::Operation;
use serde::Serialize;
use wire::{
    Access, Call, Input, JsonVersion, OperationTable, Protocol, Service, ServiceError, ServiceSpec,
};

impl Logs {
    /// Runs `op` on a JSON `body`; returns the JSON response.
    pub(crate) async fn execute(&self, op: Operation, body: &[u8]) -> Result<Vec<u8>, LogsError> {
        use Operation as Op;
        macro_rules! run {
            ($handler:path) => {
                respond(&$handler(self, parse_request(body)?).await?)
            };
        }
        match op {
            Op::CreateLogGroup => run!(groups::create_log_group),
            Op::DeleteLogGroup => run!(groups::delete_log_group),
            Op::DescribeLogGroups => run!(groups::describe_log_groups),
            Op::PutRetentionPolicy => run!(groups::put_retention_policy),
            Op::DeleteRetentionPolicy => run!(groups::delete_retention_policy),
            Op::CreateLogStream => run!(streams::create_log_stream),
            Op::DeleteLogStream => run!(streams::delete_log_stream),
            Op::DescribeLogStreams => run!(streams::describe_log_streams),
            Op::PutLogEvents => run!(events::put_log_events),
            Op::GetLogEvents => run!(events::get_log_events),
            Op::FilterLogEvents => run!(filter::filter_log_events),
            Op::TagResource => run!(tags::tag_resource),
            Op::UntagResource => run!(tags::untag_resource),
            Op::ListTagsForResource => run!(tags::list_tags_for_resource),
            Op::TagLogGroup => run!(tags::tag_log_group),
            Op::UntagLogGroup => run!(tags::untag_log_group),
            Op::ListTagsLogGroup => run!(tags::list_tags_log_group),
            Op::StartQuery => run!(queries::start_query),
            Op::GetQueryResults => run!(queries::get_query_results),
            Op::StopQuery => run!(queries::stop_query),
            Op::DescribeQueries => run!(queries::describe_queries),
            Op::PutQueryDefinition => run!(queries::put_query_definition),
            Op::DescribeQueryDefinitions => run!(queries::describe_query_definitions),
            Op::DeleteQueryDefinition => run!(queries::delete_query_definition),
            Op::GetLogGroupFields => run!(queries::get_log_group_fields),
            Op::ListLogGroups => run!(groups::list_log_groups),
            Op::PutMetricFilter => run!(metric_filters::put_metric_filter),
            Op::DescribeMetricFilters => run!(metric_filters::describe_metric_filters),
            Op::DeleteMetricFilter => run!(metric_filters::delete_metric_filter),
            Op::TestMetricFilter => run!(metric_filters::test_metric_filter),
            Op::PutResourcePolicy => run!(resource_policies::put_resource_policy),
            Op::DescribeResourcePolicies => run!(resource_policies::describe_resource_policies),
            Op::DeleteResourcePolicy => run!(resource_policies::delete_resource_policy),
            Op::AssociateKmsKey
            | Op::AssociateSourceToS3TableIntegration
            | Op::CancelExportTask
            | Op::CancelImportTask
            | Op::CreateDelivery
            | Op::CreateExportTask
            | Op::CreateImportTask
            | Op::CreateLogAnomalyDetector
            | Op::CreateLookupTable
            | Op::CreateScheduledQuery
            | Op::DeleteAccountPolicy
            | Op::DeleteDataProtectionPolicy
            | Op::DeleteDelivery
            | Op::DeleteDeliveryDestination
            | Op::DeleteDeliveryDestinationPolicy
            | Op::DeleteDeliverySource
            | Op::DeleteDestination
            | Op::DeleteIndexPolicy
            | Op::DeleteIntegration
            | Op::DeleteLogAnomalyDetector
            | Op::DeleteLookupTable
            | Op::DeleteScheduledQuery
            | Op::DeleteSubscriptionFilter
            | Op::DeleteSyslogConfiguration
            | Op::DeleteTransformer
            | Op::DescribeAccountPolicies
            | Op::DescribeConfigurationTemplates
            | Op::DescribeDeliveries
            | Op::DescribeDeliveryDestinations
            | Op::DescribeDeliverySources
            | Op::DescribeDestinations
            | Op::DescribeExportTasks
            | Op::DescribeFieldIndexes
            | Op::DescribeImportTaskBatches
            | Op::DescribeImportTasks
            | Op::DescribeIndexPolicies
            | Op::DescribeLookupTables
            | Op::DescribeSubscriptionFilters
            | Op::DisassociateKmsKey
            | Op::DisassociateSourceFromS3TableIntegration
            | Op::GetDataProtectionPolicy
            | Op::GetDelivery
            | Op::GetDeliveryDestination
            | Op::GetDeliveryDestinationPolicy
            | Op::GetDeliverySource
            | Op::GetIntegration
            | Op::GetLogAnomalyDetector
            | Op::GetLogFields
            | Op::GetLogObject
            | Op::GetLogRecord
            | Op::GetLookupTable
            | Op::GetScheduledQuery
            | Op::GetScheduledQueryHistory
            | Op::GetStorageTierPolicy
            | Op::GetTransformer
            | Op::ListAggregateLogGroupSummaries
            | Op::ListAnomalies
            | Op::ListIntegrations
            | Op::ListLogAnomalyDetectors
            | Op::ListLogGroupsForQuery
            | Op::ListScheduledQueries
            | Op::ListSourcesForS3TableIntegration
            | Op::ListSyslogConfigurations
            | Op::PutAccountPolicy
            | Op::PutBearerTokenAuthentication
            | Op::PutDataProtectionPolicy
            | Op::PutDeliveryDestination
            | Op::PutDeliveryDestinationPolicy
            | Op::PutDeliverySource
            | Op::PutDestination
            | Op::PutDestinationPolicy
            | Op::PutIndexPolicy
            | Op::PutIntegration
            | Op::PutLogGroupDeletionProtection
            | Op::PutStorageTierPolicy
            | Op::PutSubscriptionFilter
            | Op::PutSyslogConfiguration
            | Op::PutTransformer
            | Op::StartLiveTail
            | Op::TestTransformer
            | Op::UpdateAnomaly
            | Op::UpdateDeliveryConfiguration
            | Op::UpdateLogAnomalyDetector
            | Op::UpdateLookupTable
            | Op::UpdateScheduledQuery => Err(LogsError::NotImplemented(op)),
        }
    }
}

fn respond<T: Serialize>(out: &T) -> Result<Vec<u8>, LogsError> {
    serde_json::to_vec(out).map_err(|e| {
        LogsError::Store(store::StoreError::Backend(format!(
            "response encoding failed: {e}"
        )))
    })
}

impl Service for Logs {
    type Operation = Operation;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "logs",
        title: "CloudWatch Logs",
        signing_name: model::logs::SIGNING_NAME,
        protocols: &[Protocol::AwsJson {
            version: JsonVersion::V1_1,
            target_prefix: model::logs::TARGET_PREFIX,
        }],
    };

    const OPERATIONS: OperationTable<Operation> = OperationTable {
        all: Operation::ALL,
        from_name: Operation::from_name,
        name: Operation::name,
        errors: Operation::errors,
    };

    fn body_limit(&self, op: Operation) -> usize {
        match op {
            Operation::PutLogEvents => crate::MAX_REQUEST_BYTES,
            _ => wire::service::DEFAULT_BODY_LIMIT,
        }
    }

    async fn authorize(&self, op: Operation, call: Call<'_>) -> Result<Vec<Access>, ServiceError> {
        let Input::Json(body) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        Ok(crate::authz::accesses(&self.scope, op, body))
    }

    async fn resource_tags(&self, resource: &str) -> Vec<(String, String)> {
        crate::tags::resource_tags(self, resource).await
    }

    async fn handle(&self, op: Operation, call: Call<'_>) -> Result<Vec<u8>, ServiceError> {
        let Input::Json(body) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        self.execute(op, body).await.map_err(|e| match e {
            LogsError::NotImplemented(_) => ServiceError::NotImplemented,
            e => ServiceError::Aws(e.to_aws()),
        })
    }
}
