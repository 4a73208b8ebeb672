//! The one place errors become HTTP responses.

use lambda_http::{Body, Response};
use puffle_app::AppError;
use puffle_domain::rate::Verdict;
use puffle_domain::DomainError;
use serde_json::{json, Value};

/// Seconds a client should wait after a 503 before retrying.
pub const RETRY_AFTER_SECONDS: u32 = 2;

pub fn json_response(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("static response parts are valid")
}

/// A response without a body (`204 No Content`).
pub fn empty_response(status: u16) -> Response<Body> {
    Response::builder().status(status).body(Body::Empty).expect("static response parts are valid")
}

fn body(code: &str, message: impl std::fmt::Display) -> Value {
    json!({"code": code, "message": message.to_string()})
}

/// A client error raised by the HTTP layer itself (routing, parsing).
pub fn client_error(status: u16, code: &str, message: impl std::fmt::Display) -> Response<Body> {
    json_response(status, &body(code, message))
}

pub fn error_response(err: &AppError) -> Response<Body> {
    let (status, b) = match err {
        AppError::Domain(d) => match d {
            DomainError::InvalidRequest { message, details }
            | DomainError::InvalidInput { message, details }
            | DomainError::Planner { message, details, .. } => (400, with_details(body(err.code(), message), details)),
            DomainError::InvalidCursor => {
                (400, json!({"code": err.code(), "message": d.to_string(), "details": {"field": "cursor"}}))
            }
        },
        AppError::Unauthenticated => {
            (401, body("UNAUTHENTICATED", "send Authorization: Bearer <token> with a valid API token"))
        }
        AppError::NotFound { code, message } => (404, body(code, message)),
        AppError::InsufficientCredits { required, balance } => {
            let mut b = body("INSUFFICIENT_CREDITS", err);
            b["required"] = json!(required);
            b["balance"] = json!(balance);
            (402, b)
        }
        AppError::IdempotencyKeyReused => (422, body("IDEMPOTENCY_KEY_REUSED", err)),
        AppError::DispatchFailed { run_id, trigger_run_id } => {
            let mut b = body("DISPATCH_FAILED", err);
            b["enrichmentRunId"] = json!(run_id);
            b["triggerRunId"] = json!(trigger_run_id);
            (502, b)
        }
        AppError::NotCancellable { reason, status } => {
            let mut b = body("RUN_NOT_CANCELLABLE", format!("a {status} run cannot be cancelled"));
            b["reason"] = json!(reason);
            b["status"] = json!(status);
            (409, b)
        }
        AppError::EnrichmentDisabled { slug, missing } => {
            let mut b = body("ENRICHMENT_DISABLED", err);
            b["details"] = json!({"enrichmentId": slug, "secret": missing.first(), "missingSecrets": missing});
            (400, b)
        }
        AppError::Conflict { code, message, details } => (409, with_details(body(code, message), details)),
        AppError::PayloadTooLarge(_) => (413, body("PAYLOAD_TOO_LARGE", err)),
        AppError::RateLimited(v) => {
            let mut b = body("RATE_LIMITED", err);
            b["retryAfter"] = json!(v.reset_seconds);
            let mut r = json_response(429, &b);
            r.headers_mut().insert("retry-after", v.reset_seconds.into());
            return with_rate_headers(r, v);
        }
        AppError::Unavailable(m) => {
            tracing::warn!(error = %m, "backend unavailable");
            let mut r = json_response(503, &body("SERVICE_UNAVAILABLE", "a backend is unavailable; retry shortly"));
            r.headers_mut().insert("retry-after", RETRY_AFTER_SECONDS.into());
            return r;
        }
        AppError::Internal(m) => {
            tracing::error!(error = %m, "internal error");
            (500, body("INTERNAL", "an internal error occurred"))
        }
    };
    json_response(status, &b)
}

fn with_details(mut b: Value, details: &Value) -> Value {
    if !details.is_null() {
        b["details"] = details.clone();
    }
    b
}

/// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds
/// until the window resets), on every response of a rate-limited route.
pub fn with_rate_headers(mut r: Response<Body>, v: &Verdict) -> Response<Body> {
    let h = r.headers_mut();
    h.insert("ratelimit-limit", v.limit.into());
    h.insert("ratelimit-remaining", v.remaining.into());
    h.insert("ratelimit-reset", v.reset_seconds.into());
    r
}
