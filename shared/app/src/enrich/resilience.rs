//! Per-provider protection inside one worker process: the rate limiter and
//! the circuit breaker.
//!
//! The rate limit is shared by every concurrent invocation by division:
//! the worker's event source mapping runs at most `WorkerMaxConcurrency`
//! invocations at once (`ScalingConfig.MaximumConcurrency`), and each
//! process paces its calls to `ratePerSecond / PUFFLE_RATE_SHARES` (the
//! template sets the shares to that maximum), so all of them together stay
//! under `ratePerSecond`. A process with one share (the local stack) paces
//! to the full rate. Why not a token bucket in DynamoDB: it costs a write
//! per grant (or per batch of grants) on one hot item; see the README.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// The environment variable holding the number of processes that share a rate.
pub const RATE_SHARES_ENV: &str = "PUFFLE_RATE_SHARES";

fn rate_shares() -> u32 {
    std::env::var(RATE_SHARES_ENV).ok().and_then(|v| v.parse().ok()).filter(|n| *n >= 1).unwrap_or(1)
}

/// A limiter pacing calls evenly (bursts of one), so no one-second window
/// sees more than the rate.
pub fn limiter(rate_per_second: u32) -> DefaultDirectRateLimiter {
    let period = Duration::from_secs_f64(rate_shares() as f64 / rate_per_second.max(1) as f64);
    let quota = Quota::with_period(period.max(Duration::from_micros(1)))
        .expect("a positive period")
        .allow_burst(NonZeroU32::MIN);
    RateLimiter::direct(quota)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe call is out; everyone else fails fast until it returns.
    HalfOpen,
}

/// Opens after `threshold` consecutive failed Leads, stays open for
/// `open_for`, then lets one probe through: its success closes the circuit,
/// its failure opens it again.
#[derive(Debug)]
pub struct Circuit {
    threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
}

impl Circuit {
    pub fn new(threshold: u32, open_for: Duration) -> Circuit {
        Circuit { threshold: threshold.max(1), open_for, state: Mutex::new(State::Closed { failures: 0 }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock still holds a valid state (every write is a whole value).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a Lead call the provider now?
    pub fn allow(&self, now: Instant) -> bool {
        let mut s = self.lock();
        match *s {
            State::Closed { .. } => true,
            State::Open { until } if now >= until => {
                *s = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    /// The provider answered (whatever the answer meant for the Lead).
    pub fn success(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    /// The provider failed (timeouts, 5xx, 429 or connection errors after retries).
    pub fn failure(&self, now: Instant) {
        let mut s = self.lock();
        *s = match *s {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed { failures: failures + 1 },
            State::Closed { .. } | State::HalfOpen => State::Open { until: now + self.open_for },
            open @ State::Open { .. } => open,
        };
    }

    pub fn is_open(&self, now: Instant) -> bool {
        matches!(*self.lock(), State::Open { until } if now < until) || matches!(*self.lock(), State::HalfOpen)
    }
}

/// Limiters and circuits of this process, by key.
#[derive(Default)]
pub struct Registry {
    limiters: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
    circuits: Mutex<HashMap<String, Arc<Circuit>>>,
}

impl Registry {
    pub fn limiter(&self, key: &str, rate_per_second: u32) -> Arc<DefaultDirectRateLimiter> {
        let key = format!("{key}@{rate_per_second}");
        let mut m = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(key).or_insert_with(|| Arc::new(limiter(rate_per_second))).clone()
    }

    pub fn circuit(&self, key: &str, threshold: u32, open_for: Duration) -> Arc<Circuit> {
        let key = format!("{key}@{threshold}/{}", open_for.as_millis());
        let mut m = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(key).or_insert_with(|| Arc::new(Circuit::new(threshold, open_for))).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circuit_opens_after_threshold_and_probes_once() {
        let t0 = Instant::now();
        let c = Circuit::new(3, Duration::from_secs(30));
        for _ in 0..2 {
            assert!(c.allow(t0));
            c.failure(t0);
        }
        assert!(c.allow(t0), "two failures keep it closed");
        c.success();
        for _ in 0..2 {
            c.failure(t0);
        }
        assert!(c.allow(t0), "a success reset the count");
        c.failure(t0);
        assert!(!c.allow(t0), "the third consecutive failure opened it");
        assert!(c.is_open(t0));
        assert!(!c.allow(t0 + Duration::from_secs(29)));
        // After the open period: exactly one probe.
        let later = t0 + Duration::from_secs(30);
        assert!(c.allow(later));
        assert!(!c.allow(later), "only one probe at a time");
        c.failure(later);
        assert!(!c.allow(later + Duration::from_secs(29)), "a failed probe reopens it");
        let much_later = later + Duration::from_secs(30);
        assert!(c.allow(much_later));
        c.success();
        assert!(c.allow(much_later) && c.allow(much_later), "a good probe closes it");
        assert!(!c.is_open(much_later));
    }

    #[test]
    fn registry_shares_by_key() {
        let r = Registry::default();
        let a = r.circuit("catalog/x", 5, Duration::from_secs(1));
        let b = r.circuit("catalog/x", 5, Duration::from_secs(1));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &r.circuit("ws:1/x", 5, Duration::from_secs(1))));
        assert!(Arc::ptr_eq(&r.limiter("p", 10), &r.limiter("p", 10)));
    }

    /// Many waiters at once (a worker's chunks, each with its calls in
    /// flight) share one limiter: together they get the rate, measured
    /// against the OS's monotonic clock, not the limiter's own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_waiters_share_the_rate() {
        let l = Arc::new(limiter(100));
        let start = std::time::Instant::now();
        let granted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (l, granted) = (l.clone(), granted.clone());
                tokio::spawn(async move {
                    while start.elapsed() < Duration::from_millis(1500) {
                        l.until_ready().await;
                        if start.elapsed() < Duration::from_millis(1500) {
                            granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let n = granted.load(std::sync::atomic::Ordering::SeqCst);
        // 1.5 s at 100/s: 150 grants and the first free one, whatever the
        // machine's load (fewer only if the waiters could not keep up).
        assert!(n <= 152, "{n} grants in 1.5 s at 100/s");
    }

    #[tokio::test]
    async fn limiter_paces_evenly() {
        let l = limiter(200);
        let start = std::time::Instant::now();
        for _ in 0..21 {
            l.until_ready().await;
        }
        // 21 grants at 200/s need at least 100 ms (the first is free).
        assert!(start.elapsed() >= Duration::from_millis(95), "{:?}", start.elapsed());
    }
}
