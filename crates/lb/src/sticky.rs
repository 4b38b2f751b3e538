//! Duration-based stickiness (`lb_cookie`), as ALB does it: the response names its target
//! in an `AWSALB` cookie (and the same value in `AWSALBCORS`, `SameSite=None`, for
//! cross-origin requests), refreshed on every response; a request bringing a cookie
//! back goes to that target while it may take new requests, and is balanced as usual
//! otherwise.
//!
//! The cookie's value is an opaque token of 32 hex digits: the target's cookie id
//! ([`compute_cookie_id`], 16 digits) then the expiry in Unix seconds (16 digits). The
//! id is a hash of the group's ARN, the target's id and its port, so a token names one
//! target of one group and is meaningless to any other. It names, it does not
//! authenticate: no secret is needed, because a forged token can only choose a target
//! the client could have been given anyway. A malformed, foreign or expired token is
//! ignored.
//!
//! Nothing here runs for a group without stickiness; for a sticky one the cost is a scan
//! of the `Cookie` headers and, per response, two short header lines written straight
//! into the response head.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};
use model::lb::TargetKey;

use crate::balance::{Backend, Group};
use crate::matching::Headers;

/// The stickiness cookie.
const COOKIE_NAME: &[u8] = b"AWSALB";
/// Its twin for cross-origin requests, which ALB also accepts.
const CORS_COOKIE_NAME: &[u8] = b"AWSALBCORS";
/// Hex digits in a token: the target's cookie id, then the expiry.
const TOKEN_LEN: usize = 32;
/// The last second an HTTP date can name (9999-12-31T23:59:59Z); expiries are clamped to
/// it because `httpdate` refuses later ones.
const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// How stickiness cookies name a target: FNV-1a (64 bits) over the group's ARN, the
/// target's id and its port. No per-process seed, so a cookie keeps naming its target
/// across restarts and on every data plane serving the same config.
pub(crate) fn compute_cookie_id(group_arn: &str, target: &TargetKey) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    // 0xff never occurs in UTF-8, so it separates the fields unambiguously.
    let parts: [&[u8]; 5] = [
        group_arn.as_bytes(),
        &[0xff],
        target.id.as_bytes(),
        &[0xff],
        &target.port.to_be_bytes(),
    ];
    parts
        .iter()
        .flat_map(|p| p.iter())
        .fold(OFFSET, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The cookies a response carries to keep its client on its target. Small and `Copy`:
/// each path renders it only when it writes the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StickyCookie {
    /// The chosen target's cookie id.
    pub(crate) target: u64,
    /// When the cookie expires, in Unix seconds.
    pub(crate) expires: u64,
}

impl StickyCookie {
    /// A cookie for `target` that lasts `duration` from `now` (Unix seconds).
    pub(crate) fn new(target: u64, now: u64, duration: Duration) -> Self {
        StickyCookie {
            target,
            expires: now.saturating_add(duration.as_secs()).min(LAST_HTTP_DATE),
        }
    }

    /// The cookie's value.
    pub(crate) fn token(&self) -> [u8; TOKEN_LEN] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; TOKEN_LEN];
        for (i, slot) in out.iter_mut().enumerate() {
            let word = if i < 16 { self.target } else { self.expires };
            let shift = 60 - 4 * (i % 16);
            *slot = HEX[((word >> shift) & 0xf) as usize];
        }
        out
    }

    /// One `Set-Cookie` value: `AWSALB` or, with `cors`, `AWSALBCORS`.
    fn write_value(&self, out: &mut Vec<u8>, cors: bool) {
        out.extend_from_slice(if cors { CORS_COOKIE_NAME } else { COOKIE_NAME });
        out.push(b'=');
        out.extend_from_slice(&self.token());
        out.extend_from_slice(b"; Expires=");
        let expires = UNIX_EPOCH + Duration::from_secs(self.expires.min(LAST_HTTP_DATE));
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{}", httpdate::HttpDate::from(expires));
        out.extend_from_slice(b"; Path=/");
        if cors {
            out.extend_from_slice(b"; SameSite=None");
        }
    }

    /// Both `Set-Cookie` header lines, CRLF-terminated, for an HTTP/1.1 response head.
    pub(crate) fn write_http1(&self, out: &mut Vec<u8>) {
        for cors in [false, true] {
            out.extend_from_slice(b"Set-Cookie: ");
            self.write_value(out, cors);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Appends both `Set-Cookie` headers (keeping any the target set).
    pub(crate) fn append_to(&self, headers: &mut HeaderMap) {
        for cors in [false, true] {
            let mut value = Vec::with_capacity(96);
            self.write_value(&mut value, cors);
            // Always valid (ASCII we wrote); skipped rather than trusted.
            if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(value)) {
                headers.append(SET_COOKIE, value);
            }
        }
    }
}

/// The target cookie id a token names, if it is well formed and unexpired at `now`.
pub(crate) fn decode_token(token: &[u8], now: u64) -> Option<u64> {
    if token.len() != TOKEN_LEN {
        return None;
    }
    let word = |digits: &[u8]| {
        digits.iter().try_fold(0u64, |acc, &d| {
            let nibble = (d as char).to_digit(16)?;
            Some((acc << 4) | u64::from(nibble))
        })
    };
    let (target, expires) = (word(&token[..16])?, word(&token[16..])?);
    (expires > now).then_some(target)
}

/// The `name=value` pairs of one `Cookie` header (RFC 6265 §4.2.1, read leniently:
/// whitespace around names and values is dropped, a quoted value is unquoted, and a
/// piece without `=` is skipped).
pub(crate) fn cookie_pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&b| b == b';').filter_map(|pair| {
        let at = pair.iter().position(|&b| b == b'=')?;
        let (name, value) = (pair[..at].trim_ascii(), pair[at + 1..].trim_ascii());
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        Some((name, value))
    })
}

/// The target for a request to a sticky group, and the cookie its response carries: the
/// target the request's own cookie names when that one may take it, else the group's
/// usual pick. `None` when the group has no target for it at all.
pub(crate) fn pick<'g>(
    group: &'g Group,
    duration: Duration,
    headers: &Headers<'_>,
    now: u64,
) -> Option<(&'g Arc<Backend>, StickyCookie)> {
    let mut named = None;
    headers.any_value(&COOKIE, |value| {
        named = cookie_pairs(value)
            .filter(|(name, _)| *name == COOKIE_NAME || *name == CORS_COOKIE_NAME)
            .filter_map(|(_, token)| decode_token(token, now))
            .find_map(|id| group.sticky_target(id));
        named.is_some()
    });
    let backend = named.or_else(|| group.pick())?;
    Some((backend, StickyCookie::new(backend.cookie_id, now, duration)))
}

/// The wall clock in Unix seconds (0 should it read before 1970).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
