//! The Catalog function: the catalog (`GET /api/enrichments`, all, one by
//! `id`, or filtered by `q`), workspace-defined enrichments, and workspace
//! secrets — what a workspace can run and what it needs to.

use puffle_domain::DomainError;
use serde_json::json;

use super::{misrouted, no_content, ok, Ctx, Endpoint, Outcome, Reply};
use crate::routes::{Function, Op};

pub struct Catalog;

impl Endpoint for Catalog {
    const FUNCTION: Function = Function::Catalog;
    async fn call<'a>(op: Op, cx: &'a Ctx<'a>) -> Result<Outcome, Reply> {
        match op {
            Op::Catalog => list(cx).await,
            Op::CreateEnrichment => create_enrichment(cx).await,
            Op::DeleteEnrichment => delete_enrichment(cx).await,
            Op::ListSecrets => list_secrets(cx).await,
            Op::PutSecret => put_secret(cx).await,
            _ => Err(misrouted(cx)),
        }
    }
}

async fn list(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let q = cx.query("q");
    if q.as_deref() == Some("") {
        return Err(
            DomainError::invalid_with("q must not be empty (omit it to list all)", json!({"field": "q"})).into()
        );
    }
    match cx.query("id") {
        Some(id) => ok(200, json!({"enrichments": [cx.app.get_enrichment(cx.ws, &id).await?]})),
        None => ok(200, json!({"enrichments": cx.app.list_enrichments(cx.ws, q.as_deref()).await?})),
    }
}

async fn create_enrichment(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let body = cx.body()?;
    ok(201, json!({"enrichment": cx.app.create_workspace_enrichment(cx.ws, &body).await?}))
}

async fn delete_enrichment(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    cx.app.delete_workspace_enrichment(cx.ws, &cx.id("/api/enrichments/{id}")).await?;
    Ok(no_content())
}

async fn list_secrets(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    ok(200, json!({"secrets": cx.app.list_secrets(cx.ws).await?}))
}

async fn put_secret(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let body = cx.body()?;
    cx.app.put_secret(cx.ws, &cx.id("/api/secrets/{id}"), &body).await?;
    Ok(no_content())
}
