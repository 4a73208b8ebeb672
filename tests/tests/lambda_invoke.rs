//! Each function's real binary, run under cargo-lambda's Lambda runtime API
//! emulator (`scripts/invoke.sh`, what `make invoke` runs) with the sample
//! event from `events/`, against the shared local stack.

use std::path::PathBuf;
use std::process::Command;

use puffle_tests::{person, Ctx};
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs scripts/invoke.sh; returns the function's response.
fn invoke(function: &str, env: &[(&str, &str)]) -> Value {
    let out = Command::new(root().join("scripts/invoke.sh"))
        .arg(function)
        .arg(root().join(format!("events/{function}.json")))
        .envs(env.iter().copied())
        .output()
        .expect("run scripts/invoke.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "invoke {function} failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{function} answered non-JSON ({e}): {stdout}"))
}

fn http_body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap_or("null")).unwrap()
}

#[tokio::test]
async fn every_function_binary_answers_its_sample_event() {
    let ctx = Ctx::new(100).await;
    let lead = ctx.leads(vec![person("invoke")]).await.remove(0);
    let run = ctx
        .post(
            "/api/enrichment",
            json!({"enrichmentId":"job_seniority","scope":{"type":"explicit_leads","leadIds":[lead]},"input":{}}),
        )
        .await;
    assert_eq!(run.status, 202, "{run:?}");
    let run_id = run.body["runId"].as_str().unwrap().to_string();
    ctx.wait_terminal(&run_id).await;
    let env = [
        ("PUFFLE_TOKEN", ctx.token.as_str()),
        ("LEAD_ID", lead.as_str()),
        ("RUN_ID", run_id.as_str()),
        ("WORKSPACE_ID", ctx.workspace_id.as_str()),
    ];

    let expect = [
        ("health", 200),
        ("credits", 200),
        ("catalog", 200),
        ("leads", 200),
        ("lists", 201),
        ("create", 202),
        ("status", 200),
        ("items", 200),
        // The run above is completed: cancelling it is a contract 409.
        ("cancel", 409),
        // A JSON-RPC tools/call (get_run) under a stage prefix, answered in JSON.
        ("mcp", 200),
        ("webhook-api", 200),
    ];
    for (function, status) in expect {
        let resp = invoke(function, &env);
        assert_eq!(resp["statusCode"], status, "{function}: {resp}");
        let body = http_body(&resp);
        match function {
            "health" => assert_eq!(body["status"], "ok"),
            "credits" => assert!(body["balance"].as_u64().is_some(), "{body}"),
            "catalog" => assert_eq!(body["enrichments"][0]["slug"], "email_domain"),
            "status" => assert_eq!(body["run"]["id"], run_id.as_str()),
            "items" => assert_eq!(body["items"][0]["leadId"], lead.as_str()),
            "cancel" => assert_eq!(body["reason"], "run_not_cancellable"),
            "webhook-api" => assert_eq!(body["webhooks"], json!([])),
            "mcp" => {
                let result = &body["result"];
                assert_eq!(result["isError"], false, "{body}");
                assert_eq!(result["structuredContent"]["run"]["id"], run_id.as_str(), "{body}");
            }
            _ => {}
        }
    }

    // The SQS consumers: a duplicate of the run's chunk 0 changes nothing
    // (it was counted), and both report no batch item failures.
    // The webhooks consumer: a message for a delivery that does not exist is dropped.
    for function in ["worker", "dlq", "webhooks"] {
        let resp = invoke(function, &env);
        assert_eq!(resp["batchItemFailures"], json!([]), "{function}: {resp}");
    }
    // The stream consumer: a membership insert of a List without rules.
    let resp = invoke("events", &env);
    assert_eq!(resp["batchItemFailures"], json!([]), "events: {resp}");
    // The reaper: one pass over the live runs.
    let resp = invoke("reaper", &env);
    assert!(resp["live"].as_u64().is_some(), "reaper: {resp}");
    let after = ctx.get(&format!("/api/enrichment/{run_id}")).await;
    assert_eq!(after.body["run"]["scope"]["counts"]["completed"], 1, "{after:?}");
    assert_eq!(after.body["run"]["scope"]["counts"]["failed"], 0, "{after:?}");
}
