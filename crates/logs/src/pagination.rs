//! Pagination of the Describe operations: an opaque `nextToken` that is absent on the
//! last page, and `limit` bounds. The token carries the sort key of the last item
//! returned, so pages stay correct while other clients add or remove items.

use crate::error::{invalid, LogsError};
use base64::Engine;

/// One page of items plus the token for the next, if any.
pub struct Page<T> {
    /// Items on this page.
    pub items: Vec<T>,
    /// Token for the next page; `None` on the last.
    pub next_token: Option<String>,
}

/// Checks `limit` against `1..=max` and returns the page size (`max` when absent).
pub fn page_size(limit: Option<i32>, max: usize) -> Result<usize, LogsError> {
    match limit {
        None => Ok(max),
        Some(n) => match usize::try_from(n) {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => invalid(format!(
                "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
            )),
        },
    }
}

/// Wraps a position in an opaque token (`kind` keeps one operation's tokens from being
/// accepted by another).
pub fn encode_token(kind: &str, position: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{position}"))
}

/// The position inside a token made by [`encode_token`] with the same `kind`.
pub fn decode_token(kind: &str, token: &str) -> Result<String, LogsError> {
    let bad = || {
        LogsError::InvalidParameter(
            "The specified nextToken is invalid: it was not returned by a previous call of this operation.".into(),
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    text.strip_prefix(kind)
        .and_then(|t| t.strip_prefix(':'))
        .map(str::to_owned)
        .ok_or_else(bad)
}

/// Pages through `items`, which are already sorted by their key in the output order
/// (ascending, or descending when `descending`).
pub fn paginate<T>(
    kind: &str,
    items: Vec<(String, T)>,
    next_token: Option<&str>,
    size: usize,
    descending: bool,
) -> Result<Page<T>, LogsError> {
    let after = next_token
        .filter(|t| !t.is_empty())
        .map(|t| decode_token(kind, t))
        .transpose()?;
    let mut out = Vec::new();
    let mut last_key = None;
    let mut more = false;
    for (key, item) in items {
        if let Some(a) = &after {
            let past = if descending {
                key.as_str() < a.as_str()
            } else {
                key.as_str() > a.as_str()
            };
            if !past {
                continue;
            }
        }
        if out.len() == size {
            more = true;
            break;
        }
        last_key = Some(key);
        out.push(item);
    }
    let next_token = if more {
        last_key.map(|k| encode_token(kind, &k))
    } else {
        None
    };
    Ok(Page {
        items: out,
        next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<(String, usize)> {
        (0..n).map(|i| (format!("{i:04}"), i)).collect()
    }

    #[test]
    fn pages_cover_every_item_once_and_last_page_has_no_token() {
        let mut token = None;
        let mut seen = Vec::new();
        loop {
            let p = paginate("g", items(25), token.as_deref(), 10, false).expect("page");
            seen.extend(p.items);
            match p.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
    }

    #[test]
    fn tokens_of_another_operation_and_garbage_are_refused() {
        let t = encode_token("streams", "x");
        assert!(paginate("groups", items(3), Some(&t), 10, false).is_err());
        assert!(paginate("groups", items(3), Some("!!"), 10, false).is_err());
        assert!(page_size(Some(0), 50).is_err());
        assert!(page_size(Some(51), 50).is_err());
        assert_eq!(page_size(None, 50).expect("ok"), 50);
    }
}
