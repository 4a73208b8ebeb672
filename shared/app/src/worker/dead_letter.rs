//! The dead-letter handler: a message the worker kept failing on. Its items
//! still pending end `failed` with `WORKER_GAVE_UP` (items a late delivery
//! finished keep their result), so no run waits forever.

use puffle_aws::faults::{self, Boundary};
use puffle_aws::store::RunRecord;
use puffle_domain::credits::LedgerEntry;
use puffle_domain::item::Item;
use puffle_domain::plan::{WorkMessage, CHUNKS_PER_STEP};
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
        self.settle_given_up_chunk(&rec, chunk, lead_ids, GaveUp::Failed).await
    }

    async fn settle_given_up_chunk(
        &self,
        rec: &RunRecord,
        chunk: u32,
        lead_ids: &[String],
        how: GaveUp,
    ) -> Result<(), AppError> {
        let (ws, run_id) = (rec.workspace_id.as_str(), rec.run.id.as_str());
        if self.store().chunk_counted(rec, chunk).await? {
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
                let item = Item::pending(run_id, l, list_id.as_deref(), &now).reserving(price);
                let item = match how {
                    GaveUp::Failed => item.failed(
                        "the worker gave up on this lead's chunk after repeated failures",
                        "WORKER_GAVE_UP",
                        &now,
                    ),
                    GaveUp::Cancelled => item.skipped("run_cancelled", &now),
                };
                (item, None)
            })
            .collect();
        self.store().settle_items(items).await?;
        faults::at(Boundary::InDeadLetter)?;
        self.count_settled_chunk(ws, rec, chunk, lead_ids, None).await
    }

    /// The run fails; Leads never planned are counted failed so the counts
    /// still add up, and released (planned chunks finish or are given up on
    /// their own, and settle then).
    ///
    /// The step that gave up may have written its chunk rows (and sent or
    /// even counted them) before it could record itself: those Leads are in
    /// no `plannedCount`, yet pending through their rows or counted already.
    /// The uncounted ones are given up here, chunk by chunk (counted once,
    /// whoever gets there first), and none is counted again as unplanned.
    pub(crate) async fn give_up_planning(&self, ws: &str, run_id: &str, step: u32) -> Result<(), AppError> {
        let Some(mut rec) = self.store().get_run(ws, run_id).await? else { return Ok(()) };
        let how = if rec.run.status == RunStatus::Cancelled { GaveUp::Cancelled } else { GaveUp::Failed };
        let first = rec.progress.plan_step * CHUNKS_PER_STEP;
        let mut unrecorded = 0u64;
        for (planned, uncounted) in self.store().chunks_between(run_id, first, first + CHUNKS_PER_STEP - 1).await? {
            if uncounted {
                self.settle_given_up_chunk(&rec, planned.chunk, &planned.lead_ids, how).await?;
            }
            unrecorded += planned.lead_ids.len() as u64;
        }
        if unrecorded > 0 {
            // Settling them released credits: release from what is held now.
            let Some(now_rec) = self.store().get_run(ws, run_id).await? else { return Ok(()) };
            rec = now_rec;
        }
        let unplanned =
            rec.run.scope.resolved_count.saturating_sub(rec.progress.planned_count).saturating_sub(unrecorded);
        let error = RunError {
            message: "the worker gave up planning this run".into(),
            details: json!({"code": "WORKER_GAVE_UP", "step": step}),
        };
        let now = time::now();
        // Never more than is still held, whatever a legacy row says.
        let amount = (unplanned * rec.credits_per_lead).min(rec.run.cost.held());
        let release = LedgerEntry::release(amount, format!("{unplanned} lead(s) never planned"), run_id, &now);
        // Read again after settling: a cancel may have landed in between.
        let cancelled = rec.run.status == RunStatus::Cancelled;
        if self.store().fail_planning(ws, run_id, cancelled, unplanned, &release, &error, &now).await? {
            crate::emf::credits_released(amount);
        }
        Ok(())
    }
}

/// What a given-up chunk's pending items become.
#[derive(Clone, Copy)]
enum GaveUp {
    Failed,
    /// The run was cancelled: its Leads end skipped, as planning a
    /// cancelled run would have written them.
    Cancelled,
}
