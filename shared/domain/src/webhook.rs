//! Webhooks as the Standard Webhooks spec (standardwebhooks.com) defines
//! them: the subscription's rules (URL, event filter), its secrets
//! (`whsec_` + base64 of random bytes) and the signature every delivery
//! carries.
//!
//! `webhook-signature` is `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))
//! with the secret's decoded bytes as the key; while a rotated secret still
//! signs, the header carries one signature per secret, space-separated.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::events::RunEventType;
use crate::DomainError;

/// The secret's prefix (the spec's format).
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes per secret (the spec asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;
/// The test event's type; sent whatever a webhook's filter says.
pub const TEST_EVENT: &str = "webhook.test";
/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_DESCRIPTION_LEN: usize = 500;
/// Webhooks a workspace may have.
pub const MAX_WEBHOOKS: usize = 20;

/// Which events a webhook receives: every one (`["*"]`) or the named ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    All,
    Only(Vec<RunEventType>),
}

impl EventFilter {
    /// From the request's `events`: `["*"]`, or known names (no repeats kept).
    pub fn parse(v: &Value) -> Result<EventFilter, DomainError> {
        let field = || json!({"field": "events", "known": known_names()});
        let list =
            v.as_array().ok_or_else(|| DomainError::invalid_with("events must be an array of names", field()))?;
        if list.is_empty() {
            return Err(DomainError::invalid_with("events must name at least one event (or \"*\")", field()));
        }
        let names: Vec<&str> = list.iter().map(|e| e.as_str().unwrap_or("")).collect();
        if names.contains(&"*") {
            if names.len() > 1 {
                return Err(DomainError::invalid_with("\"*\" stands alone in events", field()));
            }
            return Ok(EventFilter::All);
        }
        let mut out = vec![];
        let mut unknown = vec![];
        for n in names {
            match RunEventType::parse(n) {
                Some(t) if !out.contains(&t) => out.push(t),
                Some(_) => {}
                None => unknown.push(n.to_string()),
            }
        }
        if !unknown.is_empty() {
            return Err(DomainError::invalid_with(
                format!("unknown event name(s): {}", unknown.join(", ")),
                json!({"field": "events", "unknown": unknown, "known": known_names()}),
            ));
        }
        Ok(EventFilter::Only(out))
    }

    /// The stored and shown form.
    pub fn names(&self) -> Vec<String> {
        match self {
            EventFilter::All => vec!["*".into()],
            EventFilter::Only(ts) => ts.iter().map(|t| t.as_str().to_string()).collect(),
        }
    }

    /// From the stored form (names written by [`EventFilter::names`]).
    pub fn from_names(names: &[String]) -> EventFilter {
        if names.iter().any(|n| n == "*") {
            return EventFilter::All;
        }
        EventFilter::Only(names.iter().filter_map(|n| RunEventType::parse(n)).collect())
    }

    pub fn accepts(&self, t: RunEventType) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Only(ts) => ts.contains(&t),
        }
    }
}

fn known_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = RunEventType::ALL.iter().map(|t| t.as_str()).collect();
    v.push("*");
    v
}

/// A webhook URL's shape: absolute http(s) (https only when `https_only`),
/// with a host, no credentials and no fragment. Where it points (refused
/// addresses) is the egress guard's to judge.
pub fn parse_url(raw: &str, https_only: bool) -> Result<url::Url, DomainError> {
    let field = |m: String| DomainError::invalid_with(m, json!({"field": "url"}));
    if raw.is_empty() || raw.len() > MAX_URL_LEN {
        return Err(field(format!("url must be 1 to {MAX_URL_LEN} characters")));
    }
    let u = url::Url::parse(raw).map_err(|e| field(format!("url is not an absolute URL: {e}")))?;
    match u.scheme() {
        "https" => {}
        "http" if !https_only => {}
        "http" => return Err(field("url must be https".into())),
        other => return Err(field(format!("url must be http(s), not {other}"))),
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(field("url has no host".into()));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(field("url must not carry credentials (sign requests with the secret instead)".into()));
    }
    if u.fragment().is_some() {
        return Err(field("url must not have a #fragment".into()));
    }
    Ok(u)
}

