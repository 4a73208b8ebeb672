//! Outside providers end to end, on a private stack whose worker calls a
//! stub in this process (127.0.0.1, let through by PUFFLE_EGRESS_ALLOW_HOSTS):
//! every outcome and its code, retries (503, 429 + Retry-After, timeouts),
//! the result cache, secrets (workspace and platform, never leaked), the
//! circuit opening under an outage without stalling the run, and egress
//! refusals at creation and at call time.

use std::collections::HashMap;
use std::time::Duration;

use puffle_tests::isolated::Isolated;
use puffle_tests::stub::Stub;
use puffle_tests::{assert_billed, assert_counts_add_up, settle, unique, Ctx};
use serde_json::{json, Value};

/// A person named `name` at a company domain.
fn lead(name: &str) -> Value {
    json!({"type": "person", "name": {"full": name}, "company": {"domain": "acme.test"},
           "contacts": [{"type": "email", "value": format!("{}@people.test", unique())}]})
}

/// A workspace enrichment calling the stub's `/find`.
fn definition(slug: &str, stub: &Stub, secret: &str, extra: Value) -> Value {
    let mut binding = json!({
        "type": "http",
        "provider": "stub",
        "request": {"method": "POST", "url": stub.url("/find?d={{lead.company.domain}}"),
                    "headers": {"Authorization": format!("Bearer {{{{secrets.{secret}}}}}")},
                    "body": {"name": "{{lead.name.full}}", "domain": "{{lead.company.domain}}"}},
        "response": {"found": "/data/email", "result": {"email": "/data/email", "confidence": "/data/score"},
                     "submissionId": "/requestId"},
        "timeoutMs": 400, "maxAttempts": 3, "ratePerSecond": 100,
        "circuit": {"failureThreshold": 1000}
    });
    for (k, v) in extra.as_object().unwrap() {
        binding[k] = v.clone();
    }
    json!({
        "slug": slug, "name": format!("Stub {slug}"), "subject": "person",
        "outputSchema": {"type": "object", "properties": {"email": {"type": "string"}, "confidence": {"type": "number"}},
                         "required": ["email"], "additionalProperties": false},
        "costModel": {"creditsPerLead": 1},
        "toolBinding": binding
    })
}

async fn run_of(ctx: &Ctx, enrichment: &str, lead_ids: &[String], input: Value) -> (Value, HashMap<String, Value>) {
    let run_id = ctx.start(json!({"enrichmentId": enrichment, "scope": {"type": "explicit_leads", "leadIds": lead_ids}, "input": input})).await;
    let run = settle(ctx, &run_id).await;
    assert_counts_add_up(&run);
    let items =
        ctx.all_items(&run_id, "").await.into_iter().map(|i| (i["leadId"].as_str().unwrap().to_string(), i)).collect();
    (run, items)
}

fn code(item: &Value) -> &str {
    item["error"]["details"]["code"].as_str().unwrap_or("")
}

