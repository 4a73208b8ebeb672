//! Webhooks end to end, and retries of a run's failed items, on a private
//! stack. Every delivery is checked by an independent implementation of
//! Standard Webhooks: `tests/webhook_receiver.py`, a receiver on 127.0.0.1
//! built on the `standardwebhooks` package from PyPI (let through the egress
//! guard by PUFFLE_EGRESS_ALLOW_HOSTS). It answers 500 to a message's first
//! attempts when told to, and logs what it saw and what the library said.
//!
//! Retries are shortened for the test (300 ms doubling to 1 s, for 8 s).
//! One stack, one test: the sections run in order.

use std::process::Stdio;
use std::time::Duration;

use futures::future::join_all;
use puffle_tests::isolated::Isolated;
use puffle_tests::stub::Stub;
use puffle_tests::{settle, status, unique, Ctx};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python receiver, stopped when dropped.
struct Receiver {
    port: u16,
    http: reqwest::Client,
    _child: tokio::process::Child,
}

impl Receiver {
    async fn start() -> Receiver {
        let python = root().join(".venv/bin/python");
        assert!(python.is_file(), "{} is missing: run `make venv`", python.display());
        let mut child = tokio::process::Command::new(python)
            .arg(root().join("tests/webhook_receiver.py"))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start tests/webhook_receiver.py");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        tokio::time::timeout(Duration::from_secs(30), BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("the receiver printed its port")
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("not a port: {line:?}"));
        Receiver { port, http: reqwest::Client::new(), _child: child }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn config(&self, path: &str, secrets: &[&str], fail: u32) {
        let r = self
            .http
            .post(self.url("/_control/config"))
            .json(&json!({"path": path, "secrets": secrets, "fail": fail}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// Deliveries seen at `path`, in arrival order.
    async fn log(&self, path: &str) -> Vec<Value> {
        let v: Value = self.http.get(self.url("/_control/log")).send().await.unwrap().json().await.unwrap();
        v["deliveries"].as_array().unwrap().iter().filter(|d| d["path"] == path).cloned().collect()
    }

    /// Waits (a hang guard, not a timing check) until `done` holds for the log of `path`.
    async fn wait(&self, path: &str, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..600 {
            let log = self.log(path).await;
            if done(&log) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what}: not within 60 s; {path} saw {:#?}", self.log(path).await);
    }
}

fn of_id<'a>(log: &'a [Value], id: &str) -> Vec<&'a Value> {
    log.iter().filter(|d| d["headers"]["webhook-id"] == id).collect()
}

fn body_of(d: &Value) -> Value {
    serde_json::from_str(d["body"].as_str().unwrap()).unwrap()
}

fn verified(d: &Value) -> Vec<bool> {
    d["verified"].as_array().unwrap().iter().map(|v| v["ok"].as_bool().unwrap()).collect()
}

async fn deliveries(ctx: &Ctx, webhook: &str) -> Vec<Value> {
    let r = ctx.get(&format!("/api/webhooks/{webhook}/deliveries?limit=100")).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["deliveries"].as_array().unwrap().clone()
}

/// Waits until the webhook's log holds a delivery matching `done`.
async fn wait_delivery(ctx: &Ctx, webhook: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..600 {
        if let Some(d) = deliveries(ctx, webhook).await.into_iter().find(&done) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 60 s; the log holds {:#?}", deliveries(ctx, webhook).await);
}

async fn create_webhook(ctx: &Ctx, url: &str, events: Value) -> (String, String) {
    let r = ctx.post("/api/webhooks", json!({"url": url, "events": events, "description": "test"})).await;
    assert_eq!(r.status, 201, "{r:?}");
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(r.body["webhook"]["enabled"], true);
    assert!(r.body["webhook"].get("secret").is_none() && r.body["webhook"].get("secrets").is_none());
    (r.body["webhook"]["id"].as_str().unwrap().to_string(), secret)
}

/// A name of this machine that resolves to loopback (/etc/hosts), not `localhost`.
async fn a_name_for_loopback() -> String {
    let mut candidates = vec!["ip6-localhost".to_string(), "ip6-loopback".to_string()];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        candidates.insert(0, h.trim().to_string());
    }
    for name in candidates {
        let found = tokio::net::lookup_host((name.as_str(), 80)).await.map(|a| a.collect::<Vec<_>>());
        if let Ok(addrs) = found {
            if !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()) {
                return name;
            }
        }
    }
    panic!("no host name of this machine resolves to loopback");
}

/// A workspace enrichment calling the provider stub (one attempt per Lead).
fn stub_enrichment(stub: &Stub) -> Value {
    json!({
        "slug": "stubby", "name": "Stub", "subject": "person",
        "outputSchema": {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]},
        "costModel": {"creditsPerLead": 1},
        "toolBinding": {"type": "http", "provider": "stub",
            "request": {"method": "POST", "url": stub.url("/find"), "headers": {"Authorization": "Bearer {{secrets.STUB_KEY}}"},
                        "body": {"name": "{{lead.name.full}}"}},
            "response": {"found": "/data/email", "result": {"email": "/data/email"}},
            "timeoutMs": 2000, "maxAttempts": 1, "ratePerSecond": 100, "circuit": {"failureThreshold": 1000}}
    })
}

async fn setup_stub_enrichment(ctx: &Ctx, stub: &Stub) {
    let r = ctx.send("PUT", "/api/secrets/STUB_KEY", Some(json!({"value": "k"})), Some(&ctx.token)).await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = ctx.post("/api/enrichments", stub_enrichment(stub)).await;
    assert_eq!(r.status, 201, "{r:?}");
}

fn named(name: &str) -> Value {
    json!({"type": "person", "name": {"full": name}, "contacts": [{"type": "email", "value": format!("{}@people.test", unique())}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_signed_retried_logged_and_replayed_and_failed_items_retry() {
    let rx = Receiver::start().await;
    let stub = Stub::start().await;
    let allow = format!("127.0.0.1:{},127.0.0.1:{}", rx.port, stub.addr.port());
    let mut iso = Isolated::start(&[
        ("PUFFLE_EGRESS_ALLOW_HOSTS", &allow),
        ("PUFFLE_WEBHOOK_RETRY_BASE_MS", "300"),
        ("PUFFLE_WEBHOOK_RETRY_MAX_MS", "1000"),
        ("PUFFLE_WEBHOOK_RETRY_WINDOW_SECONDS", "8"),
    ])
    .await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;
    let other = Ctx::on(&app, iso.api_url(), 10).await;

    // ---- A run's lifecycle to a receiver that fails each message twice.
    let (a, secret_a) = create_webhook(&ctx, &rx.url("/hook/a"), json!(["*"])).await;
    rx.config("/hook/a", &[&secret_a], 2).await;
    let leads = ctx.people("wh", 2).await;
    let run_id = ctx
        .start(
            json!({"enrichmentId": "email_domain", "scope": {"type": "explicit_leads", "leadIds": leads}, "input": {}}),
        )
        .await;
    settle(&ctx, &run_id).await;
    let types = ["enrichment.run.created", "enrichment.run.started", "enrichment.run.completed"];
    let log = rx
        .wait("/hook/a", "three events, each answered 500, 500, 200", |log| {
            types.iter().all(|t| log.iter().filter(|d| body_of(d)["type"] == *t && d["status"] == 200).count() == 1)
        })
        .await;
    let mut ids = vec![];
    for t in types {
        let firsts: Vec<&Value> = log.iter().filter(|d| body_of(d)["type"] == t).collect();
        let id = firsts[0]["headers"]["webhook-id"].as_str().unwrap().to_string();
        let tries = of_id(&log, &id);
        // Retries carry the same webhook-id; each attempt is signed afresh.
        assert_eq!(tries.iter().map(|d| d["status"].as_u64().unwrap()).collect::<Vec<_>>(), [500, 500, 200], "{t}");
        for d in &tries {
            assert_eq!(verified(d), [true], "standardwebhooks rejected {d:#}");
            assert_eq!(d["headers"]["content-type"], "application/json");
            assert_eq!(d["headers"]["webhook-signature"].as_str().unwrap().split(' ').count(), 1);
            let b = body_of(d);
            assert_eq!(b["data"]["id"], run_id.as_str(), "data is the run: {b}");
            assert!(b["timestamp"].as_str().is_some() && b["data"]["scope"]["counts"].is_object(), "{b}");
        }
        assert!(id.starts_with("evt_"), "{id}");
        ids.push(id);
    }
    assert_eq!(body_of(of_id(&log, &ids[2])[2])["data"]["status"], "completed");
    ids.dedup();
    assert_eq!(ids.len(), 3, "one webhook-id per event");

    // The delivery log: what was sent, each attempt, the outcome.
    let logged = deliveries(&ctx, &a).await;
    assert_eq!(logged.len(), 3, "{logged:#?}");
    for d in &logged {
        assert!(ids.contains(&d["eventId"].as_str().unwrap().to_string()), "eventId is the webhook-id: {d}");
        assert_eq!(d["status"], "succeeded", "{d}");
        let codes: Vec<u64> =
            d["attempts"].as_array().unwrap().iter().map(|a| a["statusCode"].as_u64().unwrap()).collect();
        assert_eq!(codes, [500, 500, 200], "{d}");
        assert_eq!(d["attempts"][0]["error"], "HTTP 500");
        assert!(
            d["attempts"][2]["error"].is_null()
                && d["attempts"][2]["durationMs"].is_u64()
                && d["attempts"][2]["at"].is_string()
        );
        assert!(d["nextAttemptAt"].is_null(), "{d}");
    }
    // Newest first, paged.
    let p1 = ctx.get(&format!("/api/webhooks/{a}/deliveries?limit=2")).await;
    assert_eq!(
        (p1.body["deliveries"].as_array().unwrap().len(), &p1.body["page"]["hasMore"]),
        (2, &json!(true)),
        "{p1:?}"
    );
    let cursor = p1.body["page"]["nextCursor"].as_str().unwrap();
    let p2 = ctx.get(&format!("/api/webhooks/{a}/deliveries?limit=2&cursor={cursor}")).await;
    assert_eq!(p2.body["deliveries"].as_array().unwrap().len(), 1, "{p2:?}");
    assert_eq!(p2.body["page"]["hasMore"], false);
    assert_eq!(ctx.get(&format!("/api/webhooks/{a}/deliveries?cursor=nope")).await.status, 400);

    // Replay: a new attempt with the same webhook-id.
    let completed = logged.iter().find(|d| d["eventType"] == "enrichment.run.completed").unwrap();
    let did = completed["id"].as_str().unwrap();
    let r = ctx.post(&format!("/api/webhooks/{a}/deliveries/{did}/replay"), json!({})).await;
    assert_eq!(r.status, 202, "{r:?}");
    let log = rx.wait("/hook/a", "the replay", |log| of_id(log, &ids[2]).len() == 4).await;
    let replayed = of_id(&log, &ids[2])[3];
    assert_eq!((replayed["status"].as_u64(), verified(replayed)), (Some(200), vec![true]));
    let d = wait_delivery(&ctx, &a, "the replay logged", |d| {
        d["id"] == did && d["attempts"].as_array().unwrap().len() == 4
    })
    .await;
    assert_eq!(d["status"], "succeeded");

    // The test event goes out whatever the filter.
    let r = ctx
        .send(
            "PATCH",
            &format!("/api/webhooks/{a}"),
            Some(json!({"events": ["enrichment.run.failed"]})),
            Some(&ctx.token),
        )
        .await;
    assert_eq!((r.status, &r.body["webhook"]["events"]), (200, &json!(["enrichment.run.failed"])), "{r:?}");
    let r = ctx.post(&format!("/api/webhooks/{a}/test"), json!({})).await;
    assert_eq!(r.status, 202, "{r:?}");
    let test_id = r.body["delivery"]["eventId"].as_str().unwrap().to_string();
    let log = rx.wait("/hook/a", "the test event", |log| of_id(log, &test_id).iter().any(|d| d["status"] == 200)).await;
    let t = of_id(&log, &test_id)[0];
    assert_eq!(body_of(t)["type"], "webhook.test");
    assert_eq!(body_of(t)["data"]["webhookId"], a.as_str());
    assert_eq!(verified(t), [true]);

    // Another workspace's (or no) webhook is WEBHOOK_NOT_FOUND on every route.
    for (m, path) in [
        ("GET", format!("/api/webhooks/{a}")),
        ("PATCH", format!("/api/webhooks/{a}")),
        ("DELETE", format!("/api/webhooks/{a}")),
        ("POST", format!("/api/webhooks/{a}/rotate-secret")),
        ("GET", format!("/api/webhooks/{a}/deliveries")),
        ("POST", format!("/api/webhooks/{a}/deliveries/{did}/replay")),
        ("POST", format!("/api/webhooks/{a}/test")),
        ("GET", "/api/webhooks/wh_nope".to_string()),
        ("GET", "/api/webhooks/not-an-id".to_string()),
    ] {
        let body = (m == "PATCH").then(|| json!({"enabled": false}));
        let r = other.send(m, &path, body, Some(&other.token)).await;
        assert_eq!((r.status, r.body["code"].as_str()), (404, Some("WEBHOOK_NOT_FOUND")), "{m} {path}: {r:?}");
    }
    assert_eq!(other.get("/api/webhooks").await.body["webhooks"], json!([]));
    let r = ctx.post(&format!("/api/webhooks/{a}/deliveries/dlv_nope/replay"), json!({})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (404, Some("DELIVERY_NOT_FOUND")), "{r:?}");
    let r = ctx.send("DELETE", &format!("/api/webhooks/{a}"), None, Some(&ctx.token)).await;
    assert_eq!(r.status, 204);
    assert_eq!(ctx.get(&format!("/api/webhooks/{a}")).await.status, 404);

    // ---- Refused targets and unknown events: 400 at creation…
    let loopback_name = a_name_for_loopback().await;
    for url in [
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/hook".to_string(),
        format!("http://localhost:{}/hook", rx.port),
        format!("http://{loopback_name}:{}/hook", rx.port),
        "ftp://hooks.example.com/".to_string(),
        "not a url".to_string(),
    ] {
        let r = ctx.post("/api/webhooks", json!({"url": url, "events": ["*"]})).await;
        assert_eq!((r.status, r.body["code"].as_str()), (400, Some("INVALID_REQUEST")), "{url}: {r:?}");
        assert_eq!(r.body["details"]["field"], "url", "{r:?}");
    }
    for events in [json!(["enrichment.run.exploded"]), json!([]), json!("*"), json!(["*", "enrichment.run.failed"])] {
        let r = ctx.post("/api/webhooks", json!({"url": rx.url("/hook/x"), "events": events})).await;
        assert_eq!((r.status, r.body["code"].as_str()), (400, Some("INVALID_REQUEST")), "{events}: {r:?}");
        assert_eq!(r.body["details"]["field"], "events");
    }
    let r = ctx.post("/api/webhooks", json!({"url": rx.url("/hook/x"), "events": ["*"], "secret": "mine"})).await;
    assert_eq!(r.status, 400, "unknown fields: {r:?}");
    // …and at delivery, when a name resolves to a refused address after it was accepted.
    let (d_id, secret_d) = create_webhook(&ctx, &rx.url("/hook/d"), json!(["*"])).await;
    rx.config("/hook/d", &[&secret_d], 0).await;
    let mut row = app.store().get_webhook(&ctx.workspace_id, &d_id).await.unwrap().unwrap();
    let read_at = row.updated_at.clone();
    row.url = format!("http://{loopback_name}:{}/hook/d", rx.port);
    app.store().replace_webhook(&ctx.workspace_id, &row, &read_at).await.unwrap();
    assert_eq!(ctx.post(&format!("/api/webhooks/{d_id}/test"), json!({})).await.status, 202);
    // ---- An endpoint that keeps failing (its test event runs beside the refused one):
    // retried until the window ends, then failed.
    let (c, secret_c) = create_webhook(&ctx, &rx.url("/hook/c"), json!(["enrichment.run.completed"])).await;
    rx.config("/hook/c", &[&secret_c], 1000).await;
    let r = ctx.post(&format!("/api/webhooks/{c}/test"), json!({})).await;
    let cid = r.body["delivery"]["eventId"].as_str().unwrap().to_string();
    let d = wait_delivery(&ctx, &d_id, "a refused delivery gives up", |d| d["status"] == "failed").await;
    let attempts = d["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "retried: {d}");
    for at in attempts {
        let e = at["error"].as_str().unwrap();
        assert!(at["statusCode"].is_null() && e.contains("refused"), "{d}");
        assert!(!e.contains("/hook/d"), "errors name hosts, never URLs: {e}");
    }
    assert!(rx.log("/hook/d").await.is_empty(), "nothing was sent");

    let d = wait_delivery(&ctx, &c, "a failing endpoint gives up", |d| d["status"] == "failed").await;
    let n = d["attempts"].as_array().unwrap().len();
    assert!(n >= 3, "retried with backoff: {d}");
    assert!(d["attempts"].as_array().unwrap().iter().all(|a| a["statusCode"] == 500));
    assert!(d["nextAttemptAt"].is_null());
    let seen = rx.log("/hook/c").await;
    assert_eq!(of_id(&seen, &cid).len(), n, "one request per logged attempt");
    assert!(seen.iter().all(|s| verified(s) == [true]));
    assert_eq!(ctx.send("DELETE", &format!("/api/webhooks/{c}"), None, Some(&ctx.token)).await.status, 204);
    assert_eq!(ctx.send("DELETE", &format!("/api/webhooks/{d_id}"), None, Some(&ctx.token)).await.status, 204);

    // ---- Rotation: both secrets sign during the overlap; a second rotation retires the first.
    let (b, s1) = create_webhook(&ctx, &rx.url("/hook/b"), json!(["enrichment.run.cancelled"])).await;
    let r = ctx.post(&format!("/api/webhooks/{b}/rotate-secret"), json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let s2 = r.body["secret"].as_str().unwrap().to_string();
    let r = ctx.post(&format!("/api/webhooks/{b}/rotate-secret"), json!({})).await;
    let s3 = r.body["secret"].as_str().unwrap().to_string();
    assert!(s1 != s2 && s2 != s3 && s3.starts_with("whsec_"));
    rx.config("/hook/b", &[&s1, &s2, &s3], 0).await;

    // The worker stopped: runs stay pending, so a cancel is certain and a
    // retry of a run that has not finished is refused.
    setup_stub_enrichment(&ctx, &stub).await;
    let tag = unique();
    let flaky: Vec<String> = ctx.leads((0..3).map(|i| named(&format!("flaky-{i}-{tag}"))).collect()).await;
    let hits: Vec<String> = ctx.leads((0..2).map(|i| named(&format!("hit-{i}-{tag}"))).collect()).await;
    iso.kill("worker");
    let to_cancel = ctx.people("cancel", 1).await;
    let r = ctx
        .post("/api/enrichment", json!({"enrichmentId": "email_domain", "scope": {"type": "explicit_leads", "leadIds": to_cancel}, "input": {}}))
        .await;
    let cancelled_run = r.body["runId"].as_str().unwrap().to_string();
    let r = ctx.post(&format!("/api/enrichment/{cancelled_run}/cancel"), json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let scope: Vec<&String> = flaky.iter().chain(hits.iter()).collect();
    let first = ctx
        .start(json!({"enrichmentId": "stubby", "scope": {"type": "explicit_leads", "leadIds": scope}, "input": {}}))
        .await;
    let r = ctx.post(&format!("/api/enrichment/{first}/retry"), json!({})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (409, Some("RUN_NOT_TERMINAL")), "{r:?}");
    iso.start_component("worker").await;

    let log = rx.wait("/hook/b", "the cancelled run's event", |log| !log.is_empty()).await;
    let d = &log[0];
    let b_body = body_of(d);
    assert_eq!(
        (b_body["type"].as_str(), b_body["data"]["id"].as_str()),
        (Some("enrichment.run.cancelled"), Some(cancelled_run.as_str()))
    );
    assert_eq!(b_body["data"]["status"], "cancelled");
    assert_eq!(d["headers"]["webhook-signature"].as_str().unwrap().split(' ').count(), 2, "two secrets sign: {d}");
    assert_eq!(verified(d), [false, true, true], "the first secret retired, the other two verify: {d:#}");

    // ---- Retry of the failed items: a new run over exactly those Leads, charged once.
    let run = settle(&ctx, &first).await;
    assert_eq!(puffle_tests::counts(&run), [0, 0, 2, 0, 3], "{run}");
    let before = ctx.balance().await;
    let retry_path = format!("/api/enrichment/{first}/retry");
    let retries = join_all((0..5).map(|_| ctx.post(&retry_path, json!({})))).await;
    let new: Vec<&puffle_tests::Resp> = retries.iter().filter(|r| r.status == 202).collect();
    assert_eq!(new.len(), 1, "one new run for five identical requests: {retries:?}");
    let second = new[0].body["runId"].as_str().unwrap().to_string();
    for r in &retries {
        assert!(r.status == 202 || (r.status == 200 && r.body["reusedExistingRun"] == true), "{r:?}");
        assert_eq!(r.body["runId"], second.as_str());
        assert_eq!(r.body["leadCount"], 3);
    }
    assert_eq!(ctx.balance().await, before - 3, "charged once, for the three failed Leads");
    let retried = settle(&ctx, &second).await;
    assert_eq!(puffle_tests::counts(&retried), [0, 0, 3, 0, 0], "the provider answers the second call: {retried}");
    assert_eq!(retried["retryOf"], first.as_str());
    let mut retried_leads: Vec<String> =
        ctx.all_items(&second, "").await.iter().map(|i| i["leadId"].as_str().unwrap().to_string()).collect();
    retried_leads.sort();
    let mut want = flaky.clone();
    want.sort();
    assert_eq!(retried_leads, want);
    assert_eq!(status(&ctx, &first).await["retries"], json!([second]), "linked both ways, once");
    // The same key with another status is another request; no skipped items: 400.
    let r = ctx.post(&format!("/api/enrichment/{first}/retry"), json!({"status": "skipped"})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (400, Some("EMPTY_LEAD_SCOPE")), "{r:?}");
    let r = ctx.post(&format!("/api/enrichment/{second}/retry"), json!({"status": "failed"})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (400, Some("EMPTY_LEAD_SCOPE")), "{r:?}");
    for bad in [json!({"status": "completed"}), json!({"status": "failed", "extra": 1})] {
        assert_eq!(ctx.post(&format!("/api/enrichment/{first}/retry"), bad).await.status, 400);
    }
    let r = ctx.post("/api/enrichment/run_nope/retry", json!({})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (404, Some("RUN_NOT_FOUND")), "{r:?}");
    let r = other.post(&format!("/api/enrichment/{first}/retry"), json!({})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (404, Some("RUN_NOT_FOUND")), "{r:?}");
    // Gated like any run: a workspace that cannot pay gets 402 and no run.
    let poor = Ctx::on(&app, iso.api_url(), 2).await;
    setup_stub_enrichment(&poor, &stub).await;
    let tag = unique();
    let doomed = poor.leads((0..2).map(|i| named(&format!("down-{i}-{tag}"))).collect()).await;
    let r = poor
        .post(
            "/api/enrichment",
            json!({"enrichmentId": "stubby", "scope": {"type": "explicit_leads", "leadIds": doomed}, "input": {}}),
        )
        .await;
    let doomed_run = r.body["runId"].as_str().unwrap().to_string();
    assert_eq!(puffle_tests::counts(&settle(&poor, &doomed_run).await)[4], 2);
    // Failed Leads are released, so the balance is back to 2: a found Lead
    // elsewhere spends one of them.
    let spender = poor.people("spend", 1).await;
    let r = poor
        .post(
            "/api/enrichment",
            json!({"enrichmentId": "email_domain", "scope": {"type": "explicit_leads", "leadIds": spender}, "input": {}}),
        )
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    let spent = settle(&poor, r.body["runId"].as_str().unwrap()).await;
    assert_eq!(puffle_tests::counts(&spent)[2], 1, "{spent}");
    assert_eq!(poor.balance().await, 1);
    let r = poor.post(&format!("/api/enrichment/{doomed_run}/retry"), json!({})).await;
    assert_eq!(
        (r.status, r.body["code"].as_str(), &r.body["required"]),
        (402, Some("INSUFFICIENT_CREDITS"), &json!(2)),
        "{r:?}"
    );
    assert!(status(&poor, &doomed_run).await.get("retries").is_none());

    // The filter held: /hook/b only ever saw its cancelled event.
    let log = rx.log("/hook/b").await;
    assert!(log.iter().all(|d| body_of(d)["type"] == "enrichment.run.cancelled"), "{log:#?}");
    for name in ["api", "worker"] {
        assert!(!iso.log(name).contains("panicked"), "{name} panicked");
    }
}
