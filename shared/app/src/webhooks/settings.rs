//! How deliveries are sent and retried, from the environment (the local
//! stack and the tests run a faster schedule than AWS).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WebhookSettings {
    /// The first retry's delay; each next one doubles, plus jitter (up to
    /// the delay again), capped at `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Retries go on until this long after a series' first attempt.
    pub retry_window: Duration,
    /// A 2xx within this is success.
    pub timeout: Duration,
    /// How long a rotated secret signs beside its successor.
    pub rotation_overlap: Duration,
    /// An endpoint failing this long is disabled.
    pub disable_after: Duration,
    /// AWS: only https targets.
    pub https_only: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            retry_window: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            rotation_overlap: Duration::from_secs(24 * 3600),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            https_only: false,
        }
    }
}

impl WebhookSettings {
    pub fn from_env() -> WebhookSettings {
        let d = WebhookSettings::default();
        let ms = |k: &str, def: Duration| {
            std::env::var(k).ok().and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_millis).unwrap_or(def)
        };
        let secs = |k: &str, def: Duration| {
            std::env::var(k).ok().and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs).unwrap_or(def)
        };
        WebhookSettings {
            retry_base: ms("PUFFLE_WEBHOOK_RETRY_BASE_MS", d.retry_base),
            retry_max: ms("PUFFLE_WEBHOOK_RETRY_MAX_MS", d.retry_max),
            retry_window: secs("PUFFLE_WEBHOOK_RETRY_WINDOW_SECONDS", d.retry_window),
            timeout: ms("PUFFLE_WEBHOOK_TIMEOUT_MS", d.timeout),
            rotation_overlap: secs("PUFFLE_WEBHOOK_ROTATION_OVERLAP_SECONDS", d.rotation_overlap),
            disable_after: secs("PUFFLE_WEBHOOK_DISABLE_AFTER_SECONDS", d.disable_after),
            https_only: std::env::var("PUFFLE_WEBHOOK_HTTPS_ONLY").is_ok_and(|v| v == "true" || v == "1"),
        }
    }

    /// The delay before retry `n` (0 = the first retry), or None when the
    /// series began `elapsed` ago and its window is over.
    pub fn next_delay(&self, n: usize, elapsed: Duration) -> Option<Duration> {
        if elapsed >= self.retry_window {
            return None;
        }
        ExponentialBuilder::default()
            .with_min_delay(self.retry_base)
            .with_max_delay(self.retry_max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_with_jitter_until_the_window_ends() {
        let s = WebhookSettings::default();
        for n in 0..40 {
            let base = (s.retry_base * 2u32.pow(n.min(20) as u32)).min(s.retry_max);
            let d = s.next_delay(n, Duration::ZERO).unwrap();
            assert!(d >= base && d <= base * 2, "retry {n}: {d:?} vs {base:?}");
        }
        assert!(s.next_delay(3, Duration::from_secs(24 * 3600 - 1)).is_some());
        assert_eq!(s.next_delay(3, Duration::from_secs(24 * 3600)), None);
        // Retrying for a day takes a bounded number of attempts.
        let (mut at, mut attempts) = (Duration::ZERO, 1);
        while let Some(d) = s.next_delay(attempts - 1, at) {
            at += d;
            attempts += 1;
        }
        assert!(at >= s.retry_window && (10..40).contains(&attempts), "{attempts} attempts over {at:?}");
    }
}
