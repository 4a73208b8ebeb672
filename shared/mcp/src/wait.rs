//! `wait_for_run`'s rules: how long it may wait, how often it looks, and
//! when a run is over.

use std::time::Duration;

use serde_json::Value;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// A run in one of these statuses will not change status again.
pub fn is_terminal(run: &Value) -> bool {
    matches!(run["status"].as_str(), Some("completed" | "failed" | "cancelled"))
}

/// The time to wait: `timeoutSeconds` (default 30, 0..=60), never more than
/// the transport allows (an HTTP request through API Gateway must end within
/// its 29 s integration timeout).
pub fn budget(timeout_seconds: Option<f64>, transport_cap: Duration) -> Result<Duration, String> {
    let asked = match timeout_seconds {
        None => DEFAULT_TIMEOUT,
        Some(s) if s.is_finite() && (0.0..=MAX_TIMEOUT.as_secs_f64()).contains(&s) => Duration::from_secs_f64(s),
        Some(s) => return Err(format!("timeoutSeconds must be between 0 and {}, got {s}", MAX_TIMEOUT.as_secs())),
    };
    Ok(asked.min(transport_cap))
}

/// Delays between polls: 0.5 s, then half again each time, up to 2 s. A
/// short run is seen finishing quickly; a long one costs a read every 2 s.
pub struct Backoff {
    next: Duration,
}

const FIRST: Duration = Duration::from_millis(500);
const LONGEST: Duration = Duration::from_secs(2);

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let d = self.next;
        self.next = (d + d / 2).min(LONGEST);
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn terminal_statuses() {
        for s in ["completed", "failed", "cancelled"] {
            assert!(is_terminal(&json!({"status": s})), "{s}");
        }
        for s in ["pending", "running", "preview"] {
            assert!(!is_terminal(&json!({"status": s})), "{s}");
        }
        assert!(!is_terminal(&json!({})));
    }

    #[test]
    fn budgets_default_cap_and_reject() {
        let cap = Duration::from_secs(60);
        assert_eq!(budget(None, cap), Ok(DEFAULT_TIMEOUT));
        assert_eq!(budget(Some(0.0), cap), Ok(Duration::ZERO));
        assert_eq!(budget(Some(60.0), cap), Ok(MAX_TIMEOUT));
        assert_eq!(budget(Some(45.0), Duration::from_secs(20)), Ok(Duration::from_secs(20)));
        for bad in [-1.0, 60.5, f64::NAN, f64::INFINITY] {
            assert!(budget(Some(bad), cap).is_err(), "{bad}");
        }
    }

    #[test]
    fn polls_speed_down_to_every_two_seconds() {
        let d: Vec<u128> = Backoff::default().take(6).map(|d| d.as_millis()).collect();
        assert_eq!(d, vec![500, 750, 1125, 1687, 2000, 2000]);
    }
}
