//! The dead-letter handler: a message the worker kept failing on. Its items
//! still pending end `failed` with `WORKER_GAVE_UP` (items a late delivery
//! finished keep their result), so no run waits forever.

use puffle_aws::faults::{self, Boundary};
use puffle_domain::credits::LedgerEntry;
use puffle_domain::item::Item;
use puffle_domain::plan::WorkMessage;
use puffle_domain::run::{RunError, RunStatus};
use puffle_domain::time;
use serde_json::json;

use crate::{App, AppError};

impl App {
    pub async fn handle_dead_letter(&self, body: &str) -> Result<(), AppError> {
        crate::emf::dead_letter_arrived();
        let msg: WorkMessage = match serde_json::from_str(body) {
            Ok(m) => m,
            Err(e) => {
                // Nothing to attribute it to; keeping it would only loop.
                tracing::error!(error = %e, body = %body.chars().take(500).collect::<String>(), "unreadable dead letter dropped");
                return Ok(());
            }
        };
        match msg {
            WorkMessage::Chunk { workspace_id: ws, run_id, chunk, lead_ids, .. } => {
                tracing::warn!(run_id = %run_id, chunk, leads = lead_ids.len(), "chunk dead-lettered; failing its pending items");
                self.give_up_chunk(&ws, &run_id, chunk, &lead_ids).await?;
            }
            WorkMessage::Plan { workspace_id: ws, run_id, step, backstop, .. } => {
                let Some(rec) = self.store().get_run(&ws, &run_id).await? else { return Ok(()) };
                let progress = &rec.progress;
                if progress.plan_done || progress.plan_step > step {
                    // Another delivery recorded this step: this copy only
                    // ran out of receives (slow under throttling, say).
                    tracing::info!(run_id = %run_id, step, "dead-lettered plan step was already done; dropped");
                } else if backstop && rec.run.trigger.trigger_run_id.is_some() {
                    // The create request's own message plans the run.
                    tracing::info!(run_id = %run_id, "dead-lettered backstop of a dispatched run; dropped");
                } else {
                    tracing::warn!(run_id = %run_id, step, "plan step dead-lettered; run failed");
                    self.give_up_planning(&ws, &run_id, step).await?;
                }
            }
        }
        Ok(())
    }

    /// Fails the chunk's items that are still pending, then counts the chunk
    /// from what its items actually are (once).
    pub(crate) async fn give_up_chunk(
        &self,
        ws: &str,
        run_id: &str,
        chunk: u32,
        lead_ids: &[String],
    ) -> Result<(), AppError> {
        let Some(rec) = self.store().get_run(ws, run_id).await? else { return Ok(()) };
        if self.store().chunk_counted(&rec, chunk).await? {
            // Counted already; its completion may still be owed.
            if rec.run.scope.counts.pending == 0 {
                self.store().complete_if_done(ws, run_id, &time::now()).await?;
            }
            return Ok(());
        }
        let now = time::now();
        let list_id = rec.run.scope.list_id().map(str::to_string);
        let price = rec.credits_per_lead;
        let items: Vec<(Item, Option<puffle_aws::store::Row>)> = lead_ids
            .iter()
            .map(|l| {
                let item = Item::pending(run_id, l, list_id.as_deref(), &now).reserving(price).failed(
                    "the worker gave up on this lead's chunk after repeated failures",
                    "WORKER_GAVE_UP",
                    &now,
                );
                (item, None)
            })
            .collect();
        self.store().settle_items(items).await?;
        faults::at(Boundary::InDeadLetter)?;
        self.count_settled_chunk(ws, &rec, chunk, lead_ids, None).await
    }

    /// The run fails; Leads never planned are counted failed so the counts
    /// still add up, and released (planned chunks finish or are given up on
    /// their own, and settle then).
    pub(crate) async fn give_up_planning(&self, ws: &str, run_id: &str, step: u32) -> Result<(), AppError> {
        let Some(rec) = self.store().get_run(ws, run_id).await? else { return Ok(()) };
        let unplanned = rec.run.scope.resolved_count.saturating_sub(rec.progress.planned_count);
        let error = RunError {
            message: "the worker gave up planning this run".into(),
            details: json!({"code": "WORKER_GAVE_UP", "step": step}),
        };
        let now = time::now();
        // Never more than is still held, whatever a legacy row says.
        let amount = (unplanned * rec.credits_per_lead).min(rec.run.cost.held());
        let release = LedgerEntry::release(amount, format!("{unplanned} lead(s) never planned"), run_id, &now);
        let cancelled = rec.run.status == RunStatus::Cancelled;
        self.store().fail_planning(ws, run_id, cancelled, unplanned, &release, &error, &now).await?;
        Ok(())
    }
}
