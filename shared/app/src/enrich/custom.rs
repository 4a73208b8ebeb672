//! Workspace-defined enrichments: `POST /api/enrichments`,
//! `DELETE /api/enrichments/{slug}`.

use puffle_domain::binding::template::sample_url;
use puffle_domain::catalog::{self, custom::Definition, Enrichment};
use puffle_domain::{time, DomainError};
use serde_json::{json, Value};

use crate::{App, AppError};
use puffle_aws::StoreError;

/// Most enrichments one workspace may define.
pub const MAX_PER_WORKSPACE: usize = 100;

impl App {
    pub async fn create_workspace_enrichment(&self, ws: &str, body: &Value) -> Result<Enrichment, AppError> {
        let e = Definition::parse(body)?.into_enrichment()?;
        if catalog::all().iter().any(|c| c.slug == e.slug) {
            return Err(exists(&e.slug, "a catalog enrichment"));
        }
        if let Some(h) = e.tool_binding.http() {
            // The literal check: an IP in a refused range or `localhost` is
            // refused now; names are checked again after DNS on every call.
            let url = puffle_egress::Url::parse(&sample_url(&h.request.url))
                .map_err(|err| DomainError::invalid(format!("toolBinding.request.url is not a URL: {err}")))?;
            if let Err(refusal) = puffle_egress::check_url(&url, &puffle_egress::AllowList::from_env()) {
                return Err(DomainError::planner(
                    "EGRESS_REFUSED",
                    format!("toolBinding.request.url is not allowed: {refusal}"),
                    json!({"field": "toolBinding.request.url", "reason": refusal.to_string()}),
                )
                .into());
            }
        }
        if self.store().list_workspace_enrichments(ws).await?.len() >= MAX_PER_WORKSPACE {
            return Err(DomainError::invalid(format!(
                "a workspace may define at most {MAX_PER_WORKSPACE} enrichments"
            ))
            .into());
        }
        match self.store().put_workspace_enrichment(ws, &e, &time::now()).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed) => return Err(exists(&e.slug, "this workspace's enrichment")),
            Err(other) => return Err(other.into()),
        }
        self.with_status(ws, e).await
    }

    pub async fn delete_workspace_enrichment(&self, ws: &str, slug: &str) -> Result<(), AppError> {
        let slug = slug.strip_prefix("enr_").unwrap_or(slug);
        if catalog::custom::valid_slug(slug) && self.store().delete_workspace_enrichment(ws, slug).await? {
            return Ok(());
        }
        Err(AppError::not_found("ENRICHMENT_NOT_FOUND", format!("this workspace defines no enrichment `{slug}`")))
    }
}

fn exists(slug: &str, what: &str) -> AppError {
    AppError::Conflict {
        code: "ENRICHMENT_EXISTS",
        message: format!("the slug `{slug}` is taken by {what}"),
        details: json!({"slug": slug}),
    }
}
