//! `toolBinding.type = "llm"`: an OpenAI-compatible chat-completions call
//! that answers in JSON constrained by the enrichment's `outputSchema`.
//!
//! ```json
//! {"type": "llm", "provider": "openai", "baseUrl": "https://api.openai.com/v1",
//!  "model": "gpt-4o-mini", "apiKeySecret": "OPENAI_API_KEY",
//!  "system": "You classify companies.", "prompt": "Company: {{lead.company.name}} ({{lead.company.domain?}})"}
//! ```
//!
//! The prompt uses the HTTP binding's placeholders (`lead.`, `input.`, with
//! `?` for optional ones) but never `secrets.`: a prompt is sent to the model
//! and may come back in its answer. The request asks for
//! `response_format: {type: "json_schema", json_schema: {schema, strict: true}}`
//! with the outputSchema inside the subset every strict mode accepts
//! ([`asked_schema`]: numeric, length, pattern and format constraints are
//! said in words instead); the answer's `choices[0].message.content` is parsed and validated against
//! the schema here ([`parse_answer`]), the app retries an invalid one once.
//!
//! Confidence and evidence: the model reports its own `confidence` (0–1)
//! when the outputSchema asks for one (the shipped entries require it), and
//! `input.minConfidence` gates it as for HTTP providers. An `evidence`
//! property of the outputSchema is never asked of the model
//! ([`answer_schema`] leaves it out): the app fills it with the provider,
//! the model, when the answer came and the Lead values the prompt used
//! ([`evidence`]), so it cannot be made up.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::template::{self, Placeholder};
use super::CircuitSettings;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LlmBinding {
    /// `metadata.provider` and the rate limit's key. Default: the base URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The API root; the call goes to `{baseUrl}/chat/completions`.
    pub base_url: String,
    pub model: String,
    /// The secret holding the API key, sent as `Authorization: Bearer`.
    pub api_key_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit: Option<CircuitSettings>,
}

/// Default total time per call: models are slower than data APIs.
pub const DEFAULT_LLM_TIMEOUT_MS: u64 = 20_000;

/// What one chat-completions answer came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// JSON that satisfies the outputSchema.
    Valid(Value),
    /// Not JSON, no content, or JSON that fails the schema (the reason says which).
    Invalid(String),
}

/// Token counts of one call (`usage` of the answer), zero when absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub calls: u32,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
        self.calls += other.calls;
    }
}

impl LlmBinding {
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms.unwrap_or(DEFAULT_LLM_TIMEOUT_MS)
    }
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(super::DEFAULT_MAX_ATTEMPTS)
    }
    pub fn rate_per_second(&self) -> u32 {
        self.rate_per_second.unwrap_or(super::DEFAULT_RATE_PER_SECOND)
    }
    pub fn concurrency(&self) -> u32 {
        self.concurrency.unwrap_or(8)
    }
    pub fn failure_threshold(&self) -> u32 {
        self.circuit.as_ref().and_then(|c| c.failure_threshold).unwrap_or(super::DEFAULT_FAILURE_THRESHOLD)
    }
    pub fn open_seconds(&self) -> u64 {
        self.circuit.as_ref().and_then(|c| c.open_seconds).unwrap_or(super::DEFAULT_OPEN_SECONDS)
    }

    /// The endpoint every call goes to.
    pub fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }

    pub fn provider_name(&self) -> String {
        self.provider.clone().unwrap_or_else(|| {
            url::Url::parse(&self.base_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "llm".into())
        })
    }

    pub fn secret_names(&self) -> BTreeSet<String> {
        BTreeSet::from([self.api_key_secret.clone()])
    }

    /// The templates sent to the model (prompt, then system).
    pub fn templates(&self) -> Vec<&str> {
        std::iter::once(self.prompt.as_str()).chain(self.system.as_deref()).collect()
    }

    pub(crate) fn placeholders(&self) -> Vec<Result<Placeholder, String>> {
        self.templates().into_iter().flat_map(template::placeholders_in).collect()
    }

    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = vec![];
        match url::Url::parse(&self.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => errors.push("baseUrl must be an absolute http(s) URL".into()),
        }
        if self.base_url.contains("{{") {
            errors.push("baseUrl takes no placeholders".into());
        }
        if self.model.trim().is_empty() {
            errors.push("model must not be empty".into());
        }
        if !crate::secrets::valid_name(&self.api_key_secret) {
            errors.push("apiKeySecret must be a secret name (^[A-Z][A-Z0-9_]{0,63}$)".into());
        }
        if self.prompt.trim().is_empty() {
            errors.push("prompt must not be empty".into());
        }
        for p in self.placeholders() {
            match p {
                Err(e) => errors.push(e),
                // The prompt goes to the model and may come back in its answer.
                Ok(Placeholder::Secret(_)) => errors.push("prompt and system must not use {{secrets.…}}".into()),
                Ok(_) => {}
            }
        }
        if self.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            errors.push("temperature must be from 0 to 2".into());
        }
        let mut range = |name: &str, v: Option<u64>, lo: u64, hi: u64| {
            if v.is_some_and(|v| !(lo..=hi).contains(&v)) {
                errors.push(format!("{name} must be from {lo} to {hi}"));
            }
        };
        range("maxTokens", self.max_tokens.map(u64::from), 1, 16_384);
        range("timeoutMs", self.timeout_ms, 1, 60_000);
        range("maxAttempts", self.max_attempts.map(u64::from), 1, super::MAX_ATTEMPTS as u64);
        range("ratePerSecond", self.rate_per_second.map(u64::from), 1, super::MAX_RATE_PER_SECOND as u64);
        range("concurrency", self.concurrency.map(u64::from), 1, super::MAX_CONCURRENCY as u64);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The request body for one Lead's rendered prompt.
    pub fn request_body(&self, system: Option<&str>, prompt: &str, schema_name: &str, output_schema: &Value) -> Value {
        let mut messages = vec![];
        if let Some(s) = system.filter(|s| !s.trim().is_empty()) {
            messages.push(json!({"role": "system", "content": s}));
        }
        messages.push(json!({"role": "user", "content": prompt}));
        let schema = asked_schema(output_schema);
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": schema_name, "schema": schema, "strict": true}},
        });
        if let Some(t) = self.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(n) = self.max_tokens {
            body["max_tokens"] = json!(n);
        }
        body
    }
}

