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

/// The id of the rule run that covers `lead_ids` (the new members of one
/// stream batch, at most `MAX_LEADS_PER_RULE_RUN`), timed at the first join.
///
/// Derived from the Leads, not from the batch's first record: a redelivery
/// may cut the same records into other batches (the stream bisects a failing
/// batch), and a part named by its first record would then claim fewer Leads
/// under a run id that already names a larger run, and clash with that run's
/// idempotency key forever. The same Leads always give the same run.
pub fn rule_run_id(rule_id: &str, at_ms: u64, lead_ids: &[String]) -> String {
    let mut sorted: Vec<&str> = lead_ids.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    crate::ids::derived_id("run", at_ms, &format!("{rule_id}/{}", sorted.join(",")))
}

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
    fn a_rule_run_is_named_by_its_leads() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = rule_run_id("rule_1", 1_000, &ids(&["l2", "l1", "l3"]));
        assert_eq!(a, rule_run_id("rule_1", 1_000, &ids(&["l1", "l3", "l2", "l1"])), "order and repeats do not matter");
        assert_ne!(a, rule_run_id("rule_1", 1_000, &ids(&["l1", "l2"])), "a part of the Leads is another run");
        assert_ne!(a, rule_run_id("rule_2", 1_000, &ids(&["l1", "l2", "l3"])), "another rule is another run");
        assert!(a.starts_with("run_"), "{a}");
    }

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
