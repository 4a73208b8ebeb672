//! Status and items reads on a finished run of 10,000 items: a
//! `phone_normalize` run where every tenth phone is invalid (those items end
//! `failed`), then timed GETs of the status, the first items page, the first
//! `status=failed` page and a page deep into the run (cursors followed to
//! page ~50 of 100 items, then that same request repeated).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use serde::Serialize;
use serde_json::json;

use crate::api::run_body;
use crate::stats::{summarize, Summary};
use crate::suite::Ctx;
use crate::throughput::{build_list, wait_terminal};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadRow {
    pub request: String,
    pub path: String,
    pub items_returned: usize,
    pub latency_ms: Summary,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reads {
    pub run_id: String,
    pub items: u64,
    pub counts: serde_json::Value,
    pub run_seconds: f64,
    pub deep_page: usize,
    pub rows: Vec<ReadRow>,
}

/// A valid US number for most Leads, an unparseable one for every tenth.
pub fn phone(i: usize) -> Option<String> {
    Some(if i % 10 == 9 { "12345".to_string() } else { format!("(415) 555-{:04}", i % 10_000) })
}

async fn timed(ctx: &Ctx, request: &str, path: String, samples: usize) -> anyhow::Result<ReadRow> {
    let (_, first) = ctx.api.timed_get(&path).await?; // warm-up
    let items_returned = first["items"].as_array().map(|a| a.len()).unwrap_or(0);
    let mut d: Vec<Duration> = Vec::with_capacity(samples);
    for _ in 0..samples {
        d.push(ctx.api.timed_get(&path).await?.0);
    }
    Ok(ReadRow { request: request.to_string(), path, items_returned, latency_ms: summarize(&d) })
}

pub async fn run(ctx: &Ctx, items: usize, samples: usize, deep_page: usize) -> anyhow::Result<Reads> {
    eprintln!("bench: reads — importing {items} leads with phones (10% invalid)");
    let (list, _) = build_list(ctx, items, phone).await?;
    eprintln!("bench: reads — phone_normalize run over {items} leads");
    let t = Instant::now();
    let run_id =
        ctx.api.create_run(&run_body("phone_normalize", json!({"type": "list", "listId": list}), json!({}))).await?;
    wait_terminal(ctx, &run_id, Duration::from_millis(100), Duration::from_secs(1800)).await?;
    let run_seconds = t.elapsed().as_secs_f64();
    let status = ctx.api.get(&format!("/api/enrichment/{run_id}")).await?;
    let counts = status["run"]["scope"]["counts"].clone();
    if counts["failed"].as_u64().unwrap_or(0) == 0 {
        bail!("the phone run has no failed items: {counts}");
    }

    // Follow cursors to page `deep_page` (1-based) of 100 items.
    let base = format!("/api/enrichment/{run_id}/items?limit=100");
    let mut cursor: Option<String> = None;
    let mut page = 1;
    while page < deep_page {
        let path = match &cursor {
            Some(c) => format!("{base}&cursor={c}"),
            None => base.clone(),
        };
        let body = ctx.api.get(&path).await?;
        match body["page"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        page += 1;
    }
    let deep = cursor.ok_or_else(|| anyhow!("the run has a single page of items"))?;

    eprintln!("bench: reads — timing status and items pages");
    let rows = vec![
        timed(ctx, "status", format!("/api/enrichment/{run_id}"), samples).await?,
        timed(ctx, "items, first page (100)", base.clone(), samples).await?,
        timed(ctx, "items?status=failed, first page (100)", format!("{base}&status=failed"), samples).await?,
        timed(ctx, &format!("items, page {page} (100)"), format!("{base}&cursor={deep}"), samples).await?,
    ];
    Ok(Reads {
        run_id,
        items: items as u64,
        counts,
        run_seconds: crate::stats::round2(run_seconds),
        deep_page: page,
        rows,
    })
}
