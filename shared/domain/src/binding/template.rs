//! Placeholders in an HTTP binding's request: `{{lead.<path>}}`,
//! `{{input.<path>}}` and `{{secrets.<NAME>}}`.
//!
//! A string that is exactly one placeholder takes the value's JSON type (a
//! number stays a number in a JSON body); placeholders inside a longer string
//! are interpolated as text, and percent-encoded inside a URL. A path is
//! dotted (`company.domain`, `contacts.0.value`) and read through
//! serde_json's JSON pointer. A value that is absent, null or `""` is
//! [`Missing`]: the Lead is skipped (`missing_input`) and no call is made.
//! A `?` after the path (`{{input.minLikelihood?}}`, `{{lead.title?}}`)
//! makes it optional: when absent, a query parameter or JSON field that is
//! just that placeholder is left out, and inside text it is empty.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use regex::Regex;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::HttpBinding;
use crate::lead::Lead;

/// RFC 3986 unreserved characters stay; everything else is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    Lead(String),
    Input(String),
    Secret(String),
    /// `{{lead.<path>?}}`: left out when absent.
    OptLead(String),
    /// `{{input.<path>?}}`: left out when absent.
    OptInput(String),
}

/// What a Lead, the run's input or the secrets lacked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    #[error("the lead has no `{0}`")]
    Lead(String),
    #[error("the run's input has no `{0}`")]
    Input(String),
    #[error("the secret `{0}` is not configured")]
    Secret(String),
}

/// Where placeholder values come from.
pub struct Values<'a> {
    /// The Lead as [`lead_context`] gives it.
    pub lead: &'a Value,
    pub input: &'a Value,
    pub secret: &'a dyn Fn(&str) -> Option<String>,
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

fn any_braces() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"\{\{(.*?)\}\}").expect("static regex"))
}

fn inner() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(
            r"^\s*(?:(lead|input)\.([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)(\?)?|secrets\.([A-Z][A-Z0-9_]{0,63}))\s*$",
        )
        .expect("static regex")
    })
}

fn parse_inner(text: &str) -> Result<Placeholder, String> {
    let c = inner().captures(text).ok_or_else(|| {
        format!("`{{{{{text}}}}}` is not a placeholder: use lead.<path>, input.<path> or secrets.<NAME> (A-Z, 0-9, _)")
    })?;
    let optional = c.get(3).is_some();
    Ok(match (c.get(1).map(|m| m.as_str()), c.get(2), c.get(4)) {
        (Some("lead"), Some(p), _) if optional => Placeholder::OptLead(p.as_str().to_string()),
        (Some("lead"), Some(p), _) => Placeholder::Lead(p.as_str().to_string()),
        (Some(_), Some(p), _) if optional => Placeholder::OptInput(p.as_str().to_string()),
        (Some(_), Some(p), _) => Placeholder::Input(p.as_str().to_string()),
        (_, _, Some(name)) => Placeholder::Secret(name.as_str().to_string()),
        _ => return Err(format!("`{{{{{text}}}}}` is not a placeholder")),
    })
}

/// Every placeholder in `s`, or an error for each malformed one.
pub fn placeholders_in(s: &str) -> Vec<Result<Placeholder, String>> {
    let mut out: Vec<Result<Placeholder, String>> =
        any_braces().captures_iter(s).map(|c| parse_inner(c.get(1).map_or("", |m| m.as_str()))).collect();
    let stripped = any_braces().replace_all(s, "");
    if stripped.contains("{{") || stripped.contains("}}") {
        out.push(Err(format!("`{s}` has an unbalanced `{{{{` or `}}}}`")));
    }
    out
}

/// Calls `f` on every string inside `v` (keys are not templated).
pub fn walk_strings(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| walk_strings(x, f)),
        Value::Object(m) => m.values().for_each(|x| walk_strings(x, f)),
        _ => {}
    }
}

/// The Lead as placeholders see it: its JSON, plus `email`, `phone`,
/// `website` (its first contact of that type) and `linkedin` (its first
/// LinkedIn social URL), so bindings need not index into arrays.
pub fn lead_context(lead: &Lead) -> Value {
    let mut v = serde_json::to_value(lead).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        for kind in ["email", "phone", "website"] {
            let first = lead
                .contacts
                .iter()
                .find(|c| c.kind.trim().eq_ignore_ascii_case(kind))
                .map(|c| c.value.trim())
                .filter(|s| !s.is_empty());
            if let Some(value) = first {
                m.entry(kind).or_insert_with(|| json!(value));
            }
        }
        if let Some(s) = lead.socials.iter().find(|s| s.url.to_ascii_lowercase().contains("linkedin.com/")) {
            m.entry("linkedin").or_insert_with(|| json!(s.url));
        }
    }
    v
}

