//! Per-token rate limits: fixed windows, one counter per token, class and
//! window. The counter lives in the store (an atomic ADD), so every function
//! instance sees the same count; this module holds the rules.

/// A class of routes that share one limit (`create`, `upsert`, `write`, `read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub class: &'static str,
    /// Requests allowed per window.
    pub limit: u64,
    pub window_seconds: u64,
}

/// The limits Puffle documents (README: Abuse limits). `PUFFLE_RATE_LIMITS`
/// overrides them: `create=60/60,read=1200/60` (requests/seconds), or `off`.
pub const DEFAULT_LIMITS: &[RateLimit] = &[
    RateLimit { class: "create", limit: 60, window_seconds: 60 },
    RateLimit { class: "upsert", limit: 60, window_seconds: 60 },
    RateLimit { class: "write", limit: 300, window_seconds: 60 },
    RateLimit { class: "read", limit: 1200, window_seconds: 60 },
];

/// The window a request at `now` (epoch seconds) counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: u64,
    /// Seconds until the next window starts (≥ 1).
    pub resets_in: u64,
}

/// What a counted request learns; the HTTP layer turns it into `RateLimit-*`
/// headers, and a refusal into `429` with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    pub reset_seconds: u64,
}

impl RateLimit {
    pub fn window(&self, now: u64) -> Window {
        let w = self.window_seconds.max(1);
        let start = now - now % w;
        Window { start, resets_in: start + w - now }
    }

    /// `hits` is the window's count including this request.
    pub fn verdict(&self, hits: u64, window: Window) -> Verdict {
        Verdict {
            allowed: hits <= self.limit,
            limit: self.limit,
            remaining: self.limit.saturating_sub(hits),
            reset_seconds: window.resets_in,
        }
    }
}

/// Parses `PUFFLE_RATE_LIMITS`; unknown classes and bad entries are errors
/// (a typo must not silently lift a limit). `off` (or empty) means none.
pub fn parse_limits(spec: &str) -> Result<Vec<RateLimit>, String> {
    let spec = spec.trim();
    if spec.eq_ignore_ascii_case("off") {
        return Ok(vec![]);
    }
    let mut limits = DEFAULT_LIMITS.to_vec();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (class, rule) =
            entry.split_once('=').ok_or_else(|| format!("`{entry}`: expected class=requests/seconds"))?;
        let (n, secs) = rule.split_once('/').ok_or_else(|| format!("`{entry}`: expected class=requests/seconds"))?;
        let (limit, window_seconds) = match (n.trim().parse::<u64>(), secs.trim().parse::<u64>()) {
            (Ok(l), Ok(s)) if l > 0 && s > 0 => (l, s),
            _ => return Err(format!("`{entry}`: requests and seconds must be positive integers")),
        };
        let slot = limits
            .iter_mut()
            .find(|l| l.class == class.trim())
            .ok_or_else(|| format!("`{entry}`: unknown class (create, upsert, write, read)"))?;
        slot.limit = limit;
        slot.window_seconds = window_seconds;
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_fixed_and_reset_within_the_window() {
        let l = RateLimit { class: "create", limit: 2, window_seconds: 60 };
        assert_eq!(l.window(120), Window { start: 120, resets_in: 60 });
        assert_eq!(l.window(179), Window { start: 120, resets_in: 1 });
        let w = l.window(130);
        assert_eq!(l.verdict(1, w), Verdict { allowed: true, limit: 2, remaining: 1, reset_seconds: 50 });
        assert_eq!(l.verdict(2, w).remaining, 0);
        assert!(l.verdict(2, w).allowed);
        assert!(!l.verdict(3, w).allowed);
        assert_eq!(l.verdict(3, w).remaining, 0);
    }

    #[test]
    fn limits_parse_and_typos_are_errors() {
        let l = parse_limits("create=5/10").unwrap();
        let create = l.iter().find(|l| l.class == "create").unwrap();
        assert_eq!((create.limit, create.window_seconds), (5, 10));
        assert_eq!(l.iter().find(|l| l.class == "read"), DEFAULT_LIMITS.iter().find(|l| l.class == "read"));
        assert!(parse_limits("off").unwrap().is_empty());
        assert_eq!(parse_limits("").unwrap(), DEFAULT_LIMITS.to_vec());
        for bad in ["creat=5/10", "create=5", "create=0/10", "create=x/10", "create"] {
            assert!(parse_limits(bad).is_err(), "{bad}");
        }
    }
}
