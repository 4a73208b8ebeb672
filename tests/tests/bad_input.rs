//! Bad input (issue 3): malformed JSON, wrong types, unknown fields,
//! out-of-range limits, oversized bodies, unknown routes and wrong methods
//! each answer a JSON error with `code` and `message`, never a 5xx. Plus
//! fuzzing: random JSON, random bytes and random query strings thrown at the
//! handlers in-process (fast) and a few over real HTTP.

use std::collections::HashMap;

use lambda_http::RequestExt;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use puffle_http::routes::{resolve, Resolved};
use puffle_tests::{company, person, unique, Ctx, Resp};
use serde_json::{json, Value};

// ------------------------------------------------------------------ helpers

/// Sends raw bytes (no content-type magic) with the workspace token.
async fn send_bytes(ctx: &Ctx, method: &str, path: &str, body: Vec<u8>) -> Resp {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = ctx
        .http
        .request(m, format!("{}{}", ctx.base, path))
        .bearer_auth(&ctx.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    Resp::read(r).await
}

/// A client error with the given status and code: JSON, `code` and a message.
#[track_caller]
fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_json_error(r);
    assert_eq!(r.body["code"].as_str(), Some(code), "{r:?}");
}

#[track_caller]
fn assert_json_error(r: &Resp) {
    assert!(r.body.is_object(), "error body is not a JSON object: {r:?}");
    assert!(r.body["code"].as_str().is_some_and(|c| !c.is_empty()), "no code: {r:?}");
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()), "no message: {r:?}");
    let ct = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(ct.starts_with("application/json"), "content-type {ct}: {r:?}");
}

/// A workspace with one List holding a person and a company.
async fn fixture() -> (Ctx, String, Vec<String>) {
    let ctx = Ctx::new(100).await;
    let leads = ctx.leads(vec![person("bi"), company("bic")]).await;
    let list = ctx.list(&leads).await;
    (ctx, list, leads)
}

/// POST routes that read a JSON body.
fn body_routes(list: &str) -> Vec<String> {
    vec!["/api/leads".into(), "/api/lists".into(), format!("/api/lists/{list}/leads"), "/api/enrichment".into()]
}

// --------------------------------------------------------- malformed bodies

#[tokio::test]
async fn malformed_json_is_400_invalid_request() {
    let (ctx, list, _) = fixture().await;
    let bodies: &[&[u8]] = &[
        b"{\"type\": \"person\",",
        b"not json",
        b"{'type': 'person'}",
        b"{\"a\": 1} trailing",
        b"[1, 2",
        b"{\"a\": \"\\ud800\"}",
        b"{\"a\": 01}",
        b"{\"a\": NaN}",
        b"\xef\xbb\xbf{}", // a byte order mark
    ];
    for path in body_routes(&list) {
        for b in bodies {
            let r = send_bytes(&ctx, "POST", &path, b.to_vec()).await;
            assert_error(&r, 400, "INVALID_REQUEST");
        }
    }
}

#[tokio::test]
async fn empty_or_blank_body_is_400() {
    let (ctx, list, _) = fixture().await;
    for path in body_routes(&list) {
        for b in [&b""[..], b"   \n\t "] {
            let r = send_bytes(&ctx, "POST", &path, b.to_vec()).await;
            assert_error(&r, 400, "INVALID_REQUEST");
        }
    }
}

#[tokio::test]
async fn invalid_utf8_body_is_400() {
    let (ctx, list, _) = fixture().await;
    for path in body_routes(&list) {
        let r = send_bytes(&ctx, "POST", &path, b"{\"type\": \"\xff\xfe\"}".to_vec()).await;
        assert_error(&r, 400, "INVALID_REQUEST");
        let r = send_bytes(&ctx, "POST", &path, vec![0x80, 0x81, 0x00, 0xc3]).await;
        assert_error(&r, 400, "INVALID_REQUEST");
    }
}

