//! Each function's real binary, run under cargo-lambda's Lambda runtime API
//! emulator (`scripts/invoke.sh`, what `make invoke` runs) with the sample
//! event from `events/` as shipped and the variables of `events/env.json`
//! (what `sam local invoke --env-vars` would set), against the shared local
//! stack. Their log lines are checked too: what CloudWatch would receive.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use puffle_app::fixtures;
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Invoked {
    response: Value,
    /// The function's stdout/stderr, one entry per line.
    log: Vec<String>,
}

/// Runs scripts/invoke.sh with the shipped event and env file.
fn invoke(function: &str) -> Invoked {
    let log = std::env::temp_dir().join(format!("puffle-invoke-{function}-{}.log", puffle_tests::unique()));
    let out = Command::new(root().join("scripts/invoke.sh"))
        .arg(function)
        .arg(root().join(format!("events/{function}.json")))
        .env("ENV_FILE", root().join("events/env.json"))
        .env("FUNCTION_LOG", &log)
        .output()
        .expect("run scripts/invoke.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "invoke {function} failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let response =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{function} answered non-JSON ({e}): {stdout}"));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    Invoked { response, log: text.lines().map(str::to_string).collect() }
}

fn http_body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap_or("null")).unwrap()
}

/// Every line is a JSON object Lambda files at its real level: `timestamp`
/// (RFC 3339) and `level` always, `function_name` and `cold_start` on log
/// lines, and metric lines in Embedded Metric Format.
fn check_lines(function: &str, log: &[String]) -> Vec<Value> {
    assert!(!log.is_empty(), "{function} logged nothing");
    log.iter()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{function}: not JSON ({e}): {line}"));
            let ts = v["timestamp"].as_str().unwrap_or_else(|| panic!("{function}: no timestamp: {line}"));
            assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{function}: {ts}");
            let level = v["level"].as_str().unwrap_or_else(|| panic!("{function}: no level: {line}"));
            assert!(["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level), "{function}: {line}");
            if v["_aws"].is_null() {
                assert_eq!(v["function_name"], function, "{line}");
                assert!(v["cold_start"].is_boolean(), "{line}");
            }
            v
        })
        .collect()
}

