//! `GET /api/enrichment/{id}`: a run's status record.

use serde_json::json;

use super::{misrouted, Ctx, Endpoint, Outcome, Reply};
use crate::routes::{Function, Op};

pub struct Status;

impl Endpoint for Status {
    const FUNCTION: Function = Function::Status;
    async fn call<'a>(op: Op, cx: &'a Ctx<'a>) -> Result<Outcome, Reply> {
        match op {
            Op::RunStatus => status(cx).await,
            _ => Err(misrouted(cx)),
        }
    }
}

async fn status(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let id = cx.id("/api/enrichment/{id}");
    let run = cx.app.run_status(cx.ws, &id).await?;
    Ok(Outcome::json(200, &json!({"run": run})).for_run(id))
}
