//! Create latency (`POST /api/enrichment`, end to end over HTTP) beside the
//! latency of one bare TransactWriteItems shaped like create's own
//! transaction, against the same DynamoDB Local, samples interleaved
//! (create, bare, create, bare, …) so both see the same table and load.
//!
//! The bare transaction's items are copies of the rows the row's first
//! (warm-up) create wrote — the run record, the idempotency record, the
//! ledger charge — under fresh keys, plus the conditional balance Update on
//! a copy of the workspace row: 4 actions, the same sizes, the same conditions,
//! and a ClientRequestToken as create's transaction has.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use puffle_aws::keys;
use puffle_aws::store::{get_s, key_of, n, s, Row};
use serde::Serialize;
use serde_json::Value;

use crate::api::{run_body, Api};
use crate::stats::{round2, summarize, Summary};
use crate::suite::Ctx;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRow {
    pub scope: String,
    pub leads: u64,
    pub create_ms: Summary,
    pub bare_transact_ms: Summary,
    /// create p50 ÷ bare transaction p50.
    pub ratio_p50: f64,
}

/// The bare transaction: templates of create's four writes.
struct Bare {
    ws_bare: (String, String),
    cost: u64,
    run: Row,
    idem: Row,
    ledger: Row,
}

impl Bare {
    /// Captures the rows `run_id`'s create wrote.
    async fn capture(ctx: &Ctx, run_id: &str, idem_key: &str, cost: u64) -> anyhow::Result<Bare> {
        let store = ctx.app.store();
        let run = store.get_row(keys::run(&ctx.ws, run_id)).await?.ok_or_else(|| anyhow!("run {run_id} not stored"))?;
        let idem = store
            .get_row(keys::idempotency(&ctx.ws, idem_key))
            .await?
            .ok_or_else(|| anyhow!("idempotency record missing"))?;
        let ledger = store
            .query_all(&keys::ledger_pk(&ctx.ws))
            .await?
            .into_iter()
            .rev()
            .find(|r| get_s(r, "runId").as_deref() == Some(run_id))
            .ok_or_else(|| anyhow!("ledger charge of {run_id} missing"))?;
        // A copy of the workspace row, so the bare updates never touch the real balance.
        let mut ws_row =
            store.get_row(keys::workspace(&ctx.ws)).await?.ok_or_else(|| anyhow!("workspace row missing"))?;
        let ws_bare = (format!("WS#{}#bare", ctx.ws), "WS".to_string());
        ws_row.insert("pk".into(), s(&ws_bare.0));
        ws_row.insert("balance".into(), n(u64::MAX / 4));
        store.client().put_item().table_name(store.table()).set_item(Some(ws_row)).send().await?;
        Ok(Bare { ws_bare, cost, run, idem, ledger })
    }

    fn actions(&self, ctx: &Ctx) -> Vec<TransactWriteItem> {
        let table = ctx.app.store().table().to_string();
        let now = puffle_domain::time::now();
        let mut run = self.run.clone();
        run.insert("sk".into(), s(puffle_domain::ids::run_id()));
        let mut idem = self.idem.clone();
        idem.insert("pk".into(), s(format!("IDEM#{}#bare-{}", ctx.ws, puffle_domain::ids::new_id("k"))));
        let mut ledger = self.ledger.clone();
        ledger.insert("sk".into(), s(format!("{now}#{}", puffle_domain::ids::new_id("led"))));
        vec![
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&table)
                        .set_key(Some(key_of(self.ws_bare.clone())))
                        .update_expression("SET balance = balance - :d")
                        .condition_expression("attribute_exists(pk) AND balance >= :d")
                        .expression_attribute_values(":d", n(self.cost))
                        .build()
                        .expect("update"),
                )
                .build(),
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&table)
                        .set_item(Some(run))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .expect("put"),
                )
                .build(),
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&table)
                        .set_item(Some(idem))
                        .condition_expression("attribute_not_exists(pk) OR #ttl < :now")
                        .expression_attribute_names("#ttl", "ttl")
                        .expression_attribute_values(
                            ":now",
                            AttributeValue::N(puffle_domain::time::epoch_seconds().to_string()),
                        )
                        .build()
                        .expect("put"),
                )
                .build(),
            TransactWriteItem::builder()
                .put(Put::builder().table_name(&table).set_item(Some(ledger)).build().expect("put"))
                .build(),
        ]
    }

    async fn timed(&self, ctx: &Ctx) -> anyhow::Result<Duration> {
        let actions = self.actions(ctx);
        // Like create's, the transaction carries a ClientRequestToken (its run id there).
        let token = puffle_domain::ids::run_id();
        let t = Instant::now();
        ctx.app
            .store()
            .client()
            .transact_write_items()
            .set_transact_items(Some(actions))
            .client_request_token(token)
            .send()
            .await
            .context("bare TransactWriteItems")?;
        Ok(t.elapsed())
    }
}

/// One create; returns its latency, run id and idempotency key.
async fn timed_create(api: &Api, enrichment: &str, scope: &Value) -> anyhow::Result<(Duration, String, String)> {
    let body = run_body(enrichment, scope.clone(), serde_json::json!({}));
    let key = body["idempotencyKey"].as_str().unwrap_or_default().to_string();
    let t = Instant::now();
    let run_id = api.create_run(&body).await?;
    Ok((t.elapsed(), run_id, key))
}

/// One row: `warmup` creates (the first also yields the bare templates),
/// then `samples` interleaved create / bare pairs.
pub async fn measure(
    ctx: &Ctx,
    scope_kind: &str,
    leads: u64,
    scope: Value,
    samples: usize,
    warmup: usize,
) -> anyhow::Result<CreateRow> {
    let api = &ctx.sink;
    let (_, first_run, key) = timed_create(api, "email_domain", &scope).await?;
    let bare = Bare::capture(ctx, &first_run, &key, leads).await?;
    for _ in 1..warmup.max(1) {
        timed_create(api, "email_domain", &scope).await?;
        bare.timed(ctx).await?;
    }
    let mut creates = Vec::with_capacity(samples);
    let mut bares = Vec::with_capacity(samples);
    for _ in 0..samples {
        creates.push(timed_create(api, "email_domain", &scope).await?.0);
        bares.push(bare.timed(ctx).await?);
    }
    let (c, b) = (summarize(&creates), summarize(&bares));
    Ok(CreateRow {
        scope: scope_kind.to_string(),
        leads,
        create_ms: c,
        bare_transact_ms: b,
        ratio_p50: round2(c.p50 / b.p50),
    })
}
