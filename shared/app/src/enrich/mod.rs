//! Running an enrichment on Leads: the seam between the worker's chunk flow
//! (which reads Leads, writes items and counts) and whatever computes a
//! Lead's result — a built-in function today; outside providers through the
//! provider layer.
//!
//! The catalog lookup lives here too, because which enrichments exist depends
//! on the workspace (workspace-defined enrichments join the built-ins).

use std::borrow::Cow;

use puffle_domain::catalog::{self, Enrichment};
use puffle_domain::lead::Lead;
use puffle_domain::providers::{self, Outcome};
use serde_json::Value;

use crate::{App, AppError};

/// One Lead's result and what it took to get it.
#[derive(Debug, Clone, PartialEq)]
pub struct Enriched {
    pub outcome: Outcome,
    /// `builtin:<slug>` or the outside provider's name.
    pub provider: String,
    pub provider_submission_id: Option<String>,
    /// Calls made for this Lead (0 for built-ins and cache hits).
    pub calls: u32,
    pub cached: bool,
    /// Provider-specific facts kept on the item (`metadata.*`), e.g. token usage.
    pub metadata: Value,
}

impl Enriched {
    pub fn builtin(slug: &str, outcome: Outcome) -> Enriched {
        Enriched {
            outcome,
            provider: format!("builtin:{slug}"),
            provider_submission_id: None,
            calls: 0,
            cached: false,
            metadata: Value::Null,
        }
    }
}

impl App {
    /// An enabled enrichment visible to workspace `ws`, by id or slug.
    pub async fn find_enrichment(&self, _ws: &str, id_or_slug: &str) -> Result<Option<Cow<'static, Enrichment>>, AppError> {
        Ok(catalog::find(id_or_slug).map(Cow::Borrowed))
    }

    /// Enriches `leads` (in order) for a run of `enrichment` with `input`.
    pub async fn enrich_leads(
        &self,
        _ws: &str,
        enrichment: &Enrichment,
        input: &Value,
        leads: &[&Lead],
    ) -> Vec<Enriched> {
        leads
            .iter()
            .map(|lead| Enriched::builtin(&enrichment.slug, providers::run(&enrichment.slug, lead, input)))
            .collect()
    }
}
