//! The MCP server driven by an independent client, the official MCP Python
//! SDK (`mcp` in the project venv), over both transports: stdio (`puffle
//! mcp`, which calls the API over HTTP) and Streamable HTTP (`/mcp` on the
//! local server, whose tools call the handlers in process). The client
//! script (tests/mcp_client.py) asserts the protocol side (initialize or
//! discovery, the tool list and schemas, tool results and errors, resources);
//! these tests then check through the API that the journey really happened.
//!
//! `PUFFLE_MCP_TRANSCRIPT=file.json` keeps the journey's calls and results.

use std::path::PathBuf;

use puffle_tests::{api_url, status, Ctx};
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn puffle() -> String {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"));
    let p = target.join("debug").join("puffle");
    assert!(p.is_file(), "{} is missing: run `cargo build -p puffle-cli` first", p.display());
    p.to_string_lossy().into_owned()
}

#[derive(Clone, Copy)]
enum Transport {
    Stdio,
    Http,
}

/// Runs the client script; returns its JSON summary.
async fn client(scenario: &str, transport: Transport, mode: &str, token: &str) -> Value {
    let python = root().join(".venv/bin/python");
    assert!(python.is_file(), "{} is missing: run `make venv`", python.display());
    let mut cmd = tokio::process::Command::new(&python);
    cmd.arg(root().join("tests/mcp_client.py")).arg(scenario).args(["--token", token, "--mode", mode]);
    match transport {
        Transport::Stdio => cmd.args(["--transport", "stdio", "--command", &puffle(), "--api-url", &api_url()]),
        Transport::Http => cmd.args(["--transport", "http", "--url", &format!("{}/mcp", api_url())]),
    };
    if let (Ok(path), "journey") = (std::env::var("PUFFLE_MCP_TRANSCRIPT"), scenario) {
        cmd.args(["--transcript", &path]);
    }
    // A hang guard only (the script takes seconds).
    let out = tokio::time::timeout(std::time::Duration::from_secs(300), cmd.output())
        .await
        .expect("the MCP client script finished within 5 minutes")
        .expect("run tests/mcp_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mcp_client.py {scenario} failed:\n{stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("no JSON summary ({e}): {stdout}\n{stderr}"))
}

/// What the API says about a journey the client reported.
async fn check_journey(ctx: &Ctx, s: &Value) {
    let run_id = s["runId"].as_str().unwrap();
    let run = status(ctx, run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["scope"]["resolvedCount"], 2, "{run}");
    assert_eq!(run["scope"]["counts"]["completed"], 2, "{run}");
    assert_eq!(run["scope"]["listId"], s["listId"], "{run}");
    // Started twice with one key: one run, charged once.
    assert_eq!(s["balanceBefore"], 100, "{s}");
    assert_eq!(ctx.balance().await, 98);
    assert_eq!(s["balanceAfter"], 98, "{s}");
    // The key the tool generated is the run's: the same create over HTTP reuses it.
    let again = ctx
        .post(
            "/api/enrichment",
            json!({
                "enrichmentId": "email_domain",
                "scope": {"type": "list", "listId": s["listId"]},
                "input": {},
                "idempotencyKey": s["idempotencyKey"],
            }),
        )
        .await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!((again.body["runId"].as_str(), again.body["reusedExistingRun"].as_bool()), (Some(run_id), Some(true)));
    for lead in s["leadIds"].as_array().unwrap() {
        let l = ctx.get(&format!("/api/leads?id={}", lead.as_str().unwrap())).await;
        assert!(l.body["lead"]["attributes"]["email_domain"]["domain"].is_string(), "{l:?}");
    }
}

#[tokio::test]
async fn journey_over_stdio_with_the_initialize_handshake() {
    let ctx = Ctx::new(100).await;
    let s = client("journey", Transport::Stdio, "legacy", &ctx.token).await;
    assert!(s["protocolVersion"].as_str().is_some_and(|v| v < "2026"), "initialize negotiated {s}");
    check_journey(&ctx, &s).await;
}

#[tokio::test]
async fn journey_over_streamable_http_with_discovery() {
    let ctx = Ctx::new(100).await;
    let s = client("journey", Transport::Http, "auto", &ctx.token).await;
    assert_eq!(s["protocolVersion"], "2026-07-28", "{s}");
    check_journey(&ctx, &s).await;
}

/// 402 with required and balance, SUBJECT_MISMATCH, LIST_NOT_FOUND, bad
/// arguments, and a server that starts with a bad token or none.
async fn errors(transport: Transport, mode: &str) {
    let ctx = Ctx::new(1).await;
    let s = client("errors", transport, mode, &ctx.token).await;
    assert_eq!(s["balance"], 1, "{s}");
    // Nothing was charged or created by the refused starts.
    assert_eq!(ctx.balance().await, 1);
    let company = ctx.get(&format!("/api/leads?id={}", s["companyId"].as_str().unwrap())).await;
    assert_eq!(company.body["lead"]["attributes"], json!({}), "{company:?}");
    assert_eq!(s["badToken"], "send Authorization: Bearer <token> with a valid API token", "the API's own message");
}

#[tokio::test]
async fn errors_over_stdio_carry_the_api_codes() {
    errors(Transport::Stdio, "auto").await;
}

#[tokio::test]
async fn errors_over_streamable_http_carry_the_api_codes() {
    errors(Transport::Http, "legacy").await;
}

#[tokio::test]
async fn http_transport_answers_get_and_delete_405_and_needs_no_session() {
    let ctx = Ctx::new(5).await;
    for method in ["GET", "DELETE"] {
        let r = ctx.send(method, "/mcp", None, Some(&ctx.token.clone())).await;
        assert_eq!(r.status, 405, "{method}: {r:?}");
        assert_eq!(r.headers.get("allow").and_then(|v| v.to_str().ok()), Some("POST"), "{method}");
    }
    // A tools/call on its own (no initialize, no session id) is answered.
    let r = ctx
        .http
        .post(format!("{}/mcp", api_url()))
        .bearer_auth(&ctx.token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "get_credits", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("mcp-session-id").is_none(), "stateless: no session");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], 7);
    assert_eq!(body["result"]["structuredContent"], json!({"balance": 5}), "{body}");
}