#[tokio::test]
async fn deeply_nested_json_is_400() {
    let (ctx, list, _) = fixture().await;
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    for path in body_routes(&list) {
        assert_error(&send_bytes(&ctx, "POST", &path, deep.clone().into_bytes()).await, 400, "INVALID_REQUEST");
        assert_error(&send_bytes(&ctx, "POST", &path, deep_obj.clone().into_bytes()).await, 400, "INVALID_REQUEST");
    }
}

#[tokio::test]
async fn wrong_types_are_400() {
    let (ctx, list, leads) = fixture().await;
    let cases = vec![
        (
            "/api/leads".to_string(),
            json!({"type": 5, "contacts": [{"type": "email", "value": format!("a{}@b.co", unique())}]}),
        ),
        (
            "/api/leads".to_string(),
            json!({"type": "robot", "contacts": [{"type": "email", "value": format!("a{}@b.co", unique())}]}),
        ),
        ("/api/leads".to_string(), json!({"type": "person", "contacts": {"type": "email"}})),
        (
            "/api/leads".to_string(),
            json!({"type": "person", "name": "Just a string", "contacts": [{"type": "email", "value": format!("a{}@b.co", unique())}]}),
        ),
        (
            "/api/leads".to_string(),
            json!({"type": "person", "attributes": [1, 2], "contacts": [{"type": "email", "value": format!("a{}@b.co", unique())}]}),
        ),
        ("/api/leads".to_string(), json!({"type": "person", "socials": [{"url": 7}]})),
        ("/api/leads".to_string(), json!({"leads": "all of them"})),
        ("/api/leads".to_string(), json!({"leads": {"0": person("wt")}})),
        ("/api/leads".to_string(), json!({"leads": [5, "x", null]})),
        ("/api/leads".to_string(), json!("a string")),
        ("/api/leads".to_string(), json!(42)),
        ("/api/leads".to_string(), json!(null)),
        ("/api/lists".to_string(), json!({"name": 5})),
        ("/api/lists".to_string(), json!({"leadType": ["person"]})),
        ("/api/lists".to_string(), json!({"leadIds": "lead_1"})),
        ("/api/lists".to_string(), json!({"leadIds": [1, 2]})),
        (format!("/api/lists/{list}/leads"), json!({"leadIds": leads[0]})),
        (format!("/api/lists/{list}/leads"), json!({"leadIds": [1]})),
        (format!("/api/lists/{list}/leads"), json!({"leadIds": null})),
        (format!("/api/lists/{list}/leads"), json!({})),
        (format!("/api/lists/{list}/leads"), json!(leads)),
        (
            "/api/enrichment".to_string(),
            json!({"enrichmentId": 5, "scope": {"type": "explicit_leads", "leadIds": leads}, "input": {}}),
        ),
        ("/api/enrichment".to_string(), json!({"enrichmentId": "x", "scope": "everything", "input": {}})),
        (
            "/api/enrichment".to_string(),
            json!({"enrichmentId": "x", "scope": {"type": "explicit_leads", "leadIds": leads}, "input": []}),
        ),
    ];
    for (path, body) in cases {
        let r = ctx.post(&path, body.clone()).await;
        assert_error(&r, 400, "INVALID_REQUEST");
    }
    // Nothing the rejected requests named was written.
    let l = ctx.get(&format!("/api/lists/{list}")).await;
    assert_eq!(l.body["list"]["leadCount"], 2, "{l:?}");
    let all = ctx.get("/api/leads?limit=500").await;
    assert_eq!(all.body["leads"].as_array().unwrap().len(), 2, "{all:?}");
}

