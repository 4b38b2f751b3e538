#!/usr/bin/env bash
# Regenerates every file generated from botocore's models into the tree, then formats
# them as `cargo fmt` would. BOTOCORE_DATA is botocore's `data` directory (the one holding
# `ecs/2014-11-13/service-2.json.gz`); VERSION is the botocore release it came from.
# tools/check_generated.sh calls this with the pinned release; to move to a newer one,
# run it with that release's data and review the diff.
#
# usage: tools/regenerate.sh BOTOCORE_DATA VERSION
set -euo pipefail
cd "$(dirname "$0")/.."
data=$1
version=$2
py=${PYTHON:-python3}

model() { ls "$data/$1"/*/service-2.json* | sort | tail -n 1; }

# The operations whose request and response shapes Stevedore serves, per service.
ecs_ops=(CreateCluster CreateService DeleteAttributes DeleteCluster DeleteService
  DeleteTaskDefinitions DeregisterContainerInstance DeregisterTaskDefinition DescribeClusters
  DescribeContainerInstances DescribeServices DescribeTaskDefinition DescribeTasks
  DiscoverPollEndpoint ListAccountSettings ListAttributes ListClusters ListContainerInstances
  ListServices ListTagsForResource ListTaskDefinitionFamilies ListTaskDefinitions ListTasks
  PutAccountSetting PutAccountSettingDefault PutAttributes PutClusterCapacityProviders
  RegisterContainerInstance RegisterTaskDefinition RunTask StartTask StopTask
  SubmitContainerStateChange SubmitTaskStateChange TagResource UntagResource UpdateCluster
  UpdateClusterSettings UpdateContainerInstancesState UpdateService GetTaskProtection
  UpdateTaskProtection ListServiceDeployments DescribeServiceDeployments
  DescribeServiceRevisions StopServiceDeployment CreateCapacityProvider
  DescribeCapacityProviders UpdateCapacityProvider DeleteCapacityProvider CreateTaskSet
  DescribeTaskSets UpdateTaskSet DeleteTaskSet UpdateServicePrimaryTaskSet)
ecr_ops=(BatchCheckLayerAvailability BatchDeleteImage BatchGetImage CompleteLayerUpload
  CreateRepository DeleteLifecyclePolicy DeleteRepository DeleteRepositoryPolicy DescribeImages
  DescribeRegistry DescribeRepositories GetAuthorizationToken GetDownloadUrlForLayer
  GetLifecyclePolicy GetLifecyclePolicyPreview GetRepositoryPolicy InitiateLayerUpload
  ListImages ListTagsForResource PutImage PutImageScanningConfiguration PutImageTagMutability
  PutLifecyclePolicy SetRepositoryPolicy StartLifecyclePolicyPreview TagResource UntagResource
  PutRegistryPolicy GetRegistryPolicy DeleteRegistryPolicy
  UploadLayerPart StartImageScan DescribeImageScanFindings PutRegistryScanningConfiguration
  GetRegistryScanningConfiguration BatchGetRepositoryScanningConfiguration
  PutReplicationConfiguration DescribeImageReplicationStatus
  CreatePullThroughCacheRule DescribePullThroughCacheRules UpdatePullThroughCacheRule
  DeletePullThroughCacheRule ValidatePullThroughCacheRule
  StartReplicationBackfill StopReplicationBackfill ListReplicationBackfills
  DescribeReplicationBackfillResults)
logs_ops=(CreateLogGroup CreateLogStream DeleteLogGroup DeleteLogStream DeleteRetentionPolicy
  DescribeLogGroups DescribeLogStreams FilterLogEvents GetLogEvents ListTagsForResource
  ListTagsLogGroup PutLogEvents PutRetentionPolicy TagLogGroup TagResource UntagLogGroup
  UntagResource StartQuery GetQueryResults StopQuery DescribeQueries PutQueryDefinition
  DescribeQueryDefinitions DeleteQueryDefinition GetLogGroupFields PutMetricFilter
  DescribeMetricFilters DeleteMetricFilter TestMetricFilter ListLogGroups PutResourcePolicy
  DescribeResourcePolicies DeleteResourcePolicy)

generated=()
shapes() {
  local svc=$1; shift
  "$py" tools/gen_shapes.py "$(model "$svc")" "crates/model/src/$svc/shapes.rs" "$@" >/dev/null
  generated+=("crates/model/src/$svc/shapes.rs")
}
operations() {
  local svc=$1 dir=$2
  "$py" tools/gen_operations.py "$(model "$svc")" "crates/model/src/$dir/operations.rs" "$version" >/dev/null
  generated+=("crates/model/src/$dir/operations.rs")
}

shapes ecs "${ecs_ops[@]}"
shapes ecr "${ecr_ops[@]}"
shapes logs "${logs_ops[@]}"
operations ecs ecs
operations ecr ecr
operations logs logs
operations cloudwatch cloudwatch
operations elbv2 elbv2
operations iam iam
operations sts sts
operations autoscaling autoscaling
operations application-autoscaling appscaling

rustfmt --edition 2021 --config-path rustfmt.toml "${generated[@]}"
printf '%s\n' "${generated[@]}"
