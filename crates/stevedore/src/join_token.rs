//! `stevedore join-token`: asks the server for a one-time join token for an instance
//! profile (signed with the caller's AWS credentials, found the AWS way; the server
//! checks `iam:PassRole` on the profile's role) and prints it with the command an agent
//! host runs to join. The admin key never has to reach that host.

use ::agent::instance_identity::{JoinTokenRequest, JoinTokenResponse, JOIN_TOKENS_PATH};
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
    #[command(flatten)]
    to: crate::admin_client::Endpoint,
    /// The cluster named in the printed agent command line.
    #[arg(long, default_value = "default")]
    cluster: String,
}

/// Mints the token and prints it.
pub async fn run(args: JoinTokenArgs) -> anyhow::Result<()> {
    let ttl = crate::agent::parse_duration(&args.ttl)?;
    let body = serde_json::to_vec(&JoinTokenRequest {
        instance_profile_name: args.instance_profile.clone(),
        ttl_seconds: Some(ttl.as_secs()),
    })?;
    let api = crate::admin_client::client(&args.to)?;
    let answer =
        crate::admin_client::post(&api, "iam", JOIN_TOKENS_PATH, "the join token", body).await?;
    let token: JoinTokenResponse =
        serde_json::from_slice(&answer).context("reading the server's answer")?;
    println!("{}", token.join_token);
    eprintln!(
        "Join token for instance profile {} (single use, expires {}). On the agent host run:\n  stevedore agent --endpoint {} --cluster {} --join-token {}{}",
        token.instance_profile_name,
        token.expiration,
        args.to.endpoint,
        args.cluster,
        token.join_token,
        trust_flag(&args.to.endpoint, token.ca_cert_hash.as_deref())
    );
    Ok(())
}

/// How the printed agent command trusts an `https://` server: the hash of the server's
/// own CA when it made one (the agent takes the CA from the server and checks it), else
/// a copy of the CA file (a server with the user's certificates).
fn trust_flag(endpoint: &str, ca_cert_hash: Option<&str>) -> String {
    match ca_cert_hash {
        _ if !endpoint.starts_with("https://") => String::new(),
        Some(hash) => format!(" --ca-cert-hash {hash}"),
        None => " --ca-file <the CA file that signed the server's certificate>".to_owned(),
    }
}
