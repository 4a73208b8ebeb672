//! Chunk processing: enrich up to 100 Leads, move their items from pending
//! to terminal (each with its attribute value and its settled cost, all or
//! nothing per item), then count and settle the chunk exactly once from the
//! items as they actually ended up: found results charged, the rest released.
//!
//! Requests per chunk of 100: 1 GetItem (run), 1 GetItem (its counted
//! marker), 1 PutItem (the lease), 1 BatchGetItem (Leads), +1 BatchGetItem
//! for `skip_existing`, 4 BatchWriteItems (the values), 1 TransactWriteItems
//! (the 100 items, each conditional), 1 TransactWriteItems (counts +
//! credits) and 1 GetItem (pending after it). A redelivery first reads the
//! items (1 BatchGetItem) and leaves those already finished alone.

use std::collections::HashMap;

use puffle_aws::faults::{self, Boundary};
use puffle_aws::store::{get_s, AttrWrite, ChunkLease, Row, RunRecord};
use puffle_domain::chunk::{delta_of, finish_item, LeadState};
use puffle_domain::create::{OutputTarget, WritePolicy};
use puffle_domain::credits::LedgerEntry;
use puffle_domain::item::{Item, ItemCost, ItemStatus};
use puffle_domain::lead::LeadType;
use puffle_domain::providers::Outcome;
use puffle_domain::run::{Run, RunStatus};
use puffle_domain::time;

use super::Delivery;
use crate::enrich::Enriched;
use crate::{App, AppError};