#[tokio::test]
async fn unknown_fields_are_400() {
    let (ctx, list, leads) = fixture().await;
    let email = format!("uf-{}@example.com", unique());
    let cases = vec![
        (
            "/api/leads".to_string(),
            json!({"type": "person", "nmae": {"full": "Typo"}, "contacts": [{"type": "email", "value": email}]}),
        ),
        (
            "/api/leads".to_string(),
            json!({"type": "person", "name": {"ful": "Typo"}, "contacts": [{"type": "email", "value": email}]}),
        ),
        (
            "/api/leads".to_string(),
            json!({"type": "person", "contacts": [{"type": "email", "value": email, "primary": true}]}),
        ),
        (
            "/api/leads".to_string(),
            json!({"type": "company", "company": {"domain": format!("uf-{}.com", unique()), "size": 10}}),
        ),
        (
            "/api/leads".to_string(),
            json!({"type": "person", "contacts": [{"type": "email", "value": email}], "id": "lead_x"}),
        ),
        ("/api/leads".to_string(), json!({"leads": [person("uf")], "dryRun": true})),
        ("/api/lists".to_string(), json!({"nmae": "Typo"})),
        ("/api/lists".to_string(), json!({"name": "ok", "leads": leads})),
        (format!("/api/lists/{list}/leads"), json!({"leadIds": leads, "extra": 1})),
        (format!("/api/lists/{list}/leads"), json!({"leadids": leads})),
        (
            "/api/enrichment".to_string(),
            json!({"enrichmentId": "x", "scope": {"type": "explicit_leads", "leadIds": leads, "extra": 1}, "input": {}}),
        ),
        (
            "/api/enrichment".to_string(),
            json!({"enrichmentId": "x", "scope": {"type": "explicit_leads", "leadIds": leads}, "input": {}, "bogus": 1}),
        ),
    ];
    for (path, body) in cases {
        let r = ctx.post(&path, body.clone()).await;
        assert_error(&r, 400, "INVALID_REQUEST");
    }
    // The typo'd Lead was not written under another shape.
    let all = ctx.get("/api/leads?limit=500").await;
    assert_eq!(all.body["leads"].as_array().unwrap().len(), 2, "{all:?}");
    assert_eq!(ctx.get("/api/lists").await.body["lists"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn out_of_range_limits_are_400() {
    let (ctx, list, _) = fixture().await;
    let run = format!("run_{}", unique());
    let routes = [
        ("/api/leads?".to_string(), 500),
        ("/api/lists?".to_string(), 500),
        (format!("/api/lists/{list}/leads?"), 500),
        (format!("/api/enrichment/{run}/items?"), 100),
    ];
    for (base, max) in routes {
        for bad in [
            "0".to_string(),
            (max + 1).to_string(),
            "abc".into(),
            "-1".into(),
            "".into(),
            "1e2".into(),
            "18446744073709551616".into(),
        ] {
            let r = ctx.get(&format!("{base}limit={bad}")).await;
            assert_error(&r, 400, "INVALID_REQUEST");
            assert_eq!(r.body["details"]["field"], "limit", "{base}limit={bad}: {r:?}");
        }
    }
    for ok in ["1", "500"] {
        assert_eq!(ctx.get(&format!("/api/leads?limit={ok}")).await.status, 200);
        assert_eq!(ctx.get(&format!("/api/lists/{list}/leads?limit={ok}")).await.status, 200);
    }
}

#[tokio::test]
async fn invalid_filters_are_400() {
    let (ctx, list, _) = fixture().await;
    for path in [
        "/api/leads?type=robot".to_string(),
        "/api/leads?type=".to_string(),
        "/api/leads?type=PERSON".to_string(),
        format!("/api/lists/{list}/leads?type=mixed"),
        format!("/api/enrichment/run_{}/items?status=done", unique()),
    ] {
        let r = ctx.get(&path).await;
        assert_error(&r, 400, "INVALID_REQUEST");
    }
}

#[tokio::test]
async fn oversized_list_fields_are_400() {
    let (ctx, _, _) = fixture().await;
    for body in [json!({"name": "n".repeat(201)}), json!({"name": "ok", "description": "d".repeat(2001)})] {
        assert_error(&ctx.post("/api/lists", body).await, 400, "INVALID_REQUEST");
    }
    assert_eq!(
        ctx.post("/api/lists", json!({"name": "n".repeat(200), "description": "d".repeat(2000)})).await.status,
        201
    );
    assert_eq!(ctx.get("/api/lists").await.body["lists"].as_array().unwrap().len(), 2);
}

// ------------------------------------------------------------------- sizes

#[tokio::test]
async fn body_over_6_mib_is_413() {
    let (ctx, list, _) = fixture().await;
    // ~6.5 MB of otherwise valid JSON.
    let big = format!("{{\"leads\": [{{\"type\": \"person\", \"title\": \"{}\"}}]}}", "x".repeat(6_500_000));
    for path in body_routes(&list) {
        let r = send_bytes(&ctx, "POST", &path, big.clone().into_bytes()).await;
        assert_error(&r, 413, "PAYLOAD_TOO_LARGE");
    }
    // One byte over the limit is over; binary bodies too.
    let limit = 6 * 1024 * 1024;
    let mut just_over = vec![b' '; limit + 1];
    just_over[0] = b'{';
    just_over[limit] = b'}';
    assert_error(&send_bytes(&ctx, "POST", "/api/leads", just_over).await, 413, "PAYLOAD_TOO_LARGE");
    assert_error(&send_bytes(&ctx, "POST", "/api/lists", vec![0xff; limit + 10]).await, 413, "PAYLOAD_TOO_LARGE");
    // Just under the limit is read and judged on its content.
    let under = format!("{{\"nmae\": \"{}\"}}", "y".repeat(limit - 100));
    assert_error(&send_bytes(&ctx, "POST", "/api/lists", under.into_bytes()).await, 400, "INVALID_REQUEST");
}

// --------------------------------------------------------- routes, methods

#[tokio::test]
async fn unknown_route_is_404_with_code_and_message() {
    let ctx = Ctx::new(0).await;
    for (method, path) in [
        ("GET", "/api/nope"),
        ("POST", "/api/nope"),
        ("GET", "/nope"),
        ("GET", "/"),
        ("GET", "/api"),
        ("GET", "/api/lists/a/b/c"),
        ("GET", "/api/enrichment//items"),
        ("GET", "/api/leads/lead_1"),
        ("DELETE", "/api/anything"),
    ] {
        let r = ctx.send(method, path, None, Some(&ctx.token.clone())).await;
        assert_error(&r, 404, "NOT_FOUND");
        // Without a token too: routing comes first.
        let r = ctx.send(method, path, None, None).await;
        assert_eq!(r.status, 404, "{method} {path}: {r:?}");
        assert_json_error(&r);
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let ctx = Ctx::new(0).await;
    for (method, path, allowed) in [
        ("DELETE", "/api/leads", vec!["GET", "POST"]),
        ("PUT", "/api/leads", vec!["GET", "POST"]),
        ("PUT", "/api/enrichment", vec!["POST"]),
        ("GET", "/api/enrichment", vec!["POST"]),
        ("PATCH", "/api/lists/list_x", vec!["GET"]),
        ("POST", "/api/lists/list_x", vec!["GET"]),
        ("DELETE", "/api/lists/list_x/leads", vec!["GET", "POST"]),
        ("DELETE", "/api/enrichment/run_x", vec!["GET"]),
        ("GET", "/api/enrichment/run_x/cancel", vec!["POST"]),
        ("POST", "/api/credits", vec!["GET"]),
        ("POST", "/api/health", vec!["GET"]),
    ] {
        let r = ctx.send(method, path, Some(json!({})), Some(&ctx.token.clone())).await;
        assert_error(&r, 405, "METHOD_NOT_ALLOWED");
        let allow = r.headers.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let mut got: Vec<&str> = allow.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        got.sort();
        assert_eq!(got, allowed, "{method} {path}: Allow: {allow}");
    }
}

#[tokio::test]
async fn arrays_in_place_of_objects_are_400() {
    let (ctx, list, leads) = fixture().await;
    let email = format!("arr-{}@example.com", unique());
    let cases = vec![
        ("/api/lists".to_string(), json!([])),
        ("/api/lists".to_string(), json!(["Named by array", "desc", "person"])),
        (format!("/api/lists/{list}/leads"), json!([[leads[0]]])),
        ("/api/leads".to_string(), json!({"leads": [["person", ["Arr Ay"], null, null, [["email", email]]]]})),
        ("/api/leads".to_string(), json!({"type": "person", "name": ["Arr Ay"], "contacts": [["email", email]]})),
    ];
    let mut accepted = vec![];
    for (path, body) in cases {
        let r = ctx.post(&path, body.clone()).await;
        if r.status != 400 {
            accepted.push(format!("POST {path} {body}: {r:?}"));
        } else {
            assert_error(&r, 400, "INVALID_REQUEST");
        }
    }
    assert!(accepted.is_empty(), "{accepted:#?}");
    assert_eq!(ctx.get("/api/lists").await.body["lists"].as_array().unwrap().len(), 1);
    assert_eq!(ctx.get("/api/leads?limit=500").await.body["leads"].as_array().unwrap().len(), 2);
}

// ------------------------------------------- values the store cannot hold

#[tokio::test]

async fn lead_values_the_store_cannot_hold_are_4xx_not_500() {
    let ctx = Ctx::new(0).await;
    let email = |t: &str| json!([{"type": "email", "value": format!("{t}-{}@example.com", unique())}]);
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let cases = vec![
        ("500 KB title", json!({"type": "person", "contacts": email("t"), "title": "x".repeat(500_000)})),
        (
            "450 KB attribute",
            json!({"type": "person", "contacts": email("a"), "attributes": {"notes": "y".repeat(450_000)}}),
        ),
        ("number 1.5e308", json!({"type": "person", "contacts": email("n1"), "attributes": {"x": 1.5e308}})),
        ("number 1e-200", json!({"type": "person", "contacts": email("n2"), "attributes": {"x": 1e-200}})),
        ("empty map key", json!({"type": "person", "contacts": email("k"), "attributes": {"x": {"": 1}}})),
        ("nesting 40", json!({"type": "person", "contacts": email("d"), "attributes": {"x": deep}})),
        (
            "20k contacts",
            json!({"type": "person", "contacts": (0..20_000).map(|i| json!({"type": "phone", "value": format!("+1 555 {i:06}")})).chain([json!({"type": "email", "value": format!("c-{}@example.com", unique())})]).collect::<Vec<_>>()}),
        ),
    ];
    let mut failures = vec![];
    for (name, body) in cases {
        let r = ctx.post("/api/leads", body).await;
        if r.status >= 500 || r.status < 400 {
            failures.push(format!("{name}: {} {}", r.status, r.body));
        } else {
            assert_json_error(&r);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let all = ctx.get("/api/leads?limit=500").await;
    assert_eq!(all.body["leads"], json!([]), "rejected Leads were written: {all:?}");
}

// ------------------------------------------------------------------- fuzzing

/// Strings that hit the interesting branches more often than random text.
fn fuzz_string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => Just("person".to_string()),
        2 => Just("company".to_string()),
        1 => Just("mixed".to_string()),
        1 => Just("explicit_leads".to_string()),
        1 => Just("list".to_string()),
        1 => Just("filtered_list".to_string()),
        1 => Just("preview".to_string()),
        1 => Just("persisted".to_string()),
        1 => Just("membership".to_string()),
        1 => Just("email".to_string()),
        2 => "lead_[0-9a-z]{26}",
        1 => "list_[0-9a-z]{26}",
        1 => "run_[0-9a-z]{26}",
        2 => "[a-z0-9]{1,10}@[a-z]{1,8}\\.[a-z]{2,3}",
        1 => "https?://(www\\.)?[a-zA-Z0-9-]{1,12}\\.com/[a-z/]{0,10}",
        1 => "https://www\\.linkedin\\.com/in/[a-zA-Z-]{1,10}/?",
        4 => ".{0,24}",
        1 => "[\\x00-\\x1f\\u{7f}-\\u{10ffff}]{0,8}",
    ]
    .boxed()
}

fn fuzz_key() -> BoxedStrategy<String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "type", "name", "full", "first", "last", "title", "company", "domain", "contacts", "value", "location",
            "socials", "url", "attributes", "leads", "leadIds", "leadType", "description", "enrichmentId", "mode",
            "scope", "listId", "filter", "input", "output", "attributeKey", "target", "displayRequest", "fieldId",
            "idempotencyKey", "writePolicy", "field", "op", "values",
        ])
        .prop_map(String::from),
        2 => "[a-zA-Z_]{0,10}",
        1 => ".{0,6}",
    ]
    .boxed()
}

