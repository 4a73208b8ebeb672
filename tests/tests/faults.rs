//! Backend faults on a private stack (its own DynamoDB Local, SQS emulator,
//! API and worker on free ports): DynamoDB stopped while the API serves, the
//! worker killed again and again during a large run, and DynamoDB throttling
//! a share of every process's calls. Each test asserts outcomes (statuses,
//! bodies, exact counts, what was written), never durations; the durations
//! it sees are printed for the record.
//!
//! Worker faults already covered elsewhere (duplicate delivery, two kills
//! during 3,000 Leads, poison messages, a queue that rejects the dispatch)
//! live in `worker_faults.rs`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use puffle_domain::credits::LedgerKind;
use puffle_tests::isolated::Isolated;
use puffle_tests::{counts, person, Ctx, Resp};
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

/// `503 SERVICE_UNAVAILABLE` with a JSON body and a positive `Retry-After`.
#[track_caller]
fn assert_unavailable(what: &str, r: &Resp) {
    assert_eq!(r.status, 503, "{what}: {r:?}");
    assert_eq!(r.body["code"], "SERVICE_UNAVAILABLE", "{what}: {r:?}");
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: no message: {r:?}");
    let retry_after = r.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    assert!(
        retry_after.is_some_and(|s| s > 0),
        "{what}: 503 without a Retry-After of whole seconds: {:?} {r:?}",
        r.headers.get("retry-after")
    );
}

/// Sends a request the way a careful client does under throttling: a 503
/// with `Retry-After` is retried after that many seconds (at most 20 times);
/// any other 5xx fails the test at once. Returns the final response and
/// how many 503s it took.
async fn send_retrying(ctx: &Ctx, method: &str, path: &str, body: Option<Value>) -> (Resp, u32) {
    let mut unavailable = 0;
    loop {
        let mut req = ctx
            .http
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", ctx.base))
            .bearer_auth(&ctx.token);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                panic!("{method} {path}: no answer within the client's timeout (a hang, not a slow answer): {e}")
            }
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let r = Resp { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if r.status == 503 {
            assert_unavailable(&format!("{method} {path}"), &r);
            unavailable += 1;
            assert!(unavailable <= 20, "{method} {path}: still 503 after 20 retries: {r:?}");
            let secs =
                r.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(secs)).await;
            continue;
        }
        assert!(r.status < 500, "{method} {path}: server error under throttling: {r:?}");
        return (r, unavailable);
    }
}

