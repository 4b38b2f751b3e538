//! Console sessions: minted at sign-in once the credentials have proved themselves, kept
//! in memory only (a restart signs everyone out), found by an opaque cookie, and
//! expiring. Each session carries the CSRF token its forms must echo.

use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A session's life when the server names none: AWS's console signs out after 12 hours.
pub const DEFAULT_TTL: Duration = Duration::from_secs(12 * 3600);

/// The session cookie.
pub(crate) const COOKIE: &str = "stevedore_console";
/// The sign-in form's double-submit cookie (there is no session to hold its token yet).
pub(crate) const SIGNIN_COOKIE: &str = "stevedore_console_signin";

/// The credentials a session signs with. Never sent to the browser.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

/// One signed-in browser.
#[derive(Debug)]
pub(crate) struct Session {
    pub credentials: Credentials,
    /// The region its calls are signed for.
    pub region: String,
    /// Who STS said signed in (`arn:aws:iam::…:user/…`).
    pub principal_arn: String,
    pub account: String,
    /// What every POST must carry.
    pub csrf: String,
    expires: Instant,
}

/// Every live session, by the SHA-256 of its cookie (a memory dump shows no usable ids).
#[derive(Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<[u8; 32], Arc<Session>>>,
}

/// What a new session starts from.
pub(crate) struct NewSession {
    pub credentials: Credentials,
    pub region: String,
    pub principal_arn: String,
    pub account: String,
}

impl Sessions {
    /// Mints a session lasting `ttl`; the cookie value that names it.
    pub fn create(&self, new: NewSession, ttl: Duration) -> String {
        let id = random_token();
        let now = Instant::now();
        let session = Arc::new(Session {
            credentials: new.credentials,
            region: new.region,
            principal_arn: new.principal_arn,
            account: new.account,
            csrf: random_token(),
            expires: now + ttl,
        });
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        // Sign-ins are rare: sweeping then keeps the map from growing with dead sessions.
        live.retain(|_, s| s.expires > now);
        live.insert(digest(&id), session);
        id
    }

    /// The live session a cookie names; an expired one is forgotten.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        let key = digest(id);
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        match live.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                live.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session a cookie names (sign-out, or credentials the API no longer takes).
    pub fn remove(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&digest(id));
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// 256 random bits, hex: session ids and CSRF tokens.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether two tokens are equal, in time that does not depend on where they differ.
pub(crate) fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value scoped to the console: HttpOnly and SameSite=Strict always,
/// Secure under TLS; `max_age` zero deletes it.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Duration, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path={}; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        crate::MOUNT,
        max_age.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_session() -> NewSession {
        NewSession {
            credentials: Credentials {
                access_key_id: "AKID".into(),
                secret_access_key: "secret".into(),
                session_token: None,
            },
            region: "us-east-1".into(),
            principal_arn: "arn:aws:iam::000000000000:root".into(),
            account: "000000000000".into(),
        }
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_it_expires_or_is_removed() {
        let sessions = Sessions::default();
        let id = sessions.create(new_session(), Duration::from_secs(60));
        assert_eq!(
            sessions.get(&id).map(|s| s.principal_arn.clone()),
            Some("arn:aws:iam::000000000000:root".to_owned())
        );
        assert!(sessions.get("not-a-session").is_none());
        sessions.remove(&id);
        assert!(sessions.get(&id).is_none());
        let expired = sessions.create(new_session(), Duration::ZERO);
        assert!(sessions.get(&expired).is_none());
    }

    #[test]
    fn cookies_are_read_from_every_header_and_pair() {
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::COOKIE, "a=1; b=2".parse().expect("header"));
        headers.append(
            http::header::COOKIE,
            "stevedore_console=xyz".parse().expect("header"),
        );
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn session_cookies_are_http_only_strict_and_secure_only_under_tls() {
        let plain = set_cookie(COOKIE, "v", Duration::from_secs(5), false);
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        assert!(set_cookie(COOKIE, "v", Duration::from_secs(5), true).ends_with("; Secure"));
    }

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "abcd"));
    }
}
