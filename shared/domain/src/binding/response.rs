//! Reading a provider's answer: `response.found` decides hit or miss,
//! `response.result` maps output fields by JSON pointer, and the result must
//! satisfy the enrichment's `outputSchema`.

use serde_json::{json, Map, Value};

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

/// Who answered and when, for a result's `evidence`.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub provider: &'a str,
    pub fetched_at: &'a str,
}

/// Maps a successful (2xx) response body.
pub fn map_response(m: &ResponseMapping, body: &[u8], output_schema: &jsonschema::Validator) -> Mapped {
    map_response_at(m, body, output_schema, None)
}

/// [`map_response`], adding `confidence` and `evidence` to the result when
/// the mapping declares `confidence`: `evidence` is the provider, when it
/// answered, and the raw value of every field the mapping read (by pointer),
/// so a user can see what a result rests on.
pub fn map_response_at(
    m: &ResponseMapping,
    body: &[u8],
    output_schema: &jsonschema::Validator,
    source: Option<Source<'_>>,
) -> Mapped {
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
    if let Some(rule) = &m.confidence {
        if let Some(c) = rule.of(&doc) {
            result.insert("confidence".into(), json!(c));
        }
        if let Some(src) = source {
            let mut fields = Map::new();
            let pointers = std::iter::once(&m.found).chain(m.result.values()).chain(rule.pointer.as_ref());
            for p in pointers {
                // `found` may point at a whole profile: evidence keeps the fields read, not the record.
                let whole_record = |v: &Value| p == &m.found && (v.is_object() || v.is_array());
                if let Some(v) = doc.pointer(p).filter(|v| !v.is_null() && !whole_record(v)) {
                    fields.insert(p.clone(), v.clone());
                }
            }
            result.insert(
                "evidence".into(),
                json!({"provider": src.provider, "fetchedAt": src.fetched_at, "fields": fields}),
            );
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

/// `input.minConfidence`: a hit whose `confidence` is below it counts as a
/// miss (`skippedReason: "low_confidence"`). A result without a confidence
/// passes (there is nothing to compare).
pub fn below_min_confidence(result: &Value, input: &Value) -> bool {
    match (input.get("minConfidence").and_then(Value::as_f64), result.get("confidence").and_then(Value::as_f64)) {
        (Some(min), Some(c)) => c < min,
        _ => false,
    }
}

/// `skippedReason` of a hit below `input.minConfidence`.
pub const LOW_CONFIDENCE: &str = "low_confidence";