/// Polls a run until it is terminal with nothing pending or running (hang
/// guard only: 5 minutes), retrying 503s.
async fn settle(ctx: &Ctx, run_id: &str) -> Value {
    for _ in 0..1200 {
        let (r, _) = send_retrying(ctx, "GET", &format!("/api/enrichment/{run_id}"), None).await;
        assert_eq!(r.status, 200, "{r:?}");
        let run = r.body["run"].clone();
        let c = counts(&run);
        if matches!(run["status"].as_str(), Some("completed" | "failed" | "cancelled")) && c[0] == 0 && c[1] == 0 {
            assert_eq!(
                c.iter().sum::<u64>(),
                run["scope"]["resolvedCount"].as_u64().unwrap(),
                "counts do not add up: {run}"
            );
            return run;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("run {run_id} did not settle within 5 minutes");
}

/// Every item of a run (following cursors, retrying 503s), checked to hold
/// each Lead exactly once.
async fn items_by_lead(ctx: &Ctx, run_id: &str) -> HashMap<String, Value> {
    let mut m = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/enrichment/{run_id}/items?limit=100");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (r, _) = send_retrying(ctx, "GET", &path, None).await;
        assert_eq!(r.status, 200, "{r:?}");
        for i in r.body["items"].as_array().unwrap() {
            let lead = i["leadId"].as_str().unwrap().to_string();
            assert!(m.insert(lead.clone(), i.clone()).is_none(), "lead {lead} has two items");
        }
        match r.body["page"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return m,
        }
    }
}

/// The run's end state, checked the same way by every test: completed, every
/// Lead exactly one completed item, every Lead's attribute written by this
/// run, every Lead charged once and nothing released.
async fn assert_completed_exactly(app: &puffle_app::App, ctx: &Ctx, run_id: &str, ids: &[String]) {
    let n = ids.len() as u64;
    let run = settle(ctx, run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["scope"]["resolvedCount"], n, "{run}");
    assert_eq!(counts(&run), [0, 0, n, 0, 0], "{}", run["scope"]);
    assert_eq!(run["cost"]["actual"], n, "{run}");
    assert_eq!(run["cost"]["reserved"], n, "{run}");

    let items = items_by_lead(ctx, run_id).await;
    assert_eq!(items.len() as u64, n);
    assert_eq!(
        items.keys().map(String::as_str).collect::<HashSet<_>>(),
        ids.iter().map(String::as_str).collect::<HashSet<_>>()
    );
    for (lead, i) in &items {
        assert_eq!(i["status"], "completed", "{lead}: {i}");
        assert!(i["result"]["domain"].as_str().is_some_and(|d| d.starts_with("acme-")), "{lead}: {i}");
    }

    // Each Lead holds the attribute exactly once, written by this run.
    let attrs = app.store().get_lead_attrs(&ctx.workspace_id, ids, "email_domain").await.unwrap();
    assert_eq!(attrs.len() as u64, n, "Leads without the attribute");
    for (lead, row) in &attrs {
        assert_eq!(puffle_aws::store::get_s(row, "runId").as_deref(), Some(run_id), "{lead}: {row:?}");
    }

    let all: Vec<serde_json::Value> = items.values().cloned().collect();
    assert_eq!(puffle_tests::assert_billed(app, &ctx.workspace_id, &run, &all, 1).await, (n, 0));
    let reserves: Vec<_> =
        app.ledger(&ctx.workspace_id).await.unwrap().into_iter().filter(|e| e.kind == LedgerKind::Reserve).collect();
    assert_eq!(reserves.len(), 1, "{reserves:?}");
    assert_eq!(reserves[0].amount, n);
}

fn assert_no_panic(iso: &Isolated, name: &str) {
    let log = iso.log(name);
    assert!(!log.contains("panicked"), "the {name} process panicked:\n{log}");
}

// ---------------------------------------------------------------- tests

/// DynamoDB Local stopped while the API serves: every request that needs it
/// answers 503 SERVICE_UNAVAILABLE (the API error with Retry-After), never a
/// 500 and never a panic; the API process stays up. Once DynamoDB is back
/// (empty: it is in-memory, so the table is provisioned again), the service
/// answers 200s and runs complete.
#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_outage_answers_503_and_the_service_resumes() {
    let mut iso = Isolated::start(&[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 100).await;
    let ids = ctx.people("outage", 3).await;
    let list = ctx.list(&ids).await;
    // Warm: the token is now in the API's cache; the cursor key is loaded.
    assert_eq!(ctx.get("/api/health").await.status, 200);
    assert_eq!(ctx.get("/api/credits").await.status, 200);
    assert_eq!(ctx.get("/api/leads?limit=1").await.status, 200);
    let run_id = ctx
        .start(json!({"enrichmentId": "email_domain", "scope": {"type": "list", "listId": list}, "input": {}}))
        .await;

    iso.kill("dynamodb");

    // The health check: 503 with its own body.
    let t = Instant::now();
    let h = ctx.get("/api/health").await;
    let health_took = t.elapsed();
    assert_eq!(h.status, 503, "{h:?}");
    assert_eq!(h.body["code"], "SERVICE_UNAVAILABLE", "{h:?}");
    assert_eq!(h.body["status"], "unavailable", "{h:?}");

    // Authenticated requests (cached token): every route that reads or writes.
    let create = json!({"enrichmentId": "email_domain", "scope": {"type": "list", "listId": list}, "input": {}, "idempotencyKey": "outage-1"});
    let requests: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/credits".into(), None),
        ("GET", "/api/leads".into(), None),
        ("GET", format!("/api/leads?id={}", ids[0]), None),
        ("POST", "/api/leads".into(), Some(person("outage-new"))),
        ("GET", "/api/lists".into(), None),
        ("GET", format!("/api/lists/{list}"), None),
        ("GET", format!("/api/lists/{list}/leads"), None),
        ("POST", "/api/lists".into(), Some(json!({"name": "during the outage"}))),
        ("POST", format!("/api/lists/{list}/leads"), Some(json!({"leadIds": [ids[0]]}))),
        ("POST", "/api/enrichment".into(), Some(create)),
        ("GET", format!("/api/enrichment/{run_id}"), None),
        ("GET", format!("/api/enrichment/{run_id}/items"), None),
        ("POST", format!("/api/enrichment/{run_id}/cancel"), Some(json!({}))),
    ];
    let mut took = vec![("GET /api/health".to_string(), health_took)];
    for (method, path, body) in requests {
        let t = Instant::now();
        let r = ctx.send(method, &path, body, Some(&ctx.token.clone())).await;
        took.push((format!("{method} {path}"), t.elapsed()));
        assert_unavailable(&format!("{method} {path}"), &r);
    }
    // A token the API has not cached cannot be checked: 503, not 401.
    let t = Instant::now();
    let r = ctx.send("GET", "/api/credits", None, Some("pfl_not_a_cached_token")).await;
    took.push(("GET /api/credits (uncached token)".into(), t.elapsed()));
    assert_unavailable("uncached token", &r);
    // What needs no backend still works.
    assert_eq!(ctx.send("GET", "/api/credits", None, None).await.status, 401);
    assert_eq!(ctx.get("/api/nothing").await.status, 404);
    // The catalog holds the workspace's own enrichments too (and whether
    // their secrets are set): it needs the table, so it is a 503 like the rest.
    assert_unavailable("GET /api/enrichments", &ctx.get("/api/enrichments").await);
    eprintln!("request durations while DynamoDB is down: {took:?}");
    assert_no_panic(&iso, "api");
    assert_no_panic(&iso, "worker");
    let log = iso.log("api");
    assert!(!log.contains("\"status\":500"), "the API answered a 500 during the outage:\n{log}");

    // DynamoDB comes back empty: provision, then a new workspace (the old
    // token may still sit in the API's cache, but its workspace is gone).
    iso.start_component("dynamodb").await;
    iso.provision();
    let t = Instant::now();
    let mut h = ctx.get("/api/health").await;
    for _ in 0..120 {
        if h.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        h = ctx.get("/api/health").await;
    }
    eprintln!("health back to 200 {:?} after provisioning", t.elapsed());
    assert_eq!(h.status, 200, "{h:?}");
    let ctx2 = Ctx::on(&app, iso.api_url(), 100).await;
    assert_eq!(ctx2.balance().await, 100);
    let ids2 = ctx2.people("after-outage", 3).await;
    let list2 = ctx2.list(&ids2).await;
    let r = ctx2.get(&format!("/api/lists/{list2}/leads")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["total"], 3);
    let run2 = ctx2
        .start(json!({"enrichmentId": "email_domain", "scope": {"type": "list", "listId": list2}, "input": {}}))
        .await;
    assert_completed_exactly(&app, &ctx2, &run2, &ids2).await;
    assert_eq!(ctx2.balance().await, 97);
    assert_no_panic(&iso, "api");
    assert_no_panic(&iso, "worker");
}

