//! The client side of Stevedore's own signed routes (`stevedore join-token`, `stevedore
//! account create`): the caller's AWS credentials, found the AWS way, sign a JSON POST;
//! a refusal becomes an error carrying the server's message.

use ::agent::credentials::region_from_environment;
use ::agent::{ApiClient, ApiConfig, Credentials};
use anyhow::Context;

/// Where a command reaches the server.
#[derive(clap::Args, Debug)]
pub struct Endpoint {
    /// The control plane.
    #[arg(
        long,
        env = "STEVEDORE_ENDPOINT",
        default_value = "http://127.0.0.1:4747"
    )]
    pub endpoint: String,
    /// PEM file of the CA that an `https://` endpoint's certificate must chain to
    /// (default: the system's roots), e.g. the server's `ca.crt`.
    #[arg(long, env = "AWS_CA_BUNDLE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// A client signing with the caller's AWS credentials (found the AWS way) for `to`,
/// trusting `to`'s CA file when one is given.
pub fn client(to: &Endpoint) -> anyhow::Result<ApiClient> {
    let credentials = Credentials::from_environment().context("loading AWS credentials")?;
    if let Some(ca) = &to.ca_file {
        ::agent::tls::trust_ca_file(ca).context("--ca-file")?;
    }
    ApiClient::new(ApiConfig::new(
        &to.endpoint,
        region_from_environment(),
        credentials,
    ))
    .context("building the client")
}

/// POSTs `body` to `path`, signed for `signing_name`; the answer's body when it is a 200.
/// `what` names the call in errors ("the join token").
pub async fn post(
    api: &ApiClient,
    signing_name: &'static str,
    path: &str,
    what: &'static str,
    body: Vec<u8>,
) -> anyhow::Result<Vec<u8>> {
    let (status, answer) = api.post_json(signing_name, path, what, body).await?;
    answered(status, &answer, what)
}

/// GETs `path`, signed for `signing_name`; the answer's body when it is a 200.
pub async fn get(
    api: &ApiClient,
    signing_name: &'static str,
    path: &str,
    what: &'static str,
) -> anyhow::Result<Vec<u8>> {
    let (status, answer) = api.get_json(signing_name, path, what).await?;
    answered(status, &answer, what)
}

fn answered(status: u16, answer: &[u8], what: &str) -> anyhow::Result<Vec<u8>> {
    if status != 200 {
        let message = serde_json::from_slice::<serde_json::Value>(answer)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str().map(str::to_owned)))
            .unwrap_or_else(|| String::from_utf8_lossy(answer).into_owned());
        anyhow::bail!("the server refused {what} (HTTP {status}): {message}");
    }
    Ok(answer.to_vec())
}
