//! Registry credentials: `GetAuthorizationToken` issues a password that `/v2/` accepts
//! as HTTP Basic `AWS:<password>` (or as a bearer token), bound to the principal that
//! asked for it.
//!
//! A password is `v2.<expires epoch s>.<nonce>.<subject>.<HMAC-SHA256(secret, all before)>`
//! where `<subject>` is `root` or the base64url of `<principal ARN>\n<unique id>`:
//! self-contained, so any replica sharing the store's secret verifies it without a
//! lookup; the MAC covers the subject and the expiry, so neither can be changed; and it
//! never contains `:` (the aws CLI splits the decoded token on `:`).

use crate::error::RegistryError;
use crate::objects::{Objects, SECRET_KEY};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use store::Txn;

/// How long a token lives at most (ECR: 12 hours).
pub const TOKEN_TTL_SECS: i64 = 12 * 3600;

const VERSION: &str = "v2";
const ROOT: &str = "root";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Who a token acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSubject {
    /// The account root (the admin key).
    Root,
    /// A user or role session, by ARN and unique id (`AIDA…`, `AROA…:session`): the
    /// unique id tells a deleted and recreated user of the same name apart.
    Principal {
        /// The principal's ARN.
        arn: String,
        /// The principal's unique id.
        user_id: String,
    },
}

impl TokenSubject {
    /// The subject a signed ECR caller's tokens for the registry of account `registry`
    /// act as: `Root` only for that account's own root (another account's root is a
    /// principal like any other there).
    pub fn of(caller: &wire::Caller, registry: &str) -> Self {
        if caller.is_root() && caller.account() == registry {
            Self::Root
        } else {
            Self::Principal {
                arn: caller.principal_arn().to_owned(),
                user_id: caller.user_id().to_owned(),
            }
        }
    }

    fn encode(&self) -> String {
        match self {
            Self::Root => ROOT.to_owned(),
            Self::Principal { arn, user_id } => B64.encode(format!("{arn}\n{user_id}")),
        }
    }

    fn decode(s: &str) -> Option<Self> {
        if s == ROOT {
            return Some(Self::Root);
        }
        let raw = String::from_utf8(B64.decode(s).ok()?).ok()?;
        let (arn, user_id) = raw.split_once('\n')?;
        Some(Self::Principal {
            arn: arn.to_owned(),
            user_id: user_id.to_owned(),
        })
    }
}

/// A verified token: who it acts as and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Who.
    pub subject: TokenSubject,
    /// Expiry, epoch seconds.
    pub expires: i64,
}

/// The HMAC key, loaded (or created) once from the store.
pub struct TokenKey(Vec<u8>);

fn unauthorized(why: &str) -> RegistryError {
    RegistryError::Unauthorized(format!("authentication required: {why}"))
}

/// What a person does about a token that is refused.
const RELOGIN: &str =
    "log in again with `aws ecr get-login-password | docker login --username AWS --password-stdin <registry>`";
impl TokenKey {
    /// Loads the secret from the store, creating it on first use. Replicas racing to
    /// create it agree through compare-and-swap.
    pub async fn load(objects: &Objects) -> Result<Self, RegistryError> {
        for _ in 0..8 {
            if let Some((raw, _)) = objects.get_raw(SECRET_KEY).await? {
                let key = hex::decode(&raw)
                    .map_err(|e| RegistryError::Storage(format!("token secret unreadable: {e}")))?;
                return Ok(Self(key));
            }
            let fresh: [u8; 32] = rand::random();
            objects
                .commit(
                    Txn::new()
                        .when(SECRET_KEY, 0)
                        .put(SECRET_KEY, hex::encode(fresh)),
                )
                .await?;
        }
        Err(RegistryError::Contention("the token secret".into()))
    }