/// The worker SIGKILLed five times during a 5,000-Lead run (restarted each
/// time): the run still completes with exact counts, one completed item per
/// Lead and every Lead's attribute written by the run. maxReceiveCount is 20
/// here: a message in flight at every kill is received once per kill, and
/// with the local default of 3 it would rightly be dead-lettered.
#[tokio::test(flavor = "multi_thread")]
async fn worker_killed_five_times_during_5000_leads_completes_exactly() {
    const N: usize = 5000;
    let mut iso = Isolated::start(&[("PUFFLE_LOCAL_MAX_RECEIVE_COUNT", "20")]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 6000).await;
    let ids = ctx.people("kill5", N).await;
    let list = ctx.list(&ids).await;
    let run_id = ctx
        .start(json!({"enrichmentId": "email_domain", "scope": {"type": "list", "listId": list}, "input": {}}))
        .await;

    // Kill points by progress: while planning (status running, nothing yet
    // completed is fine), then at 500, 1500, 2500 and 3500 completed Leads.
    let mut kills = vec![];
    for threshold in [0u64, 500, 1500, 2500, 3500] {
        for _ in 0..6000 {
            let (r, _) = send_retrying(&ctx, "GET", &format!("/api/enrichment/{run_id}"), None).await;
            let run = &r.body["run"];
            if (run["status"] == "running" && counts(run)[2] >= threshold) || run["status"] == "completed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        iso.kill("worker");
        // With the worker dead nothing moves: this is the state at the kill.
        let (r, _) = send_retrying(&ctx, "GET", &format!("/api/enrichment/{run_id}"), None).await;
        let at_kill = &r.body["run"];
        kills.push((at_kill["status"].as_str().unwrap().to_string(), counts(at_kill)[2]));
        tokio::time::sleep(Duration::from_millis(300)).await;
        iso.start_component("worker").await;
    }
    eprintln!("kills at (status, completed): {kills:?}");
    for (i, (status, _)) in kills.iter().enumerate() {
        assert_eq!(status, "running", "kill {i} did not land mid-run ({kills:?}); the test proved less than it claims");
    }

    assert_completed_exactly(&app, &ctx, &run_id, &ids).await;
    assert_eq!(ctx.balance().await, 1000);
    // Nothing was dead-lettered: every delivery was retried on the work queue.
    let worker = iso.log("worker");
    assert!(!worker.contains("dead-lettered"), "a message was dead-lettered");
    eprintln!("worker deliveries that failed and were retried: {}", worker.matches("left for retry").count());
    assert_no_panic(&iso, "api");
}

/// DynamoDB throttles 20% of the API's and the worker's calls (injected
/// before they leave the process): Lead upserts, List adds, a 1,000-Lead run
/// and reads all succeed through the SDK's retries — or answer 503 with
/// Retry-After, never a 500 — and the run completes with exact counts.
#[tokio::test(flavor = "multi_thread")]

async fn throttled_dynamodb_loses_nothing() {
    const N: usize = 1000;
    let iso = Isolated::start(&[("PUFFLE_FAULT_THROTTLE_RATE", "0.2")]).await;
    let app = iso.app().await;
    let mut ctx = Ctx::on(&app, iso.api_url(), 2000).await;
    // A hang guard for a 1,000-Lead upsert whose calls are retried.
    ctx.http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    let mut unavailable = 0;

    // One batch of 1,000 new Leads.
    let leads: Vec<Value> = (0..N).map(|i| person(&format!("thr{i}"))).collect();
    let t = Instant::now();
    let (r, u) = send_retrying(&ctx, "POST", "/api/leads", Some(json!({"leads": leads}))).await;
    eprintln!("upsert of {N} took {:?} ({u} 503s)", t.elapsed());
    unavailable += u;
    assert_eq!(r.status, 200, "{r:?}");
    let ids: Vec<String> =
        r.body["leads"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), N);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), N);

    // A few single upserts: a repeat import updates, never duplicates.
    for i in 0..5 {
        let mut again = leads[i].clone();
        again["title"] = json!("VP Engineering");
        let (r, u) = send_retrying(&ctx, "POST", "/api/leads", Some(again)).await;
        unavailable += u;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["created"], false, "{r:?}");
        assert_eq!(r.body["lead"]["id"], ids[i], "{r:?}");
    }

    // A List, filled in adds of 250 (the first one repeated: no change).
    let (r, u) =
        send_retrying(&ctx, "POST", "/api/lists", Some(json!({"name": "throttled", "leadType": "person"}))).await;
    unavailable += u;
    assert_eq!(r.status, 201, "{r:?}");
    let list = r.body["list"]["id"].as_str().unwrap().to_string();
    for chunk in ids.chunks(250).chain(std::iter::once(&ids[..250])) {
        let (r, u) =
            send_retrying(&ctx, "POST", &format!("/api/lists/{list}/leads"), Some(json!({"leadIds": chunk}))).await;
        unavailable += u;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let (r, u) = send_retrying(&ctx, "GET", &format!("/api/lists/{list}"), None).await;
    unavailable += u;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.body["list"]["leadCount"].as_u64(), r.body["list"]["personCount"].as_u64()),
        (Some(N as u64), Some(N as u64)),
        "{r:?}"
    );

    // The run; a 503 is retried with the same idempotency key.
    let create = json!({"enrichmentId": "email_domain", "scope": {"type": "list", "listId": list}, "input": {}, "idempotencyKey": "throttled-run"});
    let (r, u) = send_retrying(&ctx, "POST", "/api/enrichment", Some(create.clone())).await;
    unavailable += u;
    assert!(r.status == 202 || (u > 0 && r.status == 200), "{r:?}");
    assert_eq!(r.body["leadCount"], N as u64, "{r:?}");
    let run_id = r.body["runId"].as_str().unwrap().to_string();
    // A repeat is the same run, charged once.
    let (r, u) = send_retrying(&ctx, "POST", "/api/enrichment", Some(create)).await;
    unavailable += u;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["runId"], run_id.as_str());
    assert_eq!(r.body["reusedExistingRun"], true);

    assert_completed_exactly(&app, &ctx, &run_id, &ids).await;
    let (r, u) = send_retrying(&ctx, "GET", "/api/credits", None).await;
    unavailable += u;
    assert_eq!(r.body["balance"], 1000, "{r:?}");
    // Updates stuck; nothing was duplicated.
    let (r, u) = send_retrying(&ctx, "GET", &format!("/api/leads?id={}", ids[0]), None).await;
    unavailable += u;
    assert_eq!(r.body["lead"]["title"], "VP Engineering", "{r:?}");
    assert_eq!(r.body["lead"]["attributes"]["email_domain"]["freeMail"], false, "{r:?}");
    let mut listed = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/leads?limit=500&cursor={c}"),
            None => "/api/leads?limit=500".to_string(),
        };
        let (r, u) = send_retrying(&ctx, "GET", &path, None).await;
        unavailable += u;
        assert_eq!(r.status, 200, "{r:?}");
        listed += r.body["leads"].as_array().unwrap().len();
        match r.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(listed, N, "the workspace holds duplicate or missing Leads");

    let m = reqwest::get(format!("{}/_local/metrics", iso.api_url())).await.unwrap().json::<Value>().await.unwrap();
    let injected = m["injectedFaults"].as_u64().unwrap_or(0);
    eprintln!("API: {injected} throttles injected; the client saw {unavailable} 503s");
    assert!(injected > 0, "no fault was injected: {m}");
    let api_log = iso.log("api");
    assert!(!api_log.contains("\"status\":500"), "the API answered a 500 under throttling");
    let worker = iso.log("worker");
    assert!(!worker.contains("dead-lettered"), "a message was dead-lettered under throttling");
    eprintln!(
        "worker deliveries that failed under throttling and were retried: {}",
        worker.matches("left for retry").count()
    );
    assert_no_panic(&iso, "api");
    assert_no_panic(&iso, "worker");
}
