//! Workspace-defined enrichments (`POST /api/enrichments`): a workspace's
//! own HTTP provider, in the catalog's entry shape, visible only to it.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{CostModel, DefaultOutput, Enrichment};
use crate::binding::ToolBinding;
use crate::lead::LeadType;
use crate::DomainError;

/// The request body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Definition {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub subject: LeadType,
    #[serde(default)]
    pub input_schema: Option<Value>,
    pub output_schema: Value,
    pub cost_model: CostInput,
    pub tool_binding: ToolBinding,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CostInput {
    pub credits_per_lead: u64,
}

/// Most credits a workspace enrichment may charge per Lead.
pub const MAX_CREDITS_PER_LEAD: u64 = 1000;

pub fn valid_slug(slug: &str) -> bool {
    let b = slug.as_bytes();
    (3..=64).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

fn invalid(field: &str, message: impl Into<String>) -> DomainError {
    DomainError::invalid_with(message, json!({"field": field}))
}

impl Definition {
    pub fn parse(body: &Value) -> Result<Definition, DomainError> {
        if !body.is_object() {
            return Err(DomainError::invalid("the body must be a JSON object"));
        }
        serde_json::from_value(body.clone()).map_err(|e| DomainError::invalid(format!("invalid enrichment: {e}")))
    }

    /// The catalog entry, after every check a catalog file gets.
    pub fn into_enrichment(self) -> Result<Enrichment, DomainError> {
        if !valid_slug(&self.slug) {
            return Err(invalid("slug", "slug must match ^[a-z][a-z0-9_]{2,63}$"));
        }
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(invalid("name", "name must be 1 to 100 characters"));
        }
        let description = self.description.unwrap_or_default();
        if description.chars().count() > 1000 {
            return Err(invalid("description", "description must be at most 1000 characters"));
        }
        if self.cost_model.credits_per_lead > MAX_CREDITS_PER_LEAD {
            return Err(invalid(
                "costModel.creditsPerLead",
                format!("creditsPerLead must be at most {MAX_CREDITS_PER_LEAD}"),
            ));
        }
        let binding = match &self.tool_binding {
            ToolBinding::Http(h) => h,
            _ => {
                return Err(invalid(
                    "toolBinding.type",
                    "a workspace enrichment calls a provider: toolBinding.type must be http",
                ))
            }
        };
        if let Err(errors) = binding.validate() {
            return Err(DomainError::invalid_with(
                format!("toolBinding is invalid: {}", errors.join("; ")),
                json!({"field": "toolBinding", "errors": errors}),
            ));
        }
        let input_schema = self.input_schema.unwrap_or_else(|| json!({"type": "object"}));
        for (field, schema) in [("inputSchema", &input_schema), ("outputSchema", &self.output_schema)] {
            if !schema.is_object() {
                return Err(invalid(field, format!("{field} must be a JSON Schema object")));
            }
            if let Err(e) = jsonschema::validator_for(schema) {
                return Err(invalid(field, format!("{field} is not a valid JSON Schema: {e}")));
            }
        }
        let slug = self.slug;
        Ok(Enrichment {
            id: format!("enr_{slug}"),
            name,
            description,
            subject: self.subject,
            version: 1,
            enabled: true,
            visibility: "public".into(),
            input_schema,
            output_schema: self.output_schema,
            default_output: DefaultOutput { target: "lead".into(), attribute_key: slug.clone() },
            default_output_attribute_key: slug.clone(),
            output_override_policy: "allow".into(),
            cost_model: CostModel {
                credit_action: format!("enrichment.{slug}"),
                credits_per_lead: self.cost_model.credits_per_lead,
            },
            tool_binding: self.tool_binding,
            disabled_reason: None,
            slug,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Value {
        json!({
            "slug": "my_finder", "name": " My finder ", "subject": "person",
            "outputSchema": {"type": "object", "properties": {"email": {"type": "string"}}},
            "costModel": {"creditsPerLead": 3},
            "toolBinding": {"type": "http",
                "request": {"method": "GET", "url": "https://api.example.com/find?d={{lead.company.domain}}",
                            "headers": {"X-Key": "{{secrets.MY_KEY}}"}},
                "response": {"found": "/email", "result": {"email": "/email"}}}
        })
    }

    fn build(v: Value) -> Result<Enrichment, DomainError> {
        Definition::parse(&v)?.into_enrichment()
    }

    #[test]
    fn a_definition_becomes_a_catalog_entry() {
        let e = build(body()).unwrap();
        assert_eq!(e.id, "enr_my_finder");
        assert_eq!(e.name, "My finder");
        assert_eq!(e.default_output_attribute_key, "my_finder");
        assert_eq!(e.default_output.attribute_key, "my_finder");
        assert_eq!(e.cost_model.credits_per_lead, 3);
        assert_eq!(e.cost_model.credit_action, "enrichment.my_finder");
        assert_eq!(e.input_schema, json!({"type": "object"}));
        assert_eq!(e.secret_names().into_iter().collect::<Vec<_>>(), ["MY_KEY"]);
        // It serialises in the catalog's shape and parses back as a catalog file would.
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(super::super::parse_entry(&text).unwrap().slug, "my_finder");
    }

    #[test]
    fn slugs() {
        for ok in ["abc", "a_1", "email_finder_v2", &format!("a{}", "b".repeat(63))] {
            assert!(valid_slug(ok), "{ok}");
        }
        for bad in ["ab", "1abc", "_abc", "Abc", "ab-c", "ab c", "", &format!("a{}", "b".repeat(64)), "émail"] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }

    #[test]
    fn each_mistake_names_its_field() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"slug": "Bad"}), "slug"),
            (json!({"name": ""}), "name"),
            (json!({"description": "x".repeat(1001)}), "description"),
            (json!({"costModel": {"creditsPerLead": 1001}}), "costModel.creditsPerLead"),
            (json!({"toolBinding": {"type": "builtin", "provider": "email_domain"}}), "toolBinding.type"),
            (json!({"outputSchema": {"type": 7}}), "outputSchema"),
            (json!({"inputSchema": []}), "inputSchema"),
        ];
        for (patch, field) in cases {
            let mut b = body();
            for (k, v) in patch.as_object().unwrap() {
                b[k] = v.clone();
            }
            match build(b) {
                Err(DomainError::InvalidRequest { details, .. }) => assert_eq!(details["field"], field, "{field}"),
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut b = body();
        b["toolBinding"]["request"]["url"] = json!("gopher://x.test/");
        match build(b) {
            Err(DomainError::InvalidRequest { details, .. }) => assert_eq!(details["field"], "toolBinding"),
            other => panic!("{other:?}"),
        }
        for bad in [json!([]), json!({"slug": "abc"}), json!({"extra": 1})] {
            assert!(Definition::parse(&bad).is_err(), "{bad}");
        }
        let mut b = body();
        b["unknown"] = json!(true);
        assert!(Definition::parse(&b).is_err());
    }
}
