//! The printed table (the JSON report carries the same figures and more).

use std::fmt::Write;

use crate::suite::Report;

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn f1(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "-".into()
    }
}

pub fn table(r: &Report) -> String {
    let mut o = String::new();
    let m = &r.machine;
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Puffle bench — {} — {} × {}, {} GiB, load at start {}{}",
        r.generated_at,
        m["cpuModel"].as_str().unwrap_or("?"),
        m["nproc"],
        m["memoryGiB"],
        m["loadAverageAtStart"].as_str().unwrap_or("?"),
        if r.quick { " — QUICK sizes" } else { "" }
    );
    if !r.stack.is_empty() {
        let _ = writeln!(o, "stack: {}", r.stack);
    }

    if !r.create_latency.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "Create latency, ms (POST /api/enrichment over HTTP; bare = one TransactWriteItems of create's 4 actions, same DynamoDB Local, interleaved)");
        let _ = writeln!(
            o,
            "  {:<24} {:>5}  {:>8} {:>8} {:>8}   {:>8} {:>8} {:>8}   {:>9}",
            "scope", "n", "create50", "p95", "p99", "bare50", "p95", "p99", "ratio p50"
        );
        for row in &r.create_latency {
            let c = &row.create_ms;
            let b = &row.bare_transact_ms;
            let _ = writeln!(
                o,
                "  {:<24} {:>5}  {:>8} {:>8} {:>8}   {:>8} {:>8} {:>8}   {:>8}×",
                format!("{} × {}", row.scope, thousands(row.leads)),
                c.samples,
                f1(c.p50),
                f1(c.p95),
                f1(c.p99),
                f1(b.p50),
                f1(b.p95),
                f1(b.p99),
                format!("{:.2}", row.ratio_p50)
            );
        }
    }

    if let Some(w) = &r.worker {
        let c = &w.ceiling;
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Worker throughput ({} over a List of {} Leads, create → {})",
            w.enrichment,
            thousands(w.leads),
            w.status
        );
        let _ = writeln!(o, "  worker                 {:>10.1} Leads/s   ({:.2} s)", w.leads_per_second, w.seconds);
        let _ = writeln!(
            o,
            "  BatchWriteItem ceiling {:>10.1} Leads/s   ({} rows of ~{}+{} B in {} requests of 25, {} chunks in flight, {:.2} s)",
            c.leads_per_second,
            thousands(c.rows),
            c.row_bytes.item,
            c.row_bytes.attribute,
            thousands(c.batch_write_requests),
            c.concurrency,
            c.seconds
        );
        let _ = writeln!(o, "  worker ÷ ceiling       {:>10.2}", w.ratio);
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Requests per Lead in that run (API + worker process counters): DynamoDB {:.3} (target ≤ {}), SQS {:.3}",
            w.dynamodb_requests_per_lead, w.dynamodb_target_per_lead, w.sqs_requests_per_lead
        );
        let _ = writeln!(o, "  {:<36} {:>8} {:>10}", "operation", "requests", "per Lead");
        for (op, c) in &w.by_operation {
            let _ = writeln!(o, "  {:<36} {:>8} {:>10.4}", op, thousands(c.count), c.per_lead);
        }
        let _ = writeln!(
            o,
            "  {:<36} {:>8} {:>10.4}",
            "DynamoDB total",
            thousands(w.dynamodb_requests),
            w.dynamodb_requests_per_lead
        );
        let _ = writeln!(o, "  {:<36} {:>8} {:>10.4}", "SQS total", thousands(w.sqs_requests), w.sqs_requests_per_lead);
    }

    if let Some(p) = &r.provider {
        provider_table(&mut o, "HTTP enrichment", p);
    }
    if let Some(p) = &r.provider_limited {
        provider_table(&mut o, "HTTP enrichment held to its rate limit", p);
    }

    if let Some(rd) = &r.reads {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Reads on a finished run of {} items (phone_normalize, counts {}), ms",
            thousands(rd.items),
            rd.counts
        );
        let _ = writeln!(o, "  {:<40} {:>5} {:>8} {:>8} {:>8}", "request", "n", "p50", "p95", "items");
        for row in &rd.rows {
            let l = &row.latency_ms;
            let _ = writeln!(
                o,
                "  {:<40} {:>5} {:>8} {:>8} {:>8}",
                row.request,
                l.samples,
                f1(l.p50),
                f1(l.p95),
                row.items_returned
            );
        }
    }

    if !r.lambdas.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "Lambda functions (zip: arm64 `make build`; host zip: the host x86_64 release binary deflated as a zip stores it; init (main → ready, logged by the function), cold start, warm 2nd invocation, peak RSS: host release build under cargo lambda watch)");
        let _ = writeln!(
            o,
            "  {:<11} {:>7} {:>8} {:>8} {:>8} {:>15} {:>13} {:>8} {:>9}  first response",
            "function", "zip MB", "host MB", "host zip", "init ms", "cold start ms", "min–max", "warm ms", "peak RSS"
        );
        for l in &r.lambdas {
            let mb = |b: Option<u64>| b.map(|b| format!("{:.2}", b as f64 / 1_048_576.0)).unwrap_or_else(|| "-".into());
            let (cold, range) = match &l.cold_start_ms {
                Some(c) => (format!("{} (n={})", f1(c.median), c.samples), format!("{}–{}", f1(c.min), f1(c.max))),
                None => ("-".into(), "-".into()),
            };
            let rss = l.peak_rss_kib.map(|k| format!("{:.1} MB", k as f64 / 1024.0)).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                o,
                "  {:<11} {:>7} {:>8} {:>8} {:>8} {:>15} {:>13} {:>8} {:>9}  {}{}",
                l.function,
                mb(l.zip_bytes),
                mb(l.host_binary_bytes),
                mb(l.host_zip_bytes),
                l.init_ms.map(f1).unwrap_or_else(|| "-".into()),
                cold,
                range,
                l.warm_invoke_ms.map(f1).unwrap_or_else(|| "-".into()),
                rss,
                l.response.clone().unwrap_or_default(),
                l.note.as_ref().map(|n| format!("  [{n}]")).unwrap_or_default()
            );
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "suite time {:.0} s (setup: {})", r.duration_seconds, r.setup_seconds);
    o
}

/// One HTTP-enrichment run: Leads/s, calls in flight, calls per second against the limit.
fn provider_table(o: &mut String, title: &str, p: &crate::provider::ProviderRun) {
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{title} ({} Leads, a stub answering in {} ms, ratePerSecond {}, {} calls in flight per chunk at most; create → {})",
        thousands(p.leads),
        p.stub_latency_ms,
        p.rate_per_second,
        p.concurrency_per_chunk,
        p.status
    );
    let _ = writeln!(
        o,
        "  worker                 {:>10.1} Leads/s   ({:.2} s, {} completed)",
        p.leads_per_second,
        p.seconds,
        thousands(p.completed)
    );
    let _ = writeln!(
        o,
        "  provider calls         {:>10}           (in flight: max {}, mean {:.1})",
        thousands(p.calls),
        p.max_in_flight,
        p.mean_in_flight
    );
    let _ = writeln!(
        o,
        "  calls per second       {:>10}           (max in one second; {} in any 1 s window; limit {})",
        p.max_calls_in_a_second, p.max_calls_in_any_1s_window, p.rate_per_second
    );
    let _ = writeln!(o, "  DynamoDB per Lead      {:>10.3}", p.dynamodb_requests_per_lead);
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands() {
        assert_eq!(super::thousands(100000), "100,000");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
    }
}
