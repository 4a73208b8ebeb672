//! `GET /api/enrichment/{id}/items`: a run's items, by status or Lead.

use puffle_app::runs::items::{ItemsQuery, DEFAULT_ITEMS_LIMIT, MAX_ITEMS_LIMIT};
use puffle_domain::item::ItemStatus;
use puffle_domain::DomainError;
use serde_json::json;

use super::{misrouted, to_json, Ctx, Endpoint, Outcome, Reply};
use crate::routes::{Function, Op};

pub struct Items;

impl Endpoint for Items {
    const FUNCTION: Function = Function::Items;
    async fn call<'a>(op: Op, cx: &'a Ctx<'a>) -> Result<Outcome, Reply> {
        match op {
            Op::RunItems => items(cx).await,
            _ => Err(misrouted(cx)),
        }
    }
}

async fn items(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let id = cx.id("/api/enrichment/{id}/items");
    let q = ItemsQuery {
        status: status_param(cx)?,
        lead_id: match cx.query("leadId") {
            Some(l) if l.is_empty() => {
                return Err(DomainError::invalid_with("leadId must not be empty", json!({"field": "leadId"})).into())
            }
            other => other,
        },
        cursor: cx.query("cursor"),
        limit: cx.limit(DEFAULT_ITEMS_LIMIT, MAX_ITEMS_LIMIT)?,
    };
    let page = cx.app.run_items(cx.ws, &id, q).await?;
    Ok(Outcome::json(200, &to_json(&page)).for_run(id))
}

fn status_param(cx: &Ctx<'_>) -> Result<Option<ItemStatus>, Reply> {
    match cx.query("status") {
        None => Ok(None),
        Some(s) => Ok(Some(ItemStatus::parse(&s).ok_or_else(|| {
            DomainError::invalid_with(
                "status must be pending, running, completed, skipped or failed",
                json!({"field": "status"}),
            )
        })?)),
    }
}
