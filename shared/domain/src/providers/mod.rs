//! Built-in enrichment providers: pure functions from a Lead (and the run's
//! validated `input`) to one result.
//!
//! A catalog entry binds to a provider through `toolBinding.provider`, which
//! is the entry's slug. Providers never panic on any lead or input: all user
//! data is read through `Option`s and checked before use.

use serde_json::Value;

use crate::lead::Lead;

mod company_domain;
mod email_domain;
pub mod email_verify;
mod internal_echo;
mod job_seniority;
mod name_parse;
mod phone_normalize;
pub mod website_overview;

/// The result of running one provider on one lead.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The value to write to the lead's output attribute.
    Completed(Value),
    /// Nothing to do for this lead (e.g. `missing_input`: the field the
    /// provider reads is absent). Not an error, not charged.
    Skipped { reason: &'static str },
    /// The lead's data could not be enriched. `code` is SCREAMING_SNAKE
    /// (`INVALID_PHONE`, `INVALID_EMAIL`, `INVALID_INPUT`, `UNKNOWN_PROVIDER`).
    Failed { message: String, code: String },
}

/// `Skipped` reason when the lead lacks the data a provider reads.
pub const MISSING_INPUT: &str = "missing_input";

/// The provider slugs [`run`] knows.
pub const PROVIDERS: &[&str] = &[
    "company_domain",
    "email_domain",
    "email_verify",
    "internal_echo",
    "job_seniority",
    "name_parse",
    "phone_normalize",
    "website_overview",
];

/// Built-ins that need the network (DNS, a web page): the app layer runs
/// them with the pure parts of [`email_verify`] and [`website_overview`];
/// [`run`] answers `NEEDS_NETWORK` for them.
pub const NETWORK: &[&str] = &["email_verify", "website_overview"];

/// Runs the provider `slug` on `lead`. `input` is the run's input object,
/// expected to have passed the enrichment's `validate_input` (providers still
/// cope with anything). An unknown slug gives `Failed{code:"UNKNOWN_PROVIDER"}`.
pub fn run(slug: &str, lead: &Lead, input: &Value) -> Outcome {
    match slug {
        "company_domain" => company_domain::run(lead),
        "email_domain" => email_domain::run(lead),
        "internal_echo" => internal_echo::run(lead),
        "job_seniority" => job_seniority::run(lead),
        "name_parse" => name_parse::run(lead),
        "phone_normalize" => phone_normalize::run(lead, input),
        s if NETWORK.contains(&s) => Outcome::Failed {
            message: format!("`{slug}` needs the network and runs in the worker"),
            code: "NEEDS_NETWORK".to_string(),
        },
        _ => Outcome::Failed {
            message: format!("no enrichment provider named `{slug}`"),
            code: "UNKNOWN_PROVIDER".to_string(),
        },
    }
}

fn skipped_missing() -> Outcome {
    Outcome::Skipped { reason: MISSING_INPUT }
}

/// The first contact of `kind` (case-insensitive), trimmed, if non-empty.
pub fn first_contact<'a>(lead: &'a Lead, kind: &str) -> Option<&'a str> {
    lead.contacts
        .iter()
        .find(|c| c.kind.trim().eq_ignore_ascii_case(kind))
        .map(|c| c.value.trim())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
pub(crate) mod test_support {
    use serde_json::{json, Value};

    use crate::lead::Lead;

    /// A Lead from a partial JSON object (id, type and timestamps defaulted).
    pub fn lead(partial: Value) -> Lead {
        let mut base = json!({
            "id": "lead_1",
            "type": "person",
            "createdAt": "2024-01-01T00:00:00Z",
            "updatedAt": "2024-01-01T00:00:00Z",
        });
        if let (Some(b), Some(p)) = (base.as_object_mut(), partial.as_object()) {
            for (k, v) in p {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).expect("test lead")
    }

    pub fn contacts(pairs: &[(&str, &str)]) -> Value {
        Value::Array(pairs.iter().map(|(k, v)| json!({"type": k, "value": v})).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_provider_fails() {
        let out = run("nope", &lead(json!({})), &json!({}));
        match out {
            Outcome::Failed { code, message } => {
                assert_eq!(code, "UNKNOWN_PROVIDER");
                assert!(message.contains("nope"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_catalog_entry_has_a_provider() {
        let builtins = crate::catalog::all()
            .iter()
            .filter(|e| matches!(e.tool_binding, crate::binding::ToolBinding::Builtin { .. }));
        for e in builtins.clone() {
            assert_eq!(e.tool_binding, crate::binding::ToolBinding::Builtin { provider: e.slug.clone() });
            assert!(PROVIDERS.contains(&e.slug.as_str()), "{}", e.slug);
            let out = run(&e.slug, &lead(json!({})), &json!({}));
            assert!(!matches!(&out, Outcome::Failed { code, .. } if code == "UNKNOWN_PROVIDER"), "{}", e.slug);
        }
        assert_eq!(PROVIDERS.len(), builtins.count());
    }

    #[test]
    fn empty_lead_is_missing_input_for_every_reading_provider() {
        let empty = lead(json!({}));
        for slug in ["company_domain", "email_domain", "job_seniority", "name_parse", "phone_normalize"] {
            assert_eq!(run(slug, &empty, &json!({})), Outcome::Skipped { reason: "missing_input" }, "{slug}");
        }
    }

    #[test]
    fn internal_echo_echoes() {
        assert_eq!(run("internal_echo", &lead(json!({})), &json!({})), Outcome::Completed(json!({"echo": true})));
    }

    /// Every Completed value matches the enrichment's outputSchema.
    #[test]
    fn completed_outputs_match_output_schemas() {
        let full = lead(json!({
            "name": {"full": "Dr. Ada King Lovelace"},
            "title": "VP of Engineering",
            "company": {"domain": "https://www.Acme.com/about"},
            "contacts": contacts(&[
                ("email", "ada@Acme.com"),
                ("phone", "(415) 555-0123"),
                ("website", "acme.com"),
            ]),
        }));
        let single_name = lead(json!({"name": {"full": "Cher"}}));
        let builtins = crate::catalog::all()
            .iter()
            .filter(|e| matches!(e.tool_binding, crate::binding::ToolBinding::Builtin { .. }))
            .filter(|e| !NETWORK.contains(&e.slug.as_str()));
        for (e, l) in builtins.flat_map(|e| [(e, &full), (e, &single_name)]) {
            let validator = jsonschema::validator_for(&e.output_schema).unwrap();
            match run(&e.slug, l, &json!({})) {
                Outcome::Completed(v) => {
                    let errs: Vec<String> = validator.iter_errors(&v).map(|x| x.to_string()).collect();
                    assert!(errs.is_empty(), "{}: {v} {errs:?}", e.slug);
                }
                Outcome::Skipped { .. } if l == &single_name => {}
                other => panic!("{}: {other:?}", e.slug),
            }
        }
    }
}
