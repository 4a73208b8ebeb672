//! API answers as tool results. A 2xx body is the result as it is
//! (`structuredContent`, and the same JSON as text); anything else is a tool
//! error whose structured content is the API's error body (`code`,
//! `message`, `details`, `required`, `balance`, …) plus `httpStatus`, so an
//! agent recovers by reading fields, not prose.

use rmcp::model::CallToolResult;
use serde_json::{json, Map, Value};

use crate::api::{ApiReply, Unreachable};

/// The code of a tool error raised here rather than by the API.
pub const API_UNAVAILABLE: &str = "API_UNAVAILABLE";
pub const UNEXPECTED_RESPONSE: &str = "UNEXPECTED_RESPONSE";
pub const INVALID_REQUEST: &str = "INVALID_REQUEST";

pub fn from_reply(reply: Result<ApiReply, Unreachable>) -> CallToolResult {
    match reply {
        Ok(r) if r.is_success() => CallToolResult::structured(r.body),
        Ok(r) => CallToolResult::structured_error(error_body(&r)),
        Err(Unreachable(message)) => CallToolResult::structured_error(json!({
            "code": API_UNAVAILABLE,
            "message": format!("the Puffle API could not be reached: {message}"),
        })),
    }
}

/// The API's error body with `httpStatus` added. A body without a `code`
/// (a gateway's own page, a proxy's HTML) is wrapped so every tool error
/// has one.
pub fn error_body(r: &ApiReply) -> Value {
    let mut body = match &r.body {
        Value::Object(m) if m.get("code").is_some_and(Value::is_string) => m.clone(),
        other => {
            let mut m = Map::new();
            m.insert("code".into(), json!(UNEXPECTED_RESPONSE));
            m.insert("message".into(), json!(format!("the API answered HTTP {} without an error code", r.status)));
            m.insert("body".into(), other.clone());
            m
        }
    };
    body.insert("httpStatus".into(), json!(r.status));
    Value::Object(body)
}

/// A tool error for arguments the API never saw (e.g. `timeoutSeconds`).
pub fn invalid(message: impl Into<String>, field: &str) -> CallToolResult {
    CallToolResult::structured_error(json!({
        "code": INVALID_REQUEST,
        "message": message.into(),
        "details": {"field": field},
    }))
}

/// Adds `key: value` to a result's structured content and text (and to an
/// error's, so a failed start still tells the agent which key to retry with).
pub fn with_field(mut result: CallToolResult, key: &str, value: Value) -> CallToolResult {
    if let Some(Value::Object(m)) = result.structured_content.as_mut() {
        m.insert(key.to_string(), value);
        let text = Value::Object(m.clone()).to_string();
        result.content = vec![rmcp::model::ContentBlock::text(text)];
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &CallToolResult) -> Value {
        serde_json::from_str(&r.content[0].as_text().expect("text content").text).unwrap()
    }

    #[test]
    fn success_is_the_api_body_as_structured_content_and_text() {
        let body = json!({"balance": 12});
        let r = from_reply(Ok(ApiReply { status: 200, body: body.clone() }));
        assert_eq!(r.is_error, Some(false));
        assert_eq!(r.structured_content, Some(body.clone()));
        assert_eq!(text(&r), body);
    }

    #[test]
    fn api_errors_keep_code_and_details_and_gain_the_status() {
        let body = json!({"code": "INSUFFICIENT_CREDITS", "message": "m", "required": 5, "balance": 1});
        let r = from_reply(Ok(ApiReply { status: 402, body }));
        assert_eq!(r.is_error, Some(true));
        let s = r.structured_content.clone().unwrap();
        assert_eq!(s["code"], "INSUFFICIENT_CREDITS");
        assert_eq!((s["required"].as_u64(), s["balance"].as_u64()), (Some(5), Some(1)));
        assert_eq!(s["httpStatus"], 402);
        assert_eq!(text(&r), s);
    }

    #[test]
    fn bodies_without_a_code_and_unreachable_apis_still_have_one() {
        let r = from_reply(Ok(ApiReply { status: 502, body: json!("<html>bad gateway</html>") }));
        let s = r.structured_content.unwrap();
        assert_eq!((s["code"].as_str(), s["httpStatus"].as_u64()), (Some(UNEXPECTED_RESPONSE), Some(502)));
        assert_eq!(s["body"], "<html>bad gateway</html>");
        let r = from_reply(Ok(ApiReply { status: 404, body: json!({"message": "Not Found"}) }));
        assert_eq!(r.structured_content.unwrap()["code"], UNEXPECTED_RESPONSE);
        let r = from_reply(Err(Unreachable("connection refused".into())));
        assert_eq!(r.is_error, Some(true));
        assert_eq!(r.structured_content.unwrap()["code"], API_UNAVAILABLE);
    }

    #[test]
    fn added_fields_reach_both_forms() {
        let r = with_field(
            from_reply(Ok(ApiReply { status: 202, body: json!({"runId": "run_1"}) })),
            "idempotencyKey",
            json!("k"),
        );
        assert_eq!(r.structured_content.as_ref().unwrap()["idempotencyKey"], "k");
        assert_eq!(text(&r)["idempotencyKey"], "k");
        let e = with_field(from_reply(Err(Unreachable("x".into()))), "idempotencyKey", json!("k"));
        assert_eq!(e.structured_content.unwrap()["idempotencyKey"], "k");
    }
}