fn fuzz_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => any::<i64>().prop_map(|n| json!(n)),
        1 => any::<u64>().prop_map(|n| json!(n)),
        1 => any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        5 => fuzz_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(fuzz_key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Bodies: any JSON, JSON with the shape of one of the real bodies, or bytes.
fn fuzz_body(lead_ids: Vec<String>, list_id: String) -> BoxedStrategy<Vec<u8>> {
    let shaped = (fuzz_json(), fuzz_json(), fuzz_json(), 0usize..6).prop_map(move |(a, b, c, which)| {
        let v = match which {
            0 => json!({"type": a, "name": b, "contacts": c}),
            1 => json!({"leads": [a, b, c]}),
            2 => json!({"leadIds": [lead_ids[0].clone(), a], "name": b}),
            3 => json!({"enrichmentId": a, "scope": {"type": "explicit_leads", "leadIds": b}, "input": c}),
            4 => json!({"enrichmentId": "x", "scope": {"type": a, "listId": list_id.clone(), "filter": b}, "input": {}, "output": c}),
            _ => json!({"name": a, "leadType": b, "leadIds": c}),
        };
        v.to_string().into_bytes()
    });
    prop_oneof![
        4 => fuzz_json().prop_map(|v| v.to_string().into_bytes()),
        3 => shaped,
        2 => prop::collection::vec(any::<u8>(), 0..256),
        1 => ".{0,64}".prop_map(String::into_bytes),
    ]
    .boxed()
}

fn fuzz_query() -> BoxedStrategy<HashMap<String, Vec<String>>> {
    let key = prop_oneof![
        4 => prop::sample::select(vec!["limit", "cursor", "type", "id", "status", "leadId", "q"]).prop_map(String::from),
        1 => "[a-zA-Z]{0,6}",
    ];
    let value = prop_oneof![
        2 => (-5i64..1000).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,60}", // cursor-shaped
        3 => fuzz_string(),
        1 => ".{0,200}",
    ];
    prop::collection::hash_map(key, prop::collection::vec(value, 1..3), 0..5).boxed()
}

