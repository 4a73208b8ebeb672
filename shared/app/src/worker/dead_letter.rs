//! The dead-letter handler: a message the worker kept failing on. Its items
//! end `failed` with `WORKER_GAVE_UP`, so no run waits forever.

use puffle_aws::store::ChunkDelta;
use puffle_domain::item::Item;
use puffle_domain::plan::WorkMessage;
use puffle_domain::run::RunError;
use puffle_domain::time;
use serde_json::json;

use super::plan::item_list_id;
use crate::{App, AppError};

impl App {
    pub async fn handle_dead_letter(&self, body: &str) -> Result<(), AppError> {
        let msg: WorkMessage = match serde_json::from_str(body) {
            Ok(m) => m,
            Err(e) => {
                // Nothing to attribute it to; keeping it would only loop.
                tracing::error!(error = %e, body = %body.chars().take(500).collect::<String>(), "unreadable dead letter dropped");
                return Ok(());
            }
        };
        let now = time::now();
        match msg {
            WorkMessage::Chunk { workspace_id: ws, run_id, chunk, lead_ids } => {
                let Some(rec) = self.store().get_run(&ws, &run_id).await? else { return Ok(()) };
                if rec.done_chunks.contains(&chunk) {
                    return Ok(());
                }
                let list_id = item_list_id(&rec);
                let items: Vec<Item> = lead_ids
                    .iter()
                    .map(|l| {
                        Item::pending(&run_id, l, list_id.as_deref(), &now).failed(
                            "the worker gave up on this lead's chunk after repeated failures",
                            "WORKER_GAVE_UP",
                            &now,
                        )
                    })
                    .collect();
                // Items a late delivery did finish keep their result.
                self.store().put_items_unless_terminal(&items).await?;
                let d = ChunkDelta { size: lead_ids.len() as u64, failed: lead_ids.len() as u64, ..Default::default() };
                tracing::warn!(run_id = %run_id, chunk, leads = lead_ids.len(), "chunk dead-lettered; items failed");
                if let Some(after) = self.store().count_chunk(&ws, &run_id, chunk, d, &now).await? {
                    if after.run.scope.counts.pending == 0 {
                        self.store().complete_if_done(&ws, &run_id, &time::now()).await?;
                    }
                }
            }
            WorkMessage::Plan { workspace_id: ws, run_id, step, .. } => {
                let Some(rec) = self.store().get_run(&ws, &run_id).await? else { return Ok(()) };
                let unplanned = rec.run.scope.resolved_count.saturating_sub(rec.progress.planned_count);
                let error = RunError {
                    message: "the worker gave up planning this run".into(),
                    details: json!({"code": "WORKER_GAVE_UP", "step": step}),
                };
                tracing::warn!(run_id = %run_id, step, unplanned, "plan step dead-lettered; run failed");
                self.store().fail_planning(&ws, &run_id, unplanned, &error, &now).await?;
            }
        }
        Ok(())
    }
}