    fn mac(&self, payload: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(payload.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    /// Issues a password for `subject` valid for `TOKEN_TTL_SECS`, or until `not_after`
    /// when that is sooner (the caller's own credentials expire first); returns it and
    /// its expiry.
    pub fn issue(&self, now: i64, subject: &TokenSubject, not_after: Option<i64>) -> (String, i64) {
        let expires = not_after.map_or(now + TOKEN_TTL_SECS, |n| n.min(now + TOKEN_TTL_SECS));
        self.sign(expires, subject)
    }

    /// A new password for an existing grant: same subject, same expiry, so a token can
    /// be exchanged (the bearer flow) but never extended.
    pub fn reissue(&self, grant: &Grant) -> (String, i64) {
        self.sign(grant.expires, &grant.subject)
    }

    fn sign(&self, expires: i64, subject: &TokenSubject) -> (String, i64) {
        let nonce = hex::encode(rand::random::<[u8; 12]>());
        let payload = format!("{VERSION}.{expires}.{nonce}.{}", subject.encode());
        let mac = self.mac(&payload);
        (format!("{payload}.{mac}"), expires)
    }

    /// Checks a password: well-formed, signed by us, not expired; returns its grant.
    pub fn verify(&self, password: &str, now: i64) -> Result<Grant, RegistryError> {
        let malformed = || unauthorized(&format!("the registry password is malformed; {RELOGIN}"));
        let Some((payload, mac)) = password.rsplit_once('.') else {
            return Err(malformed());
        };
        let mut parts = payload.split('.');
        let (Some(VERSION), Some(exp), Some(_nonce), Some(subject), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed());
        };
        let expected = self.mac(payload);
        // Compare in constant time so the MAC cannot be guessed byte by byte.
        let same = expected.len() == mac.len()
            && expected
                .bytes()
                .zip(mac.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Err(unauthorized(&format!(
                "the registry password was not issued by this registry; {RELOGIN}"
            )));
        }
        let (Ok(expires), Some(subject)) = (exp.parse::<i64>(), TokenSubject::decode(subject))
        else {
            return Err(malformed());
        };
        if expires <= now {
            return Err(unauthorized(&format!(
                "your authorization token has expired; {RELOGIN}"
            )));
        }
        Ok(Grant { subject, expires })
    }

    /// Checks an `Authorization` header value: `Basic base64(AWS:<password>)` or
    /// `Bearer <password>`.
    pub fn verify_header(&self, header: Option<&str>, now: i64) -> Result<Grant, RegistryError> {
        let Some(h) = header else {
            return Err(unauthorized(&format!(
                "no credentials were sent; {RELOGIN}"
            )));
        };
        let (scheme, value) = h.trim().split_once(' ').unwrap_or((h, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
            match decoded.split_once(':') {
                Some(("AWS", password)) => self.verify(password, now),
                _ => Err(unauthorized(&format!(
                    "the user name must be AWS; {RELOGIN}"
                ))),
            }
        } else if scheme.eq_ignore_ascii_case("bearer") {
            self.verify(value.trim(), now)
        } else {
            Err(unauthorized("use Basic or Bearer credentials"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> TokenSubject {
        TokenSubject::Principal {
            arn: "arn:aws:iam::123456789012:user/alice".into(),
            user_id: "AIDAALICE".into(),
        }
    }

    #[test]
    fn issued_tokens_carry_their_subject_until_they_expire() {
        let k = TokenKey(vec![1; 32]);
        let (t, exp) = k.issue(1000, &alice(), None);
        assert!(!t.contains(':'));
        assert_eq!(exp, 1000 + TOKEN_TTL_SECS);
        let grant = k.verify(&t, 1001).expect("test value");
        assert_eq!(grant.subject, alice());
        assert_eq!(grant.expires, exp);
        let err = k.verify(&t, exp).expect_err("refused").to_string();
        assert!(
            err.contains("expired") && err.contains("get-login-password"),
            "{err}"
        );
        let (t, _) = k.issue(1000, &TokenSubject::Root, None);
        assert_eq!(
            k.verify(&t, 1001).expect("test value").subject,
            TokenSubject::Root
        );
    }

    #[test]
    fn tokens_expire_with_the_callers_credentials() {
        let k = TokenKey(vec![1; 32]);
        let (t, exp) = k.issue(1000, &alice(), Some(1900));
        assert_eq!(exp, 1900);
        assert!(k.verify(&t, 1899).is_ok());
        assert!(k.verify(&t, 1900).is_err());
        // Credentials outliving 12 hours do not lengthen the token.
        let (_, exp) = k.issue(1000, &alice(), Some(1000 + 10 * TOKEN_TTL_SECS));
        assert_eq!(exp, 1000 + TOKEN_TTL_SECS);
    }

    #[test]
    fn reissued_tokens_keep_the_original_expiry() {
        let k = TokenKey(vec![1; 32]);
        let (t, exp) = k.issue(1000, &alice(), None);
        let grant = k.verify(&t, 5000).expect("test value");
        let (renewed, renewed_exp) = k.reissue(&grant);
        assert_eq!(renewed_exp, exp);
        assert_ne!(renewed, t);
        assert_eq!(k.verify(&renewed, 5001).expect("test value"), grant);
        assert!(k.verify(&renewed, exp).is_err());
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let k = TokenKey(vec![1; 32]);
        let other = TokenKey(vec![2; 32]);
        let (t, _) = other.issue(1000, &alice(), None);
        let err = k.verify(&t, 1001).expect_err("refused").to_string();
        assert!(err.contains("not issued by this registry"), "{err}");
        let (t, _) = k.issue(1000, &alice(), None);
        // A later expiry or another subject breaks the MAC.
        let forged = t.replacen("v2.4", "v2.9", 1);
        assert!(k.verify(&forged, 1001).is_err());
        let parts: Vec<&str> = t.split('.').collect();
        let as_root = format!("{}.{}.{}.root.{}", parts[0], parts[1], parts[2], parts[4]);
        assert!(k.verify(&as_root, 1001).is_err());
        assert!(k.verify("garbage", 1001).is_err());
        // The version 1 format (no subject) is no longer accepted.
        assert!(k.verify("v1.99999.abc.def", 1001).is_err());
    }

    #[test]
    fn basic_and_bearer_headers_are_accepted() {
        let k = TokenKey(vec![3; 32]);
        let (t, _) = k.issue(1000, &alice(), None);
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("AWS:{t}"))
        );
        assert_eq!(
            k.verify_header(Some(&basic), 1001)
                .expect("test value")
                .subject,
            alice()
        );
        assert!(k.verify_header(Some(&format!("Bearer {t}")), 1001).is_ok());
        let wrong_user = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("bob:{t}"))
        );
        assert!(k.verify_header(Some(&wrong_user), 1001).is_err());
        assert!(k.verify_header(None, 1001).is_err());
    }
}
