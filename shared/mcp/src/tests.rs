//! The tools against a scripted API (no AWS): which request each tool
//! sends, what comes back, and wait_for_run's loop. rmcp's client talks to
//! the server over an in-memory pipe, as a real client would over stdio.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::model::{CallToolRequestParams, CallToolResult, ReadResourceRequestParams};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};

use crate::api::{Api, ApiReply, ApiRequest, Caller, Method, Unreachable};
use crate::PuffleMcp;

/// Answers with the scripted replies in turn (then 200 {}), recording requests.
#[derive(Default)]
struct Scripted {
    replies: Mutex<VecDeque<Result<ApiReply, Unreachable>>>,
    seen: Mutex<Vec<ApiRequest>>,
}

impl Api for Scripted {
    fn call<'a>(&'a self, _: &'a Caller, r: ApiRequest) -> BoxFuture<'a, Result<ApiReply, Unreachable>> {
        self.seen.lock().unwrap().push(r);
        let next = self.replies.lock().unwrap().pop_front().unwrap_or(Ok(ApiReply { status: 200, body: json!({}) }));
        Box::pin(async move { next })
    }
}

async fn connect(api: Arc<Scripted>, wait_cap: Duration) -> RunningService<RoleClient, ()> {
    let (server_end, client_end) = tokio::io::duplex(1 << 20);
    let server = PuffleMcp::new(api, wait_cap);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_end).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_end).await.expect("client connects")
}

fn ok(body: Value) -> Result<ApiReply, Unreachable> {
    Ok(ApiReply { status: 200, body })
}

async fn call(c: &RunningService<RoleClient, ()>, name: &'static str, args: Value) -> CallToolResult {
    let Value::Object(m) = args else { panic!("arguments are an object") };
    c.call_tool(CallToolRequestParams::new(name).with_arguments(m)).await.expect("tools/call answered")
}

#[tokio::test]
async fn tools_are_listed_with_object_schemas_and_api_field_names() {
    let c = connect(Arc::default(), Duration::from_secs(60)).await;
    let tools = c.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "add_to_list",
            "cancel_run",
            "create_leads",
            "create_list",
            "get_credits",
            "get_enrichment",
            "get_run",
            "list_enrichments",
            "list_results",
            "preview_enrichment",
            "retry_failed",
            "search_leads",
            "start_enrichment",
            "wait_for_run"
        ]
    );
    for t in &tools {
        let s = Value::Object((*t.input_schema).clone());
        assert_eq!(s["type"], "object", "{}", t.name);
        assert!(t.description.as_deref().is_some_and(|d| d.len() > 40), "{} explains itself", t.name);
        for (k, p) in s["properties"].as_object().into_iter().flatten() {
            assert!(!k.contains('_'), "{}: {k} is not an API field name", t.name);
            assert_ne!(p.get("default"), Some(&Value::Null), "{}.{k}", t.name);
        }
    }
    let start = tools.iter().find(|t| t.name == "start_enrichment").unwrap();
    let s = Value::Object((*start.input_schema).clone());
    assert_eq!(s["required"], json!(["enrichmentId", "scope"]));
    assert_eq!(s["properties"]["scope"]["oneOf"].as_array().map(Vec::len), Some(3));
    let wait = tools.iter().find(|t| t.name == "wait_for_run").unwrap();
    assert_eq!(wait.input_schema["properties"]["timeoutSeconds"]["maximum"], 60);
}

