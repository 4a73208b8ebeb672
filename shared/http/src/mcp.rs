//! `/mcp`: the MCP server over stateless Streamable HTTP, for the `mcp`
//! Lambda and the local server alike.
//!
//! Its tools reach the API in process: each tool call becomes the same
//! `lambda_http::Request` API Gateway would deliver and goes through
//! [`handlers::handle`], so it is authenticated, validated and answered
//! exactly as `/api/*` is — same JSON, same error codes — without a second
//! trip through API Gateway, and without the function having to know the
//! API's URL (which the template could only give it by making the function
//! depend on the API that routes to it: a cycle).

use std::collections::HashMap;

use futures::future::BoxFuture;
use http_body_util::BodyExt;
use lambda_http::{Body, Request, RequestExt, Response};
use puffle_app::App;
use puffle_mcp::{Api, ApiReply, ApiRequest, Caller, PuffleMcp, Unreachable};
use serde_json::Value;

use crate::errors::client_error;
use crate::handlers;
use crate::routes::{resolve, Function, Resolved};

/// Serves one `/mcp` request; `request_id` is its correlation id, which
/// every API call its tools make carries as `X-Request-Id` (so their log
/// lines join the MCP request's).
pub async fn handle(app: &App, req: &Request, request_id: &str) -> Response<Body> {
    let api = InProcess { app: app.clone(), request_id: request_id.to_string() };
    let server = PuffleMcp::new(std::sync::Arc::new(api), puffle_mcp::transport::HTTP_WAIT_CAP);
    let resp = puffle_mcp::transport::http_service(server).handle(copy(req)).await;
    let (parts, body) = resp.into_parts();
    // A stateless JSON answer is complete when the handler returns, so the
    // body is collected whole: API Gateway has no response streaming.
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(never) => match never {},
    };
    let body = match String::from_utf8(bytes.to_vec()) {
        Ok(s) if s.is_empty() => Body::Empty,
        Ok(s) => Body::Text(s),
        Err(e) => Body::Binary(e.into_bytes()),
    };
    Response::from_parts(parts, body)
}

/// The transport takes its request by value; the handlers share theirs by
/// reference. What the transport reads (method, URI, headers, body) is copied.
fn copy(req: &Request) -> Request {
    let mut out = http::Request::new(match req.body() {
        Body::Text(t) => Body::Text(t.clone()),
        Body::Binary(b) => Body::Binary(b.clone()),
        _ => Body::Empty,
    });
    *out.method_mut() = req.method().clone();
    *out.uri_mut() = req.uri().clone();
    *out.version_mut() = req.version();
    *out.headers_mut() = req.headers().clone();
    out
}

/// The API, called through the route table and handlers of this process.
struct InProcess {
    app: App,
    request_id: String,
}

impl Api for InProcess {
    fn call<'a>(&'a self, caller: &'a Caller, request: ApiRequest) -> BoxFuture<'a, Result<ApiReply, Unreachable>> {
        Box::pin(async move {
            Ok(match to_lambda_request(caller, &request, &self.request_id) {
                Ok((function, req)) => reply(handlers::handle(&self.app, function, req).await),
                Err(answer) => answer,
            })
        })
    }
}

/// The request API Gateway would hand the function that serves this route,
/// or the answer it would give itself when no route matches.
fn to_lambda_request(caller: &Caller, r: &ApiRequest, request_id: &str) -> Result<(Function, Request), ApiReply> {
    // Encoding each segment keeps an id with a `/` from reaching another route.
    let mut url = url::Url::parse("http://in-process/").expect("static URL");
    url.path_segments_mut().expect("http URLs have paths").clear().extend(&r.segments);
    if !r.query.is_empty() {
        url.query_pairs_mut().extend_pairs(&r.query);
    }
    let method = r.method.as_str();
    let (function, params) = match resolve(method, url.path()) {
        Resolved::Found(route, params) => (route.function, params),
        Resolved::MethodNotAllowed(allowed) => {
            return Err(reply(client_error(
                405,
                "METHOD_NOT_ALLOWED",
                format!("{method} is not allowed on {}; use {}", url.path(), allowed.join(", ")),
            )))
        }
        Resolved::NotFound => {
            return Err(reply(client_error(404, "NOT_FOUND", format!("no route {method} {}", url.path()))))
        }
    };
    // API Gateway hands functions decoded path parameters.
    let path_params: HashMap<String, String> = params
        .into_iter()
        .map(|(k, v)| (k, percent_encoding::percent_decode_str(&v).decode_utf8_lossy().to_string()))
        .collect();
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in &r.query {
        query.entry(k.clone()).or_default().push(v.clone());
    }
    let mut builder = http::Request::builder()
        .method(method)
        .uri(&url[url::Position::BeforePath..])
        .header("content-type", "application/json")
        .header(crate::request::REQUEST_ID_HEADER, request_id);
    if let Some(a) = &caller.authorization {
        builder = builder.header("authorization", a);
    }
    let body = match &r.body {
        Some(v) => Body::Text(v.to_string()),
        None => Body::Empty,
    };
    let req = builder
        .body(body)
        .map_err(|e| reply(client_error(400, "INVALID_REQUEST", format!("the request cannot be built: {e}"))))?
        .with_query_string_parameters(query)
        .with_path_parameters(path_params);
    Ok((function, req))
}

fn reply(resp: Response<Body>) -> ApiReply {
    let status = resp.status().as_u16();
    let bytes: &[u8] = match resp.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    let body = serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into()));
    ApiReply { status, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_requests_route_like_api_gateway_would() {
        let caller = Caller { authorization: Some("Bearer t".into()) };
        let r = ApiRequest::get(&["api", "enrichment", "run_1", "items"]).query("status", Some("failed"));
        let (f, req) = to_lambda_request(&caller, &r, "req_1").unwrap();
        assert_eq!(f, Function::Items);
        assert_eq!(req.uri().path(), "/api/enrichment/run_1/items");
        assert_eq!(req.query_string_parameters_ref().and_then(|q| q.first("status")), Some("failed"));
        assert_eq!(req.path_parameters_ref().and_then(|p| p.first("id")), Some("run_1"));
        assert_eq!(req.headers()["authorization"], "Bearer t");
        assert_eq!(req.headers()["x-request-id"], "req_1");

        // An id holding a slash stays one (decoded) path parameter.
        let (f, req) = to_lambda_request(&caller, &ApiRequest::get(&["api", "enrichment", "a/b"]), "req_1").unwrap();
        assert_eq!(f, Function::Status);
        assert_eq!(req.path_parameters_ref().and_then(|p| p.first("id")), Some("a/b"));

        let missing = to_lambda_request(
            &Caller::default(),
            &ApiRequest::post(&["api", "enrichment", "r", "nope"], Value::Null),
            "req_1",
        );
        let missing = missing.err().unwrap();
        assert_eq!((missing.status, missing.body["code"].as_str()), (404, Some("NOT_FOUND")));
    }
}
