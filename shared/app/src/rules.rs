//! Auto-enrich rules on Lists: CRUD, and the runs they start when Leads
//! join the List (called by the event flow with the stream's membership
//! inserts).
//!
//! Exactly once per (rule, membership): before a run is created its Leads are
//! claimed for it (conditional writes), and the run's id is derived from the
//! stream records that carried them, so a redelivered batch derives the same
//! run and claims nothing new. A batch starts at most one run per rule (up to
//! the explicit scope's 1,000 Leads; a larger batch starts one per 1,000).

use puffle_domain::create::CreateRequest;
use puffle_domain::ids;
use puffle_domain::list::ListLeadType;
use puffle_domain::rule::{rule_run_id, CreateRuleRequest, Rule, MAX_LEADS_PER_RULE_RUN, MAX_RULES_PER_LIST};
use puffle_domain::{time, DomainError};
use serde::Serialize;
use serde_json::json;

use crate::events::Joined;
use crate::runs::create::{check_input, RuleStart, Start};
use crate::{App, AppError};

/// One line of `GET /api/lists/{id}/rules/{ruleId}/runs`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleRun {
    pub id: String,
    pub status: String,
    pub lead_count: u64,
    pub created_at: String,
}

/// Runs a rule lists (newest first).
pub const RULE_RUNS_LIMIT: i32 = 100;

fn rule_not_found(rule_id: &str) -> AppError {
    AppError::not_found("RULE_NOT_FOUND", format!("no rule {rule_id} on this list"))
}

impl App {
    pub async fn create_rule(&self, ws: &str, list_id: &str, body: serde_json::Value) -> Result<Rule, AppError> {
        let list = self.list_for_rules(ws, list_id).await?;
        let req = CreateRuleRequest::parse(body)?;
        let enrichment = self.find_enrichment(ws, &req.enrichment_id).await?.ok_or_else(|| {
            AppError::not_found("ENRICHMENT_NOT_FOUND", format!("no enrichment `{}`", req.enrichment_id))
        })?;
        check_input(&enrichment, &req.input)?;
        let fits = match list.lead_type {
            ListLeadType::Person => enrichment.subject == puffle_domain::lead::LeadType::Person,
            ListLeadType::Company => enrichment.subject == puffle_domain::lead::LeadType::Company,
            ListLeadType::Mixed => false,
        };
        if !fits {
            return Err(DomainError::planner(
                "SUBJECT_MISMATCH",
                format!(
                    "{} works on {} leads; list {list_id} holds {:?} leads (rules need a list of the enrichment's subject)",
                    enrichment.slug,
                    enrichment.subject.as_str(),
                    list.lead_type
                ),
                json!({"subject": enrichment.subject.as_str(), "listLeadType": list.lead_type}),
            )
            .into());
        }
        if self.store().list_rules(ws, list_id).await?.len() >= MAX_RULES_PER_LIST {
            return Err(DomainError::invalid_with(
                format!("a list holds at most {MAX_RULES_PER_LIST} rules"),
                json!({"max": MAX_RULES_PER_LIST}),
            )
            .into());
        }
        let rule = CreateRuleRequest { enrichment_id: enrichment.slug.clone(), ..req }.into_rule(
            ids::new_id("rule"),
            list_id,
            &enrichment.default_output_attribute_key,
            &time::now(),
        );
        self.store().put_rule(ws, &rule).await?;
        Ok(rule)
    }

    pub async fn list_rules(&self, ws: &str, list_id: &str) -> Result<Vec<Rule>, AppError> {
        self.list_for_rules(ws, list_id).await?;
        Ok(self.store().list_rules(ws, list_id).await?)
    }

    pub async fn delete_rule(&self, ws: &str, list_id: &str, rule_id: &str) -> Result<(), AppError> {
        self.list_for_rules(ws, list_id).await?;
        if !ids::is_valid_id(rule_id, "rule") || !self.store().delete_rule(ws, list_id, rule_id).await? {
            return Err(rule_not_found(rule_id));
        }
        Ok(())
    }

