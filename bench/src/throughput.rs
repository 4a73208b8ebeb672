//! Worker throughput: a List-scoped `email_domain` run from `POST
//! /api/enrichment` to `completed`, in Leads/s, with the server's SDK request
//! counters (API + worker in one `puffle-local` process, reset just before),
//! beside the local ceiling: the same number of item + attribute rows, copied
//! from the run's own rows, written with BatchWriteItem the way the worker
//! writes them (25 per request, chunks of 100 Leads, as many chunks in flight
//! as the local worker can have).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use futures::stream::{self, StreamExt, TryStreamExt};
use puffle_aws::keys;
use puffle_aws::store::{s, Row};
use puffle_domain::run::RunStatus;
use serde::Serialize;
use serde_json::{json, Value};

use crate::api::{person, run_body, tag};
use crate::stats::round2;
use crate::suite::Ctx;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpCount {
    pub count: u64,
    pub per_lead: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    pub enrichment: String,
    pub leads: u64,
    pub run_id: String,
    pub status: String,
    pub seconds: f64,
    pub leads_per_second: f64,
    pub ceiling: Ceiling,
    /// worker Leads/s ÷ ceiling Leads/s.
    pub ratio: f64,
    pub dynamodb_requests: u64,
    pub dynamodb_requests_per_lead: f64,
    pub dynamodb_target_per_lead: f64,
    pub sqs_requests: u64,
    pub sqs_requests_per_lead: f64,
    /// `service:Operation` → count and count per Lead (every attempt counts).
    pub by_operation: BTreeMap<String, OpCount>,
    pub setup_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ceiling {
    pub leads: u64,
    pub rows: u64,
    pub row_bytes: RowBytes,
    pub batch_write_requests: u64,
    pub concurrency: usize,
    pub seconds: f64,
    pub leads_per_second: f64,
    pub rows_per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowBytes {
    pub item: usize,
    pub attribute: usize,
}

/// Polls the run straight from DynamoDB (the bench's own client), so the
/// server's request counters see only the create and the worker.
pub async fn wait_terminal(ctx: &Ctx, run_id: &str, every: Duration, limit: Duration) -> anyhow::Result<RunStatus> {
    let t = Instant::now();
    loop {
        if let Some(rec) = ctx.app.store().get_run(&ctx.ws, run_id).await? {
            if matches!(rec.run.status, RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled) {
                return Ok(rec.run.status);
            }
        }
        if t.elapsed() > limit {
            bail!("run {run_id} not terminal after {}s", limit.as_secs());
        }
        tokio::time::sleep(every).await;
    }
}

/// A person List of `n` fresh Leads (imported through the API); returns its id and the Lead ids.
pub async fn build_list(
    ctx: &Ctx,
    n: usize,
    phone: impl Fn(usize) -> Option<String>,
) -> anyhow::Result<(String, Vec<String>)> {
    let t = tag();
    let leads: Vec<Value> = (0..n).map(|i| person(&t, i, phone(i))).collect();
    let ids = ctx.sink.import(leads, ctx.concurrency).await?;
    let list = ctx.sink.new_list(&format!("bench {t}")).await?;
    let count = ctx.sink.add_to_list(&list, &ids, ctx.concurrency).await?;
    if count != n as u64 {
        bail!("list {list} holds {count} leads, expected {n}");
    }
    Ok((list, ids))
}

pub async fn run(ctx: &Ctx, leads: usize, ceiling_concurrency: usize) -> anyhow::Result<Throughput> {
    let setup = Instant::now();
    eprintln!("bench: worker run — importing {leads} leads");
    let (list, ids) = build_list(ctx, leads, |_| None).await?;
    let setup_seconds = setup.elapsed().as_secs_f64();

    // Counters of the API+worker process, from zero.
    ctx.api.expect(reqwest::Method::DELETE, "/_local/metrics", None, &[200]).await?;
    eprintln!("bench: worker run — {leads} leads, email_domain");
    let t = Instant::now();
    let run_id =
        ctx.api.create_run(&run_body("email_domain", json!({"type": "list", "listId": list}), json!({}))).await?;
    let status = wait_terminal(ctx, &run_id, Duration::from_millis(25), Duration::from_secs(1800)).await?;
    let seconds = t.elapsed().as_secs_f64();
    let metrics = ctx.api.get("/_local/metrics").await?;

    let n = leads as f64;
    let mut by_operation = BTreeMap::new();
    let (mut ddb, mut sqs) = (0u64, 0u64);
    for (op, v) in metrics["requests"].as_object().cloned().unwrap_or_default() {
        let count = v.as_u64().unwrap_or(0);
        let service = op.split(':').next().unwrap_or("").to_ascii_lowercase();
        if service.contains("dynamo") {
            ddb += count;
        } else if service.contains("sqs") {
            sqs += count;
        }
        by_operation.insert(op, OpCount { count, per_lead: round4(count as f64 / n) });
    }

    eprintln!("bench: worker run — BatchWriteItem ceiling");
    let ceiling = ceiling(ctx, &run_id, &ids[0], leads, ceiling_concurrency).await?;
    let leads_per_second = round2(n / seconds);
    Ok(Throughput {
        enrichment: "email_domain".into(),
        leads: leads as u64,
        run_id,
        status: status.as_str().to_string(),
        seconds: round2(seconds),
        leads_per_second,
        ratio: round2(leads_per_second / ceiling.leads_per_second),
        ceiling,
        dynamodb_requests: ddb,
        dynamodb_requests_per_lead: round4(ddb as f64 / n),
        dynamodb_target_per_lead: 0.2,
        sqs_requests: sqs,
        sqs_requests_per_lead: round4(sqs as f64 / n),
        by_operation,
        setup_seconds: round2(setup_seconds),
    })
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Rough DynamoDB item size (names + values), for the report.
fn row_size(r: &Row) -> usize {
    fn av(v: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        match v {
            A::S(s) => s.len(),
            A::N(n) => n.len(),
            A::Bool(_) | A::Null(_) => 1,
            A::M(m) => 3 + m.iter().map(|(k, v)| k.len() + av(v)).sum::<usize>(),
            A::L(l) => 3 + l.iter().map(av).sum::<usize>(),
            A::Ss(v) | A::Ns(v) => v.iter().map(|s| s.len()).sum(),
            A::B(b) => b.as_ref().len(),
            _ => 0,
        }
    }
    r.iter().map(|(k, v)| k.len() + av(v)).sum()
}

/// BatchWriteItem of `leads` × (item row + attribute row), copies of the run's
/// own rows under fresh keys, `concurrency` chunks of 100 Leads in flight.
async fn ceiling(ctx: &Ctx, run_id: &str, lead_id: &str, leads: usize, concurrency: usize) -> anyhow::Result<Ceiling> {
    let store = ctx.app.store();
    let rec = store.get_run(&ctx.ws, run_id).await?.ok_or_else(|| anyhow!("run vanished"))?;
    let key = rec.run.output.attribute_key.clone();
    let item =
        store.get_row(keys::item(run_id, lead_id)).await?.ok_or_else(|| anyhow!("item row of {lead_id} missing"))?;
    let attr = store
        .get_row(keys::lead_attr(&ctx.ws, lead_id, &key))
        .await?
        .ok_or_else(|| anyhow!("attribute row {key} of {lead_id} missing"))?;
    let fake_run = puffle_domain::ids::run_id();
    let fake_ws = format!("{}-ceiling", ctx.ws);
    let rows_for = |ids: &[String]| -> Vec<Row> {
        let mut rows = Vec::with_capacity(ids.len() * 2);
        for id in ids {
            let mut a = attr.clone();
            a.insert("pk".into(), s(keys::leads_pk(&fake_ws)));
            a.insert("sk".into(), s(format!("{id}{}", keys::attr_suffix(&key))));
            rows.push(a);
            let mut i = item.clone();
            i.insert("pk".into(), s(keys::items_pk(&fake_run)));
            i.insert("sk".into(), s(id));
            i.insert("gsi1pk".into(), s(keys::items_by_status_pk(&fake_run, "completed")));
            i.insert("gsi1sk".into(), s(id));
            rows.push(i);
        }
        rows
    };
    let ids: Vec<String> = (0..leads).map(|_| puffle_domain::ids::new_id("lead")).collect();
    // Rows built before the clock starts: the ceiling times only the writes.
    let chunks: Vec<Vec<Row>> = ids.chunks(puffle_domain::plan::CHUNK_SIZE).map(rows_for).collect();
    let requests: u64 = chunks.iter().map(|c| c.len().div_ceil(25) as u64).sum();
    let rows = (leads * 2) as u64;
    let t = Instant::now();
    stream::iter(chunks)
        .map(|rows| async move { store.batch_put(rows).await })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<_>>()
        .await?;
    let secs = t.elapsed().as_secs_f64();
    Ok(Ceiling {
        leads: leads as u64,
        rows,
        row_bytes: RowBytes { item: row_size(&item), attribute: row_size(&attr) },
        batch_write_requests: requests,
        concurrency,
        seconds: round2(secs),
        leads_per_second: round2(leads as f64 / secs),
        rows_per_second: round2(rows as f64 / secs),
    })
}
