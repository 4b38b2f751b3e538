//! Registry credentials: `GetAuthorizationToken` issues a password that `/v2/` accepts
//! as HTTP Basic `AWS:<password>` (or as a bearer token).
//!
//! A password is `v1.<expires epoch s>.<nonce>.<HMAC-SHA256(secret, "v1.<expires>.<nonce>")>`:
//! self-contained, so any replica sharing the store's secret verifies it without a
//! lookup, and it never contains `:` (the aws CLI splits the decoded token on `:`).

use crate::error::RegistryError;
use crate::objects::{Objects, SECRET_KEY};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use store::Txn;

/// How long a token lives (ECR: 12 hours).
pub const TOKEN_TTL_SECS: i64 = 12 * 3600;

/// The HMAC key, loaded (or created) once from the store.
pub struct TokenKey(Vec<u8>);

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

    /// Issues a password valid until `now + TOKEN_TTL_SECS`; returns it and the expiry.
    pub fn issue(&self, now: i64) -> (String, i64) {
        let expires = now + TOKEN_TTL_SECS;
        let nonce = hex::encode(rand::random::<[u8; 12]>());
        let payload = format!("v1.{expires}.{nonce}");
        let mac = self.mac(&payload);
        (format!("{payload}.{mac}"), expires)
    }

    /// Checks a password: well-formed, signed by us, not expired.
    pub fn verify(&self, password: &str, now: i64) -> Result<(), RegistryError> {
        let bad = |why: &str| {
            Err(RegistryError::Unauthorized(format!(
                "authentication required: {why}"
            )))
        };
        let Some((payload, mac)) = password.rsplit_once('.') else {
            return bad("the token is malformed");
        };
        let mut parts = payload.split('.');
        let (Some("v1"), Some(exp), Some(_nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return bad("the token is malformed");
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
            return bad("the token was not issued by this registry");
        }
        match exp.parse::<i64>() {
            Ok(e) if e > now => Ok(()),
            Ok(_) => bad("the token has expired; get a new one with GetAuthorizationToken"),
            Err(_) => bad("the token is malformed"),
        }
    }

    /// Checks an `Authorization` header value: `Basic base64(AWS:<password>)` or
    /// `Bearer <password>`.
    pub fn verify_header(&self, header: Option<&str>, now: i64) -> Result<(), RegistryError> {
        let Some(h) = header else {
            return Err(RegistryError::Unauthorized(
                "authentication required".into(),
            ));
        };
        let (scheme, value) = h.trim().split_once(' ').unwrap_or((h, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    RegistryError::Unauthorized(
                        "authentication required: malformed Basic credentials".into(),
                    )
                })?;
            match decoded.split_once(':') {
                Some(("AWS", password)) => self.verify(password, now),
                _ => Err(RegistryError::Unauthorized(
                    "authentication required: the user name must be AWS".into(),
                )),
            }
        } else if scheme.eq_ignore_ascii_case("bearer") {
            self.verify(value.trim(), now)
        } else {
            Err(RegistryError::Unauthorized(
                "authentication required: use Basic or Bearer credentials".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let k = TokenKey(vec![1; 32]);
        let (t, exp) = k.issue(1000);
        assert!(!t.contains(':'));
        assert!(k.verify(&t, 1001).is_ok());
        assert!(k.verify(&t, exp).is_err());
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let k = TokenKey(vec![1; 32]);
        let other = TokenKey(vec![2; 32]);
        let (t, _) = other.issue(1000);
        assert!(k.verify(&t, 1001).is_err());
        let (t, _) = k.issue(1000);
        let forged = t.replacen("v1.4", "v1.9", 1);
        assert!(k.verify(&forged, 1001).is_err());
        assert!(k.verify("garbage", 1001).is_err());
    }

    #[test]
    fn basic_and_bearer_headers_are_accepted() {
        let k = TokenKey(vec![3; 32]);
        let (t, _) = k.issue(1000);
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("AWS:{t}"))
        );
        assert!(k.verify_header(Some(&basic), 1001).is_ok());
        assert!(k.verify_header(Some(&format!("Bearer {t}")), 1001).is_ok());
        let wrong_user = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("bob:{t}"))
        );
        assert!(k.verify_header(Some(&wrong_user), 1001).is_err());
        assert!(k.verify_header(None, 1001).is_err());
    }
}
