//! Reading a lambda_http request: body, query, path parameters.

use lambda_http::{Body, Request, RequestExt};
use puffle_domain::DomainError;
use serde_json::{json, Value};

/// Lambda's request payload limit; larger bodies are a 413.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    Invalid(DomainError),
}

pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

pub fn json_body(req: &Request) -> Result<Value, BodyError> {
    let bytes = body_bytes(req);
    if bytes.len() > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(BodyError::Invalid(DomainError::invalid("a JSON body is required")));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        BodyError::Invalid(DomainError::invalid_with(
            format!("the body is not valid JSON: {e}"),
            json!({"line": e.line(), "column": e.column()}),
        ))
    })
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A header whose value matters (it changes what the request does): present
/// but not UTF-8 is a 400, never silently "absent".
pub fn header_utf8<'a>(req: &'a Request, name: &str) -> Result<Option<&'a str>, DomainError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v.as_bytes()).map(Some).map_err(|_| {
            DomainError::invalid_with(format!("the {name} header is not valid UTF-8"), json!({"field": name}))
        }),
    }
}

pub fn query(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref().and_then(|q| q.first(name).map(str::to_string))
}

pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref().and_then(|p| p.first(name).map(str::to_string))
}

/// `limit` in `min..=max`, `default` when absent; anything else is a 400.
pub fn limit(req: &Request, default: usize, max: usize) -> Result<usize, DomainError> {
    match query(req, "limit") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(DomainError::invalid_with(
                format!("limit must be an integer from 1 to {max}"),
                json!({"field": "limit"}),
            )),
        },
    }
}

/// The path from `/api/` on (or `/mcp`), whatever stage prefix API Gateway added.
pub fn api_path(req: &Request) -> String {
    let p = req.uri().path();
    match p.find("/api/") {
        Some(i) => p[i..].trim_end_matches('/').to_string(),
        None if p.trim_end_matches('/').ends_with("/mcp") => "/mcp".to_string(),
        None => p.to_string(),
    }
}

/// Path parameters from the route pattern when API Gateway did not set them.
pub fn param_or_path(req: &Request, name: &str, pattern: &str) -> Option<String> {
    path_param(req, name).or_else(|| {
        crate::routes::match_path(pattern, &api_path(req))
            .and_then(|ps| ps.into_iter().find(|(k, _)| k == name).map(|(_, v)| v))
    })
}

/// The header that carries a request's correlation id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A caller's `X-Request-Id` is kept when it is a sane token (it goes into
/// logs, messages and a response header).
pub fn usable_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// The request's correlation id: the caller's `X-Request-Id` if usable,
/// else API Gateway's request id, else the invocation's, else a new one.
pub fn correlation_id(req: &Request) -> String {
    if let Some(id) = header(req, REQUEST_ID_HEADER).filter(|id| usable_request_id(id)) {
        return id.to_string();
    }
    let gateway = match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
        _ => None,
    };
    gateway
        .or_else(|| req.lambda_context_ref().map(|c| c.request_id.clone()))
        .filter(|id| usable_request_id(id))
        .unwrap_or_else(|| puffle_domain::ids::new_id("req"))
}

/// Every response says which request it answers, errors included.
pub fn with_request_id(mut resp: lambda_http::Response<Body>, id: &str) -> lambda_http::Response<Body> {
    if let Ok(v) = http::HeaderValue::from_str(id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        let mut b = http::Request::builder().uri("/api/health");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::Empty).unwrap()
    }

    #[test]
    fn a_sane_caller_id_is_kept_and_anything_else_replaced() {
        assert_eq!(correlation_id(&req(&[("x-request-id", "abc-123")])), "abc-123");
        let long = "x".repeat(129);
        for bad in ["", "has space", "quote\"", long.as_str()] {
            let id = correlation_id(&req(&[("x-request-id", bad)]));
            assert_ne!(id, bad);
            assert!(usable_request_id(&id), "{id}");
        }
        assert!(correlation_id(&req(&[])).starts_with("req_"));
    }
}
