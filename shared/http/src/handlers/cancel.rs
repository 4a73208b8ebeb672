//! `POST /api/enrichment/{id}/cancel`.

use serde_json::json;

use super::{misrouted, Ctx, Endpoint, Outcome, Reply};
use crate::routes::{Function, Op};

pub struct Cancel;

impl Endpoint for Cancel {
    const FUNCTION: Function = Function::Cancel;
    async fn call<'a>(op: Op, cx: &'a Ctx<'a>) -> Result<Outcome, Reply> {
        match op {
            Op::CancelRun => cancel(cx).await,
            _ => Err(misrouted(cx)),
        }
    }
}

async fn cancel(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let id = cx.id("/api/enrichment/{id}/cancel");
    let run = cx.app.cancel_run(cx.ws, &id).await?;
    let body = json!({"run": {"id": run.id, "status": run.status, "cancelledAt": run.timing.cancelled_at}});
    Ok(Outcome::json(200, &body).for_run(id))
}
