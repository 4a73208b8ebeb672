//! `toolBinding.type = "waterfall"`: try other enrichments in order and stop
//! at the first good answer.
//!
//! ```json
//! {"type": "waterfall",
//!  "steps": [{"enrichmentId": "hunter_email_finder"},
//!            {"enrichmentId": "pdl_person", "runIf": {"all": [{"field": "company.domain", "op": "exists"}]}}],
//!  "check": {"enrichmentId": "email_verify", "field": "email"},
//!  "stopWhen": {"all": [{"field": "attributes.result.verification.status", "op": "eq", "value": "deliverable"}]}}
//! ```
//!
//! - `runIf` and `stopWhen` are `filtered_list` filters, evaluated on the
//!   Lead plus the results so far: each earlier step's hit is the attribute
//!   named by its enrichment id, and (for `stopWhen`) the step just tried is
//!   `attributes.result`.
//! - A step is skipped when its `runIf` is false or its enrichment cannot run
//!   (a secret it needs is not configured).
//! - `check` (optional) runs another enrichment on the hit's `field` (as the
//!   Lead's email) and puts its result under `verification`.
//! - The first step whose result satisfies `stopWhen` (default: any hit)
//!   wins; the Lead is charged that step's price only. No winner: nothing
//!   is charged.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::filter::LeadFilter;
use crate::lead::Lead;

/// At most this many steps (each one may be an outside call per Lead).
pub const MAX_STEPS: usize = 8;

/// The attribute under which `stopWhen` sees the step just tried.
pub const CURRENT: &str = "result";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaterfallBinding {
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_when: Option<LeadFilter>,
    /// The winning result's fields kept (default: all), plus `source`, the
    /// step that won.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pick: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    pub enrichment_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_if: Option<LeadFilter>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Check {
    /// An enrichment reading the Lead's email (`email_verify`).
    pub enrichment_id: String,
    /// The field of a step's result it checks.
    pub field: String,
}

/// One step as `metadata.attempts` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub enrichment_id: String,
    pub provider: Option<String>,
    /// `hit` (this step won), `rejected` (found, but `stopWhen` was not met),
    /// `miss`, `failed`, `skipped` (not run).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Credits this step costs the Lead: its price when it won, else 0.
    pub cost: u64,
    pub duration_ms: u64,
    /// Calls to its provider (retries included).
    pub calls: u32,
}

/// How a Lead's waterfall ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Conclusion {
    /// Step `index` won with this result.
    Won { index: usize, result: Value },
    /// Nothing won: `skippedReason`.
    Skipped(&'static str),
    /// Every step that ran failed: the last failure.
    Failed { code: String, message: String },
}

/// `skippedReason` when no step could run because their providers are not configured.
pub const PROVIDERS_DISABLED: &str = "providers_disabled";

