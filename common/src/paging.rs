//! List paging as every list RPC does it (Google API design): `page_size` (0 for the
//! default, capped), an opaque `page_token` (the last key of the previous page), and a
//! `next_page_token` that is empty on the last page.

use crate::error::Error;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 500;

/// The number of items a page holds, from the request's `page_size`.
pub fn page_limit(page_size: i32) -> Result<i64, Error> {
    match i64::from(page_size) {
        size if size < 0 => Err(Error::invalid(
            "page_size",
            "PAGE_SIZE_NEGATIVE",
            "must not be negative",
        )),
        0 => Ok(DEFAULT_PAGE_SIZE),
        size => Ok(size.min(MAX_PAGE_SIZE)),
    }
}

/// Cuts `found` (fetched with `limit + 1` rows) to `limit` and returns the next page's
/// token: the key of the page's last item, or empty when there is no further page.
pub fn next_page_token<T>(found: &mut Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> String {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if found.len() <= limit {
        return String::new();
    }
    found.truncate(limit);
    found.last().map(key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_cap_and_refuse_negatives() {
        assert_eq!(page_limit(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_limit(7).unwrap(), 7);
        assert_eq!(page_limit(100_000).unwrap(), MAX_PAGE_SIZE);
        assert!(page_limit(-1).is_err());
    }

    #[test]
    fn the_token_is_the_last_key_only_when_more_remain() {
        let mut more = vec![1, 2, 3];
        assert_eq!(next_page_token(&mut more, 2, ToString::to_string), "2");
        assert_eq!(more, [1, 2]);
        let mut last = vec![1, 2];
        assert_eq!(next_page_token(&mut last, 2, ToString::to_string), "");
        assert_eq!(last, [1, 2]);
    }
}
