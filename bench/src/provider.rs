//! An HTTP-bound enrichment against a local provider stub answering every
//! call in 50 ms: Leads/s, the calls in flight the worker sustains, and the
//! rate limit held (calls per second never above `ratePerSecond`, counted by
//! the stub from the arrival time of every call).
//!
//! The stub runs in this process on `--provider-stub-port`; scripts/bench.sh
//! starts the API+worker process with PUFFLE_EGRESS_ALLOW_HOSTS naming it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::routing::post;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use crate::stats::round2;
use crate::suite::Ctx;
use crate::throughput::{build_list, wait_terminal};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderRun {
    pub leads: u64,
    pub status: String,
    pub seconds: f64,
    pub leads_per_second: f64,
    pub stub_latency_ms: u64,
    pub rate_per_second: u32,
    pub concurrency_per_chunk: u32,
    pub calls: u64,
    /// Most calls the stub was serving at once.
    pub max_in_flight: u64,
    /// Calls in flight on average while the run called (calls × latency ÷ calling time).
    pub mean_in_flight: f64,
    /// Most calls that arrived in one whole second (aligned to the first call).
    pub max_calls_in_a_second: u64,
    /// Most calls that arrived in any window of one second (sliding).
    pub max_calls_in_any_1s_window: u64,
    pub completed: u64,
    pub dynamodb_requests_per_lead: f64,
    pub by_operation: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Seen {
    arrivals: Mutex<Vec<Instant>>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

async fn serve(port: u16, latency: Duration) -> anyhow::Result<Arc<Seen>> {
    let seen: Arc<Seen> = Default::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/find",
        post(move |Json(body): Json<Value>| {
            let s = s.clone();
            async move {
                s.arrivals.lock().unwrap().push(Instant::now());
                let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                s.max_in_flight.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(latency).await;
                s.in_flight.fetch_sub(1, Ordering::SeqCst);
                let name = body["name"].as_str().unwrap_or("x").replace(' ', ".").to_lowercase();
                Json(json!({"data": {"email": format!("{name}@found.test"), "score": 0.8}, "requestId": "r"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.context("bind the provider stub")?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(seen)
}

/// (max calls in an aligned second, max calls in any sliding 1 s window).
fn per_second(arrivals: &[Instant]) -> (u64, u64) {
    let Some(first) = arrivals.first().copied() else { return (0, 0) };
    let mut buckets: BTreeMap<u64, u64> = BTreeMap::new();
    for a in arrivals {
        *buckets.entry((*a - first).as_secs()).or_default() += 1;
    }
    let aligned = buckets.values().copied().max().unwrap_or(0);
    let (mut sliding, mut lo) = (0u64, 0usize);
    for hi in 0..arrivals.len() {
        while arrivals[hi] - arrivals[lo] >= Duration::from_secs(1) {
            lo += 1;
        }
        sliding = sliding.max((hi - lo + 1) as u64);
    }
    (aligned, sliding)
}

/// The stub, served once for the suite; each run starts from a clean count.
pub struct Stub {
    port: u16,
    latency: Duration,
    seen: Arc<Seen>,
}

impl Stub {
    pub async fn start(port: u16) -> anyhow::Result<Stub> {
        let latency = Duration::from_millis(50);
        Ok(Stub { port, latency, seen: serve(port, latency).await? })
    }
}

/// One run of a fresh HTTP enrichment over a List of `leads` Leads: with
/// `rate` well above what the worker reaches, the worker's own Leads/s; with
/// `rate` below it, the limiter's (calls per second should stay at `rate`).
pub async fn run(ctx: &Ctx, stub: &Stub, leads: usize, rate: u32, concurrency: u32) -> anyhow::Result<ProviderRun> {
    let (port, latency, seen) = (stub.port, stub.latency, &stub.seen);
    seen.arrivals.lock().unwrap().clear();
    seen.max_in_flight.store(0, Ordering::SeqCst);
    ctx.api
        .expect(reqwest::Method::PUT, "/api/secrets/BENCH_KEY", Some(&json!({"value": "bench-key"})), &[204])
        .await?;
    let slug =
        format!("bench_http_{}", crate::api::tag().to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), ""));
    let slug: String = slug.chars().take(60).collect();
    let def = json!({
        "slug": slug, "name": "Bench HTTP finder", "subject": "person",
        "outputSchema": {"type": "object", "properties": {"email": {"type": "string"}, "confidence": {"type": "number"}}, "required": ["email"]},
        "costModel": {"creditsPerLead": 1},
        "toolBinding": {"type": "http", "provider": "bench-stub",
            "request": {"method": "POST", "url": format!("http://127.0.0.1:{port}/find?d={{{{lead.company.domain}}}}"),
                        "headers": {"Authorization": "Bearer {{secrets.BENCH_KEY}}"},
                        "body": {"name": "{{lead.name.full}}", "domain": "{{lead.company.domain}}"}},
            "response": {"found": "/data/email", "result": {"email": "/data/email", "confidence": "/data/score"}},
            "timeoutMs": 5000, "maxAttempts": 3, "ratePerSecond": rate, "concurrency": concurrency,
            "cache": {"ttlSeconds": 0}}
    });
    ctx.api.expect(reqwest::Method::POST, "/api/enrichments", Some(&def), &[201]).await?;

    eprintln!("bench: provider run — importing {leads} leads");
    let (list, _) = build_list(ctx, leads, |_| None).await?;
    ctx.api.expect(reqwest::Method::DELETE, "/_local/metrics", None, &[200]).await?;
    eprintln!(
        "bench: provider run — {leads} leads, stub answering in {} ms, ratePerSecond {rate}",
        latency.as_millis()
    );
    let t = Instant::now();
    let run_id =
        ctx.api.create_run(&crate::api::run_body(&slug, json!({"type": "list", "listId": list}), json!({}))).await?;
    let status = wait_terminal(ctx, &run_id, Duration::from_millis(50), Duration::from_secs(3600)).await?;
    let seconds = t.elapsed().as_secs_f64();
    let metrics = ctx.api.get("/_local/metrics").await?;
    let mut by_operation = BTreeMap::new();
    let mut ddb = 0;
    for (op, v) in metrics["requests"].as_object().cloned().unwrap_or_default() {
        let c = v.as_u64().unwrap_or(0);
        if op.to_ascii_lowercase().starts_with("dynamo") {
            ddb += c;
        }
        by_operation.insert(op, c);
    }
    let rec = ctx.app.store().get_run(&ctx.ws, &run_id).await?.context("the run vanished")?;
    let arrivals = seen.arrivals.lock().unwrap().clone();
    let calls = arrivals.len() as u64;
    let (aligned, sliding) = per_second(&arrivals);
    let calling = match (arrivals.first(), arrivals.last()) {
        (Some(a), Some(b)) => (*b - *a).as_secs_f64() + latency.as_secs_f64(),
        _ => 0.0,
    };
    Ok(ProviderRun {
        leads: leads as u64,
        status: status.as_str().to_string(),
        seconds: round2(seconds),
        leads_per_second: round2(leads as f64 / seconds),
        stub_latency_ms: latency.as_millis() as u64,
        rate_per_second: rate,
        concurrency_per_chunk: concurrency,
        calls,
        max_in_flight: seen.max_in_flight.load(Ordering::SeqCst),
        mean_in_flight: if calling > 0.0 { round2(calls as f64 * latency.as_secs_f64() / calling) } else { 0.0 },
        max_calls_in_a_second: aligned,
        max_calls_in_any_1s_window: sliding,
        completed: rec.run.scope.counts.completed,
        dynamodb_requests_per_lead: (ddb as f64 / leads as f64 * 10_000.0).round() / 10_000.0,
        by_operation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_second_counts_aligned_and_sliding_windows() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 3 calls late in second 0 and 3 early in second 1: 3 per aligned second, 6 in one sliding window.
        let a = [at(0), at(900), at(950), at(990), at(1010), at(1020), at(1030)];
        assert_eq!(per_second(&a), (4, 6));
        assert_eq!(per_second(&[]), (0, 0));
    }
}
