//! Enrichment runs: create (the create flow), status, items, cancel.

pub mod cancel;
pub mod create;
pub mod items;
pub mod retry;

use puffle_aws::store::RunRecord;
use puffle_domain::ids;
use puffle_domain::run::Run;

use crate::{App, AppError};

pub(crate) fn run_not_found(id: &str) -> AppError {
    AppError::not_found("RUN_NOT_FOUND", format!("no enrichment run {id} in this workspace"))
}

impl App {
    pub(crate) async fn load_run(&self, ws: &str, id: &str) -> Result<RunRecord, AppError> {
        if !ids::is_valid_id(id, "run") {
            return Err(run_not_found(id));
        }
        self.store().get_run(ws, id).await?.ok_or_else(|| run_not_found(id))
    }

    /// `GET /api/enrichment/{id}`.
    pub async fn run_status(&self, ws: &str, id: &str) -> Result<Run, AppError> {
        Ok(self.load_run(ws, id).await?.run)
    }
}