/// What the model is asked to produce: the outputSchema without `$schema`
/// (metadata) and without `evidence` (the app writes it, see [`evidence`]).
pub fn answer_schema(output_schema: &Value) -> Value {
    let mut schema = output_schema.clone();
    if let Value::Object(m) = &mut schema {
        m.remove("$schema");
        if let Some(Value::Object(props)) = m.get_mut("properties") {
            props.remove(EVIDENCE);
        }
        if let Some(Value::Array(req)) = m.get_mut("required") {
            req.retain(|r| r != EVIDENCE);
        }
    }
    schema
}

const EVIDENCE: &str = "evidence";

/// Keywords that strict `json_schema` modes do not all accept (OpenAI's
/// strict mode and several OpenAI-compatible servers refuse some of them).
/// The model is asked without them, each told in words in its
/// `description`; the answer is still held to them by [`answer_schema`].
const UNSHARED_KEYWORDS: [&str; 15] = [
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "default",
];

/// What the request sends: [`answer_schema`] within the subset every strict
/// structured-output mode accepts (types, `enum`, `properties`, `required`,
/// `additionalProperties`, `items`, `anyOf`, `description`). A constraint
/// taken out is said in the property's `description` instead, so the model
/// still knows it; an answer that ignores it fails validation and is asked
/// again like any invalid one.
pub fn asked_schema(output_schema: &Value) -> Value {
    let mut schema = answer_schema(output_schema);
    relax(&mut schema);
    schema
}

/// Takes the unshared keywords out of one schema and of the schemas inside
/// it (only at schema positions: a property may well be named `format`).
fn relax(schema: &mut Value) {
    let Value::Object(m) = schema else { return };
    let mut said = vec![];
    for key in UNSHARED_KEYWORDS {
        if let Some(words) = m.remove(key).and_then(|v| in_words(key, &v)) {
            said.push(words);
        }
    }
    if !said.is_empty() {
        let rule = format!("Must be {}.", said.join(", "));
        let description = match m.get("description").and_then(Value::as_str) {
            Some(d) if !d.trim().is_empty() => format!("{} {rule}", d.trim_end()),
            _ => rule,
        };
        m.insert("description".into(), Value::String(description));
    }
    for key in ["properties", "$defs", "definitions", "patternProperties"] {
        if let Some(Value::Object(children)) = m.get_mut(key) {
            children.values_mut().for_each(relax);
        }
    }
    for key in ["items", "additionalProperties", "not", "if", "then", "else", "contains"] {
        match m.get_mut(key) {
            Some(Value::Array(list)) => list.iter_mut().for_each(relax),
            Some(child) => relax(child),
            None => {}
        }
    }
    for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
        if let Some(Value::Array(list)) = m.get_mut(key) {
            list.iter_mut().for_each(relax);
        }
    }
}