#[tokio::test]
async fn tools_send_the_api_requests_their_arguments_name() {
    let api = Arc::new(Scripted::default());
    let c = connect(api.clone(), Duration::from_secs(60)).await;
    let scope = json!({"type": "list", "listId": "list_1"});
    for (name, args) in [
        ("list_enrichments", json!({"q": "email"})),
        ("get_enrichment", json!({"enrichmentId": "email_domain"})),
        ("preview_enrichment", json!({"enrichmentId": "email_domain", "scope": scope})),
        ("get_run", json!({"runId": "run/1"})),
        ("list_results", json!({"runId": "run_1", "status": "failed", "limit": 10})),
        ("cancel_run", json!({"runId": "run_1"})),
        ("search_leads", json!({"type": "person", "limit": 5})),
        ("search_leads", json!({"leadId": "lead_1", "type": "person"})),
        ("create_leads", json!({"leads": [{"type": "company", "company": {"domain": "a.com"}}]})),
        ("create_list", json!({"name": "Q3", "leadType": "person"})),
        ("add_to_list", json!({"listId": "list_1", "leadIds": ["lead_1"]})),
        ("get_credits", json!({})),
    ] {
        let r = call(&c, name, args).await;
        assert_eq!(r.is_error, Some(false), "{name}: {r:?}");
    }
    let seen: Vec<(Method, String, Option<Value>)> =
        api.seen.lock().unwrap().iter().map(|r| (r.method, r.display(), r.body.clone())).collect();
    let get = |s: &str| (Method::Get, s.to_string(), None);
    let post = |s: &str, b: Value| (Method::Post, s.to_string(), Some(b));
    assert_eq!(
        seen,
        vec![
            get("GET /api/enrichments?q=email"),
            get("GET /api/enrichments?id=email_domain"),
            post(
                "POST /api/enrichment",
                json!({"enrichmentId": "email_domain", "mode": "preview", "scope": scope, "input": {}})
            ),
            // The id stays one segment; the adapters percent-encode it.
            get("GET /api/enrichment/run/1"),
            get("GET /api/enrichment/run_1/items?status=failed&limit=10"),
            post("POST /api/enrichment/run_1/cancel", json!({})),
            get("GET /api/leads?type=person&limit=5"),
            get("GET /api/leads?id=lead_1"),
            post("POST /api/leads", json!({"leads": [{"type": "company", "company": {"domain": "a.com"}}]})),
            post("POST /api/lists", json!({"name": "Q3", "leadType": "person"})),
            post("POST /api/lists/list_1/leads", json!({"leadIds": ["lead_1"]})),
            get("GET /api/credits"),
        ]
    );
    assert_eq!(api.seen.lock().unwrap()[3].segments, vec!["api", "enrichment", "run/1"]);
}

#[tokio::test]
async fn start_generates_a_key_returns_it_and_keeps_a_given_one() {
    let api = Arc::new(Scripted::default());
    api.replies.lock().unwrap().extend([
        Ok(ApiReply { status: 202, body: json!({"runId": "run_1", "reusedExistingRun": false}) }),
        Err(Unreachable("timed out".into())),
        Ok(ApiReply {
            status: 402,
            body: json!({"code": "INSUFFICIENT_CREDITS", "message": "m", "required": 3, "balance": 1}),
        }),
    ]);
    let c = connect(api.clone(), Duration::from_secs(60)).await;
    let args = json!({"enrichmentId": "email_domain", "scope": {"type": "list", "listId": "l"}, "input": {"x": 1}});
    let r = call(&c, "start_enrichment", args.clone()).await;
    let s = r.structured_content.unwrap();
    let key = s["idempotencyKey"].as_str().unwrap().to_string();
    assert!(key.starts_with("mcp-") && key.len() == 36, "{key}");
    assert_eq!(s["runId"], "run_1");

    // A failure still says which key to retry with; a given key is used as is.
    let mut with_key = args.clone();
    with_key["idempotencyKey"] = json!("mine");
    let r = call(&c, "start_enrichment", with_key).await;
    assert_eq!(r.is_error, Some(true));
    let s = r.structured_content.unwrap();
    assert_eq!((s["code"].as_str(), s["idempotencyKey"].as_str()), (Some("API_UNAVAILABLE"), Some("mine")));

    let r = call(&c, "start_enrichment", args).await;
    let s = r.structured_content.unwrap();
    assert_eq!(r.is_error, Some(true));
    assert_eq!(
        (s["code"].as_str(), s["required"].as_u64(), s["balance"].as_u64()),
        (Some("INSUFFICIENT_CREDITS"), Some(3), Some(1))
    );
    assert_eq!(s["httpStatus"], 402);

    let seen = api.seen.lock().unwrap();
    assert_eq!(seen[0].body.as_ref().unwrap()["idempotencyKey"], key.as_str());
    assert_eq!(seen[0].body.as_ref().unwrap()["input"], json!({"x": 1}));
    assert_eq!(seen[1].body.as_ref().unwrap()["idempotencyKey"], "mine");
    assert!(seen.iter().all(|r| r.retry_safe), "a keyed create may be resent");
    assert_ne!(seen[2].body.as_ref().unwrap()["idempotencyKey"], key.as_str(), "each call without a key gets its own");
}

