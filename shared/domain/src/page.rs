//! How much one page of a listing holds. A page is full at its `limit`, or
//! when its entries reach [`MAX_PAGE_BYTES`] of JSON; either way a page that
//! ends before the data does carries a cursor, so nothing is out of reach.

/// A page's entries stay under this much JSON: a Lambda response is at most
/// 6 MB, and the body is escaped once more inside the proxy response.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// DynamoDB Query requests one page reads (each ends at 1 MB or its Limit):
/// a request's work is bounded whatever the data. A page that stops here
/// ends early with a cursor.
pub const MAX_QUERY_REQUESTS: usize = 8;

/// Counts what a page holds so far.
#[derive(Debug, Clone)]
pub struct PageFill {
    limit: usize,
    count: usize,
    bytes: usize,
}

impl PageFill {
    pub fn new(limit: usize) -> PageFill {
        PageFill { limit, count: 0, bytes: 0 }
    }

    /// Takes an entry of `bytes` of JSON if it fits. The first entry always
    /// fits, so every page moves the cursor forward.
    pub fn admit(&mut self, bytes: usize) -> bool {
        if self.is_full() || (self.count > 0 && self.bytes + bytes > MAX_PAGE_BYTES) {
            return false;
        }
        self.count += 1;
        self.bytes += bytes;
        true
    }

    /// Admits a serialisable entry by its JSON size.
    pub fn admit_json<T: serde::Serialize>(&mut self, entry: &T) -> bool {
        let bytes = serde_json::to_vec(entry).map(|b| b.len()).unwrap_or(usize::MAX / 2);
        self.admit(bytes)
    }

    pub fn is_full(&self) -> bool {
        self.count >= self.limit
    }

    pub fn count(&self) -> usize {
        self.count
    }
}

/// One page from two sources, each sorted by `key` and holding its first
/// entries after the same cursor, with whether more follow it: the entries
/// in key order, an entry found in both taken from `a`, nothing past the
/// point where a source with more stopped (an entry of it may lie before),
/// at most `limit`. Returns the page and whether more follow.
pub fn merge_pages<T, K: Ord>(
    a: (Vec<T>, bool),
    b: (Vec<T>, bool),
    limit: usize,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, bool) {
    let stop = |side: &(Vec<T>, bool)| if side.1 { side.0.last().map(&key) } else { None };
    let bound = match (stop(&a), stop(&b)) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    let mut more = a.1 || b.1;
    let mut all: Vec<(usize, T)> = a.0.into_iter().chain(b.0).enumerate().collect();
    // Stable by key, `a` first among equals; then one entry per key.
    all.sort_by(|x, y| key(&x.1).cmp(&key(&y.1)).then(x.0.cmp(&y.0)));
    all.dedup_by(|later, first| key(&later.1) == key(&first.1));
    let mut page: Vec<T> = vec![];
    for (_, entry) in all {
        if bound.as_ref().is_some_and(|b| &key(&entry) > b) || page.len() == limit {
            more = true;
            break;
        }
        page.push(entry);
    }
    (page, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &[(&'static str, char)]) -> Vec<(&'static str, char)> {
        v.to_vec()
    }

    #[test]
    fn two_sorted_pages_merge_in_key_order_up_to_the_limit() {
        let a = keys(&[("b", 'a'), ("d", 'a')]);
        let b = keys(&[("a", 'b'), ("c", 'b'), ("e", 'b')]);
        let (page, more) = merge_pages((a, false), (b, false), 4, |e| e.0);
        assert_eq!(page.iter().map(|e| e.0).collect::<String>(), "abcd");
        assert!(more, "the fifth entry is left for the next page");
    }

    #[test]
    fn an_entry_in_both_is_taken_once_from_the_first() {
        let (page, more) =
            merge_pages((keys(&[("a", 'a')]), false), (keys(&[("a", 'b'), ("b", 'b')]), false), 10, |e| e.0);
        assert_eq!(page, vec![("a", 'a'), ("b", 'b')]);
        assert!(!more);
    }

    #[test]
    fn nothing_past_where_a_source_with_more_stopped() {
        // `a` stopped at "b" with more to come: its next entry may be "c",
        // so "d" of `b` must wait for the next page.
        let (page, more) =
            merge_pages((keys(&[("a", 'a'), ("b", 'a')]), true), (keys(&[("d", 'b')]), false), 10, |e| e.0);
        assert_eq!(page.iter().map(|e| e.0).collect::<String>(), "ab");
        assert!(more);
    }

    #[test]
    fn a_page_ends_at_its_limit_or_its_bytes() {
        let mut p = PageFill::new(3);
        assert!(p.admit(10) && p.admit(10) && p.admit(10));
        assert!(!p.admit(1), "full at the limit");
        let mut p = PageFill::new(100);
        assert!(p.admit(MAX_PAGE_BYTES - 10));
        assert!(p.admit(10));
        assert!(!p.admit(1), "full at the byte budget");
        assert_eq!(p.count(), 2);
    }

    #[test]
    fn the_first_entry_always_fits() {
        let mut p = PageFill::new(10);
        assert!(p.admit(MAX_PAGE_BYTES * 3));
        assert!(!p.admit(1));
    }
}
