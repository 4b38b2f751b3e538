//! `stevedore join-token`: asks the server for a one-time join token for an instance
//! profile (signed with the caller's AWS credentials, found the AWS way; the server
//! checks `iam:PassRole` on the profile's role) and prints it with the command an agent
//! host runs to join. The admin key never has to reach that host.

use ::agent::credentials::region_from_environment;
use ::agent::instance_identity::{JoinTokenRequest, JoinTokenResponse, JOIN_TOKENS_PATH};
use ::agent::{ApiClient, ApiConfig, Credentials};
use anyhow::Context;

/// Options of `stevedore join-token`.
#[derive(clap::Args, Debug)]
pub struct JoinTokenArgs {
    /// The instance profile the agent joins as (its role must trust ec2.amazonaws.com).
    #[arg(long)]
    instance_profile: String,
    /// How long the token may wait to be redeemed, e.g. `1h`, `30m` (at most 7 days).
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// The control plane.
    #[arg(
        long,
        env = "STEVEDORE_ENDPOINT",
        default_value = "http://127.0.0.1:4747"
    )]
    endpoint: String,
    /// The cluster named in the printed agent command line.
    #[arg(long, default_value = "default")]
    cluster: String,
    /// PEM file of the CA that an `https://` endpoint's certificate must chain to
    /// (default: the system's roots), e.g. the server's `ca.crt`.
    #[arg(long, env = "AWS_CA_BUNDLE")]
    ca_file: Option<std::path::PathBuf>,
}

/// Mints the token and prints it.
pub async fn run(args: JoinTokenArgs) -> anyhow::Result<()> {
    let ttl = crate::agent::parse_duration(&args.ttl)?;
    let api = signed_client(&args.endpoint, args.ca_file.as_deref())?;
    let body = serde_json::to_vec(&JoinTokenRequest {
        instance_profile_name: args.instance_profile.clone(),
        ttl_seconds: Some(ttl.as_secs()),
    })?;
    let (status, answer) = api
        .post_json("iam", JOIN_TOKENS_PATH, "CreateJoinToken", body)
        .await?;
    if status != 200 {
        let message = refusal_message(&answer);
        anyhow::bail!("the server refused the join token (HTTP {status}): {message}");
    }
    let token: JoinTokenResponse =
        serde_json::from_slice(&answer).context("reading the server's answer")?;
    println!("{}", token.join_token);
    eprintln!(
        "Join token for instance profile {} (single use, expires {}). On the agent host run:\n  stevedore agent --endpoint {} --cluster {} --join-token {}{}",
        token.instance_profile_name,
        token.expiration,
        args.endpoint,
        args.cluster,
        token.join_token,
        if args.endpoint.starts_with("https://") { " --ca-file <copy of the server's ca.crt>" } else { "" }
    );
    Ok(())
}

/// A client for Stevedore's own signed routes, with the caller's AWS credentials (found
/// the AWS way) and, for an `https://` endpoint, the CA in `ca_file` when given.
pub(crate) fn signed_client(
    endpoint: &str,
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<ApiClient> {
    let credentials = Credentials::from_environment().context("loading AWS credentials")?;
    if let Some(ca) = ca_file {
        ::agent::tls::trust_ca_file(ca).context("--ca-file")?;
    }
    ApiClient::new(ApiConfig::new(
        endpoint,
        region_from_environment(),
        credentials,
    ))
    .context("building the client")
}

/// The `message` of a refusal's AWS error body, else the body as text.
pub(crate) fn refusal_message(answer: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(answer)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str().map(str::to_owned)))
        .unwrap_or_else(|| String::from_utf8_lossy(answer).into_owned())
}
