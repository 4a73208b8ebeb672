//! Running an enrichment on Leads: the seam between the worker's chunk flow
//! (which reads Leads, writes items and counts) and whatever computes a
//! Lead's result — a built-in function, or an outside provider through the
//! HTTP binding ([`http`]).
//!
//! The catalog lookup lives here too, because which enrichments exist depends
//! on the workspace (workspace-defined enrichments join the built-ins, see
//! [`custom`]), and whether one can run depends on its secrets ([`secrets`]).

pub mod custom;
pub mod http;
pub mod llm;
pub mod network;
pub mod resilience;
pub mod secrets;
pub mod waterfall;

use std::borrow::Cow;

use puffle_domain::binding::ToolBinding;
use puffle_domain::catalog::{self, custom::valid_slug, Enrichment};
use puffle_domain::lead::Lead;
use puffle_domain::providers::{self, Outcome};
use serde_json::Value;

use crate::{App, AppError};

/// One Lead's result and what it took to get it.
///
/// For billing: a hit is `Outcome::Completed` (charged when `charge`); a
/// miss is `Outcome::Skipped` (`no_match`, `missing_input`, ...); a failure
/// is `Outcome::Failed` with its code (`PROVIDER_*`, `INVALID_PROVIDER_RESPONSE`,
/// `EGRESS_REFUSED`, ...). Misses and failures are not charged.
#[derive(Debug, Clone, PartialEq)]
pub struct Enriched {
    pub outcome: Outcome,
    /// `builtin:<slug>` or the outside provider's name.
    pub provider: String,
    pub provider_submission_id: Option<String>,
    /// Calls made for this Lead, retries included (0 for built-ins, cache
    /// hits, skipped Leads and an open circuit).
    pub calls: u32,
    /// The result came from the provider result cache.
    pub cached: bool,
    /// Whether a completed result is charged (a cache hit is, unless the
    /// enrichment's `cache.chargeHits` is false).
    pub charge: bool,
    /// Provider-specific facts, e.g. `{"httpStatus": 200}`.
    pub metadata: Value,
    /// Credits a completed result costs, when not the run's price per Lead
    /// (a waterfall charges the winning step's price only). Never more
    /// than the price: the rest of the reservation is released.
    pub credits: Option<u64>,
    /// Time spent on this Lead's calls.
    pub duration_ms: u64,
    /// A waterfall's steps (`metadata.attempts`).
    pub attempts_log: Option<Value>,
    /// An LLM's token usage (`metadata.usage`).
    pub usage: Option<Value>,
}

impl Enriched {
    pub fn new(outcome: Outcome, provider: String) -> Enriched {
        Enriched {
            outcome,
            provider,
            provider_submission_id: None,
            calls: 0,
            cached: false,
            charge: true,
            metadata: Value::Null,
            credits: None,
            duration_ms: 0,
            attempts_log: None,
            usage: None,
        }
    }

    pub fn builtin(slug: &str, outcome: Outcome) -> Enriched {
        Enriched::new(outcome, format!("builtin:{slug}"))
    }

    fn is_builtin(&self) -> bool {
        self.provider.starts_with("builtin:")
    }

    /// The item's `attempts`: the calls an outside provider took, or the
    /// delivery count for a built-in (which makes no calls).
    pub fn attempts(&self, receive_count: u32) -> u32 {
        if self.is_builtin() {
            receive_count
        } else {
            self.calls
        }
    }

    /// `metadata.cached` on the item: set for outside providers only.
    pub fn cached_flag(&self) -> Option<bool> {
        (!self.is_builtin()).then_some(self.cached)
    }
}

