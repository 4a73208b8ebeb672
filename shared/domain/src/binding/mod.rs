//! How a catalog entry is computed: its `toolBinding`.
//!
//! `{"type":"builtin","provider":"<slug>"}` runs a function of
//! [`crate::providers`]; `{"type":"http", ...}` calls an outside provider
//! ([`HttpBinding`]). The pure parts of a call live here: rendering the
//! request from placeholders ([`template`]) and reading the response
//! ([`response`]); the app layer sends it. `{"type":"llm", ...}` asks an
//! OpenAI-compatible chat-completions API for JSON ([`llm`]), and
//! `{"type":"waterfall", ...}` tries other enrichments in order
//! ([`waterfall`]).

pub mod llm;
pub mod response;
pub mod template;
pub mod waterfall;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use llm::LlmBinding;
pub use response::{below_min_confidence, map_response, map_response_at, Mapped};
pub use template::{cache_key, render, Missing, Rendered, Values};
pub use waterfall::WaterfallBinding;

/// `toolBinding` of a catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ToolBinding {
    Builtin { provider: String },
    Http(Box<HttpBinding>),
    Llm(Box<LlmBinding>),
    Waterfall(Box<WaterfallBinding>),
}

impl ToolBinding {
    pub fn http(&self) -> Option<&HttpBinding> {
        match self {
            ToolBinding::Http(h) => Some(h),
            _ => None,
        }
    }

    /// Names of the secrets its calls need (none for built-ins and
    /// waterfalls: a waterfall skips the steps whose secrets are missing).
    pub fn secret_names(&self) -> BTreeSet<String> {
        match self {
            ToolBinding::Http(h) => h.secret_names(),
            ToolBinding::Llm(l) => l.secret_names(),
            ToolBinding::Builtin { .. } | ToolBinding::Waterfall(_) => BTreeSet::new(),
        }
    }

    /// Checks a binding a catalog file declares; each problem names its field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        match self {
            ToolBinding::Http(h) => h.validate(),
            ToolBinding::Llm(l) => l.validate(),
            ToolBinding::Waterfall(w) => w.validate(),
            ToolBinding::Builtin { .. } => Ok(()),
        }
    }

    /// Lead attribute keys the binding reads (`{{lead.attributes.<key>}}`,
    /// waterfall filters), so the worker loads them with the Leads.
    pub fn attribute_keys(&self) -> Vec<String> {
        let mut keys = match self {
            ToolBinding::Http(h) => template::attribute_keys_of(&h.placeholders()),
            ToolBinding::Llm(l) => template::attribute_keys_of(&l.placeholders()),
            ToolBinding::Waterfall(w) => w.attribute_keys(),
            ToolBinding::Builtin { .. } => vec![],
        };
        keys.sort();
        keys.dedup();
        keys
    }
}

/// A declarative HTTP call (see the README, "Adding a provider").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpBinding {
    /// The provider's name, reported as `metadata.provider` and keying the
    /// rate limit. Defaults to the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub request: RequestTemplate,
    pub response: ResponseMapping,
    /// Total time per call (connect to last body byte). Default 10 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Default: the smaller of 3 s and `timeoutMs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// Calls per Lead, retries included. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Calls per second to this provider across the worker. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<u32>,
    /// Calls in flight per chunk of Leads. Default 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit: Option<CircuitSettings>,
    /// What a provider means by an error status, where it departs from HTTP's
    /// usual sense: Hunter answers 403 when calls come too fast and 429 when
    /// the month's quota is spent. Keys are 4xx statuses.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub status_codes: BTreeMap<String, StatusMeaning>,
}

/// How an error status is treated (see `HttpBinding::status_codes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusMeaning {
    /// Too many calls: retried with backoff (`PROVIDER_RATE_LIMITED` when the
    /// retries run out).
    RateLimited,
    /// The account's credits or quota are used up: not retried, counted
    /// against the circuit (`PROVIDER_QUOTA_EXCEEDED`).
    QuotaExceeded,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestTemplate {
    /// GET, POST, PUT, PATCH or DELETE.
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A JSON body (sent with `content-type: application/json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseMapping {
    /// JSON pointer; the Lead is found when it holds a non-null, non-empty value.
    pub found: String,
    /// Output field → JSON pointer into the response body.
    pub result: BTreeMap<String, String>,
    /// JSON pointer to the provider's id for the call (`metadata.providerSubmissionId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<String>,
    /// How the result's `confidence` (0–1) is read from the answer. When
    /// set, the result also carries `evidence` (provider, fetchedAt and the
    /// raw fields read), and `input.minConfidence` can turn a hit into a miss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<ConfidenceRule>,
}

/// `response.confidence`: a provider's own score scaled to 0–1
/// (`{"pointer": "/data/score", "scale": 100}`), a table of its labels
/// (`{"pointer": "/person/email_status", "values": {"verified": 0.9}, "default": 0.4}`),
/// or a fixed figure for providers that give none (`{"default": 0.6}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfidenceRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The provider's score is divided by this (100 for a 0–100 score).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Label → confidence, for providers that grade with words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, f64>>,
    /// When the pointer holds nothing usable (or there is no pointer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<f64>,
}

