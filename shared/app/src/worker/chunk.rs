//! Chunk processing: enrich up to 100 Leads, write items and attribute values
//! with BatchWriteItem, then count the chunk exactly once.
//!
//! Requests per chunk of 100: 1 GetItem (run), 1 BatchGetItem (Leads),
//! +1 BatchGetItem for `skip_existing`, 8 BatchWriteItem (100 items + 100
//! attribute values), 1 UpdateItem (counts) — about 0.11 per Lead.

use std::collections::HashMap;

use puffle_aws::store::{get_s, AttrWrite, ChunkDelta, Row};
use puffle_domain::create::{OutputTarget, WritePolicy};
use puffle_domain::item::{Item, ItemStatus};
use puffle_domain::providers::Outcome;
use puffle_domain::run::RunStatus;
use puffle_domain::time;
use serde_json::Value;

use super::plan::item_list_id;
use crate::enrich::Enriched;
use crate::{App, AppError};

impl App {
    pub async fn process_chunk(
        &self,
        ws: &str,
        run_id: &str,
        chunk: u32,
        lead_ids: &[String],
        receive_count: u32,
    ) -> Result<(), AppError> {
        let Some(rec) = self.store().get_run(ws, run_id).await? else {
            tracing::warn!(chunk, "chunk for an unknown run; dropped");
            return Ok(());
        };
        if rec.done_chunks.contains(&chunk) {
            tracing::info!(chunk, "chunk already counted; duplicate delivery ignored");
            return Ok(());
        }
        let run = &rec.run;
        let now = time::now();
        let list_id = item_list_id(&rec);
        let base = |lead: &str| {
            let mut i = Item::pending(run_id, lead, list_id.as_deref(), &now);
            i.attempts = receive_count;
            i.timing.started_at = Some(now.clone());
            i
        };

        let mut rows: Vec<Row> = Vec::with_capacity(lead_ids.len() * 2);
        let mut delta = ChunkDelta { size: lead_ids.len() as u64, ..Default::default() };
        if matches!(run.status, RunStatus::Cancelled | RunStatus::Failed) {
            // Pending items of a cancelled run end skipped; nothing is enriched.
            for l in lead_ids {
                rows.push(self.store().item_row(&base(l).skipped("run_cancelled", &now))?);
            }
            delta.skipped = lead_ids.len() as u64;
        } else {
            let slug = run.enrichment.slug.as_str();
            let key = run.output.attribute_key.as_str();
            let leads = self.store().get_leads(ws, lead_ids, &[]).await?;
            let existing: HashMap<String, Row> = match (run.output.write_policy, run.output.target, &list_id) {
                (WritePolicy::Overwrite, _, _) => HashMap::new(),
                (WritePolicy::SkipExisting, OutputTarget::Lead, _) => {
                    self.store().get_lead_attrs(ws, lead_ids, key).await?
                }
                (WritePolicy::SkipExisting, OutputTarget::Membership, Some(list)) => {
                    self.store().get_member_attrs(ws, list, lead_ids, key).await?
                }
                (WritePolicy::SkipExisting, OutputTarget::Membership, None) => HashMap::new(),
            };
            let enrichment = self.find_enrichment_to_run(ws, slug).await?;
            // Leads that need the enrichment run, in one call: providers batch,
            // rate-limit and run concurrently behind `enrich_leads`.
            let to_enrich: Vec<&puffle_domain::lead::Lead> = lead_ids
                .iter()
                .filter_map(|id| leads.get(id))
                .filter(|l| !existing.get(&l.id).is_some_and(|r| get_s(r, "runId").as_deref() != Some(run_id)))
                .collect();
            let mut results: HashMap<String, Enriched> = match &enrichment {
                Some(e) => {
                    let out = self.enrich_leads(ws, e, &run.input, &to_enrich).await?;
                    to_enrich.iter().map(|l| l.id.clone()).zip(out).collect()
                }
                None => HashMap::new(),
            };
            for lead_id in lead_ids {
                let item = base(lead_id);
                let (item, value) = match leads.get(lead_id) {
                    None => (item.failed("the lead no longer exists", "LEAD_NOT_FOUND", &now), None),
                    // A value this very run wrote (an earlier delivery) is ours, not "existing".
                    Some(_) if existing.get(lead_id).is_some_and(|r| get_s(r, "runId").as_deref() != Some(run_id)) => {
                        (item.skipped("attribute_exists", &now), None)
                    }
                    Some(lead) => {
                        let enriched = results.remove(lead_id).unwrap_or_else(|| {
                            let message = format!("enrichment {slug} is no longer available");
                            Enriched::builtin(slug, Outcome::Failed { message, code: "UNKNOWN_PROVIDER".into() })
                        });
                        let mut item = item;
                        item.metadata.input_snapshot = run.input.clone();
                        item.metadata.lead_snapshot = serde_json::to_value(lead).unwrap_or(Value::Null);
                        item.attempts = enriched.attempts(receive_count);
                        item.metadata.cached = enriched.cached_flag();
                        item.metadata.provider = Some(enriched.provider);
                        item.metadata.provider_submission_id = enriched.provider_submission_id;
                        item.finish(enriched.outcome, &now)
                    }
                };
                match item.status {
                    ItemStatus::Completed => delta.completed += 1,
                    ItemStatus::Skipped => delta.skipped += 1,
                    _ => delta.failed += 1,
                }
                if let Some(v) = value {
                    let t = leads.get(lead_id).map(|l| l.lead_type).unwrap_or_default();
                    let a = AttrWrite { lead_id, key, value: &v, run_id: Some(run_id), now: &now };
                    rows.push(match (run.output.target, &list_id) {
                        (OutputTarget::Membership, Some(list)) => self.store().member_attr_row(ws, list, &a)?,
                        _ => self.store().lead_attr_row(ws, t, &a)?,
                    });
                }
                rows.push(self.store().item_row(&item)?);
            }
        }
        self.store().batch_put(rows).await?;
        match self.store().count_chunk(ws, run_id, chunk, delta, &time::now()).await? {
            None => tracing::info!(chunk, "chunk counted by another delivery"),
            Some(after) => {
                tracing::info!(
                    chunk,
                    completed = delta.completed,
                    skipped = delta.skipped,
                    failed = delta.failed,
                    pending = after.run.scope.counts.pending,
                    "chunk counted"
                );
                if after.run.scope.counts.pending == 0 {
                    self.store().complete_if_done(ws, run_id, &time::now()).await?;
                }
            }
        }
        Ok(())
    }
}