/// A fresh secret: `whsec_` + base64 of [`SECRET_BYTES`] random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", B64.encode(bytes))
}

/// The HMAC key of a secret: its base64 part, decoded.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).ok_or("a webhook secret starts with whsec_")?;
    B64.decode(b64).map_err(|_| "a webhook secret's body is base64".to_string())
}

/// One `v1,<base64>` signature of a message.
pub fn signature(key: &[u8], msg_id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per key, space-separated.
pub fn signature_header(keys: &[Vec<u8>], msg_id: &str, timestamp: i64, body: &str) -> String {
    keys.iter().map(|k| signature(k, msg_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// A delivery's body: `{type, timestamp, data}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "type")]
    pub event_type: String,
    pub timestamp: String,
    pub data: Value,
}

impl Envelope {
    pub fn body(&self) -> String {
        serde_json::to_string(self).expect("an envelope is JSON")
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// One POST of a delivery, as the log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at: String,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

impl Attempt {
    /// A 2xx is success; anything else (or no answer) is retried.
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(EventFilter::parse(&json!(["*"])).unwrap(), EventFilter::All);
        let f = EventFilter::parse(&json!([
            "enrichment.run.completed",
            "enrichment.run.failed",
            "enrichment.run.completed"
        ]))
        .unwrap();
        assert_eq!(f, EventFilter::Only(vec![RunEventType::Completed, RunEventType::Failed]));
        assert!(f.accepts(RunEventType::Failed) && !f.accepts(RunEventType::Created));
        assert_eq!(EventFilter::from_names(&f.names()), f);
        assert!(EventFilter::All.accepts(RunEventType::Cancelled));
        for bad in [json!([]), json!("*"), json!(["*", "enrichment.run.failed"]), json!(["run.done"]), json!([1])] {
            assert!(EventFilter::parse(&bad).is_err(), "{bad}");
        }
        let DomainError::InvalidRequest { details, .. } = EventFilter::parse(&json!(["nope"])).unwrap_err() else {
            panic!()
        };
        assert_eq!(details["unknown"], json!(["nope"]));
    }

    #[test]
    fn urls() {
        assert!(parse_url("https://hooks.example.com/x?y=1", true).is_ok());
        assert!(parse_url("http://hooks.example.com/x", false).is_ok());
        for (bad, https_only) in [
            ("http://hooks.example.com/x", true),
            ("ftp://hooks.example.com/", false),
            ("/relative", false),
            ("https://user:pw@hooks.example.com/", false),
            ("https://hooks.example.com/#frag", false),
            ("", false),
        ] {
            assert!(parse_url(bad, https_only).is_err(), "{bad}");
        }
        assert!(parse_url(&format!("https://a.example/{}", "x".repeat(MAX_URL_LEN)), false).is_err());
    }

    #[test]
    fn secrets_have_the_spec_format() {
        let s = new_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(secret_key(&s).unwrap().len(), SECRET_BYTES);
        assert_ne!(new_secret(), s);
        assert!(secret_key("sk_nope").is_err());
        assert!(secret_key("whsec_!!!").is_err());
    }

    #[test]
    fn signs_like_the_spec_example() {
        // The example of the Standard Webhooks specification.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let two = signature_header(&[key.clone(), vec![1, 2, 3]], "m", 1, "b");
        assert_eq!(two.split(' ').count(), 2);
        assert!(two.starts_with(&signature(&key, "m", 1, "b")));
    }

    #[test]
    fn only_2xx_succeeds() {
        let a = |c: Option<u16>| Attempt { at: String::new(), status_code: c, duration_ms: 1, error: None };
        assert!(a(Some(200)).succeeded() && a(Some(204)).succeeded());
        assert!(!a(Some(301)).succeeded() && !a(Some(500)).succeeded() && !a(None).succeeded());
    }
}
