//! HTTP → lambda_http::Request, the same shape API Gateway hands a function.

use std::collections::HashMap;

use axum::body::Body as AxumBody;
use axum::extract::State;
use axum::response::Response as AxumResponse;
use axum::Router;
use lambda_http::RequestExt;
use puffle_app::App;
use puffle_http::errors::client_error;
use puffle_http::request::{usable_request_id, with_request_id, REQUEST_ID_HEADER};
use puffle_http::routes::{resolve, Resolved};

/// API Gateway HTTP APIs accept up to 10 MB; the function answers 413 past 6 MiB.
const GATEWAY_LIMIT: usize = 10 * 1024 * 1024;

pub fn router(app: App) -> Router {
    Router::new().fallback(handle).with_state(app)
}

async fn handle(State(app): State<App>, req: axum::extract::Request) -> AxumResponse {
    puffle_http::logging::invocation_started();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    if path == "/_local/metrics" {
        return to_axum(local_metrics(parts.method.as_str()));
    }
    // What API Gateway answers itself (413, 404, 405) still says which
    // request it answers; the handlers do the same for everything else.
    let request_id = parts
        .headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| usable_request_id(id))
        .map(str::to_string)
        .unwrap_or_else(|| puffle_domain::ids::new_id("req"));
    let early = |resp| to_axum(with_request_id(resp, &request_id));
    let bytes = match axum::body::to_bytes(body, GATEWAY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return early(client_error(413, "PAYLOAD_TOO_LARGE", "the request body is too large")),
    };
    let (function, params) = match resolve(parts.method.as_str(), &path) {
        Resolved::Found(route, params) => (route.function, params),
        Resolved::MethodNotAllowed(allowed) => {
            let mut r = client_error(
                405,
                "METHOD_NOT_ALLOWED",
                format!("{} is not allowed on {path}; use {}", parts.method, allowed.join(", ")),
            );
            r.headers_mut().insert("allow", allowed.join(", ").parse().expect("header"));
            return early(r);
        }
        Resolved::NotFound => {
            return early(client_error(404, "NOT_FOUND", format!("no route {} {path}", parts.method)))
        }
    };
    let query: Vec<(String, String)> =
        parts.uri.query().map(|q| serde_urlencoded::from_str(q).unwrap_or_default()).unwrap_or_default();
    let mut query_map: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in query {
        query_map.entry(k).or_default().push(v);
    }
    let path_map: HashMap<String, String> = params.into_iter().collect();
    let mut builder = http::Request::builder().method(parts.method.clone()).uri(parts.uri.clone());
    for (k, v) in parts.headers.iter().filter(|(k, _)| k.as_str() != REQUEST_ID_HEADER) {
        builder = builder.header(k, v);
    }
    // The id chosen above, so a generated one matches what the handler logs.
    builder = builder.header(REQUEST_ID_HEADER, request_id.as_str());
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(s) => lambda_http::Body::Text(s),
            Err(e) => lambda_http::Body::Binary(e.into_bytes()),
        }
    };
    let lreq = builder
        .body(body)
        .expect("parts came from a valid request")
        .with_query_string_parameters(query_map)
        .with_path_parameters(path_map);
    to_axum(puffle_http::handlers::handle(&app, function, lreq).await)
}

fn local_metrics(method: &str) -> lambda_http::Response<lambda_http::Body> {
    if method == "DELETE" {
        puffle_aws::metrics::reset();
    }
    puffle_http::errors::json_response(
        200,
        &serde_json::json!({"requests": puffle_aws::metrics::snapshot(), "injectedFaults": puffle_aws::metrics::injected_faults()}),
    )
}

fn to_axum(resp: lambda_http::Response<lambda_http::Body>) -> AxumResponse {
    let (parts, body) = resp.into_parts();
    let bytes: Vec<u8> = match body {
        lambda_http::Body::Empty => vec![],
        lambda_http::Body::Text(t) => t.into_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => vec![],
    };
    AxumResponse::from_parts(parts, AxumBody::from(bytes))
}