fn pointer_of(path: &str) -> String {
    path.split('.').map(|seg| format!("/{}", seg.replace('~', "~0").replace('/', "~1"))).collect()
}

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null() && v.as_str() != Some(""))
}

/// A placeholder's value; `None` for an optional one that is absent.
fn value_of(p: &Placeholder, values: &Values<'_>) -> Result<Option<Value>, Missing> {
    match p {
        Placeholder::Lead(path) => present(values.lead.pointer(&pointer_of(path)))
            .cloned()
            .map(Some)
            .ok_or_else(|| Missing::Lead(path.clone())),
        Placeholder::Input(path) => present(values.input.pointer(&pointer_of(path)))
            .cloned()
            .map(Some)
            .ok_or_else(|| Missing::Input(path.clone())),
        Placeholder::OptLead(path) => Ok(present(values.lead.pointer(&pointer_of(path))).cloned()),
        Placeholder::OptInput(path) => Ok(present(values.input.pointer(&pointer_of(path))).cloned()),
        Placeholder::Secret(name) => (values.secret)(name)
            .filter(|s| !s.is_empty())
            .map(|s| Some(Value::String(s)))
            .ok_or_else(|| Missing::Secret(name.clone())),
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Renders one string. `encode` percent-encodes interpolated values (URLs).
/// `None`: the string is one optional placeholder whose value is absent.
fn render_str(s: &str, values: &Values<'_>, encode: bool) -> Result<Option<Value>, Missing> {
    let whole = any_braces().find(s).is_some_and(|m| m.start() == 0 && m.end() == s.len());
    if whole {
        if let Some(Ok(p)) = placeholders_in(s).into_iter().next() {
            return value_of(&p, values);
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for c in any_braces().captures_iter(s) {
        let m = c.get(0).expect("whole match");
        out.push_str(&s[last..m.start()]);
        match parse_inner(c.get(1).map_or("", |x| x.as_str())) {
            Ok(p) => {
                let text = value_of(&p, values)?.map(|v| as_text(&v)).unwrap_or_default();
                if encode {
                    out.extend(utf8_percent_encode(&text, COMPONENT));
                } else {
                    out.push_str(&text);
                }
            }
            // Validated bindings have none; an unknown form stays literal.
            Err(_) => out.push_str(m.as_str()),
        }
        last = m.end();
    }
    out.push_str(&s[last..]);
    Ok(Some(Value::String(out)))
}

/// A JSON body: a field or element that is an absent optional placeholder is left out.
fn render_json(v: &Value, values: &Values<'_>) -> Result<Option<Value>, Missing> {
    Ok(Some(match v {
        Value::String(s) => return render_str(s, values, false),
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for x in a {
                out.extend(render_json(x, values)?);
            }
            Value::Array(out)
        }
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                if let Some(v) = render_json(x, values)? {
                    out.insert(k.clone(), v);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }))
}

/// A URL: values percent-encoded; a query parameter whose value is an
/// absent optional placeholder (`&min_likelihood={{input.minLikelihood?}}`)
/// is left out.
fn render_url(url: &str, values: &Values<'_>) -> Result<String, Missing> {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let mut out = render_str(path, values, true)?.map(|v| as_text(&v)).unwrap_or_default();
    if let Some(q) = query {
        let mut pairs = vec![];
        for pair in q.split('&') {
            let rendered = match pair.split_once('=') {
                Some((k, v)) => match render_str(v, values, true)? {
                    Some(value) => {
                        let key = render_str(k, values, true)?.map(|k| as_text(&k)).unwrap_or_default();
                        // A value that is one placeholder comes back as the value
                        // itself (not interpolated, so not encoded yet).
                        let whole = any_braces().find(v).is_some_and(|m| m.start() == 0 && m.end() == v.len());
                        let text = as_text(&value);
                        let text = if whole { utf8_percent_encode(&text, COMPONENT).to_string() } else { text };
                        Some(format!("{key}={text}"))
                    }
                    None => None,
                },
                None => render_str(pair, values, true)?.map(|v| as_text(&v)),
            };
            pairs.extend(rendered);
        }
        if !pairs.is_empty() {
            out.push('?');
            out.push_str(&pairs.join("&"));
        }
    }
    Ok(out)
}

/// Renders a text template (an LLM prompt): absent optional placeholders
/// are empty, values are text.
pub fn render_text(template: &str, values: &Values<'_>) -> Result<String, Missing> {
    Ok(render_str(template, values, false)?.map(|v| as_text(&v)).unwrap_or_default())
}

/// The value of every `lead.`/`input.` placeholder in `templates` that has
/// one, keyed by the placeholder (`"lead.company.domain"`): what a rendered
/// prompt rested on, for a result's `evidence`. Secrets are never included.
pub fn values_used(templates: &[&str], values: &Values<'_>) -> Map<String, Value> {
    let mut out = Map::new();
    for p in templates.iter().flat_map(|t| placeholders_in(t)).flatten() {
        let name = match &p {
            Placeholder::Lead(path) | Placeholder::OptLead(path) => format!("lead.{path}"),
            Placeholder::Input(path) | Placeholder::OptInput(path) => format!("input.{path}"),
            Placeholder::Secret(_) => continue,
        };
        if let Ok(Some(v)) = value_of(&p, values) {
            out.insert(name, v);
        }
    }
    out
}

/// Lead attribute keys named by `{{lead.attributes.<key>...}}` placeholders.
pub fn attribute_keys_of(placeholders: &[Result<Placeholder, String>]) -> Vec<String> {
    placeholders
        .iter()
        .filter_map(|p| match p {
            Ok(Placeholder::Lead(path) | Placeholder::OptLead(path)) => {
                path.strip_prefix("attributes.").and_then(|r| r.split('.').next()).map(str::to_string)
            }
            _ => None,
        })
        .collect()
}

/// The request for one Lead. Secrets are looked up last, so a Lead that
/// lacks data is reported as such even when a secret is missing too.
pub fn render(b: &HttpBinding, values: &Values<'_>) -> Result<Rendered, Missing> {
    let no_secrets =
        Values { lead: values.lead, input: values.input, secret: &|name| Some(format!("{{{{secrets.{name}}}}}")) };
    render_with(b, &no_secrets)?;
    render_with(b, values)
}

fn render_with(b: &HttpBinding, values: &Values<'_>) -> Result<Rendered, Missing> {
    let url = render_url(&b.request.url, values)?;
    let mut headers = Vec::with_capacity(b.request.headers.len());
    for (k, v) in &b.request.headers {
        if let Some(v) = render_str(v, values, false)? {
            headers.push((k.clone(), as_text(&v)));
        }
    }
    let body = match &b.request.body {
        Some(x) => Some(render_json(x, values)?.unwrap_or(Value::Null)),
        None => None,
    };
    Ok(Rendered { method: b.request.method.clone(), url, headers, body })
}

/// The cache key of one Lead's request: the binding itself and the request
/// it renders, normalised (query parameters sorted, header names lowercased
/// and sorted, the body as canonical JSON), with secrets left as their
/// placeholders: a key never depends on, nor reveals, a secret's value.
pub fn cache_key(b: &HttpBinding, lead: &Value, input: &Value) -> Result<String, Missing> {
    let masked = Values { lead, input, secret: &|name| Some(format!("{{{{secrets.{name}}}}}")) };
    let r = render_with(b, &masked)?;
    let url = match url::Url::parse(&r.url) {
        Ok(mut u) => {
            let mut pairs: Vec<(String, String)> =
                u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            if pairs.is_empty() {
                u.set_query(None);
            } else {
                pairs.sort();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => r.url.clone(),
    };
    let headers: BTreeMap<String, &String> = r.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    let canonical = json!({
        "binding": b,
        "method": r.method,
        "url": url,
        "headers": headers,
        "body": r.body,
    });
    Ok(hex::encode(Sha256::digest(canonical.to_string().as_bytes())))
}

/// The URL template with every placeholder replaced by `x`: its scheme,
/// host and port are the ones every call uses.
pub fn sample_url(url: &str) -> String {
    any_braces().replace_all(url, "x").into_owned()
}

/// A URL template must be an absolute http(s) URL once rendered, and its
/// scheme, host and port are fixed: placeholders fill the path and query
/// only, so the host can be checked when the binding is accepted.
pub fn check_url_template(url: &str) -> Result<(), String> {
    let sample = sample_url(url);
    let parsed = url::Url::parse(&sample).map_err(|e| format!("not an absolute URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("only http and https URLs are allowed, not `{}`", parsed.scheme()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    let authority = url.split_once("://").map(|(_, r)| r.split(['/', '?', '#']).next().unwrap_or("")).unwrap_or("");
    if authority.contains("{{") {
        return Err("the host must not come from a placeholder".into());
    }
    Ok(())
}