#[tokio::test(start_paused = true)]
async fn wait_for_run_polls_until_terminal_or_the_budget_ends() {
    let run = |status: &str| ok(json!({"run": {"id": "run_1", "status": status}}));
    let api = Arc::new(Scripted::default());
    api.replies.lock().unwrap().extend([run("pending"), run("running"), run("completed")]);
    let c = connect(api.clone(), Duration::from_secs(60)).await;
    let r = call(&c, "wait_for_run", json!({"runId": "run_1"})).await;
    assert_eq!(r.structured_content.unwrap(), json!({"run": {"id": "run_1", "status": "completed"}, "terminal": true}));
    assert_eq!(api.seen.lock().unwrap().len(), 3);

    // Never terminal: the transport's cap (here 3 s) ends the wait.
    let api = Arc::new(Scripted::default());
    api.replies.lock().unwrap().extend((0..100).map(|_| run("running")));
    let c = connect(api.clone(), Duration::from_secs(3)).await;
    let started = tokio::time::Instant::now();
    let r = call(&c, "wait_for_run", json!({"runId": "run_1", "timeoutSeconds": 30})).await;
    assert_eq!(r.structured_content.unwrap()["terminal"], false);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(3) && waited < Duration::from_secs(4), "{waited:?}");

    // Out of range, and API errors, are tool errors.
    let r = call(&c, "wait_for_run", json!({"runId": "run_1", "timeoutSeconds": 61})).await;
    assert_eq!(r.structured_content.unwrap()["code"], "INVALID_REQUEST");
    let api = Arc::new(Scripted::default());
    api.replies
        .lock()
        .unwrap()
        .push_back(Ok(ApiReply { status: 404, body: json!({"code": "RUN_NOT_FOUND", "message": "m"}) }));
    let c = connect(api, Duration::from_secs(60)).await;
    let r = call(&c, "wait_for_run", json!({"runId": "nope"})).await;
    assert_eq!(r.structured_content.unwrap()["code"], "RUN_NOT_FOUND");
}

#[tokio::test]
async fn resources_read_the_run_and_its_results() {
    let api = Arc::new(Scripted::default());
    api.replies.lock().unwrap().extend([
        ok(json!({"run": {"id": "run_1"}})),
        ok(json!({"items": [], "page": {}})),
        Ok(ApiReply { status: 404, body: json!({"code": "RUN_NOT_FOUND", "message": "no run"}) }),
    ]);
    let c = connect(api.clone(), Duration::from_secs(60)).await;
    let templates = c.list_resource_templates(None).await.unwrap();
    let uris: Vec<&str> = templates.resource_templates.iter().map(|t| t.uri_template.as_str()).collect();
    assert_eq!(uris, ["puffle://runs/{runId}", "puffle://runs/{runId}/results"]);
    for uri in ["puffle://runs/run_1", "puffle://runs/run_1/results?status=failed"] {
        let r = c.read_resource(ReadResourceRequestParams::new(uri)).await.unwrap();
        assert_eq!(r.contents.len(), 1, "{uri}");
    }
    let e = c.read_resource(ReadResourceRequestParams::new("puffle://runs/nope")).await.unwrap_err();
    assert!(e.to_string().contains("no run"), "{e}");
    assert!(c.read_resource(ReadResourceRequestParams::new("puffle://lists/l")).await.is_err());
    let seen: Vec<String> = api.seen.lock().unwrap().iter().map(ApiRequest::display).collect();
    assert_eq!(
        seen,
        ["GET /api/enrichment/run_1", "GET /api/enrichment/run_1/items?status=failed", "GET /api/enrichment/nope"]
    );
}