impl App {
    pub async fn process_chunk(
        &self,
        ws: &str,
        run_id: &str,
        chunk: u32,
        lead_ids: &[String],
        delivery: Delivery<'_>,
    ) -> Result<(), AppError> {
        let receive_count = delivery.receive_count;
        let Some(rec) = self.store().get_run(ws, run_id).await? else {
            tracing::warn!(chunk, "chunk for an unknown run; dropped");
            return Ok(());
        };
        if self.store().chunk_counted(&rec, chunk).await? {
            tracing::info!(chunk, "chunk already counted; duplicate delivery ignored");
            // Counted, but the completion may not have happened: drive it.
            if rec.run.scope.counts.pending == 0 {
                self.store().complete_if_done(ws, run_id, &time::now()).await?;
            }
            return Ok(());
        }
        let lease = self.store().lease_chunk(run_id, chunk, delivery.message_id, chunk_lease()).await?;
        if lease == ChunkLease::Held {
            // Its holder's own message is still on the queue until it is
            // done, so dropping this copy loses nothing; counting it twice
            // is prevented anyway, calling the providers twice is not.
            tracing::info!(chunk, "chunk is being processed by another delivery; this copy dropped");
            return Ok(());
        }
        // Items an earlier delivery finished keep their outcome: they are
        // neither enriched again nor written (only a first delivery can skip the read).
        let done: HashMap<String, (ItemStatus, ItemCost)> = if lease == ChunkLease::First && receive_count <= 1 {
            HashMap::new()
        } else {
            let stored = self.store().item_statuses(run_id, lead_ids).await?;
            stored.into_iter().filter(|(_, (st, _))| st.is_terminal()).collect()
        };
        let todo: Vec<String> = lead_ids.iter().filter(|l| !done.contains_key(*l)).cloned().collect();
        let lead_ids_all = lead_ids;
        let lead_ids = todo.as_slice();
        let run = &rec.run;
        let now = time::now();
        let list_id = run.scope.list_id().map(str::to_string);
        let price = rec.credits_per_lead;
        let base = |lead: &str| {
            let mut i = Item::pending(run_id, lead, list_id.as_deref(), &now).reserving(price);
            i.attempts = receive_count;
            i.timing.started_at = Some(now.clone());
            i
        };

        let mut writes: Vec<(Item, Option<Row>)> = Vec::with_capacity(lead_ids.len());
        if matches!(run.status, RunStatus::Cancelled | RunStatus::Failed) {
            // Pending items of a cancelled run end skipped; nothing is enriched.
            writes.extend(lead_ids.iter().map(|l| (base(l).skipped("run_cancelled", &now), None)));
        } else {
            let slug = run.enrichment.slug.as_str();
            let key = run.output.attribute_key.as_str();
            let enrichment = self.find_enrichment_to_run(ws, slug).await?;
            // Attributes the binding reads (`{{lead.attributes.x}}`, waterfall filters).
            let read_keys = enrichment.as_ref().map(|e| e.tool_binding.attribute_keys()).unwrap_or_default();
            let leads = self.store().get_leads(ws, lead_ids, &read_keys).await?;
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
            // A value this very run wrote (an earlier delivery) is ours, not "existing".
            let has_other = |id: &str| existing.get(id).is_some_and(|r| get_s(r, "runId").as_deref() != Some(run_id));
            let to_enrich: Vec<&puffle_domain::lead::Lead> =
                lead_ids.iter().filter(|id| !has_other(id)).filter_map(|id| leads.get(id)).collect();
            // One call for the chunk: providers batch, rate-limit and run
            // concurrently behind `enrich_leads`.
            let mut results: HashMap<String, Enriched> = match enrichment {
                Some(e) => {
                    let out = self.enrich_leads(ws, &e, &run.input, &to_enrich).await?;
                    to_enrich.iter().map(|l| l.id.clone()).zip(out).collect()
                }
                None => HashMap::new(),
            };
            for lead_id in lead_ids {
                // Calls made and whether the result came from the cache.
                let mut provided = None;
                let state = match leads.get(lead_id) {
                    None => LeadState::Gone,
                    Some(_) if has_other(lead_id) => LeadState::HasAttribute,
                    Some(lead) => {
                        let e = results.remove(lead_id).unwrap_or_else(|| {
                            let message = format!("enrichment {slug} is no longer available");
                            Enriched::builtin(slug, Outcome::Failed { message, code: "UNKNOWN_PROVIDER".into() })
                        });
                        provided = Some((
                            e.attempts(receive_count),
                            e.cached_flag(),
                            e.charge,
                            e.credits,
                            e.attempts_log,
                            e.usage,
                        ));
                        LeadState::Enriched {
                            lead,
                            outcome: e.outcome,
                            provider: e.provider,
                            provider_submission_id: e.provider_submission_id,
                        }
                    }
                };
                let (mut item, value) = finish_item(base(lead_id), state, &run.input, &now);
                if let Some((attempts, cached, charge, credits, steps, usage)) = provided {
                    item.attempts = attempts;
                    item.metadata.cached = cached;
                    item.metadata.attempts = steps;
                    item.metadata.usage = usage;
                    if !charge && item.status == ItemStatus::Completed {
                        item = item.waive_charge();
                    } else if let Some(credits) = credits {
                        // A waterfall charges the winning step's price, at most what was reserved.
                        item = item.charge_at_most(credits);
                    }
                }
                let attr = match value {
                    Some(v) => {
                        let t = leads.get(lead_id).map(|l| l.lead_type).unwrap_or_default();
                        let a = AttrWrite { lead_id, key, value: &v, run_id: Some(run_id), now: &now };
                        Some(self.output_row(ws, run, t, &a)?)
                    }
                    None => None,
                };
                writes.push((item, attr));
            }
        }
        // What this delivery wrote, and what earlier ones had finished: true
        // of the store when every write took, and then nothing need be read back.
        let mut known = done;
        known.extend(writes.iter().map(|(i, _)| (i.lead_id.clone(), (i.status, i.cost))));
        let values: HashMap<String, Row> =
            writes.iter().filter_map(|(i, a)| Some((i.lead_id.clone(), a.clone()?))).collect();
        let refused = self.store().settle_items(writes).await?;
        if !refused.is_empty() {
            // Another delivery finished these items meanwhile (the lease
            // lapsed under it): their values must be theirs, not ours.
            self.restore_values(ws, &rec, &refused, &values).await?;
        }
        self.count_settled_chunk(ws, &rec, chunk, lead_ids_all, refused.is_empty().then_some(known)).await
    }

    /// The row holding a run's output value for one Lead: an attribute of
    /// the Lead, or of its membership when the run writes to the List.
    fn output_row(&self, ws: &str, run: &Run, lead_type: LeadType, a: &AttrWrite<'_>) -> Result<Row, AppError> {
        Ok(match (run.output.target, run.scope.list_id()) {
            (OutputTarget::Membership, Some(list)) => self.store().member_attr_row(ws, list, a)?,
            _ => self.store().lead_attr_row(ws, lead_type, a)?,
        })
    }

