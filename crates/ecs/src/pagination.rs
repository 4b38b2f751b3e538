//! ECS pagination: an opaque `nextToken` that is absent on the last page, and
//! `maxResults` bounds. The token carries the sort key of the last item returned, so
//! pages stay correct while other clients add or remove items.

use crate::error::{invalid, EcsError};
use wire::pagination as paging;

pub use paging::Page;

/// ECS tokens all carry this kind (the format clients already hold).
const KIND: &str = "v1";

/// Checks `maxResults` against `1..=max` and returns the page size.
pub fn page_size(max_results: Option<i32>, max: usize) -> Result<usize, EcsError> {
    paging::page_size(max_results, max).or_else(|e| {
        invalid(format!(
            "maxResults must be between 1 and {max}; got {}.",
            e.requested
        ))
    })
}

/// Pages through `items`, which are already sorted by their key in the output order
/// (ascending, or descending when `descending`).
pub fn paginate<T>(
    items: Vec<(String, T)>,
    next_token: Option<&str>,
    size: usize,
    descending: bool,
) -> Result<Page<T>, EcsError> {
    let after = paging::start_after(KIND, next_token).map_err(|_| {
        EcsError::InvalidParameter(
            "Invalid nextToken: it was not returned by a previous call of this operation.".into(),
        )
    })?;
    Ok(paging::paginate(
        KIND,
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
            let p = paginate(items(25), token.as_deref(), 10, false).expect("page");
            seen.extend(p.items);
            match p.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
    }

    #[test]
    fn exact_multiple_has_no_dangling_token() {
        let p = paginate(items(10), None, 10, false).expect("page");
        assert!(p.next_token.is_none());
    }

    #[test]
    fn descending_pages_continue_downwards() {
        let mut v = items(5);
        v.reverse();
        let p = paginate(v.clone(), None, 2, true).expect("page");
        assert_eq!(p.items, vec![4, 3]);
        let p2 = paginate(v, p.next_token.as_deref(), 2, true).expect("page");
        assert_eq!(p2.items, vec![2, 1]);
    }

    #[test]
    fn garbage_tokens_and_bad_sizes_are_refused() {
        assert!(paginate(items(3), Some("!!"), 10, false).is_err());
        assert!(page_size(Some(0), 100).is_err());
        assert!(page_size(Some(101), 100).is_err());
        assert_eq!(page_size(Some(7), 100).expect("ok"), 7);
    }
}