/// The documented catalog example, pointed at the stub.
fn catalog_dir(stub: &Stub) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut acme: Value =
        serde_json::from_str(include_str!("../../shared/domain/src/catalog/examples/acme_email_finder.json")).unwrap();
    acme["toolBinding"]["request"]["url"] = json!(stub.url("/find?domain={{lead.company.domain}}"));
    acme["toolBinding"]["request"]["body"] = json!({"name": "{{lead.name.full}}", "minScore": "{{input.minScore}}"});
    std::fs::write(dir.path().join("acme_email_finder.json"), acme.to_string()).unwrap();
    let mut nope = acme.clone();
    for (k, v) in [("id", "enr_needs_nope"), ("slug", "needs_nope"), ("name", "Needs a missing key")] {
        nope[k] = json!(v);
    }
    nope["defaultOutputAttributeKey"] = json!("needs_nope");
    nope["defaultOutput"]["attributeKey"] = json!("needs_nope");
    nope["costModel"]["creditAction"] = json!("enrichment.needs_nope");
    nope["toolBinding"]["request"]["headers"] = json!({"Authorization": "Bearer {{secrets.NOPE_KEY}}"});
    std::fs::write(dir.path().join("needs_nope.json"), nope.to_string()).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn http_enrichment_outcomes_retries_cache_and_secrets() {
    let stub = Stub::start().await;
    let dir = catalog_dir(&stub);
    let platform_secret = format!("platform-{}", unique());
    let allow = format!("127.0.0.1:{}", stub.addr.port());
    let iso = Isolated::start(&[
        ("PUFFLE_EGRESS_ALLOW_HOSTS", &allow),
        ("PUFFLE_SECRET_ACME_API_KEY", &platform_secret),
        ("PUFFLE_CATALOG_DIR", dir.path().to_str().unwrap()),
        // Calls must not outlive the visibility timeout (no redelivery mid-chunk).
        ("PUFFLE_LOCAL_VISIBILITY_TIMEOUT", "60"),
    ])
    .await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;
    let ws_secret = format!("ws-{}", unique());
    let mut responses = String::new();

    // Secrets are write-only.
    let r = ctx.send("PUT", "/api/secrets/STUB_KEY", Some(json!({"value": ws_secret})), Some(&ctx.token)).await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = ctx.get("/api/secrets").await;
    assert_eq!(r.body["secrets"][0]["name"], "STUB_KEY", "{r:?}");
    assert!(r.body["secrets"][0]["updatedAt"].is_string());
    responses.push_str(&r.body.to_string());

    let r = ctx.post("/api/enrichments", definition("stub_finder", &stub, "STUB_KEY", json!({}))).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["enrichment"]["enabled"], true);
    assert_eq!(r.body["enrichment"]["defaultOutputAttributeKey"], "stub_finder");
    responses.push_str(&r.body.to_string());

    let tag = unique();
    let behaviours = ["hit", "miss", "gone", "html", "wrongtype", "flaky", "busy", "slow", "meta", "down"];
    let mut leads: Vec<Value> = behaviours.iter().map(|b| lead(&format!("{b}-{tag}"))).collect();
    let mut no_domain = lead(&format!("hit-nodomain-{tag}"));
    no_domain["company"] = json!({});
    leads.push(no_domain);
    let ids = ctx.leads(leads).await;
    let by_name: HashMap<&str, &String> = behaviours.iter().copied().chain(["nodomain"]).zip(ids.iter()).collect();

    let (first, items) = run_of(&ctx, "stub_finder", &ids, json!({})).await;
    assert_eq!(first["status"], "completed", "an outage of some Leads never fails the run: {first}");
    responses.push_str(&first.to_string());
    let item = |b: &str| &items[by_name[b]];
    let expect = [
        ("hit", "completed", "", 1),
        ("miss", "skipped", "", 1),
        ("gone", "skipped", "", 1),
        ("html", "failed", "INVALID_PROVIDER_RESPONSE", 1),
        ("wrongtype", "failed", "INVALID_PROVIDER_RESPONSE", 1),
        ("flaky", "completed", "", 2),
        ("busy", "completed", "", 2),
        ("slow", "failed", "PROVIDER_TIMEOUT", 3),
        ("meta", "failed", "EGRESS_REFUSED", 1),
        ("down", "failed", "PROVIDER_ERROR", 3),
        ("nodomain", "skipped", "", 0),
    ];
    for (b, status, c, attempts) in expect {
        let i = item(b);
        assert_eq!(i["status"], status, "{b}: {i}");
        assert_eq!(code(i), c, "{b}: {i}");
        assert_eq!(i["attempts"], attempts, "{b}: attempts = calls: {i}");
        // Exactly those calls reached the provider: no second delivery of
        // the chunk (a reaper re-send, a second planner) called it again.
        let name = if b == "nodomain" { format!("hit-nodomain-{tag}") } else { format!("{b}-{tag}") };
        assert_eq!(stub.calls_for(&name).len() as u64, attempts, "{b}: calls to the provider");
        assert_eq!(i["metadata"]["provider"], "stub", "{b}: {i}");
        assert_eq!(i["metadata"]["cached"], false, "{b}: {i}");
    }
    let hit = item("hit");
    let found = format!("hit-{tag}@found.test");
    assert_eq!(hit["result"], json!({"email": found, "confidence": 0.9}), "{hit}");
    assert_eq!(hit["metadata"]["providerSubmissionId"], "req-1", "{hit}");
    for b in ["miss", "gone"] {
        assert_eq!(item(b)["skippedReason"], "no_match", "{b}");
    }
    assert_eq!(item("nodomain")["skippedReason"], "missing_input");
    assert!(stub.calls().iter().all(|c| !c.name.contains("nodomain")), "a Lead lacking a value is never sent");
    // Retry-After: 1 was honoured between the 429 and the retry.
    let busy = stub.calls_for(&format!("busy-{tag}"));
    assert_eq!(busy.len(), 2);
    assert!(busy[1].at - busy[0].at >= Duration::from_millis(900), "{:?}", busy[1].at - busy[0].at);
    // The stub saw the workspace's key, the attribute holds the result.
    assert!(stub.calls().iter().all(|c| c.authorization.as_deref() == Some(&format!("Bearer {ws_secret}"))));
    let r = ctx.get(&format!("/api/leads?id={}", by_name["hit"])).await;
    assert_eq!(r.body["lead"]["attributes"]["stub_finder"]["email"], json!(found), "{r:?}");
    // Billing by outcome: the three found are charged; the misses, the
    // missing_input skip and the failures (timeouts, 5xx, bad bodies, egress)
    // are released.
    let first_items: Vec<Value> = items.values().cloned().collect();
    assert_eq!(assert_billed(&app, &ctx.workspace_id, &first, &first_items, 1).await, (3, 8));
    assert_eq!(hit["cost"], json!({"reserved": 1, "charged": 1, "released": 0}));
    for b in ["miss", "gone", "nodomain", "slow", "down", "meta"] {
        assert_eq!(item(b)["cost"], json!({"reserved": 1, "charged": 0, "released": 1}), "{b}");
    }
    assert_eq!(ctx.balance().await, 997);

    // The same request again comes from the cache: no call, attempts 0.
    let before = stub.calls().len();
    let (again_run, again) =
        run_of(&ctx, "stub_finder", &[by_name["hit"].to_string(), by_name["flaky"].to_string()], json!({})).await;
    for b in ["hit", "flaky"] {
        let i = &again[by_name[b]];
        assert_eq!(i["status"], "completed", "{i}");
        assert_eq!(i["metadata"]["cached"], true, "{i}");
        assert_eq!(i["attempts"], 0, "{i}");
    }
    assert_eq!(again[by_name["hit"]]["result"], hit["result"]);
    assert_eq!(stub.calls().len(), before, "cached results make no call");
    responses.push_str(&serde_json::to_string(&again).unwrap());
    // A cached hit is charged as a hit…
    let again_items: Vec<Value> = again.values().cloned().collect();
    assert_eq!(assert_billed(&app, &ctx.workspace_id, &again_run, &again_items, 1).await, (2, 0));
    assert_eq!(ctx.balance().await, 995);
    // …unless the enrichment says otherwise (`cache.chargeHits: false`).
    let waives = json!({"cache": {"ttlSeconds": 3600, "chargeHits": false}});
    let r = ctx.post("/api/enrichments", definition("stub_free_hits", &stub, "STUB_KEY", waives)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let hit_only = [by_name["hit"].to_string()];
    let (paid, paid_items) = run_of(&ctx, "stub_free_hits", &hit_only, json!({})).await;
    assert_eq!(paid_items[by_name["hit"]]["metadata"]["cached"], false);
    let paid_items: Vec<Value> = paid_items.into_values().collect();
    assert_eq!(
        assert_billed(&app, &ctx.workspace_id, &paid, &paid_items, 1).await,
        (1, 0),
        "a call that finds is charged"
    );
    let (free, free_items) = run_of(&ctx, "stub_free_hits", &hit_only, json!({})).await;
    let i = &free_items[by_name["hit"]];
    assert_eq!((i["status"].as_str(), i["metadata"]["cached"].as_bool()), (Some("completed"), Some(true)), "{i}");
    assert_eq!(i["cost"], json!({"reserved": 1, "charged": 0, "released": 1}), "{i}");
    let free_items: Vec<Value> = free_items.into_values().collect();
    assert_eq!(assert_billed(&app, &ctx.workspace_id, &free, &free_items, 1).await, (0, 1));
    assert_eq!(ctx.balance().await, 994);

    // A catalog file's provider: the platform key, unless the workspace brings its own.
    let acme_leads = ctx.leads(vec![lead(&format!("hit-acme1-{tag}")), lead(&format!("hit-acme2-{tag}"))]).await;
    let (_, acme) = run_of(&ctx, "acme_email_finder", &acme_leads[..1], json!({"minScore": 50})).await;
    let i = &acme[&acme_leads[0]];
    assert_eq!(
        (i["status"].as_str(), i["metadata"]["provider"].as_str()),
        (Some("completed"), Some("acme-data")),
        "{i}"
    );
    let last = stub.calls().last().cloned().unwrap();
    assert_eq!(last.authorization.as_deref(), Some(format!("Bearer {platform_secret}").as_str()));
    let own = format!("own-acme-{}", unique());
    let r = ctx.send("PUT", "/api/secrets/ACME_API_KEY", Some(json!({"value": own})), Some(&ctx.token)).await;
    assert_eq!(r.status, 204);
    run_of(&ctx, "acme_email_finder", &acme_leads[1..], json!({"minScore": 50})).await;
    assert_eq!(stub.calls().last().unwrap().authorization.as_deref(), Some(format!("Bearer {own}").as_str()));

    // Missing secrets: listed disabled, and create says which.
    let r = ctx.get("/api/enrichments").await;
    responses.push_str(&r.body.to_string());
    let listed: HashMap<&str, &Value> =
        r.body["enrichments"].as_array().unwrap().iter().map(|e| (e["slug"].as_str().unwrap(), e)).collect();
    assert_eq!(listed["acme_email_finder"]["enabled"], true);
    assert_eq!(listed["stub_finder"]["enabled"], true);
    assert_eq!(listed["needs_nope"]["enabled"], false);
    assert!(listed["needs_nope"]["disabledReason"].as_str().unwrap().contains("NOPE_KEY"));
    let r = ctx
        .post("/api/enrichment", json!({"enrichmentId": "needs_nope", "scope": {"type": "explicit_leads", "leadIds": [ids[0]]}, "input": {"minScore": 1}}))
        .await;
    assert_eq!((r.status, r.body["code"].as_str()), (400, Some("ENRICHMENT_DISABLED")), "{r:?}");
    assert_eq!(r.body["details"]["secret"], "NOPE_KEY");
    // A workspace's own enrichment never sees the platform's keys.
    let other = Ctx::on(&app, iso.api_url(), 100).await;
    let r = other.post("/api/enrichments", definition("steals_platform_key", &stub, "ACME_API_KEY", json!({}))).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["enrichment"]["enabled"], false, "{r:?}");
    let other_leads = other.leads(vec![lead(&format!("hit-other-{tag}"))]).await;
    let r = other
        .post("/api/enrichment", json!({"enrichmentId": "steals_platform_key", "scope": {"type": "explicit_leads", "leadIds": other_leads}, "input": {}}))
        .await;
    assert_eq!((r.status, r.body["details"]["secret"].as_str()), (400, Some("ACME_API_KEY")), "{r:?}");
    // …nor another workspace's enrichments.
    let r = other
        .post("/api/enrichment", json!({"enrichmentId": "stub_finder", "scope": {"type": "explicit_leads", "leadIds": other_leads}, "input": {}}))
        .await;
    assert_eq!((r.status, r.body["code"].as_str()), (404, Some("ENRICHMENT_NOT_FOUND")), "{r:?}");

    // No secret value anywhere: API responses, items, logs, the stored row.
    let all_items = serde_json::to_string(&items).unwrap() + &serde_json::to_string(&acme).unwrap();
    let logs = iso.log("api") + &iso.log("worker");
    for secret in [&ws_secret, &platform_secret, &own] {
        assert!(!responses.contains(secret.as_str()), "a response holds a secret");
        assert!(!all_items.contains(secret.as_str()), "an item holds a secret");
        assert!(!logs.contains(secret.as_str()), "a log holds a secret");
    }
    let stored = app.store().list_secrets(&ctx.workspace_id).await.unwrap();
    assert!(!serde_json::to_string(&stored).unwrap().contains(&ws_secret));
    assert!(!logs.contains("panicked"));
}

