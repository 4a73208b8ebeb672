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

#[cfg(test)]
mod tests {
    use super::*;

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
