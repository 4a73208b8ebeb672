//! Pure timing rules: HTTP retry delays and the watch loop's polling backoff.

use std::time::Duration;

/// Retries after the first attempt on 429/503.
pub const MAX_RETRIES: u32 = 4;
/// The first retry waits this long (then doubles).
const RETRY_BASE: Duration = Duration::from_millis(500);
/// No single retry waits longer than this, `Retry-After` included.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// `Retry-After` in its delta-seconds form (`"2"`). The HTTP-date form is
/// not used by this API; it yields None (and the exponential delay applies).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// The wait before retry number `attempt` (0-based): `Retry-After` when the
/// server sent it, else 0.5 s × 2^attempt; `jitter` in [0, 1) adds up to a
/// quarter on top so clients do not retry in step. Capped at 30 s.
pub fn retry_delay(attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let d = match retry_after {
        Some(d) => d,
        None => {
            let exp = RETRY_BASE.saturating_mul(1u32 << attempt.min(16));
            exp.mul_f64(1.0 + 0.25 * jitter.clamp(0.0, 1.0))
        }
    };
    d.min(MAX_RETRY_DELAY)
}

/// Whether a response status is worth retrying (the caller decides whether
/// the request itself may be repeated).
pub fn retryable_status(status: u16) -> bool {
    status == 429 || status == 503
}

/// Polling: start at `base`; while nothing changes, wait 1.5× longer each
/// time up to 2.5× `base` (2 s → 5 s by default); any change resets to `base`.
pub fn next_poll_delay(current: Duration, base: Duration, changed: bool) -> Duration {
    if changed {
        return base;
    }
    let cap = base.mul_f64(2.5);
    current.mul_f64(1.5).clamp(base, cap)
}

/// Items per second and the estimated time left, from progress observed
/// since the watch started. None while there is nothing to go on.
pub fn rate_and_eta(done_since_start: u64, elapsed: Duration, remaining: u64) -> (Option<f64>, Option<Duration>) {
    let secs = elapsed.as_secs_f64();
    if done_since_start == 0 || secs <= 0.0 {
        return (None, None);
    }
    let rate = done_since_start as f64 / secs;
    let eta = Duration::try_from_secs_f64(remaining as f64 / rate).ok();
    (Some(rate), eta)
}

/// `1h02m`, `3m05s`, `12s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_only() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 10 "), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(parse_retry_after("99999999999999999999999"), None);
    }

    #[test]
    fn retry_delay_doubles_honours_retry_after_and_caps() {
        assert_eq!(retry_delay(0, None, 0.0), Duration::from_millis(500));
        assert_eq!(retry_delay(1, None, 0.0), Duration::from_secs(1));
        assert_eq!(retry_delay(2, None, 0.0), Duration::from_secs(2));
        assert_eq!(retry_delay(1, None, 1.0), Duration::from_millis(1250));
        assert_eq!(retry_delay(0, Some(Duration::from_secs(3)), 0.9), Duration::from_secs(3));
        assert_eq!(retry_delay(0, Some(Duration::from_secs(3600)), 0.0), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(40, None, 0.5), MAX_RETRY_DELAY);
    }

    #[test]
    fn only_429_and_503_retry() {
        assert!(retryable_status(429) && retryable_status(503));
        for s in [200, 400, 401, 404, 409, 422, 500, 502, 504] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    #[test]
    fn polling_backs_off_from_2_to_5_seconds() {
        let base = Duration::from_secs(2);
        let mut d = base;
        let mut seen = vec![];
        for _ in 0..5 {
            d = next_poll_delay(d, base, false);
            seen.push(d.as_millis());
        }
        assert_eq!(seen, vec![3000, 4500, 5000, 5000, 5000]);
        assert_eq!(next_poll_delay(Duration::from_secs(5), base, true), base);
        let fast = Duration::from_millis(200);
        assert_eq!(next_poll_delay(Duration::from_secs(9), fast, false), Duration::from_millis(500));
    }

    #[test]
    fn rate_and_eta_from_progress() {
        assert_eq!(rate_and_eta(0, Duration::from_secs(5), 10), (None, None));
        let (r, eta) = rate_and_eta(50, Duration::from_secs(10), 100);
        assert_eq!(r, Some(5.0));
        assert_eq!(eta, Some(Duration::from_secs(20)));
        assert_eq!(human_duration(Duration::from_secs(3725)), "1h02m");
        assert_eq!(human_duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(human_duration(Duration::from_secs(7)), "7s");
    }
}