impl ConfidenceRule {
    pub fn validate(&self, errors: &mut Vec<String>) {
        let in_range = |v: f64| (0.0..=1.0).contains(&v);
        if let Some(p) = &self.pointer {
            if !p.starts_with('/') {
                errors.push("response.confidence.pointer must be a JSON pointer".into());
            }
        }
        if self.pointer.is_none() && self.default.is_none() {
            errors.push("response.confidence needs a pointer or a default".into());
        }
        if self.scale.is_some() && self.values.is_some() {
            errors.push("response.confidence takes scale or values, not both".into());
        }
        if self.scale.is_some_and(|s| s.is_nan() || s <= 0.0) {
            errors.push("response.confidence.scale must be positive".into());
        }
        if self.default.is_some_and(|d| !in_range(d)) || self.values.iter().flatten().any(|(_, v)| !in_range(*v)) {
            errors.push("response.confidence values must be from 0 to 1".into());
        }
    }

    /// The confidence an answer earns, clamped to 0–1.
    pub fn of(&self, doc: &Value) -> Option<f64> {
        let raw = self.pointer.as_deref().and_then(|p| doc.pointer(p)).filter(|v| !v.is_null());
        let read = match (raw, &self.values) {
            (Some(Value::String(label)), Some(table)) => table.get(&label.to_lowercase()).copied(),
            (Some(v), None) => v.as_f64().map(|n| n / self.scale.unwrap_or(1.0)),
            _ => None,
        };
        read.or(self.default).map(|c| (c.clamp(0.0, 1.0) * 1000.0).round() / 1000.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheSettings {
    /// How long a found result is reused (0 turns the cache off). Default 30 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// Whether a result served from the cache is charged as a hit. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_hits: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitSettings {
    /// Consecutive failed Leads that open the circuit. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    /// How long it stays open before one probe call. Default 30 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_seconds: Option<u64>,
}

pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
pub const MAX_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const MAX_ATTEMPTS: u32 = 5;
pub const DEFAULT_RATE_PER_SECOND: u32 = 10;
pub const MAX_RATE_PER_SECOND: u32 = 10_000;
pub const DEFAULT_CONCURRENCY: u32 = 16;
pub const MAX_CONCURRENCY: u32 = 64;
pub const DEFAULT_CACHE_TTL_SECONDS: u64 = 30 * 24 * 3600;
pub const MAX_CACHE_TTL_SECONDS: u64 = 365 * 24 * 3600;
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
pub const DEFAULT_OPEN_SECONDS: u64 = 30;

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

impl HttpBinding {
    /// `statusCodes` by status (keys that are not statuses were refused by
    /// `validate`).
    pub fn status_meanings(&self) -> BTreeMap<u16, StatusMeaning> {
        self.status_codes.iter().filter_map(|(k, v)| Some((k.parse().ok()?, *v))).collect()
    }
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)
    }
    pub fn connect_timeout_ms(&self) -> u64 {
        self.connect_timeout_ms.unwrap_or(3_000).min(self.timeout_ms())
    }
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
    }
    pub fn rate_per_second(&self) -> u32 {
        self.rate_per_second.unwrap_or(DEFAULT_RATE_PER_SECOND)
    }
    pub fn concurrency(&self) -> u32 {
        self.concurrency.unwrap_or(DEFAULT_CONCURRENCY)
    }
    pub fn cache_ttl_seconds(&self) -> u64 {
        self.cache.as_ref().and_then(|c| c.ttl_seconds).unwrap_or(DEFAULT_CACHE_TTL_SECONDS)
    }
    pub fn charge_cache_hits(&self) -> bool {
        self.cache.as_ref().and_then(|c| c.charge_hits).unwrap_or(true)
    }
    pub fn failure_threshold(&self) -> u32 {
        self.circuit.as_ref().and_then(|c| c.failure_threshold).unwrap_or(DEFAULT_FAILURE_THRESHOLD)
    }
    pub fn open_seconds(&self) -> u64 {
        self.circuit.as_ref().and_then(|c| c.open_seconds).unwrap_or(DEFAULT_OPEN_SECONDS)
    }