fn path_param() -> BoxedStrategy<String> {
    prop_oneof![
        2 => "(run|list|lead)_[0-9a-z]{26}",
        2 => ".{1,40}",
        1 => "[a-z]{100,400}",
    ]
    .boxed()
}

/// The local server's conversion, in miniature: a lambda_http request.
fn lambda_request(
    method: &str,
    route: &str,
    param: Option<&str>,
    token: &str,
    query: HashMap<String, Vec<String>>,
    body: Vec<u8>,
) -> lambda_http::Request {
    // The URI carries a URI-safe stand-in; the handler reads the parameter.
    let uri_id = match param {
        Some(p) if !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => p.to_string(),
        _ => "x".to_string(),
    };
    let uri = route.replace("{id}", &uri_id);
    let body = if body.is_empty() {
        lambda_http::Body::Empty
    } else {
        match String::from_utf8(body) {
            Ok(s) => lambda_http::Body::Text(s),
            Err(e) => lambda_http::Body::Binary(e.into_bytes()),
        }
    };
    let req = lambda_http::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body)
        .expect("request");
    let mut params = HashMap::new();
    if let Some(p) = param {
        params.insert("id".to_string(), p.to_string());
    }
    req.with_query_string_parameters(query).with_path_parameters(params)
}

struct InProcess {
    rt: tokio::runtime::Runtime,
    app: puffle_app::App,
    token: String,
    list_id: String,
    lead_ids: Vec<String>,
}

