//! JSON Schemas for the tool arguments that the API validates itself
//! (`scope`, `input`, `output`, Leads). The tools pass these values through
//! untouched, so a mistake comes back with the API's own `code` and
//! `details`; the schemas are there to tell an agent the shapes up front.

use schemars::{json_schema, Schema, SchemaGenerator};
use serde_json::Value;

pub fn scope(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Which Leads to enrich: exactly one of the three shapes below, with no other fields (the scope never names a subject: choose Leads of the enrichment's subject instead).",
        "oneOf": [
            {
                "type": "object",
                "description": "These Leads (at most 1000; use a List for more). listId only matters for membership-scoped output.",
                "properties": {
                    "type": {"const": "explicit_leads"},
                    "leadIds": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1000},
                    "listId": {"type": "string"}
                },
                "required": ["type", "leadIds"],
                "additionalProperties": false
            },
            {
                "type": "object",
                "description": "Every Lead in the List when the run is created.",
                "properties": {
                    "type": {"const": "list"},
                    "listId": {"type": "string"}
                },
                "required": ["type", "listId"],
                "additionalProperties": false
            },
            {
                "type": "object",
                "description": "The Leads of the List that match every condition, e.g. {\"all\":[{\"field\":\"type\",\"op\":\"eq\",\"value\":\"person\"}]} to take only people from a mixed List.",
                "properties": {
                    "type": {"const": "filtered_list"},
                    "listId": {"type": "string"},
                    "filter": filter_schema()
                },
                "required": ["type", "listId", "filter"],
                "additionalProperties": false
            }
        ]
    })
}

fn filter_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "all": {
                "type": "array",
                "minItems": 1,
                "maxItems": 20,
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {
                            "type": "string",
                            "description": "type, title, company.domain, company.name, location.country, or attributes.<key>[.<path>]"
                        },
                        "op": {"enum": ["eq", "neq", "contains", "exists", "not_exists"]},
                        "value": {"description": "Required except for exists / not_exists; strings compare case-insensitively."}
                    },
                    "required": ["field", "op"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["all"],
        "additionalProperties": false
    })
}

pub fn input(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "The enrichment's input: it must satisfy the inputSchema that get_enrichment shows. Omit it (or send {}) when that schema asks for nothing.",
        "additionalProperties": true
    })
}

pub fn output(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "Where results are written. Defaults to the enrichment's defaultOutput.",
        "properties": {
            "attributeKey": {"type": "string", "description": "The attribute to write (defaults to the enrichment's defaultOutputAttributeKey)."},
            "target": {"enum": ["lead", "membership"], "description": "membership needs a List in the scope."}
        },
        "additionalProperties": false
    })
}

pub fn leads(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "minItems": 1,
        "maxItems": 1000,
        "description": "Leads to create or update. A person needs an email contact or a LinkedIn URL in socials; a company needs company.domain or a website contact. A repeat import updates the same Lead (matched by those identifiers) instead of duplicating it.",
        "items": {
            "type": "object",
            "properties": {
                "type": {"enum": ["person", "company"]},
                "name": {
                    "type": "object",
                    "properties": {"full": {"type": "string"}, "first": {"type": "string"}, "last": {"type": "string"}}
                },
                "title": {"type": "string"},
                "company": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "domain": {"type": "string"}}
                },
                "contacts": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "type": {"type": "string", "description": "email, phone, website, …"},
                            "value": {"type": "string"}
                        },
                        "required": ["type", "value"]
                    }
                },
                "location": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "state": {"type": "string"}, "country": {"type": "string"}, "raw": {"type": "string"}}
                },
                "socials": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}
                },
                "attributes": {"type": "object"}
            },
            "required": ["type"]
        }
    })
}

/// `#[serde(default)]` (which keeps an optional, hand-written schema out of
/// `required`) makes schemars add `"default": null`, which contradicts
/// `"type": "object"`: an absent argument is the default, so drop it.
pub fn no_null_defaults(schema: &mut Schema) {
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        for p in props.values_mut() {
            if let Value::Object(m) = p {
                if m.get("default") == Some(&Value::Null) {
                    m.remove("default");
                }
            }
        }
    }
}