/// One removed constraint as the model reads it ("at most 400 characters");
/// None for one that constrains nothing (`uniqueItems: false`).
fn in_words(key: &str, v: &Value) -> Option<String> {
    let v_text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(match key {
        "uniqueItems" if v != &Value::Bool(true) => return None,
        "minimum" => format!("at least {v_text}"),
        "maximum" => format!("at most {v_text}"),
        "exclusiveMinimum" => format!("more than {v_text}"),
        "exclusiveMaximum" => format!("less than {v_text}"),
        "multipleOf" => format!("a multiple of {v_text}"),
        "minLength" => format!("at least {v_text} characters long"),
        "maxLength" => format!("at most {v_text} characters long"),
        "pattern" => format!("matching the regular expression {v_text}"),
        "format" => format!("in {v_text} format"),
        "minItems" => format!("at least {v_text} items"),
        "maxItems" => format!("at most {v_text} items"),
        "uniqueItems" => "without repeated items".to_string(),
        "minProperties" => format!("at least {v_text} properties"),
        "maxProperties" => format!("at most {v_text} properties"),
        "default" => format!("{v_text} when unsure"),
        _ => format!("{key} {v_text}"),
    })
}

/// Whether results of this outputSchema carry `evidence`.
pub fn wants_evidence(output_schema: &Value) -> bool {
    output_schema.pointer("/properties/evidence").is_some()
}

/// A result's `evidence`: who answered, with which model, when, and the
/// Lead and input values the prompt was rendered from.
pub fn evidence(provider: &str, model: &str, fetched_at: &str, fields: Map<String, Value>) -> Value {
    json!({"provider": provider, "model": model, "fetchedAt": fetched_at, "fields": fields})
}

/// Token usage of a chat-completions answer.
pub fn usage_of(body: &[u8]) -> Usage {
    let doc: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let n = |k: &str| doc["usage"][k].as_u64().unwrap_or(0);
    Usage {
        prompt_tokens: n("prompt_tokens"),
        completion_tokens: n("completion_tokens"),
        total_tokens: n("total_tokens"),
        calls: 1,
    }
}

