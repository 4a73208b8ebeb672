//! Lists: create, page, get one, add Leads, page a List's Leads; and a
//! List's auto-enrich rules.

use puffle_domain::list::{AddLeadsRequest, CreateListRequest};
use serde_json::json;

use super::{misrouted, no_content, ok, to_json, Ctx, Endpoint, Outcome, Reply};
use crate::routes::{Function, Op};

pub struct Lists;

impl Endpoint for Lists {
    const FUNCTION: Function = Function::Lists;
    async fn call<'a>(op: Op, cx: &'a Ctx<'a>) -> Result<Outcome, Reply> {
        match op {
            Op::CreateList => create(cx).await,
            Op::GetLists => page(cx).await,
            Op::GetList => get(cx).await,
            Op::AddListLeads => add_leads(cx).await,
            Op::GetListLeads => members(cx).await,
            Op::CreateRule => create_rule(cx).await,
            Op::ListRules => rules(cx).await,
            Op::DeleteRule => delete_rule(cx).await,
            Op::RuleRuns => rule_runs(cx).await,
            _ => Err(misrouted(cx)),
        }
    }
}

async fn create(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let r: CreateListRequest = cx.parse_body()?;
    ok(201, json!({"list": cx.app.create_list(cx.ws, r).await?}))
}

async fn page(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let limit = cx.limit(100, 500)?;
    ok(200, to_json(&cx.app.list_lists(cx.ws, limit, cx.query("cursor").as_deref()).await?))
}

async fn get(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let id = cx.id("/api/lists/{id}");
    ok(200, json!({"list": cx.app.get_list(cx.ws, &id).await?}))
}

async fn add_leads(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let id = cx.id("/api/lists/{id}/leads");
    let r: AddLeadsRequest = cx.parse_body()?;
    ok(200, json!({"list": cx.app.add_list_leads(cx.ws, &id, r).await?}))
}

async fn members(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let id = cx.id("/api/lists/{id}/leads");
    let limit = cx.limit(100, 500)?;
    let page = cx.app.list_members(cx.ws, &id, cx.lead_type()?, limit, cx.query("cursor").as_deref()).await?;
    ok(200, to_json(&page))
}

async fn create_rule(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let list = cx.id("/api/lists/{id}/rules");
    let body = cx.body()?;
    ok(201, json!({"rule": cx.app.create_rule(cx.ws, &list, body).await?}))
}

async fn rules(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let list = cx.id("/api/lists/{id}/rules");
    ok(200, json!({"rules": cx.app.list_rules(cx.ws, &list).await?}))
}

async fn delete_rule(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let pattern = "/api/lists/{id}/rules/{ruleId}";
    cx.app.delete_rule(cx.ws, &cx.param("id", pattern), &cx.param("ruleId", pattern)).await?;
    Ok(no_content())
}

async fn rule_runs(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let pattern = "/api/lists/{id}/rules/{ruleId}/runs";
    let runs = cx.app.rule_runs(cx.ws, &cx.param("id", pattern), &cx.param("ruleId", pattern)).await?;
    ok(200, json!({"runs": runs}))
}
