//! Auto-enrich rules: an enrichment a List runs on the Leads that join it.
//!
//! A rule holds the parts of a create request that do not depend on the
//! Leads (`enrichmentId`, `input`, `output`, `writePolicy`); when Leads join
//! the List, the event flow builds an `explicit_leads` create request from it
//! and runs it like any other (same checks, same charge).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::create::{OutputRequest, OutputTarget, WritePolicy};
use crate::error::DomainError;
use crate::lead::validate_attribute_key;

/// Rules one List may hold (each new membership is read once per rule).
pub const MAX_RULES_PER_LIST: usize = 10;

/// Leads one rule run covers at most: the explicit scope's limit.
pub const MAX_LEADS_PER_RULE_RUN: usize = crate::scope::MAX_EXPLICIT_LEADS;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleOutput {
    pub target: OutputTarget,
    pub attribute_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub id: String,
    pub list_id: String,
    pub enrichment_id: String,
    pub input: Value,
    pub output: RuleOutput,
    pub write_policy: WritePolicy,
    pub enabled: bool,
    pub created_at: String,
}

/// `POST /api/lists/{id}/rules` body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRuleRequest {
    pub enrichment_id: String,
    pub input: Value,
    #[serde(default)]
    pub output: Option<OutputRequest>,
    #[serde(default)]
    pub write_policy: Option<WritePolicy>,
}

impl CreateRuleRequest {
    pub fn parse(body: Value) -> Result<CreateRuleRequest, DomainError> {
        if !body.is_object() {
            return Err(DomainError::invalid("the body must be a JSON object"));
        }
        let req: CreateRuleRequest =
            serde_json::from_value(body).map_err(|e| DomainError::invalid(format!("invalid rule: {e}")))?;
        if req.enrichment_id.trim().is_empty() {
            return Err(DomainError::invalid_with("enrichmentId must be non-empty", json!({"field":"enrichmentId"})));
        }
        if !req.input.is_object() {
            return Err(DomainError::invalid_with("input must be an object", json!({"field":"input"})));
        }
        if let Some(k) = req.output.as_ref().and_then(|o| o.attribute_key.as_deref()) {
            validate_attribute_key(k)?;
        }
        Ok(req)
    }

    /// The rule as stored: omitted output → the enrichment's default output,
    /// omitted writePolicy → `overwrite`.
    pub fn into_rule(self, id: String, list_id: &str, default_attribute_key: &str, now: &str) -> Rule {
        let output = self.output.unwrap_or_default();
        Rule {
            id,
            list_id: list_id.to_string(),
            enrichment_id: self.enrichment_id,
            input: self.input,
            output: RuleOutput {
                target: output.target.unwrap_or_default(),
                attribute_key: output.attribute_key.unwrap_or_else(|| default_attribute_key.to_string()),
            },
            write_policy: self.write_policy.unwrap_or_default(),
            enabled: true,
            created_at: now.to_string(),
        }
    }
}

impl Rule {
    /// The create request body this rule makes for `lead_ids` of its List.
    pub fn create_body(&self, lead_ids: &[String], idempotency_key: &str) -> Value {
        json!({
            "enrichmentId": self.enrichment_id,
            "scope": {"type": "explicit_leads", "leadIds": lead_ids, "listId": self.list_id},
            "input": self.input,
            "output": {"target": self.output.target, "attributeKey": self.output.attribute_key},
            "writePolicy": self.write_policy,
            "idempotencyKey": idempotency_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create::CreateRequest;

    #[test]
    fn defaults_fill_output_and_policy() {
        let r = CreateRuleRequest::parse(json!({"enrichmentId":"email_domain","input":{}})).unwrap().into_rule(
            "rule_1".into(),
            "list_1",
            "email_domain",
            "now",
        );
        assert_eq!(r.output, RuleOutput { target: OutputTarget::Lead, attribute_key: "email_domain".into() });
        assert_eq!(r.write_policy, WritePolicy::Overwrite);
        assert!(r.enabled);
    }

    #[test]
    fn bad_rules_are_shape_errors() {
        for bad in [
            json!([]),
            json!({"input":{}}),
            json!({"enrichmentId":"","input":{}}),
            json!({"enrichmentId":"x","input":[]}),
            json!({"enrichmentId":"x","input":{},"extra":1}),
            json!({"enrichmentId":"x","input":{},"output":{"attributeKey":"bad key"}}),
            json!({"enrichmentId":"x","input":{},"writePolicy":"sometimes"}),
        ] {
            assert!(matches!(CreateRuleRequest::parse(bad.clone()), Err(DomainError::InvalidRequest { .. })), "{bad}");
        }
    }

    #[test]
    fn a_rule_makes_a_valid_create_request() {
        let r =
            CreateRuleRequest::parse(json!({"enrichmentId":"email_domain","input":{},"writePolicy":"skip_existing"}))
                .unwrap()
                .into_rule("rule_1".into(), "list_1", "email_domain", "now");
        let body = r.create_body(&["lead_1".into()], "rule:rule_1:run_1");
        let req = CreateRequest::parse(&body, None).unwrap();
        assert_eq!(req.scope.list_id(), Some("list_1"));
        assert_eq!(req.write_policy, WritePolicy::SkipExisting);
        assert_eq!(req.idempotency_key.as_deref(), Some("rule:rule_1:run_1"));
    }
}
