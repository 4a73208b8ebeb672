//! `GET /api/health`: both backends answer (no token needed).

use serde_json::json;

use super::{misrouted, Ctx, Endpoint, Outcome, Reply};
use crate::routes::{Function, Op};

pub struct Health;

impl Endpoint for Health {
    const FUNCTION: Function = Function::Health;
    const PUBLIC: bool = true;
    async fn call<'a>(op: Op, cx: &'a Ctx<'a>) -> Result<Outcome, Reply> {
        match op {
            Op::Health => health(cx).await,
            _ => Err(misrouted(cx)),
        }
    }
}

async fn health(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    Ok(match cx.app.health().await {
        Ok(()) => Outcome::json(200, &json!({"status": "ok"})),
        Err(e) => Outcome::json(
            503,
            &json!({"status": "unavailable", "code": "SERVICE_UNAVAILABLE", "message": e.to_string()}),
        ),
    })
}