    /// The provider's name: `provider`, else the URL template's host.
    pub fn provider_name(&self) -> String {
        if let Some(p) = &self.provider {
            return p.clone();
        }
        url::Url::parse(&template::sample_url(&self.request.url))
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "http".to_string())
    }

    /// Names of the secrets the request uses, sorted.
    pub fn secret_names(&self) -> BTreeSet<String> {
        self.placeholders()
            .into_iter()
            .filter_map(|p| match p {
                Ok(template::Placeholder::Secret(name)) => Some(name),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn placeholders(&self) -> Vec<Result<template::Placeholder, String>> {
        let mut out = template::placeholders_in(&self.request.url);
        for (k, v) in &self.request.headers {
            out.extend(template::placeholders_in(k));
            out.extend(template::placeholders_in(v));
        }
        if let Some(b) = &self.request.body {
            template::walk_strings(b, &mut |s| out.extend(template::placeholders_in(s)));
        }
        out
    }

    /// Checks the binding a catalog file or a workspace declares; each
    /// problem is one message naming its field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = vec![];
        if !METHODS.contains(&self.request.method.as_str()) {
            errors.push(format!("request.method must be one of {}", METHODS.join(", ")));
        }
        for p in self.placeholders() {
            if let Err(e) = p {
                errors.push(e);
            }
        }
        if template::placeholders_in(&self.request.url).iter().all(Result::is_ok) {
            if let Err(e) = template::check_url_template(&self.request.url) {
                errors.push(format!("request.url: {e}"));
            }
        }
        for (k, v) in &self.request.headers {
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
                errors.push(format!("request.headers: `{k}` is not a header name"));
            }
            if v.chars().any(char::is_control) {
                errors.push(format!("request.headers.{k}: control characters are not allowed"));
            }
        }
        if let Some(b) = &self.request.body {
            if self.request.method == "GET" || self.request.method == "DELETE" {
                errors.push(format!("request.body is not sent with {}", self.request.method));
            }
            if !(b.is_object() || b.is_array()) {
                errors.push("request.body must be a JSON object or array".into());
            }
        }
        let remappable = |c: &str| c.parse::<u16>().is_ok_and(|c| (400..500).contains(&c) && c != 404);
        if let Some(code) = self.status_codes.keys().find(|c| !remappable(c)) {
            errors.push(format!("statusCodes: `{code}` is not a 4xx error status one can remap (404 is a miss)"));
        }
        let pointer_ok = |p: &str| p.is_empty() || p.starts_with('/');
        if !pointer_ok(&self.response.found) {
            errors.push("response.found must be a JSON pointer (\"\" or starting with /)".into());
        }
        if self.response.result.is_empty() {
            errors.push("response.result must map at least one output field".into());
        }
        for (field, p) in &self.response.result {
            if field.is_empty() {
                errors.push("response.result: output field names must not be empty".into());
            }
            if !pointer_ok(p) {
                errors.push(format!("response.result.{field} must be a JSON pointer"));
            }
        }
        if let Some(p) = &self.response.submission_id {
            if !pointer_ok(p) {
                errors.push("response.submissionId must be a JSON pointer".into());
            }
        }
        if let Some(c) = &self.response.confidence {
            c.validate(&mut errors);
        }
        let mut range = |name: &str, v: Option<u64>, lo: u64, hi: u64| {
            if let Some(v) = v {
                if !(lo..=hi).contains(&v) {
                    errors.push(format!("{name} must be from {lo} to {hi}"));
                }
            }
        };
        range("timeoutMs", self.timeout_ms, 1, MAX_TIMEOUT_MS);
        range("connectTimeoutMs", self.connect_timeout_ms, 1, MAX_TIMEOUT_MS);
        range("maxAttempts", self.max_attempts.map(u64::from), 1, MAX_ATTEMPTS as u64);
        range("ratePerSecond", self.rate_per_second.map(u64::from), 1, MAX_RATE_PER_SECOND as u64);
        range("concurrency", self.concurrency.map(u64::from), 1, MAX_CONCURRENCY as u64);
        range("cache.ttlSeconds", self.cache.as_ref().and_then(|c| c.ttl_seconds), 0, MAX_CACHE_TTL_SECONDS);
        range(
            "circuit.failureThreshold",
            self.circuit.as_ref().and_then(|c| c.failure_threshold).map(u64::from),
            1,
            1000,
        );
        range("circuit.openSeconds", self.circuit.as_ref().and_then(|c| c.open_seconds), 1, 3600);
        if let Some(p) = &self.provider {
            if p.is_empty() || p.len() > 64 || p.chars().any(char::is_control) {
                errors.push("provider must be 1 to 64 printable characters".into());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests;
