//! What every request meets before its handler, over HTTP against the local
//! stack: the `X-Request-Id` it is answered with (errors, 401s and health
//! included), the per-token rate limit — counted in DynamoDB, so shared by
//! every function instance — and token revocation.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use puffle_tests::{person, Ctx, Resp};
use serde_json::json;

fn header<'a>(r: &'a Resp, name: &str) -> &'a str {
    r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header: {r:?}"))
}

fn number(r: &Resp, name: &str) -> u64 {
    header(r, name).parse().unwrap_or_else(|_| panic!("{name} is not a number: {r:?}"))
}

#[tokio::test]
async fn every_response_carries_its_request_id_errors_and_health_included() {
    let ctx = Ctx::new(10).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", ctx.base);
    let cases = [
        (http.get(url("/api/health")), 200),
        (http.get(url("/api/credits")), 401),
        (http.get(url("/api/credits")).bearer_auth("pfl_nope"), 401),
        (http.get(url("/api/credits")).bearer_auth(&ctx.token), 200),
        (http.get(url("/api/nothing")).bearer_auth(&ctx.token), 404),
        (http.delete(url("/api/leads")).bearer_auth(&ctx.token), 405),
        (http.post(url("/api/leads")).bearer_auth(&ctx.token).body("{"), 400),
        (http.get(url("/api/enrichment/run_00000000000000000000000000")).bearer_auth(&ctx.token), 404),
    ];
    let mut seen = std::collections::HashSet::new();
    for (req, status) in cases {
        let r = Resp::read(req.send().await.unwrap()).await;
        assert_eq!(r.status, status, "{r:?}");
        let id = header(&r, "x-request-id").to_string();
        assert!(!id.is_empty() && seen.insert(id.clone()), "a fresh id per request: {id}");
    }
    // A caller's own id is kept and returned (and logged as correlation_id);
    // one that is not a sane token is replaced.
    for (sent, kept) in [("client-req-42", true), ("has spaces in it", false)] {
        let r = Resp::read(http.get(url("/api/credits")).header("x-request-id", sent).send().await.unwrap()).await;
        assert_eq!(r.status, 401);
        assert_eq!(header(&r, "x-request-id") == sent, kept, "{r:?}");
    }
}

/// A second API process on the same DynamoDB: another "function instance".
struct SecondApi {
    child: Child,
    url: String,
}

impl SecondApi {
    async fn start() -> SecondApi {
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(target.join("debug/puffle-local"))
            .args(["--no-worker", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a second puffle-local (cargo build -p puffle-local)");
        // Owned at once, so a failure below still stops it (Drop).
        let api = SecondApi { child, url: format!("http://127.0.0.1:{port}") };
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if http.get(format!("{}/api/health", api.url)).send().await.is_ok_and(|r| r.status().is_success()) {
                return api;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the second API did not come up");
    }
}

impl Drop for SecondApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_per_token_limit_is_shared_by_instances_and_answers_429_with_retry_after() {
    let ctx = Ctx::new(10).await;
    let lead = ctx.leads(vec![person("rate")]).await.remove(0);
    let second = SecondApi::start().await;
    let mut other = ctx.clone();
    other.base = second.url.clone();
    // Previews count as creates (the costly class) and write nothing.
    let body = json!({"enrichmentId": "email_domain", "mode": "preview",
        "scope": {"type": "explicit_leads", "leadIds": [lead]}, "input": {}});
    // The stack runs with the same environment as this test (scripts/env.sh).
    let limit =
        puffle_app::admission::limits().iter().find(|l| l.class == "create").expect("creates are rate-limited").limit;
    let mut remaining: Vec<u64> = vec![];
    let mut limited = None;
    // 60 per 60 s by default: a 429 comes within two windows' worth of
    // requests, however slowly they run (far fewer than ten windows' worth).
    for i in 0..10 * limit {
        let instance = if i % 2 == 0 { &ctx } else { &other };
        let r = instance.post("/api/enrichment", body.clone()).await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(number(&r, "ratelimit-limit"), limit, "{r:?}");
        remaining.push(number(&r, "ratelimit-remaining"));
    }
    let r = limited.expect("no 429 after ten windows' worth of creates");
    assert_eq!(r.body["code"], "RATE_LIMITED", "{r:?}");
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    let retry = number(&r, "retry-after");
    assert!((1..=60).contains(&retry), "{r:?}");
    assert_eq!(number(&r, "ratelimit-reset"), retry);
    assert_eq!(number(&r, "ratelimit-remaining"), 0);
    assert!(!header(&r, "x-request-id").is_empty());
    // One count for both instances: alternating between them, each answer
    // has one less remaining than the one before, except where a new window
    // began (the count resets up). Two counters would repeat each value.
    assert!(remaining.len() as u64 >= limit, "{remaining:?}");
    for w in remaining.windows(2) {
        assert!(w[1] + 1 == w[0] || w[1] > w[0], "remaining went {} → {}: not one shared count", w[0], w[1]);
    }
    // The limit is per token: another workspace's token is not affected.
    let fresh = Ctx::new(0).await;
    assert_eq!(fresh.get("/api/credits").await.status, 200);
    // Reads have their own, larger budget.
    assert_eq!(ctx.get("/api/credits").await.status, 200);
}

#[tokio::test]
async fn a_revoked_token_fails_within_seconds() {
    let ctx = Ctx::new(5).await;
    // Used once, so warm caches (the local API's included) hold it.
    assert_eq!(ctx.get("/api/credits").await.status, 200);
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let puffle = target.join("debug/puffle");
    let out = Command::new(&puffle).args(["admin", "token", "revoke", "--token", &ctx.token]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["revoked"], true);
    // A second revoke finds nothing: exit 3 (the store said no).
    let again = Command::new(&puffle).args(["admin", "token", "revoke", "--token", &ctx.token]).output().unwrap();
    assert_eq!(again.status.code(), Some(3));
    // Functions trust a token for 5 s (accounts::TOKEN_CACHE_TTL); allow
    // plenty more before calling it a failure.
    let mut status = 200;
    for _ in 0..300 {
        status = ctx.get("/api/credits").await.status;
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 401, "the revoked token still works after a minute");
    assert_eq!(puffle_app::accounts::TOKEN_CACHE_TTL, Duration::from_secs(5));
}
