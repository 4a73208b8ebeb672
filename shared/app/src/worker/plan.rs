//! Plan steps: one page of the scope per step.
//!
//! Step k: read the page → write its items (pending, or skipped when the run
//! was cancelled) only where absent → send its chunk messages → record the
//! step (conditional on `planStep = k`) → send step k+1. A replay of step k
//! redoes harmless work; a replay after it was recorded only re-sends the
//! next step when that one has not been recorded either.

use puffle_aws::store::{ChunkDelta, RunRecord};
use puffle_domain::credits::{LedgerEntry, LedgerKind};
use puffle_domain::filter::LeadFilter;
use puffle_domain::item::Item;
use puffle_domain::plan::{cap, chunks, WorkMessage, PLAN_PAGE};
use puffle_domain::run::RunStatus;
use puffle_domain::{ids, time};

use crate::{App, AppError};

struct Page {
    lead_ids: Vec<String>,
    cursor: Option<String>,
}

impl App {
    pub async fn plan_step(&self, ws: &str, run_id: &str, step: u32, cursor: Option<String>) -> Result<(), AppError> {
        let Some(rec) = self.store().get_run(ws, run_id).await? else {
            tracing::warn!("plan message for an unknown run; dropped");
            return Ok(());
        };
        let progress = &rec.progress;
        if progress.plan_step > step || progress.plan_done {
            if progress.plan_step == step + 1 && !progress.plan_done {
                // Recorded, but we may have died before sending the next step.
                self.send_next_step(ws, run_id, step, &rec, cursor).await?;
            }
            return Ok(());
        }
        if progress.plan_step < step {
            return Err(AppError::Internal(format!("plan step {step} arrived before step {}", progress.plan_step)));
        }
        if matches!(rec.run.status, RunStatus::Failed | RunStatus::Completed) {
            return Ok(());
        }
        if step == 0 {
            self.store().mark_running(ws, run_id, &time::now()).await?;
        }

        let page = self.read_page(ws, &rec, step, cursor.as_deref()).await?;
        let lead_ids = cap(page.lead_ids, progress.planned_count, rec.run.scope.resolved_count);
        let planned_after = progress.planned_count + lead_ids.len() as u64;
        let last = page.cursor.is_none() || planned_after >= rec.run.scope.resolved_count;
        let now = time::now();
        let list_id = item_list_id(&rec);
        let cancelled = rec.run.status == RunStatus::Cancelled;

        let numbered = chunks(step, &lead_ids);
        let items: Vec<Item> = lead_ids
            .iter()
            .map(|l| {
                let item = Item::pending(run_id, l, list_id.as_deref(), &now);
                if cancelled {
                    item.skipped("run_cancelled", &now)
                } else {
                    item
                }
            })
            .collect();
        if cancelled {
            // A crashed earlier attempt of this step may have left these items
            // pending: turn them skipped too (finished items stay as they are).
            self.store().put_items_unless_terminal(&items).await?;
        } else {
            self.store().put_items_if_absent(&items).await?;
        }
        if cancelled {
            for (n, c) in &numbered {
                let d = ChunkDelta { size: c.len() as u64, skipped: c.len() as u64, ..Default::default() };
                self.store().count_chunk(ws, run_id, *n, d, &now).await?;
            }
        } else {
            let msgs: Vec<WorkMessage> = numbered
                .into_iter()
                .map(|(chunk, lead_ids)| WorkMessage::Chunk {
                    workspace_id: ws.into(),
                    run_id: run_id.into(),
                    chunk,
                    lead_ids,
                })
                .collect();
            self.aws.queue.send_all(&msgs).await?;
        }

        let shrink = if last && planned_after < rec.run.scope.resolved_count {
            let diff = rec.run.scope.resolved_count - planned_after;
            let per_lead = self
                .find_enrichment_to_run(ws, &rec.run.enrichment.slug)
                .await?
                .map(|e| e.cost_model.credits_per_lead)
                .unwrap_or(0);
            let refund = (diff * per_lead).min(rec.run.cost.actual);
            let entry = LedgerEntry {
                id: ids::new_id("led"),
                kind: LedgerKind::Refund,
                amount: refund,
                reason: format!("{diff} lead(s) left the scope before planning"),
                run_id: Some(run_id.to_string()),
                created_at: now.clone(),
            };
            Some((diff, refund, entry))
        } else {
            None
        };
        let recorded = self
            .store()
            .finish_plan_step(
                ws,
                run_id,
                step,
                lead_ids.len() as u64,
                last,
                shrink.as_ref().map(|(d, r, e)| (*d, *r, e)),
                &now,
            )
            .await?;
        tracing::info!(step, planned = lead_ids.len(), last, recorded, "plan step");
        if !recorded {
            return Ok(()); // a concurrent delivery of this step did it
        }
        if last {
            // Everything may already be counted (tiny runs, cancelled runs).
            self.store().complete_if_done(ws, run_id, &time::now()).await?;
        } else {
            self.send_step(ws, run_id, step + 1, page.cursor).await?;
        }
        Ok(())
    }

    async fn send_step(&self, ws: &str, run_id: &str, step: u32, cursor: Option<String>) -> Result<(), AppError> {
        let msg = WorkMessage::Plan { workspace_id: ws.into(), run_id: run_id.into(), step, cursor };
        self.aws.queue.send(&msg).await?;
        Ok(())
    }

    async fn send_next_step(
        &self,
        ws: &str,
        run_id: &str,
        step: u32,
        rec: &RunRecord,
        cursor: Option<String>,
    ) -> Result<(), AppError> {
        // The cursor of the next step is derived from this step's page again.
        let page = self.read_page(ws, rec, step, cursor.as_deref()).await?;
        self.send_step(ws, run_id, step + 1, page.cursor).await
    }

    /// One page of the run's scope. Memberships added after the run was
    /// created are not part of it.
    async fn read_page(&self, ws: &str, rec: &RunRecord, step: u32, cursor: Option<&str>) -> Result<Page, AppError> {
        let run = &rec.run;
        let requested = &run.scope.requested;
        match run.scope.kind.as_str() {
            "explicit_leads" => {
                let all: Vec<String> = requested["leadIds"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                let start = (step as usize * PLAN_PAGE).min(all.len());
                let end = (start + PLAN_PAGE).min(all.len());
                Ok(Page { lead_ids: all[start..end].to_vec(), cursor: (end < all.len()).then(|| end.to_string()) })
            }
            kind => {
                let list_id = run.scope.list_id.clone().unwrap_or_default();
                let (rows, last) = self.store().member_page(ws, &list_id, cursor, PLAN_PAGE).await?;
                let cutoff = &run.timing.created_at;
                let mut ids: Vec<String> =
                    rows.iter().filter(|r| &r.added_at <= cutoff).map(|r| r.lead_id.clone()).collect();
                if kind == "filtered_list" {
                    let filter = LeadFilter::parse(&requested["filter"])?;
                    let subject = self.find_enrichment_to_run(ws, &run.enrichment.slug).await?.map(|e| e.subject);
                    let leads = self.store().get_leads(ws, &ids, &filter.attribute_keys()).await?;
                    ids.retain(|id| leads.get(id).is_some_and(|l| filter.matches(l) && Some(l.lead_type) == subject));
                }
                Ok(Page { lead_ids: ids, cursor: last })
            }
        }
    }
}

/// The List an item belongs to (the scope's, when it has one).
pub(crate) fn item_list_id(rec: &RunRecord) -> Option<String> {
    rec.run.scope.list_id.clone()
}