impl WaterfallBinding {
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = vec![];
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            errors.push(format!("steps must hold 1 to {MAX_STEPS} steps"));
        }
        for (i, s) in self.steps.iter().enumerate() {
            if s.enrichment_id.trim().is_empty() {
                errors.push(format!("steps[{i}].enrichmentId must not be empty"));
            }
            if let Some(f) = &s.run_if {
                if let Err(e) = LeadFilter::parse(&json!(f)) {
                    errors.push(format!("steps[{i}].runIf: {e}"));
                }
            }
        }
        if let Some(f) = &self.stop_when {
            if let Err(e) = LeadFilter::parse(&json!(f)) {
                errors.push(format!("stopWhen: {e}"));
            }
        }
        if let Some(c) = &self.check {
            if c.enrichment_id.trim().is_empty() || c.field.trim().is_empty() {
                errors.push("check needs enrichmentId and field".into());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Stored attribute keys the filters read (not the steps' own results).
    pub fn attribute_keys(&self) -> Vec<String> {
        let steps: Vec<&str> = self.steps.iter().map(|s| s.enrichment_id.as_str()).collect();
        self.steps
            .iter()
            .filter_map(|s| s.run_if.as_ref())
            .chain(self.stop_when.as_ref())
            .flat_map(LeadFilter::attribute_keys)
            .filter(|k| k != CURRENT && !steps.contains(&k.as_str()))
            .collect()
    }

    /// Does the result just found end the waterfall?
    pub fn satisfied(&self, view: &Lead) -> bool {
        self.stop_when.as_ref().is_none_or(|f| f.matches(view))
    }
}

impl Step {
    pub fn applies(&self, view: &Lead) -> bool {
        self.run_if.as_ref().is_none_or(|f| f.matches(view))
    }
}

impl WaterfallBinding {
    /// The Lead's result from the winning step's: the picked fields (all
    /// when `pick` is absent) and `source`.
    pub fn project(&self, winner: &Value, source: &str) -> Value {
        let mut out = serde_json::Map::new();
        if let Value::Object(m) = winner {
            for (k, v) in m {
                if self.pick.as_ref().is_none_or(|p| p.contains(k)) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        out.insert("source".into(), json!(source));
        Value::Object(out)
    }
}

/// The Lead as the filters see it: its attributes plus each earlier hit
/// (by enrichment id) and, when given, the step just tried (`result`).
pub fn view(lead: &Lead, so_far: &[(String, Value)], current: Option<&Value>) -> Lead {
    let mut v = lead.clone();
    for (id, result) in so_far {
        v.attributes.insert(id.clone(), result.clone());
    }
    if let Some(c) = current {
        v.attributes.insert(CURRENT.to_string(), c.clone());
    }
    v
}

/// The end of a Lead's waterfall from its attempts (in order) and the
/// winner, if any.
pub fn conclude(attempts: &[Attempt], winner: Option<(usize, Value)>) -> Conclusion {
    if let Some((index, result)) = winner {
        return Conclusion::Won { index, result };
    }
    let ran: Vec<&Attempt> = attempts.iter().filter(|a| a.outcome != "skipped").collect();
    if ran.iter().any(|a| matches!(a.outcome.as_str(), "miss" | "rejected")) {
        return Conclusion::Skipped("no_match");
    }
    if let Some(last) = ran.iter().rev().find(|a| a.outcome == "failed") {
        let reason = last.reason.clone().unwrap_or_default();
        let (code, message) =
            reason.split_once(": ").map(|(c, m)| (c.to_string(), m.to_string())).unwrap_or((reason.clone(), reason));
        return Conclusion::Failed { code, message };
    }
    let disabled = attempts.iter().any(|a| a.reason.as_deref().is_some_and(|r| r.starts_with("disabled")));
    if disabled
        && attempts
            .iter()
            .all(|a| a.reason.as_deref().is_some_and(|r| r.starts_with("disabled") || r == "run_if_false"))
    {
        return Conclusion::Skipped(PROVIDERS_DISABLED);
    }
    Conclusion::Skipped(crate::providers::MISSING_INPUT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::lead;

    fn attempt(outcome: &str, reason: Option<&str>) -> Attempt {
        Attempt {
            enrichment_id: "x".into(),
            provider: None,
            outcome: outcome.into(),
            reason: reason.map(str::to_string),
            cost: 0,
            duration_ms: 0,
            calls: 0,
        }
    }

    fn work_email() -> WaterfallBinding {
        serde_json::from_value(json!({
            "steps": [{"enrichmentId": "a"}, {"enrichmentId": "b", "runIf": {"all": [{"field": "attributes.a", "op": "not_exists"}]}}],
            "check": {"enrichmentId": "email_verify", "field": "email"},
            "stopWhen": {"all": [{"field": "attributes.result.verification.status", "op": "eq", "value": "deliverable"}]}
        }))
        .unwrap()
    }

    #[test]
    fn filters_see_earlier_results_and_the_current_one() {
        let w = work_email();
        assert_eq!(w.validate(), Ok(()));
        let l = lead(json!({"name": {"full": "Ada"}}));
        assert!(w.steps[1].applies(&view(&l, &[], None)));
        let found = json!({"email": "ada@acme.test", "verification": {"status": "risky"}});
        assert!(!w.steps[1].applies(&view(&l, &[("a".into(), found.clone())], None)));
        assert!(!w.satisfied(&view(&l, &[], Some(&found))));
        let good = json!({"email": "ada@acme.test", "verification": {"status": "deliverable"}});
        assert!(w.satisfied(&view(&l, &[], Some(&good))));
        // No stopWhen: any hit ends it.
        let any: WaterfallBinding = serde_json::from_value(json!({"steps": [{"enrichmentId": "a"}]})).unwrap();
        assert!(any.satisfied(&view(&l, &[], Some(&found))));
        assert!(w.attribute_keys().is_empty(), "step results and `result` are not stored attributes");
    }

    #[test]
    fn bad_waterfalls_are_refused() {
        let w: WaterfallBinding = serde_json::from_value(json!({"steps": []})).unwrap();
        assert!(w.validate().is_err());
        let w: Result<WaterfallBinding, _> =
            serde_json::from_value(json!({"steps": [{"enrichmentId": "a", "when": 1}]}));
        assert!(w.is_err());
        let w: WaterfallBinding = serde_json::from_value(
            json!({"steps": [{"enrichmentId": "a", "runIf": {"all": [{"field": "salary", "op": "exists"}]}}]}),
        )
        .unwrap();
        assert!(w.validate().unwrap_err()[0].contains("runIf"));
    }

    #[test]
    fn conclusions() {
        assert_eq!(
            conclude(&[attempt("hit", None)], Some((0, json!({})))),
            Conclusion::Won { index: 0, result: json!({}) }
        );
        assert_eq!(
            conclude(&[attempt("failed", Some("PROVIDER_ERROR: down")), attempt("miss", None)], None),
            Conclusion::Skipped("no_match")
        );
        assert_eq!(
            conclude(
                &[attempt("failed", Some("PROVIDER_ERROR: down")), attempt("failed", Some("PROVIDER_TIMEOUT: slow"))],
                None
            ),
            Conclusion::Failed { code: "PROVIDER_TIMEOUT".into(), message: "slow".into() }
        );
        assert_eq!(
            conclude(
                &[attempt("skipped", Some("disabled: needs HUNTER_API_KEY")), attempt("skipped", Some("run_if_false"))],
                None
            ),
            Conclusion::Skipped(PROVIDERS_DISABLED)
        );
        assert_eq!(conclude(&[attempt("skipped", Some("missing_input"))], None), Conclusion::Skipped("missing_input"));
    }
}
