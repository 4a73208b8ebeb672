//! The port every tool calls: one request of the public API in, the API's
//! status and JSON out. Two adapters sit behind it: the CLI's HTTP client
//! (`puffle mcp`, stdio) and the HTTP handlers called in process (the `mcp`
//! Lambda and the local server's `/mcp`). Either way a tool sees exactly what
//! `curl` would see, error bodies included.

use futures::future::BoxFuture;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub method: Method,
    /// Path segments, not yet percent-encoded: `["api", "enrichment", run_id]`.
    /// Each adapter encodes them, so an id can never change the route.
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    /// Whether repeating the request is harmless (a GET, or a create that
    /// carries an idempotency key): adapters may retry 429/503 only then.
    pub retry_safe: bool,
}

impl ApiRequest {
    pub fn get(segments: &[&str]) -> ApiRequest {
        ApiRequest {
            method: Method::Get,
            segments: segments.iter().map(|s| s.to_string()).collect(),
            query: vec![],
            body: None,
            retry_safe: true,
        }
    }

    pub fn post(segments: &[&str], body: Value) -> ApiRequest {
        ApiRequest {
            method: Method::Post,
            segments: segments.iter().map(|s| s.to_string()).collect(),
            query: vec![],
            body: Some(body),
            retry_safe: false,
        }
    }

    /// Adds `name=value` when the value is present.
    pub fn query(mut self, name: &str, value: Option<impl ToString>) -> ApiRequest {
        if let Some(v) = value {
            self.query.push((name.to_string(), v.to_string()));
        }
        self
    }

    pub fn retry_safe(mut self, safe: bool) -> ApiRequest {
        self.retry_safe = safe;
        self
    }

    /// `GET /api/enrichment/run_1?status=failed`, for logs and messages.
    pub fn display(&self) -> String {
        let mut s = format!("{} /{}", self.method.as_str(), self.segments.join("/"));
        for (i, (k, v)) in self.query.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(&format!("{k}={v}"));
        }
        s
    }
}

/// Whatever the API answered, 2xx or not.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiReply {
    pub status: u16,
    pub body: Value,
}

impl ApiReply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// No answer from the API at all (connection refused, timeout).
#[derive(Debug, Clone, PartialEq)]
pub struct Unreachable(pub String);

/// Who is calling: over Streamable HTTP, the MCP request's own
/// `Authorization` header, forwarded as is; over stdio, nothing (the adapter
/// holds the token the CLI resolved).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Caller {
    pub authorization: Option<String>,
}

pub trait Api: Send + Sync + 'static {
    fn call<'a>(&'a self, caller: &'a Caller, request: ApiRequest) -> BoxFuture<'a, Result<ApiReply, Unreachable>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_read_like_the_api_reference() {
        let r = ApiRequest::get(&["api", "enrichment", "run_1", "items"])
            .query("status", Some("failed"))
            .query("limit", None::<u32>)
            .query("cursor", Some("c"));
        assert_eq!(r.display(), "GET /api/enrichment/run_1/items?status=failed&cursor=c");
        assert!(r.retry_safe);
        let p = ApiRequest::post(&["api", "lists"], json!({}));
        assert!(!p.retry_safe, "a POST is sent once unless the caller says otherwise");
        assert!(p.retry_safe(true).retry_safe);
    }
}
