//! Temporary credentials that need no store write: the session token is a self-contained
//! record (access key id, who the session acts as, expiry, session tags) authenticated
//! with HMAC-SHA256 under the server key, and the secret access key is derived from the
//! access key id under the same key. Any replica holding the key can check a token; none
//! has to remember it. The role's policies are not in the token: they are looked up by
//! role when the token is used, so a deleted role or a changed policy takes effect at once.
//!
//! Wire form: `STV1.<base64url(JSON claims)>.<base64url(HMAC(key, "token" ‖ 0 ‖ claims))>`.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "STV1";

/// Who a session acts as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subject {
    /// A role session: the role's name and unique id (a recreated role is another role).
    Role {
        /// The role's name.
        name: String,
        /// The role's `AROA…` id when the session began.
        id: String,
        /// The session name.
        session: String,
    },
    /// A user's session (`GetSessionToken`): the user's name and unique id.
    User {
        /// The user's name.
        name: String,
        /// The user's `AIDA…` id.
        id: String,
    },
    /// The account root's session (`GetSessionToken` with the admin key).
    Root,
}

/// What a session token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The `ASIA…` access key id the token belongs to.
    #[serde(rename = "k")]
    pub access_key_id: String,
    /// Who the session acts as.
    #[serde(rename = "s")]
    pub subject: Subject,
    /// Unix seconds after which the token is expired.
    #[serde(rename = "x")]
    pub expires: i64,
    /// Session tags.
    #[serde(rename = "t", default)]
    pub tags: Vec<(String, String)>,
    /// The agent instance (`i-…`) the session was issued to. Only instance credentials
    /// (`iam::instances`) set it: a role session named like an instance is not one.
    /// Tokens sealed before the field existed decode with `None`.
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not one this server issued, altered, or another key's.
    #[error("the session token is invalid")]
    Invalid,
    /// Issued here, but past its expiry.
    #[error("the session token is expired")]
    Expired,
}

/// The key tokens are signed and secrets derived with.
#[derive(Clone)]
pub struct TokenKey {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from its 32 bytes.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, domain: &[u8], data: &[u8]) -> HmacSha256 {
        // A 32-byte key is always a valid HMAC key.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(domain);
        mac.update(&[0]);
        mac.update(data);
        mac
    }

    /// The secret access key of a temporary access key id.
    pub fn secret_for(&self, access_key_id: &str) -> String {
        let digest = self
            .mac(b"secret", access_key_id.as_bytes())
            .finalize()
            .into_bytes();
        let mut secret = STANDARD.encode(digest);
        secret.truncate(40);
        secret
    }

    /// The session token carrying `claims`.
    pub fn seal(&self, claims: &Claims) -> String {
        // Claims are plain strings and numbers: encoding cannot fail.
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(json);
        let tag = self.mac(b"token", body.as_bytes()).finalize().into_bytes();
        format!("{VERSION}.{body}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The claims of `token`, presented with `access_key_id` at `now` (Unix seconds).
    pub fn open(&self, token: &str, access_key_id: &str, now: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(VERSION), Some(body), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Invalid)?;
        self.mac(b"token", body.as_bytes())
            .verify_slice(&tag)
            .map_err(|_| TokenError::Invalid)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Invalid)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)?;
        if claims.access_key_id != access_key_id {
            return Err(TokenError::Invalid);
        }
        if now >= claims.expires {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            access_key_id: "ASIAEXAMPLE".into(),
            subject: Subject::Role {
                name: "app".into(),
                id: "AROAEXAMPLE".into(),
                session: "s1".into(),
            },
            expires: 2_000,
            tags: vec![("team".into(), "a".into())],
            instance: None,
        }
    }

    #[test]
    fn tokens_sealed_without_the_instance_field_still_open() {
        let key = TokenKey::new([7; 32]);
        // The JSON a server sealed before instance identities existed.
        let old = br#"{"k":"ASIAEXAMPLE","s":"Root","x":2000,"t":[]}"#;
        let body = URL_SAFE_NO_PAD.encode(old);
        let tag = key.mac(b"token", body.as_bytes()).finalize().into_bytes();
        let token = format!("STV1.{body}.{}", URL_SAFE_NO_PAD.encode(tag));
        let claims = key.open(&token, "ASIAEXAMPLE", 1).unwrap();
        assert_eq!(claims.instance, None);
        assert_eq!(claims.subject, Subject::Root);
    }

    #[test]
    fn the_instance_claim_is_sealed_with_the_rest() {
        let key = TokenKey::new([7; 32]);
        let mut c = claims();
        c.instance = Some("i-0123456789abcdef0".into());
        let token = key.seal(&c);
        assert_eq!(
            key.open(&token, "ASIAEXAMPLE", 1)
                .unwrap()
                .instance
                .as_deref(),
            Some("i-0123456789abcdef0")
        );
    }

    #[test]
    fn a_sealed_token_opens_to_its_claims_until_it_expires() {
        let key = TokenKey::new([7; 32]);
        let token = key.seal(&claims());
        assert_eq!(key.open(&token, "ASIAEXAMPLE", 1_999), Ok(claims()));
        assert_eq!(
            key.open(&token, "ASIAEXAMPLE", 2_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn tampered_forged_and_borrowed_tokens_are_invalid() {
        let key = TokenKey::new([7; 32]);
        let token = key.seal(&claims());
        let (head, tag) = token.rsplit_once('.').unwrap();
        let mut other = claims();
        other.expires = 9_999_999;
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        let tampered = format!("STV1.{body}.{tag}");
        assert_eq!(
            key.open(&tampered, "ASIAEXAMPLE", 1),
            Err(TokenError::Invalid)
        );
        let forged = TokenKey::new([8; 32]).seal(&claims());
        assert_eq!(
            key.open(&forged, "ASIAEXAMPLE", 1),
            Err(TokenError::Invalid)
        );
        assert_eq!(key.open(&token, "ASIAOTHER", 1), Err(TokenError::Invalid));
        assert_eq!(
            key.open("garbage", "ASIAEXAMPLE", 1),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            key.open(&format!("{head}.AAAA"), "ASIAEXAMPLE", 1),
            Err(TokenError::Invalid)
        );
        // An expired token that was tampered with is invalid, not expired.
        assert_eq!(
            key.open(&tampered, "ASIAEXAMPLE", 3_000),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn secrets_are_forty_characters_and_differ_per_key_id() {
        let key = TokenKey::new([1; 32]);
        let a = key.secret_for("ASIAONE");
        assert_eq!(a.len(), 40);
        assert_eq!(a, key.secret_for("ASIAONE"));
        assert_ne!(a, key.secret_for("ASIATWO"));
        assert_ne!(a, TokenKey::new([2; 32]).secret_for("ASIAONE"));
    }
}
