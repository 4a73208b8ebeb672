//! Watching a run until it is terminal: polls `GET /api/enrichment/{id}`
//! with backoff, draws a progress bar on a terminal (plain lines on stderr
//! otherwise). Ctrl-C stops the watching, never the run.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::backoff::{human_duration, next_poll_delay, rate_and_eta};
use crate::client::Client;
use crate::error::{CliError, Result};

/// Consecutive server/network failures tolerated while polling.
const MAX_POLL_FAILURES: u32 = 5;
/// A plain line is printed at least this often, even without change.
const HEARTBEAT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub resolved: u64,
    pub pending: u64,
    pub running: u64,
    pub completed: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl Progress {
    pub fn from_run(run: &Value) -> Progress {
        let n = |p: &str| run.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        Progress {
            resolved: n("/scope/resolvedCount"),
            pending: n("/scope/counts/pending"),
            running: n("/scope/counts/running"),
            completed: n("/scope/counts/completed"),
            skipped: n("/scope/counts/skipped"),
            failed: n("/scope/counts/failed"),
        }
    }
    pub fn done(&self) -> u64 {
        self.completed + self.skipped + self.failed
    }
}

pub fn is_terminal_status(s: &str) -> bool {
    matches!(s, "completed" | "failed" | "cancelled")
}

/// `run_x running: 120/500 done (completed 100, skipped 10, failed 10), 24.0/s, ETA 16s`
pub fn plain_line(run_id: &str, status: &str, p: &Progress, rate: Option<f64>, eta: Option<Duration>) -> String {
    let mut s = format!(
        "{run_id} {status}: {}/{} done (completed {}, skipped {}, failed {})",
        p.done(),
        p.resolved,
        p.completed,
        p.skipped,
        p.failed
    );
    if let Some(r) = rate {
        s.push_str(&format!(", {r:.1}/s"));
    }
    if let (Some(e), false) = (eta, is_terminal_status(status)) {
        s.push_str(&format!(", ETA {}", human_duration(e)));
    }
    s
}

pub struct WatchOptions {
    pub poll_interval: Duration,
}

/// Polls until the run is terminal; returns the last status body
/// (`{"run": {...}}`). Ctrl-C → [`CliError::Interrupted`].
pub async fn watch(client: &Client, run_id: &str, opts: &WatchOptions) -> Result<Value> {
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} ETA {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b.set_prefix(run_id.to_string());
        b.enable_steady_tick(Duration::from_millis(200));
        Some(b)
    } else {
        None
    };
    let result = tokio::select! {
        r = poll(client, run_id, opts, bar.as_ref()) => r,
        _ = tokio::signal::ctrl_c() => Err(CliError::Interrupted { run_id: run_id.to_string() }),
    };
    if let Some(b) = &bar {
        match &result {
            Ok(_) => b.finish(),
            Err(_) => b.abandon(),
        }
    }
    result
}

async fn poll(client: &Client, run_id: &str, opts: &WatchOptions, bar: Option<&ProgressBar>) -> Result<Value> {
    let started = Instant::now();
    let mut first_done: Option<u64> = None;
    let mut last: Option<(String, Progress)> = None;
    let mut last_line = Instant::now();
    let mut delay = opts.poll_interval;
    let mut failures = 0;
    loop {
        let body = match client.get(&["api", "enrichment", run_id], &[]).await {
            Ok(b) => {
                failures = 0;
                b
            }
            Err(e @ (CliError::Network { .. } | CliError::Api { status: 500.., .. }))
                if failures < MAX_POLL_FAILURES =>
            {
                failures += 1;
                eprintln!("note: polling failed ({}); trying again", e.report().lines().last().unwrap_or(""));
                tokio::time::sleep(delay).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let run = body.get("run").cloned().unwrap_or(Value::Null);
        let status = run.get("status").and_then(Value::as_str).unwrap_or("unknown").to_string();
        let p = Progress::from_run(&run);
        let base = *first_done.get_or_insert(p.done());
        let (rate, eta) =
            rate_and_eta(p.done().saturating_sub(base), started.elapsed(), p.resolved.saturating_sub(p.done()));
        let changed = last.as_ref() != Some(&(status.clone(), p));
        match bar {
            Some(b) => {
                b.set_length(p.resolved);
                b.set_position(p.done());
                let rate = rate.map(|r| format!(" · {r:.1}/s")).unwrap_or_default();
                b.set_message(format!(
                    "{status} · completed {} · skipped {} · failed {}{rate}",
                    p.completed, p.skipped, p.failed
                ));
            }
            None => {
                if changed || last_line.elapsed() >= HEARTBEAT {
                    eprintln!("{}", plain_line(run_id, &status, &p, rate, eta));
                    last_line = Instant::now();
                }
            }
        }
        if is_terminal_status(&status) {
            return Ok(body);
        }
        delay = next_poll_delay(delay, opts.poll_interval, changed);
        last = Some((status, p));
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_from_status_and_plain_line() {
        let run = json!({"status":"running","scope":{"resolvedCount":500,"counts":{"pending":380,"running":0,"completed":100,"skipped":10,"failed":10}}});
        let p = Progress::from_run(&run);
        assert_eq!(p.done(), 120);
        let line = plain_line("run_1", "running", &p, Some(24.0), Some(Duration::from_secs(16)));
        assert_eq!(line, "run_1 running: 120/500 done (completed 100, skipped 10, failed 10), 24.0/s, ETA 16s");
        let done = plain_line("run_1", "completed", &p, None, Some(Duration::from_secs(1)));
        assert!(!done.contains("ETA"));
        assert_eq!(Progress::from_run(&json!(null)), Progress::default());
    }
}