    pub async fn rule_runs(&self, ws: &str, list_id: &str, rule_id: &str) -> Result<Vec<RuleRun>, AppError> {
        self.list_for_rules(ws, list_id).await?;
        if !ids::is_valid_id(rule_id, "rule") || self.store().get_rule(ws, list_id, rule_id).await?.is_none() {
            return Err(rule_not_found(rule_id));
        }
        let mut runs = vec![];
        for id in self.store().rule_run_ids(rule_id, RULE_RUNS_LIMIT).await? {
            if let Some(rec) = self.store().get_run(ws, &id).await? {
                runs.push(RuleRun {
                    id: rec.run.id,
                    status: rec.run.status.as_str().to_string(),
                    lead_count: rec.run.scope.resolved_count,
                    created_at: rec.run.timing.created_at,
                });
            }
        }
        Ok(runs)
    }

    async fn list_for_rules(&self, ws: &str, list_id: &str) -> Result<puffle_domain::list::List, AppError> {
        self.get_list(ws, list_id).await.map_err(|e| match e {
            AppError::NotFound { .. } => {
                AppError::not_found("LIST_NOT_FOUND", format!("no list {list_id} in this workspace"))
            }
            other => other,
        })
    }

    /// Leads joined `list_id` (one stream batch's worth, in order): each
    /// enabled rule of the List starts a run over them.
    pub async fn on_members_joined(&self, ws: &str, list_id: &str, joined: &[Joined]) -> Result<(), AppError> {
        let rules = self.store().list_rules(ws, list_id).await?;
        for rule in rules.iter().filter(|r| r.enabled) {
            for part in joined.chunks(MAX_LEADS_PER_RULE_RUN) {
                self.start_rule_run(ws, rule, part).await?;
            }
        }
        Ok(())
    }

    async fn start_rule_run(&self, ws: &str, rule: &Rule, joined: &[Joined]) -> Result<(), AppError> {
        let first = &joined[0];
        let lead_ids: Vec<String> = joined.iter().map(|j| j.lead_id.clone()).collect();
        let run_id = rule_run_id(&rule.id, first.created_at_ms, &lead_ids);
        let store = self.store().clone();
        let claimed = self
            .store()
            .claim_for_rule(&rule.id, &run_id, &lead_ids, |other| {
                let store = store.clone();
                async move { Ok(store.get_run(ws, &other).await?.is_some()) }
            })
            .await?;
        if claimed.is_empty() {
            tracing::info!(rule_id = %rule.id, "every new member already has its rule run");
            return Ok(());
        }
        let key = format!("rule:{}:{run_id}", rule.id);
        let req = CreateRequest::parse(&rule.create_body(&claimed, &key), None)?;
        let start = Start {
            correlation_id: first.event_id.clone(),
            rule: Some(RuleStart { rule_id: rule.id.clone(), run_id: run_id.clone() }),
            retry: None,
        };
        match self.start_run(ws, &req, start).await {
            Ok(created) => {
                tracing::info!(rule_id = %rule.id, run_id = %run_id, leads = claimed.len(), reused = created.response.reused_existing_run, "rule run started");
                Ok(())
            }
            // Kept as a failed run under the rule by `start_run`.
            Err(AppError::InsufficientCredits { required, balance }) => {
                tracing::warn!(rule_id = %rule.id, run_id = %run_id, required, balance, "rule run not affordable");
                Ok(())
            }
            Err(e @ (AppError::Domain(_) | AppError::EnrichmentDisabled { .. } | AppError::NotFound { .. })) => {
                // The Leads changed under the rule (deleted, or of another type):
                // nothing to retry; say so rather than loop.
                tracing::warn!(rule_id = %rule.id, run_id = %run_id, error = %e, "rule run refused");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
