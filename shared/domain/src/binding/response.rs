//! Reading a provider's answer: `response.found` decides hit or miss,
//! `response.result` maps output fields by JSON pointer, and the result must
//! satisfy the enrichment's `outputSchema`.

use serde_json::{Map, Value};

use super::ResponseMapping;

#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    Hit {
        result: Value,
        submission_id: Option<String>,
    },
    /// `found` resolved to nothing (null, absent, `""`, `[]`, `{}` or `false`).
    Miss {
        submission_id: Option<String>,
    },
    /// Not JSON, or a result that fails the outputSchema.
    Invalid(String),
}

/// A value that counts as "found".
pub fn is_found(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// Maps a successful (2xx) response body.
pub fn map_response(m: &ResponseMapping, body: &[u8], output_schema: &jsonschema::Validator) -> Mapped {
    let doc: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Mapped::Invalid(format!("the provider's response is not JSON ({e})")),
    };
    let submission_id = m.submission_id.as_deref().and_then(|p| doc.pointer(p)).and_then(|v| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    if !is_found(doc.pointer(&m.found)) {
        return Mapped::Miss { submission_id };
    }
    let mut result = Map::new();
    for (field, pointer) in &m.result {
        if let Some(v) = doc.pointer(pointer).filter(|v| !v.is_null()) {
            result.insert(field.clone(), v.clone());
        }
    }
    let result = Value::Object(result);
    let errors: Vec<String> = output_schema
        .iter_errors(&result)
        .take(5)
        .map(|e| {
            let path = e.instance_path.as_str();
            format!("{}: {e}", if path.is_empty() { "/" } else { path })
        })
        .collect();
    if !errors.is_empty() {
        return Mapped::Invalid(format!("the mapped result does not match the outputSchema: {}", errors.join("; ")));
    }
    Mapped::Hit { result, submission_id }
}
