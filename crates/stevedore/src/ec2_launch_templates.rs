//! The EC2 API's launch template operations, served by `autoscaling::launch_templates`:
//! the `ec2` crate serves VPCs, subnets and security groups and hands every other EC2
//! action to this fallback.

use wire::query::QueryParams;

/// The launch template operations of EC2, as the `ec2` service's fallback.
pub struct LaunchTemplates(pub autoscaling::AutoScaling);

#[async_trait::async_trait]
impl ec2::Fallback for LaunchTemplates {
    async fn serve(
        &self,
        action: &str,
        params: &QueryParams,
        caller_arn: &str,
        request_id: &str,
    ) -> Option<Result<Vec<u8>, wire::AwsError>> {
        let answer = self
            .0
            .serve_ec2_action(action, params, caller_arn, request_id)
            .await?;
        Some(answer.map(String::into_bytes).map_err(|e| e.to_aws()))
    }
}
