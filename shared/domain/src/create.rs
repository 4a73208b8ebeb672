//! The create request (`POST /api/enrichment`): parsing and rule 1 (shape).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::DomainError;
use crate::lead::validate_attribute_key;
use crate::scope::Scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Persisted,
    Preview,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OutputTarget {
    #[default]
    Lead,
    Membership,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WritePolicy {
    #[default]
    Overwrite,
    SkipExisting,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutputRequest {
    #[serde(default)]
    pub attribute_key: Option<String>,
    #[serde(default)]
    pub target: Option<OutputTarget>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisplayRequest {
    pub field_id: String,
}

/// The wire shape; `scope` stays raw JSON so its errors can be precise.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Wire {
    enrichment_id: String,
    #[serde(default)]
    mode: Mode,
    scope: Value,
    input: Value,
    #[serde(default)]
    output: Option<OutputRequest>,
    #[serde(default)]
    display_request: Option<DisplayRequest>,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    write_policy: WritePolicy,
}

/// A create request that passed rule 1 (shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    pub enrichment_id: String,
    pub mode: Mode,
    pub scope: Scope,
    pub input: Value,
    pub output: OutputRequest,
    pub display_request: Option<DisplayRequest>,
    #[serde(skip)]
    pub idempotency_key: Option<String>,
    pub write_policy: WritePolicy,
}

pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

impl CreateRequest {
    /// `header_key` is the `Idempotency-Key` header, an alternative to the
    /// body field; when both are given they must agree.
    pub fn parse(body: &Value, header_key: Option<&str>) -> Result<CreateRequest, DomainError> {
        if !body.is_object() {
            return Err(DomainError::invalid("the body must be a JSON object"));
        }
        let w: Wire = serde_json::from_value(body.clone()).map_err(|e| {
            DomainError::invalid_with(format!("invalid create request: {e}"), json!({"error": e.to_string()}))
        })?;
        if w.enrichment_id.trim().is_empty() {
            return Err(DomainError::invalid_with(
                "enrichmentId must be a non-empty string",
                json!({"field":"enrichmentId"}),
            ));
        }
        if !w.input.is_object() {
            return Err(DomainError::invalid_with("input must be an object", json!({"field":"input"})));
        }
        let scope = Scope::parse(&w.scope)?;
        let output = w.output.unwrap_or_default();
        if let Some(k) = &output.attribute_key {
            validate_attribute_key(k)
                .map_err(|e| DomainError::invalid_with(e.to_string(), json!({"field":"output.attributeKey"})))?;
        }
        if let Some(d) = &w.display_request {
            if d.field_id.is_empty() || d.field_id.len() > 200 {
                return Err(DomainError::invalid_with(
                    "displayRequest.fieldId must be 1..200 characters",
                    json!({"field":"displayRequest.fieldId"}),
                ));
            }
        }
        let key = match (w.idempotency_key, header_key) {
            (Some(b), Some(h)) if b != h => {
                return Err(DomainError::invalid("idempotencyKey and the Idempotency-Key header differ; send one"))
            }
            (Some(b), _) => Some(b),
            (None, h) => h.map(str::to_string),
        };
        if let Some(k) = &key {
            if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY_LEN || k.chars().any(|c| c.is_control()) {
                return Err(DomainError::invalid_with(
                    format!("idempotencyKey must be 1..{MAX_IDEMPOTENCY_KEY_LEN} printable characters"),
                    json!({"field":"idempotencyKey"}),
                ));
            }
        }
        Ok(CreateRequest {
            enrichment_id: w.enrichment_id,
            mode: w.mode,
            scope,
            input: w.input,
            output,
            display_request: w.display_request,
            idempotency_key: key,
            write_policy: w.write_policy,
        })
    }

    pub fn target(&self) -> OutputTarget {
        self.output.target.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        json!({"enrichmentId":"email_domain","scope":{"type":"list","listId":"list_1"},"input":{}})
    }

    #[test]
    fn defaults_apply() {
        let r = CreateRequest::parse(&base(), None).unwrap();
        assert_eq!(r.mode, Mode::Persisted);
        assert_eq!(r.write_policy, WritePolicy::Overwrite);
        assert_eq!(r.target(), OutputTarget::Lead);
    }

    #[test]
    fn shape_errors() {
        let mut cases = vec![];
        for (k, v) in [
            ("enrichmentId", json!("")),
            ("enrichmentId", json!(3)),
            ("mode", json!("dry")),
            ("input", json!([])),
            ("writePolicy", json!("merge")),
            ("output", json!({"target":"account"})),
            ("output", json!({"attributeKey":"a b"})),
            ("displayRequest", json!({"fieldId":"f","x":1})),
            ("bogus", json!(1)),
            ("idempotencyKey", json!("")),
        ] {
            let mut b = base();
            b[k] = v;
            cases.push(b);
        }
        let mut missing = base();
        missing.as_object_mut().unwrap().remove("input");
        cases.push(missing);
        cases.push(json!("not an object"));
        for c in cases {
            assert!(matches!(CreateRequest::parse(&c, None), Err(DomainError::InvalidRequest { .. })), "{c}");
        }
    }

    #[test]
    fn header_and_body_keys_must_agree() {
        let mut b = base();
        b["idempotencyKey"] = json!("k1");
        assert_eq!(CreateRequest::parse(&b, Some("k1")).unwrap().idempotency_key.as_deref(), Some("k1"));
        assert!(CreateRequest::parse(&b, Some("k2")).is_err());
        assert_eq!(CreateRequest::parse(&base(), Some("h")).unwrap().idempotency_key.as_deref(), Some("h"));
    }
}
