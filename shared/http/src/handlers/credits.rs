//! `GET /api/credits`: the workspace's balance.

use serde_json::json;

use super::{misrouted, ok, Ctx, Endpoint, Outcome, Reply};
use crate::routes::{Function, Op};

pub struct Credits;

impl Endpoint for Credits {
    const FUNCTION: Function = Function::Credits;
    async fn call<'a>(op: Op, cx: &'a Ctx<'a>) -> Result<Outcome, Reply> {
        match op {
            Op::Balance => balance(cx).await,
            _ => Err(misrouted(cx)),
        }
    }
}

async fn balance(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    ok(200, json!({"balance": cx.app.balance(cx.ws).await?}))
}
