//! `POST /api/leads` (upsert one or a batch) and `GET /api/leads` (one by
//! `id`, or a page).

use puffle_app::leads::UpsertBody;
use serde_json::json;

use super::{misrouted, ok, to_json, Ctx, Endpoint, Outcome, Reply};
use crate::routes::{Function, Op};

pub struct Leads;

impl Endpoint for Leads {
    const FUNCTION: Function = Function::Leads;
    async fn call<'a>(op: Op, cx: &'a Ctx<'a>) -> Result<Outcome, Reply> {
        match op {
            Op::UpsertLeads => upsert(cx).await,
            Op::GetLeads => get(cx).await,
            _ => Err(misrouted(cx)),
        }
    }
}

async fn upsert(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    match UpsertBody::parse(cx.body()?)? {
        UpsertBody::Batch(list) => {
            let up = cx.app.upsert_leads(cx.ws, list).await?;
            let created = up.created.iter().filter(|c| **c).count();
            let updated = up.created.len() - created;
            ok(200, json!({"leads": up.leads, "created": created, "updated": updated}))
        }
        UpsertBody::One(lead) => {
            let up = cx.app.upsert_leads(cx.ws, vec![lead]).await?;
            let created = up.created[0];
            ok(if created { 201 } else { 200 }, json!({"lead": up.leads[0], "created": created}))
        }
    }
}

async fn get(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    if let Some(id) = cx.query("id") {
        return ok(200, json!({"lead": cx.app.get_lead(cx.ws, &id).await?}));
    }
    let limit = cx.limit(100, 500)?;
    let page = cx.app.list_leads(cx.ws, cx.lead_type()?, limit, cx.query("cursor").as_deref()).await?;
    ok(200, to_json(&page))
}
