//! Paging of list operations as AWS APIs expose it: an opaque token (`nextToken`,
//! `NextMarker`) that is absent on the last page, and a bounded page size.
//!
//! A token is the URL-safe base64 (no padding) of `<kind>:<position>`: `kind` keeps
//! one operation's tokens from being accepted by another, and `position` is the sort
//! key of the last item returned, so pages stay correct while other clients add or
//! remove items. Services choose their own wording for a refused token or size (the
//! messages are part of each API's visible behaviour); this module only says *that*
//! something is invalid.

use base64::Engine;

/// One page of items plus the token of the next page, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// Items on this page.
    pub items: Vec<T>,
    /// Token of the next page; `None` on the last, so paginators stop.
    pub next_token: Option<String>,
}

/// A page size outside the operation's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("page size {requested} is not between 1 and {max}")]
pub struct InvalidPageSize {
    /// What the caller asked for.
    pub requested: i32,
    /// The operation's largest page.
    pub max: usize,
}

/// A token this operation did not hand out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the pagination token was not returned by a previous call of this operation")]
pub struct InvalidToken;

/// Checks a requested page size against `1..=max`; `max` when none was asked for.
pub fn page_size(requested: Option<i32>, max: usize) -> Result<usize, InvalidPageSize> {
    match requested {
        None => Ok(max),
        Some(n) => match usize::try_from(n) {
            Ok(size) if (1..=max).contains(&size) => Ok(size),
            _ => Err(InvalidPageSize { requested: n, max }),
        },
    }
}

/// Wraps a position in an opaque token of `kind`.
pub fn encode_token(kind: &str, position: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{position}"))
}

/// The position inside a token made by [`encode_token`] with the same `kind`.
pub fn decode_token(kind: &str, token: &str) -> Result<String, InvalidToken> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| InvalidToken)?;
    let text = String::from_utf8(raw).map_err(|_| InvalidToken)?;
    text.strip_prefix(kind)
        .and_then(|t| t.strip_prefix(':'))
        .map(str::to_owned)
        .ok_or(InvalidToken)
}

/// The position of the page to read: `None` for the first page (no token or an empty
/// one), else the position inside the token.
pub fn start_after(kind: &str, token: Option<&str>) -> Result<Option<String>, InvalidToken> {
    token
        .filter(|t| !t.is_empty())
        .map(|t| decode_token(kind, t))
        .transpose()
}

/// One page of `items`, which are sorted by their key in output order (ascending, or
/// descending when `descending`): those past `after`, at most `size`, and the token
/// of `kind` for the next page.
pub fn paginate<T>(
    kind: &str,
    items: impl IntoIterator<Item = (String, T)>,
    after: Option<&str>,
    size: usize,
    descending: bool,
) -> Page<T> {
    let mut out = Vec::new();
    let mut last_key = None;
    let mut more = false;
    for (key, item) in items {
        if let Some(a) = after {
            let past = if descending {
                key.as_str() < a
            } else {
                key.as_str() > a
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
    Page {
        items: out,
        next_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<(String, usize)> {
        (0..n).map(|i| (format!("{i:04}"), i)).collect()
    }

    fn walk(n: usize, size: usize) -> (Vec<usize>, usize) {
        let (mut seen, mut pages, mut token) = (Vec::new(), 0, None::<String>);
        loop {
            let after = start_after("k", token.as_deref()).expect("our token");
            let p = paginate("k", items(n), after.as_deref(), size, false);
            pages += 1;
            seen.extend(p.items);
            match p.next_token {
                Some(t) => token = Some(t),
                None => return (seen, pages),
            }
        }
    }

    #[test]
    fn pages_cover_every_item_once_and_the_last_page_has_no_token() {
        assert_eq!(walk(25, 10), ((0..25).collect(), 3));
        // An exact multiple leaves no dangling empty page.
        assert_eq!(walk(20, 10), ((0..20).collect(), 2));
    }

    #[test]
    fn descending_pages_continue_downwards() {
        let mut v = items(5);
        v.reverse();
        let p = paginate("k", v.clone(), None, 2, true);
        assert_eq!(p.items, vec![4, 3]);
        let after = start_after("k", p.next_token.as_deref()).expect("ours");
        assert_eq!(
            paginate("k", v, after.as_deref(), 2, true).items,
            vec![2, 1]
        );
    }

    #[test]
    fn tokens_have_the_historic_format_and_refuse_other_kinds_and_garbage() {
        // "v1:0003" in URL-safe base64 without padding: the format clients hold today.
        assert_eq!(encode_token("v1", "0003"), "djE6MDAwMw");
        assert_eq!(decode_token("v1", "djE6MDAwMw"), Ok("0003".to_owned()));
        assert_eq!(decode_token("v2", "djE6MDAwMw"), Err(InvalidToken));
        assert_eq!(decode_token("v1", "!!"), Err(InvalidToken));
        assert_eq!(start_after("v1", Some("")), Ok(None));
        assert_eq!(start_after("v1", None), Ok(None));
    }

    #[test]
    fn page_sizes_outside_the_bounds_are_refused() {
        assert_eq!(page_size(None, 100), Ok(100));
        assert_eq!(page_size(Some(7), 100), Ok(7));
        assert_eq!(page_size(Some(100), 100), Ok(100));
        for bad in [0, -1, 101] {
            assert_eq!(
                page_size(Some(bad), 100),
                Err(InvalidPageSize {
                    requested: bad,
                    max: 100
                })
            );
        }
    }
}