    /// Puts back the attribute values of items another delivery finished:
    /// the stored item's result where it found one, else no value of ours.
    async fn restore_values(
        &self,
        ws: &str,
        rec: &RunRecord,
        refused: &[String],
        ours: &HashMap<String, Row>,
    ) -> Result<(), AppError> {
        let run = &rec.run;
        let stored = self.store().get_items(&run.id, refused).await?;
        let leads = self.store().get_leads(ws, refused, &[]).await?;
        let now = time::now();
        let (mut puts, mut deletes) = (vec![], vec![]);
        for lead_id in refused {
            let Some(ours) = ours.get(lead_id) else { continue };
            match stored.get(lead_id).filter(|i| i.status == ItemStatus::Completed).and_then(|i| i.result.as_ref()) {
                Some(value) => {
                    let t = leads.get(lead_id).map(|l| l.lead_type).unwrap_or_default();
                    let a =
                        AttrWrite { lead_id, key: &run.output.attribute_key, value, run_id: Some(&run.id), now: &now };
                    puts.push(self.output_row(ws, run, t, &a)?);
                }
                None => {
                    if let (Some(pk), Some(sk)) = (get_s(ours, "pk"), get_s(ours, "sk")) {
                        deletes.push((pk, sk));
                    }
                }
            }
        }
        tracing::warn!(run_id = %run.id, restored = puts.len(), removed = deletes.len(), "values of items another delivery finished put back");
        self.store().batch_put(puts).await?;
        self.store().batch_delete(deletes).await?;
        Ok(())
    }

    /// Counts and settles a chunk whose items were all written terminal, from
    /// the items as stored (an earlier delivery may have finished some of
    /// them), once: each item's charge or release was fixed by its own
    /// pending → terminal write, so whichever delivery counts settles
    /// exactly what the items say. `known`: the items' outcomes when the
    /// caller wrote every one of them itself (else they are read back).
    pub(crate) async fn count_settled_chunk(
        &self,
        ws: &str,
        rec: &RunRecord,
        chunk: u32,
        lead_ids: &[String],
        known: Option<HashMap<String, (ItemStatus, ItemCost)>>,
    ) -> Result<(), AppError> {
        let run_id = rec.run.id.as_str();
        let statuses = match known {
            Some(k) => k,
            None => self.store().item_statuses(run_id, lead_ids).await?,
        };
        let delta = delta_of(lead_ids.len(), lead_ids.iter().filter_map(|l| statuses.get(l).copied()))
            .ok_or_else(|| AppError::Unavailable(format!("chunk {chunk} still has unfinished items; retry")))?;
        let now = time::now();
        let charge = LedgerEntry::charge(
            delta.charged,
            format!("chunk {chunk}: {} lead(s) found", delta.completed),
            run_id,
            &now,
        );
        let release = LedgerEntry::release(
            delta.released,
            format!("chunk {chunk}: {} skipped, {} failed", delta.skipped, delta.failed),
            run_id,
            &now,
        );
        match self.store().count_chunk(ws, run_id, chunk, delta, [Some(&charge), Some(&release)], &now).await? {
            None => {
                tracing::info!(chunk, "chunk counted by another delivery");
                if self.store().pending_count(ws, run_id).await? == Some(0) {
                    self.store().complete_if_done(ws, run_id, &time::now()).await?;
                }
            }
            Some(pending) => {
                crate::emf::leads_enriched(&rec.run.enrichment.slug, delta.completed, delta.skipped, delta.failed);
                crate::emf::credits_charged(delta.charged);
                crate::emf::credits_released(delta.released);
                tracing::info!(
                    chunk,
                    completed = delta.completed,
                    skipped = delta.skipped,
                    failed = delta.failed,
                    charged = delta.charged,
                    released = delta.released,
                    pending,
                    "chunk counted"
                );
                faults::at(Boundary::AfterChunkCount)?;
                if pending == 0 {
                    self.store().complete_if_done(ws, run_id, &time::now()).await?;
                }
            }
        }
        Ok(())
    }
}

/// How long a chunk stays leased to the delivery that took it: longer than
/// a worker can work on one (the Lambda timeout), so a live holder is never
/// joined by a second. `PUFFLE_CHUNK_LEASE_SECONDS`, default 900.
fn chunk_lease() -> std::time::Duration {
    let secs = std::env::var("PUFFLE_CHUNK_LEASE_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(900);
    std::time::Duration::from_secs(secs)
}
