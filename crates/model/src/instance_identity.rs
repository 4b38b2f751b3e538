//! The wire forms of Stevedore's instance-identity routes, shared by the server (which
//! answers them) and the agent (which calls them): minting a join token, redeeming it for
//! an instance id and secret, and exchanging those for the instance role's credentials.
//! Types holding a secret have no `Debug`, or one that leaves the secret out.

use serde::{Deserialize, Serialize};

/// `POST`: mint a join token (SigV4-signed; [`JoinTokenRequest`] → [`JoinTokenResponse`]).
pub const JOIN_TOKENS_PATH: &str = "/stevedore/join-tokens";
/// `POST`: redeem a join token ([`RedeemRequest`] → [`InstanceIdentity`]).
pub const IDENTITY_PATH: &str = "/stevedore/instance-identity";
/// `POST`: instance credentials ([`InstanceCredentialsRequest`] → [`ImdsCredentials`]).
pub const CREDENTIALS_PATH: &str = "/stevedore/instance-credentials";

/// The body of a join token request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinTokenRequest {
    /// The instance profile the agent joins as.
    pub instance_profile_name: String,
    /// How long the token may wait to be redeemed (default one hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// A minted join token (no `Debug`: it holds the token).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinTokenResponse {
    /// The token (shown once).
    pub join_token: String,
    /// The instance profile.
    pub instance_profile_name: String,
    /// When it stops being accepted, ISO 8601.
    pub expiration: String,
    /// `sha256:<hex>` of the server's own CA certificate, when the server made its
    /// certificates: an agent given it trusts the CA the server presents with that hash
    /// (`--ca-cert-hash`), so no `ca.crt` has to be copied to the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_hash: Option<String>,
}

/// The body of a redemption (no `Debug`: it holds the token).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedeemRequest {
    /// The join token.
    pub join_token: String,
}

/// What a redemption answers, and what the identity file holds.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceIdentity {
    /// `i-…`.
    pub instance_id: String,
    /// The instance's secret.
    pub instance_secret: String,
    /// The instance profile's ARN.
    pub instance_profile_arn: String,
    /// The profile's role's ARN when it was redeemed.
    pub role_arn: String,
}

impl std::fmt::Debug for InstanceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceIdentity")
            .field("instance_id", &self.instance_id)
            .field("instance_profile_arn", &self.instance_profile_arn)
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

/// The body of an instance credentials request (no `Debug`: it holds the secret).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceCredentialsRequest {
    /// `i-…`.
    pub instance_id: String,
    /// The instance's secret.
    pub instance_secret: String,
}

/// Instance credentials as EC2's instance metadata service answers them.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImdsCredentials {
    /// `Success`.
    pub code: String,
    /// `ASIA…`.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
    /// The session token.
    pub token: String,
    /// When they expire, ISO 8601.
    pub expiration: String,
    /// When they were issued, ISO 8601.
    pub last_updated: String,
    /// `AWS-HMAC`.
    #[serde(rename = "Type")]
    pub kind: String,
}