impl InProcess {
    fn new() -> InProcess {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (app, token, list_id, lead_ids) = rt.block_on(async {
            let app = puffle_app::App::from_env().await;
            let ws = app.create_workspace("fuzz", 1000).await.expect("workspace (is the local stack up?)");
            // Setup through the handlers themselves, as a client would.
            let body = json!({"leads": [person("fz0"), person("fz1"), company("fzc")]}).to_string().into_bytes();
            let r = puffle_http::handlers::handle(
                &app,
                puffle_http::routes::Function::Leads,
                lambda_request("POST", "/api/leads", None, &ws.token, HashMap::new(), body),
            )
            .await;
            assert_eq!(r.status().as_u16(), 200);
            let v = response_json(r.body());
            let lead_ids: Vec<String> =
                v["leads"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_string()).collect();
            let body = json!({"name": "fuzz", "leadIds": lead_ids}).to_string().into_bytes();
            let r = puffle_http::handlers::handle(
                &app,
                puffle_http::routes::Function::Lists,
                lambda_request("POST", "/api/lists", None, &ws.token, HashMap::new(), body),
            )
            .await;
            assert_eq!(r.status().as_u16(), 201);
            let list_id = response_json(r.body())["list"]["id"].as_str().unwrap().to_string();
            (app, ws.token, list_id, lead_ids)
        });
        InProcess { rt, app, token, list_id, lead_ids }
    }

