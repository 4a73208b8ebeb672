//! `POST /api/enrichment/{id}/cancel`. The status moves under a condition;
//! pending items are turned `skipped`/`run_cancelled` by the worker as it
//! meets their chunks, so cancel stays O(1) however large the run.

use puffle_aws::StoreError;
use puffle_domain::run::Run;
use puffle_domain::time;

use crate::{App, AppError};

impl App {
    pub async fn cancel_run(&self, ws: &str, id: &str) -> Result<Run, AppError> {
        let mut rec = self.load_run(ws, id).await?;
        if !rec.run.status.can_cancel() {
            return Err(AppError::NotCancellable {
                reason: "run_not_cancellable",
                status: rec.run.status.as_str().into(),
            });
        }
        // pending → running can race a cancel; that move keeps the run
        // cancellable, so try again. Any other move is reported.
        for _ in 0..3 {
            match self.store().cancel_run(ws, id, rec.run.status, &time::now()).await {
                Ok(run) => return Ok(run),
                Err(StoreError::ConditionFailed) => {
                    rec = self.load_run(ws, id).await?;
                    if !rec.run.status.can_cancel() {
                        return Err(AppError::NotCancellable {
                            reason: "run_status_changed",
                            status: rec.run.status.as_str().into(),
                        });
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::NotCancellable { reason: "run_status_changed", status: rec.run.status.as_str().into() })
    }
}