impl App {
    /// An enrichment visible to workspace `ws` by id or slug, ready to run:
    /// one whose secrets are not configured is `400 ENRICHMENT_DISABLED`.
    pub async fn find_enrichment(
        &self,
        ws: &str,
        id_or_slug: &str,
    ) -> Result<Option<Cow<'static, Enrichment>>, AppError> {
        let found = self.find_enrichment_to_run(ws, id_or_slug).await?;
        if let Some(e) = &found {
            let missing = self.missing_secrets(ws, e).await?;
            if !missing.is_empty() {
                return Err(AppError::EnrichmentDisabled { slug: e.slug.clone(), missing });
            }
        }
        Ok(found)
    }

    /// The enrichment of a run that already exists (the worker): found
    /// whether or not its secrets are still configured, so a secret removed
    /// mid-run fails items rather than the chunk.
    pub async fn find_enrichment_to_run(
        &self,
        ws: &str,
        id_or_slug: &str,
    ) -> Result<Option<Cow<'static, Enrichment>>, AppError> {
        if let Some(e) = catalog::find(id_or_slug) {
            return Ok(Some(Cow::Borrowed(e)));
        }
        let slug = id_or_slug.strip_prefix("enr_").unwrap_or(id_or_slug);
        if !valid_slug(slug) {
            return Ok(None);
        }
        Ok(self.store().get_workspace_enrichment(ws, slug).await?.map(Cow::Owned))
    }

    /// Sets `enabled`/`disabledReason` for listing.
    pub(crate) async fn with_status(&self, ws: &str, mut e: Enrichment) -> Result<Enrichment, AppError> {
        let missing = self.missing_secrets(ws, &e).await?;
        if !missing.is_empty() {
            e.enabled = false;
            e.disabled_reason = Some(disabled_reason(&missing));
        }
        Ok(e)
    }

    /// `GET /api/enrichments`: the public catalog and the workspace's own,
    /// by slug, each with `enabled` (and `disabledReason` when false).
    pub async fn list_enrichments(&self, ws: &str, q: Option<&str>) -> Result<Vec<Enrichment>, AppError> {
        let mut all: Vec<Enrichment> = catalog::listed(q).into_iter().cloned().collect();
        all.extend(
            self.store().list_workspace_enrichments(ws).await?.into_iter().filter(|e| catalog::matches_query(e, q)),
        );
        all.sort_by(|a, b| a.slug.cmp(&b.slug));
        let mut out = Vec::with_capacity(all.len());
        for e in all {
            out.push(self.with_status(ws, e).await?);
        }
        Ok(out)
    }

    /// `GET /api/enrichments?id=`: one listed enrichment.
    pub async fn get_enrichment(&self, ws: &str, id_or_slug: &str) -> Result<Enrichment, AppError> {
        let e = match catalog::find(id_or_slug) {
            Some(e) if e.visibility == "public" => Some(e.clone()),
            Some(_) => None,
            None => self.find_enrichment_to_run(ws, id_or_slug).await?.map(Cow::into_owned),
        };
        let e =
            e.ok_or_else(|| AppError::not_found("ENRICHMENT_NOT_FOUND", format!("no enrichment `{id_or_slug}`")))?;
        self.with_status(ws, e).await
    }

    /// Enriches `leads` (in order) for a run of `enrichment` with `input`:
    /// one result per Lead. An error is for the whole chunk (the store was
    /// unavailable): the chunk's message is retried.
    pub async fn enrich_leads(
        &self,
        ws: &str,
        enrichment: &Enrichment,
        input: &Value,
        leads: &[&Lead],
    ) -> Result<Vec<Enriched>, AppError> {
        match &enrichment.tool_binding {
            ToolBinding::Builtin { provider } if providers::NETWORK.contains(&provider.as_str()) => {
                let started = std::time::Instant::now();
                let out = self.enrich_network(&enrichment.slug, provider, leads).await;
                let errors = out.iter().filter(|e| matches!(e.outcome, Outcome::Failed { .. })).count() as u64;
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                crate::emf::provider_call(&format!("builtin:{}", enrichment.slug), ms, out.len() as u64, errors);
                Ok(out)
            }
            ToolBinding::Builtin { provider } => {
                let started = std::time::Instant::now();
                let out: Vec<Enriched> = leads
                    .iter()
                    .map(|lead| Enriched::builtin(&enrichment.slug, providers::run(provider, lead, input)))
                    .collect();
                let errors = out.iter().filter(|e| matches!(e.outcome, Outcome::Failed { .. })).count() as u64;
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                crate::emf::provider_call(&format!("builtin:{}", enrichment.slug), ms, out.len() as u64, errors);
                Ok(out)
            }
            ToolBinding::Http(h) => self.enrich_http(ws, enrichment, h, input, leads).await,
            ToolBinding::Llm(l) => self.enrich_llm(ws, enrichment, l, input, leads).await,
            ToolBinding::Waterfall(w) => Box::pin(self.enrich_waterfall(ws, enrichment, w, input, leads)).await,
        }
    }
}

pub(crate) fn disabled_reason(missing: &[String]) -> String {
    let names = missing.join(", ");
    format!("needs the secret(s) {names}: configure them with PUT /api/secrets/{{name}} (or, for catalog providers, PUFFLE_SECRET_<NAME> / the provider secrets)")
}