    /// Calls the handler the route table names; returns status and body.
    fn call(
        &self,
        method: &str,
        route: &str,
        param: Option<&str>,
        query: HashMap<String, Vec<String>>,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let concrete = route.replace("{id}", "x");
        let function = match resolve(method, &concrete) {
            Resolved::Found(r, _) => r.function,
            _ => panic!("{method} {route} is not a route"),
        };
        let req = lambda_request(method, route, param, &self.token, query, body);
        let resp = self.rt.block_on(puffle_http::handlers::handle(&self.app, function, req));
        (resp.status().as_u16(), response_json(resp.body()))
    }

    fn runner(&self) -> TestRunner {
        let config = Config { cases: 64, failure_persistence: None, max_shrink_iters: 256, ..Config::default() };
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
    }
}

fn response_json(b: &lambda_http::Body) -> Value {
    let bytes: &[u8] = match b {
        lambda_http::Body::Text(t) => t.as_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => &[],
    };
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// Status < 500, and an error is a JSON object with code and message.
fn check(status: u16, body: &Value, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(status < 500, "{what}: {status} {body}");
    if status >= 400 {
        prop_assert!(body["code"].as_str().is_some_and(|c| !c.is_empty()), "{what}: no code: {status} {body}");
        prop_assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: no message: {status} {body}");
    } else {
        prop_assert!(body.is_object(), "{what}: {status} {body}");
    }
    Ok(())
}

#[test]
fn fuzz_post_bodies_never_5xx_in_process() {
    let f = InProcess::new();
    let routes: Vec<(&str, Option<String>)> = vec![
        ("/api/leads", None),
        ("/api/lists", None),
        ("/api/lists/{id}/leads", Some(f.list_id.clone())),
        ("/api/enrichment", None),
        ("/api/enrichment/{id}/cancel", Some(format!("run_{}", unique()))),
    ];
    for (route, param) in routes {
        let mut runner = f.runner();
        let strategy = fuzz_body(f.lead_ids.clone(), f.list_id.clone());
        runner
            .run(&strategy, |body| {
                let shown = String::from_utf8_lossy(&body).chars().take(300).collect::<String>();
                let (status, v) = f.call("POST", route, param.as_deref(), HashMap::new(), body);
                check(status, &v, &format!("POST {route} {shown}"))
            })
            .unwrap_or_else(|e| panic!("POST {route}: {e}"));
    }
    // The List's counters still add up after all that.
    let (status, v) = f.call("GET", "/api/lists/{id}", Some(&f.list_id), HashMap::new(), vec![]);
    assert_eq!(status, 200, "{v}");
    let l = &v["list"];
    assert_eq!(
        l["personCount"].as_u64().unwrap() + l["companyCount"].as_u64().unwrap(),
        l["leadCount"].as_u64().unwrap(),
        "{v}"
    );
}

#[test]
fn fuzz_path_parameters_never_5xx_in_process() {
    let f = InProcess::new();
    for (method, route) in [
        ("GET", "/api/enrichment/{id}"),
        ("GET", "/api/enrichment/{id}/items"),
        ("POST", "/api/enrichment/{id}/cancel"),
        ("GET", "/api/lists/{id}"),
        ("GET", "/api/lists/{id}/leads"),
        ("POST", "/api/lists/{id}/leads"),
    ] {
        let mut runner = f.runner();
        let body = json!({"leadIds": f.lead_ids}).to_string().into_bytes();
        runner
            .run(&path_param(), |p| {
                let (status, v) = f.call(method, route, Some(&p), HashMap::new(), body.clone());
                check(status, &v, &format!("{method} {route} id={p:?}"))?;
                prop_assert!(status == 404, "{method} {route} id={p:?}: an unknown id is a 404, got {status} {v}");
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{method} {route}: {e}"));
    }
}

#[test]
fn fuzz_query_strings_never_5xx_in_process() {
    let f = InProcess::new();
    let run = format!("run_{}", unique());
    let routes: Vec<(&str, Option<String>)> = vec![
        ("/api/health", None),
        ("/api/credits", None),
        ("/api/enrichments", None),
        ("/api/enrichment/{id}", Some(run.clone())),
        ("/api/enrichment/{id}/items", Some(run.clone())),
        ("/api/leads", None),
        ("/api/lists", None),
        ("/api/lists/{id}", Some(f.list_id.clone())),
        ("/api/lists/{id}/leads", Some(f.list_id.clone())),
    ];
    for (route, param) in routes {
        let mut runner = f.runner();
        runner
            .run(&fuzz_query(), |q| {
                let shown = format!("{q:?}");
                let (status, v) = f.call("GET", route, param.as_deref(), q, vec![]);
                check(status, &v, &format!("GET {route} {shown}"))
            })
            .unwrap_or_else(|e| panic!("GET {route}: {e}"));
    }
}

/// A few of the same over real HTTP (the local server's conversion included).
#[tokio::test]
async fn fuzz_over_http_never_5xx() {
    let (ctx, list, leads) = fixture().await;
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let bodies = fuzz_body(leads.clone(), list.clone());
    let queries = fuzz_query();
    for i in 0..12 {
        let body = bodies.new_tree(&mut runner).unwrap().current();
        for path in body_routes(&list) {
            let r = send_bytes(&ctx, "POST", &path, body.clone()).await;
            assert!(r.status < 500, "#{i} POST {path} {:?}: {r:?}", String::from_utf8_lossy(&body));
            if r.status >= 400 {
                assert_json_error(&r);
            }
        }
        let q = queries.new_tree(&mut runner).unwrap().current();
        let qs: String = q
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{}={}", enc(k), enc(v))))
            .collect::<Vec<_>>()
            .join("&");
        for path in [
            "/api/leads".to_string(),
            "/api/lists".to_string(),
            format!("/api/lists/{list}/leads"),
            "/api/enrichments".to_string(),
        ] {
            let r = ctx.get(&format!("{path}?{qs}")).await;
            assert!(r.status < 500, "#{i} GET {path}?{qs}: {r:?}");
            if r.status >= 400 {
                assert_json_error(&r);
            }
        }
    }
    // Raw, unencoded oddities in the query string itself.
    for qs in ["limit=%zz", "limit=%00", "cursor=%FF%FE", "type=%E2%82", "&&&=&=", "limit", "id"] {
        let r = ctx.get(&format!("/api/leads?{qs}")).await;
        assert!(r.status < 500, "GET /api/leads?{qs}: {r:?}");
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
