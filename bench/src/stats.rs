//! Percentiles (nearest rank) of latency samples in milliseconds.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Summary {
    pub samples: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// Nearest-rank percentile of sorted values (p in 0..=100).
fn rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[idx.clamp(1, sorted.len()) - 1]
}

pub fn summarize(samples: &[Duration]) -> Summary {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let n = ms.len();
    Summary {
        samples: n,
        p50: round2(rank(&ms, 50.0)),
        p95: round2(rank(&ms, 95.0)),
        p99: round2(rank(&ms, 99.0)),
        min: round2(ms.first().copied().unwrap_or(f64::NAN)),
        max: round2(ms.last().copied().unwrap_or(f64::NAN)),
        mean: round2(if n == 0 { f64::NAN } else { ms.iter().sum::<f64>() / n as f64 }),
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    rank(&v, 50.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = summarize(&d);
        assert_eq!((s.p50, s.p95, s.p99, s.min, s.max), (50.0, 95.0, 99.0, 1.0, 100.0));
        let d: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        let s = summarize(&d);
        assert_eq!((s.p50, s.p95, s.p99), (10.0, 19.0, 20.0));
    }
}