/// The name this machine calls itself resolves to loopback (/etc/hosts),
/// and is not `localhost`: the egress guard must refuse it after DNS.
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
    panic!("no host name of this machine resolves to loopback; the call-time egress test needs one");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_opens_the_circuit_and_egress_is_refused() {
    let stub = Stub::start().await;
    let allow = format!("127.0.0.1:{}", stub.addr.port());
    let iso =
        Isolated::start(&[("PUFFLE_EGRESS_ALLOW_HOSTS", &allow), ("PUFFLE_LOCAL_VISIBILITY_TIMEOUT", "60")]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;
    let r = ctx.send("PUT", "/api/secrets/STUB_KEY", Some(json!({"value": "k"})), Some(&ctx.token)).await;
    assert_eq!(r.status, 204);
    let outage = json!({"maxAttempts": 2, "concurrency": 1, "circuit": {"failureThreshold": 3, "openSeconds": 600}});
    let r = ctx.post("/api/enrichments", definition("fragile", &stub, "STUB_KEY", outage.clone())).await;
    assert_eq!(r.status, 201, "{r:?}");

    // 20 Leads against a provider that answers 500: three fail after their
    // retries, then the circuit opens and the rest fail fast; the run ends.
    let tag = unique();
    let ids = ctx.leads((0..20).map(|i| lead(&format!("down-{i}-{tag}"))).collect()).await;
    let (run_a, items) = run_of(&ctx, "fragile", &ids, json!({})).await;
    assert_eq!(run_a["status"], "completed", "{run_a}");
    assert_eq!(run_a["scope"]["counts"]["failed"], 20);
    let mut tally: HashMap<(String, u64), usize> = HashMap::new();
    for i in items.values() {
        *tally.entry((code(i).to_string(), i["attempts"].as_u64().unwrap())).or_default() += 1;
    }
    let expected: HashMap<(String, u64), usize> =
        [(("PROVIDER_ERROR".to_string(), 2), 3), (("PROVIDER_UNAVAILABLE".to_string(), 0), 17)].into();
    assert_eq!(tally, expected);
    assert_eq!(stub.calls().len(), 6, "3 Leads x 2 attempts, then nothing");
    // Still open: a Lead that would be found fails fast too.
    let good = ctx.leads(vec![lead(&format!("hit-after-{tag}"))]).await;
    let (_, items) = run_of(&ctx, "fragile", &good, json!({})).await;
    assert_eq!(code(&items[&good[0]]), "PROVIDER_UNAVAILABLE");
    assert_eq!(stub.calls().len(), 6);
    // The circuit is this workspace's: another one's same provider still runs.
    let other = Ctx::on(&app, iso.api_url(), 100).await;
    assert_eq!(
        other.send("PUT", "/api/secrets/STUB_KEY", Some(json!({"value": "k2"})), Some(&other.token)).await.status,
        204
    );
    assert_eq!(other.post("/api/enrichments", definition("fragile", &stub, "STUB_KEY", outage)).await.status, 201);
    let theirs = other.leads(vec![lead(&format!("hit-theirs-{tag}"))]).await;
    let (_, items) = run_of(&other, "fragile", &theirs, json!({})).await;
    assert_eq!(items[&theirs[0]]["status"], "completed", "{}", items[&theirs[0]]);

    // Egress: refused literally at creation…
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/find",
        &format!("http://localhost:{}/find", stub.addr.port()),
        "http://[::1]/find",
        "http://127.0.0.1:1/find",
        "http://100.64.0.1/find",
    ] {
        let mut d = definition("refused_one", &stub, "STUB_KEY", json!({}));
        d["toolBinding"]["request"]["url"] = json!(url);
        let r = ctx.post("/api/enrichments", d).await;
        assert_eq!((r.status, r.body["code"].as_str()), (400, Some("EGRESS_REFUSED")), "{url}: {r:?}");
    }
    // …and after DNS at call time: a name that resolves to 127.0.0.1.
    let name = a_name_for_loopback().await;
    let mut d = definition("by_name", &stub, "STUB_KEY", json!({}));
    d["toolBinding"]["request"]["url"] = json!(format!("http://{name}:{}/find", stub.addr.port()));
    let r = ctx.post("/api/enrichments", d).await;
    assert_eq!(r.status, 201, "a name passes the literal check: {r:?}");
    let named = ctx.leads(vec![lead(&format!("hit-named-{tag}"))]).await;
    let (_, items) = run_of(&ctx, "by_name", &named, json!({})).await;
    assert_eq!(code(&items[&named[0]]), "EGRESS_REFUSED", "{}", items[&named[0]]);
    assert!(stub.calls_for(&format!("hit-named-{tag}")).is_empty(), "no request was sent");
    assert!(!(iso.log("worker")).contains("panicked"));
}