/// Reads `choices[0].message.content` as JSON and checks it against the schema.
pub fn parse_answer(body: &[u8], output_schema: &jsonschema::Validator) -> Answer {
    let doc: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Answer::Invalid(format!("the answer is not JSON ({e})")),
    };
    let Some(content) = doc.pointer("/choices/0/message/content").and_then(Value::as_str) else {
        return Answer::Invalid("the answer has no choices[0].message.content".into());
    };
    let value: Value = match serde_json::from_str(content) {
        Ok(v) => v,
        Err(e) => return Answer::Invalid(format!("the model's content is not JSON ({e})")),
    };
    let errors: Vec<String> = output_schema
        .iter_errors(&value)
        .take(5)
        .map(|e| {
            let path = e.instance_path.as_str();
            format!("{}: {e}", if path.is_empty() { "/" } else { path })
        })
        .collect();
    if errors.is_empty() {
        Answer::Valid(value)
    } else {
        Answer::Invalid(format!("the model's answer does not match the outputSchema: {}", errors.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> LlmBinding {
        serde_json::from_value(json!({
            "baseUrl": "https://api.openai.com/v1/", "model": "gpt-4o-mini", "apiKeySecret": "OPENAI_API_KEY",
            "system": "Be brief.", "prompt": "Classify {{lead.company.name}} ({{lead.company.domain?}})"
        }))
        .unwrap()
    }

    fn schema() -> jsonschema::Validator {
        jsonschema::validator_for(&json!({"type": "object", "properties": {"industry": {"type": "string"}},
                                          "required": ["industry"], "additionalProperties": false}))
        .unwrap()
    }

    fn answer(content: &str) -> Vec<u8> {
        json!({"choices": [{"message": {"role": "assistant", "content": content}}],
               "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_valid_binding_validates_and_names_its_key() {
        let b = binding();
        assert_eq!(b.validate(), Ok(()));
        assert_eq!(b.endpoint(), "https://api.openai.com/v1/chat/completions");
        assert_eq!(b.provider_name(), "api.openai.com");
        assert_eq!(b.secret_names().into_iter().collect::<Vec<_>>(), ["OPENAI_API_KEY"]);
    }

    #[test]
    fn secrets_in_prompts_and_bad_fields_are_refused() {
        let mut b = binding();
        b.prompt = "key {{secrets.OPENAI_API_KEY}}".into();
        b.base_url = "ftp://x".into();
        b.api_key_secret = "lower".into();
        let errs = b.validate().unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn the_request_asks_for_json_under_the_schema() {
        let body = binding().request_body(
            Some("Be brief."),
            "Classify Acme",
            "company_classify",
            &json!({"$schema": "x", "type": "object"}),
        );
        assert_eq!(body["response_format"]["json_schema"]["schema"], json!({"type": "object"}));
        assert_eq!(body["response_format"]["json_schema"]["strict"], true);
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][1]["content"], "Classify Acme");
    }

    #[test]
    fn the_model_is_never_asked_for_evidence() {
        let out = json!({"$schema": "x", "type": "object",
            "properties": {"industry": {"type": "string"}, "confidence": {"type": "number"}, "evidence": {"type": "object"}},
            "required": ["industry", "confidence", "evidence"], "additionalProperties": false});
        let asked = answer_schema(&out);
        assert_eq!(asked["properties"].as_object().unwrap().keys().collect::<Vec<_>>(), ["confidence", "industry"]);
        assert_eq!(asked["required"], json!(["industry", "confidence"]));
        assert!(asked.get("$schema").is_none());
        assert!(wants_evidence(&out) && !wants_evidence(&asked));
        let body = binding().request_body(None, "p", "s", &out);
        assert_eq!(body["response_format"]["json_schema"]["schema"], asked_schema(&out));
    }

    #[test]
    fn the_model_is_asked_within_the_shared_strict_subset_and_held_to_the_whole_schema() {
        let out = json!({"type": "object",
            "properties": {
                "summary": {"type": "string", "maxLength": 400},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1, "description": "How sure."},
                "tags": {"type": "array", "maxItems": 3, "items": {"type": "string", "pattern": "^[a-z]+$"}},
                "format": {"type": "string", "enum": ["a", "b"]},
                "site": {"anyOf": [{"type": "string", "format": "uri"}, {"type": "null"}]},
                "evidence": {"type": "object"}},
            "required": ["summary", "confidence", "tags", "format", "site"], "additionalProperties": false});
        let asked = asked_schema(&out);
        let p = &asked["properties"];
        assert_eq!(p["summary"], json!({"type": "string", "description": "Must be at most 400 characters long."}));
        assert_eq!(p["confidence"]["description"], "How sure. Must be at least 0, at most 1.");
        assert!(p["confidence"].get("minimum").is_none() && p["confidence"].get("maximum").is_none());
        assert_eq!(p["tags"]["description"], "Must be at most 3 items.");
        assert_eq!(p["tags"]["items"]["description"], "Must be matching the regular expression ^[a-z]+$.");
        assert!(p["tags"]["items"].get("pattern").is_none());
        assert_eq!(p["format"], json!({"type": "string", "enum": ["a", "b"]}), "a property named `format` stays");
        assert_eq!(p["site"]["anyOf"][0], json!({"type": "string", "description": "Must be in uri format."}));
        assert!(p.get("evidence").is_none());
        assert_eq!(asked["required"], out["required"]);
        assert_eq!(asked["additionalProperties"], false);
        let keywords = asked.to_string();
        for k in ["minimum", "maximum", "maxLength", "maxItems", "\"pattern\"", "\"format\":\"uri"] {
            assert!(!keywords.contains(k), "{k} in {keywords}");
        }
        // The answer is still checked against every constraint.
        let whole = jsonschema::validator_for(&answer_schema(&out)).unwrap();
        let answer = |confidence: f64, summary: &str| json!({"summary": summary, "confidence": confidence, "tags": ["x"], "format": "a", "site": null});
        assert!(whole.is_valid(&answer(0.9, "ok")));
        assert!(!whole.is_valid(&answer(1.5, "ok")), "confidence above 1");
        assert!(!whole.is_valid(&answer(0.9, &"x".repeat(401))), "summary over 400 characters");
        assert!(jsonschema::validator_for(&asked).unwrap().is_valid(&answer(1.5, "ok")), "the asked schema is looser");
        let body = binding().request_body(None, "p", "s", &out);
        assert_eq!(body["response_format"]["json_schema"]["schema"], asked);
    }

    #[test]
    fn answers_are_parsed_and_validated() {
        let v = schema();
        assert_eq!(
            parse_answer(&answer(r#"{"industry":"Software"}"#), &v),
            Answer::Valid(json!({"industry": "Software"}))
        );
        assert!(matches!(parse_answer(&answer("Sure! Here it is"), &v), Answer::Invalid(m) if m.contains("not JSON")));
        assert!(
            matches!(parse_answer(&answer(r#"{"industry":5}"#), &v), Answer::Invalid(m) if m.contains("outputSchema"))
        );
        assert!(matches!(parse_answer(b"{}", &v), Answer::Invalid(m) if m.contains("content")));
        assert_eq!(
            usage_of(&answer("{}")),
            Usage { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17, calls: 1 }
        );
    }
}
