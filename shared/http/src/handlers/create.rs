//! `POST /api/enrichment`: the create flow (puffle_app::runs::create), and
//! `POST /api/enrichment/{id}/retry`, which starts a run the same way.

use super::{misrouted, to_json, Ctx, Endpoint, Outcome, Reply};
use crate::request;
use crate::routes::{Function, Op};

pub struct Create;

impl Endpoint for Create {
    const FUNCTION: Function = Function::Create;
    async fn call<'a>(op: Op, cx: &'a Ctx<'a>) -> Result<Outcome, Reply> {
        match op {
            Op::CreateRun => create(cx).await,
            Op::RetryRun => retry(cx).await,
            _ => Err(misrouted(cx)),
        }
    }
}

async fn create(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let body = cx.body()?;
    let key = request::header_utf8(cx.req, "idempotency-key")?;
    let created = cx.app.create_run(cx.ws, &body, key, cx.request_id).await?;
    Ok(reply(created))
}

/// `POST /api/enrichment/{id}/retry`: a new run over a finished run's failed
/// (or skipped) items (puffle_app::runs::retry).
async fn retry(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let body = cx.body()?;
    let key = request::header_utf8(cx.req, "idempotency-key")?;
    let run_id = cx.id("/api/enrichment/{id}/retry");
    let created = cx.app.retry_run(cx.ws, &run_id, &body, key, cx.request_id).await?;
    Ok(reply(created))
}

fn reply(created: puffle_app::runs::create::Created) -> Outcome {
    let status = if created.new_run { 202 } else { 200 };
    let outcome = Outcome::json(status, &to_json(&created.response));
    match created.response.run_id {
        Some(id) => outcome.for_run(id),
        None => outcome,
    }
}
