//! Pagination of the Describe operations: an opaque `nextToken` that is absent on the
//! last page, and `limit` bounds. The token carries the sort key of the last item
//! returned, so pages stay correct while other clients add or remove items.

use crate::error::{invalid, LogsError};
use wire::pagination as paging;

pub use paging::{encode_token, Page};

/// Checks `limit` against `1..=max` and returns the page size (`max` when absent).
pub fn page_size(limit: Option<i32>, max: usize) -> Result<usize, LogsError> {
    paging::page_size(limit, max).or_else(|e| {
        invalid(format!(
            "1 validation error detected: Value '{}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}",
            e.requested
        ))
    })
}

/// The position inside a token made by [`encode_token`] with the same `kind`.
pub fn decode_token(kind: &str, token: &str) -> Result<String, LogsError> {
    paging::decode_token(kind, token).map_err(|_| {
        LogsError::InvalidParameter(
            "The specified nextToken is invalid: it was not returned by a previous call of this operation.".into(),
        )
    })
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
    Ok(paging::paginate(
        kind,
        items,
        after.as_deref(),
        size,
        descending,
    ))
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