fn metric_names(lines: &[Value]) -> BTreeSet<String> {
    lines
        .iter()
        .flat_map(|l| l["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m["Name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn every_function_binary_answers_its_shipped_event_and_logs_json_lines() {
    puffle_tests::app().await.seed_event_fixtures().await.expect("seed the event fixtures");
    let expect = [
        ("health", 200),
        ("credits", 200),
        ("catalog", 200),
        ("leads", 200),
        ("lists", 201),
        ("create", 202),
        ("status", 200),
        ("items", 200),
        // The fixture run is completed: cancelling it is a contract 409.
        ("cancel", 409),
        // A JSON-RPC tools/call (get_run) under a stage prefix, answered in JSON.
        ("mcp", 200),
        ("webhook-api", 200),
    ];
    for (function, status) in expect {
        let Invoked { response, log } = invoke(function);
        assert_eq!(response["statusCode"], status, "{function}: {response}");
        let request_id =
            response["headers"]["x-request-id"].as_str().unwrap_or_else(|| panic!("{function}: {response}"));
        let body = http_body(&response);
        let lines = check_lines(function, &log);
        let request_line = lines
            .iter()
            .find(|l| l["message"] == "request" && l["function"] == function)
            .unwrap_or_else(|| panic!("{function}: a request line: {log:?}"));
        assert_eq!(request_line["correlation_id"], request_id, "{function}: the log line names the request");
        assert_eq!(request_line["status"], status);
        match function {
            "health" => assert_eq!(body["status"], "ok"),
            "credits" => assert!(body["balance"].as_u64().is_some(), "{body}"),
            // `q=email`: the email enrichments, email_domain among them.
            "catalog" => {
                assert!(body["enrichments"].as_array().unwrap().iter().any(|e| e["slug"] == "email_domain"), "{body}")
            }
            "create" => {
                // The caller's X-Request-Id is the correlation id, end to end.
                assert_eq!(request_id, "events-correlation-create");
                assert!(metric_names(&lines).contains("RunsCreated"), "{log:?}");
            }
            "status" => assert_eq!(body["run"]["id"], fixtures::RUN_ID),
            "items" => assert_eq!(body["items"][0]["leadId"], fixtures::LEAD_ID),
            "cancel" => assert_eq!(body["reason"], "run_not_cancellable"),
            "webhook-api" => assert_eq!(body["webhooks"], json!([])),
            "mcp" => {
                let result = &body["result"];
                assert_eq!(result["isError"], false, "{body}");
                assert_eq!(result["structuredContent"]["run"]["id"], fixtures::RUN_ID, "{body}");
                // The tool's in-process API call is logged under the MCP
                // request's correlation id.
                assert_eq!(request_id, "events-correlation-mcp");
                let inner = lines.iter().find(|l| l["message"] == "request" && l["function"] == "status");
                let inner = inner.unwrap_or_else(|| panic!("the tool's status call is logged: {log:?}"));
                assert_eq!(inner["correlation_id"], request_id, "{inner}");
            }
            _ => {}
        }
        // Health and /mcp need no token (MCP's tool calls are limited as the
        // routes they call).
        if !["health", "mcp"].contains(&function) {
            let h = &response["headers"];
            for k in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
                assert!(h[k].as_str().is_some_and(|v| v.parse::<u64>().is_ok()), "{function}: {k}: {h}");
            }
        }
    }

    // The SQS consumers: a duplicate of the fixture run's chunk 0 changes
    // nothing (it was counted), and both report no batch item failures.
    // The webhooks consumer: a message for a delivery that does not exist is dropped.
    for function in ["worker", "dlq", "webhooks"] {
        let Invoked { response, log } = invoke(function);
        assert_eq!(response["batchItemFailures"], json!([]), "{function}: {response}");
        let lines = check_lines(function, &log);
        if function == "worker" {
            // The message's correlation id is on the worker's lines.
            let ids: BTreeSet<&str> = lines.iter().filter_map(|l| l["correlation_id"].as_str()).collect();
            assert!(ids.contains("events-correlation-worker"), "{log:?}");
        } else if function == "dlq" {
            assert!(metric_names(&lines).contains("DeadLetters"), "{log:?}");
        }
    }
    // The stream consumer: a membership insert of a List without rules.
    let Invoked { response, log } = invoke("events");
    assert_eq!(response["batchItemFailures"], json!([]), "events: {response}");
    check_lines("events", &log);
    // The reaper: one pass over the live runs.
    let Invoked { response, log } = invoke("reaper");
    assert!(response["live"].as_u64().is_some(), "reaper: {response}");
    check_lines("reaper", &log);
    let app = puffle_tests::app().await;
    let run = app.run_status(fixtures::WORKSPACE_ID, fixtures::RUN_ID).await.unwrap();
    assert_eq!(run.scope.counts.completed, 1, "{run:?}");
    assert_eq!(run.scope.counts.failed, 0, "{run:?}");
}

/// `sam local invoke --env-vars` only sets variables the template declares,
/// so every key of events/env.json must be declared; and every declared
/// variable that names a stack resource (or an endpoint) must be in the file,
/// or the function would reach for AWS.
#[test]
fn the_env_file_overrides_exactly_what_the_template_declares() {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("template.yaml")).unwrap()).unwrap();
    let resources: BTreeSet<String> =
        doc["Resources"].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap().to_string()).collect();
    // Variable → its template values (Globals and every function).
    let mut declared: BTreeMap<String, Vec<serde_yaml::Value>> = BTreeMap::new();
    let mut collect = |vars: &serde_yaml::Value| {
        for (k, v) in vars.as_mapping().into_iter().flatten() {
            declared.entry(k.as_str().unwrap().to_string()).or_default().push(v.clone());
        }
    };
    collect(&doc["Globals"]["Function"]["Environment"]["Variables"]);
    for (_, r) in doc["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() == Some("AWS::Serverless::Function") {
            collect(&r["Properties"]["Environment"]["Variables"]);
        }
    }
    let env: Value = serde_json::from_str(&std::fs::read_to_string(root().join("events/env.json")).unwrap()).unwrap();
    let params = env["Parameters"].as_object().expect("events/env.json has Parameters for every function");
    for key in params.keys() {
        assert!(declared.contains_key(key), "events/env.json sets {key}, which the template does not declare");
    }
    let names_a_resource = |v: &serde_yaml::Value| match v {
        serde_yaml::Value::Tagged(t) => {
            let inner = format!("{:?}", t.value);
            resources.iter().any(|r| inner.contains(&format!("\"{r}")) || inner.contains(&format!("${{{r}")))
        }
        serde_yaml::Value::String(s) => s.is_empty(),
        _ => false,
    };
    for (key, values) in &declared {
        if values.iter().any(names_a_resource) {
            assert!(params.contains_key(key), "{key} names a stack resource or endpoint: events/env.json must set it");
        }
    }
    for must in ["PUFFLE_DYNAMODB_ENDPOINT", "PUFFLE_SQS_ENDPOINT", "PUFFLE_TABLE_NAME", "PUFFLE_QUEUE_URL"] {
        assert!(params.contains_key(must), "{must}");
    }
    assert_eq!(params["PUFFLE_TABLE_NAME"], puffle_aws::definitions::local_name("Table").as_str());
}

/// A function whose runtime stops (here: no Runtime API to reach) says so in
/// one JSON log line and exits non-zero, rather than `main`'s bare `Error:`.
#[test]
fn a_runtime_that_stops_logs_json_and_exits_non_zero() {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // Nothing listens once the listener is dropped.
    let out = Command::new(target.join("debug/health"))
        .env("AWS_LAMBDA_RUNTIME_API", closed.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "health")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .output()
        .expect("run the health binary (cargo build --bins)");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(last["message"], "the Lambda runtime stopped", "{last}");
    assert_eq!(last["level"], "ERROR");
    assert!(last["timestamp"].is_string() && last["error"].is_string(), "{last}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Error:"), "a bare error line: {stderr}");
}
