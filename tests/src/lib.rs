//! Integration-test harness: every test talks to the real local stack
//! (`make test` starts it): the API over HTTP, the store through the same
//! adapters the functions use (for setup and for checking what was written).

use std::time::Duration;

use serde_json::{json, Value};

pub mod dns;
pub mod fake;
pub mod isolated;
pub mod stub;

pub fn api_url() -> String {
    std::env::var("PUFFLE_API_URL").unwrap_or_else(|_| "http://127.0.0.1:3000".into())
}

/// The app against the local stack (same env as the functions).
pub async fn app() -> puffle_app::App {
    puffle_app::App::from_env().await
}

/// A fresh workspace with its own token, and an HTTP client for it.
#[derive(Clone)]
pub struct Ctx {
    pub workspace_id: String,
    pub token: String,
    pub http: reqwest::Client,
    pub base: String,
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// Status, headers, and the body as JSON (or as a string when it is not JSON).
    pub async fn read(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp { status, body, headers }
    }
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

impl Ctx {
    /// A workspace on the shared local stack (`make test` starts it).
    pub async fn new(credits: u64) -> Ctx {
        Ctx::on(&app().await, api_url(), credits).await
    }

    /// A workspace on another stack (see [`isolated::Isolated`]).
    pub async fn on(app: &puffle_app::App, base: String, credits: u64) -> Ctx {
        let ws = app.create_workspace("test", credits).await.expect("create workspace (is the local stack up?)");
        Ctx {
            workspace_id: ws.workspace_id,
            token: ws.token,
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            base,
        }
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<Value>, token: Option<&str>) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Resp::read(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None, Some(&self.token.clone())).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send("POST", path, Some(body), Some(&self.token.clone())).await
    }

    /// Creates a run (`POST /api/enrichment` must answer 202); returns its id.
    pub async fn start(&self, body: Value) -> String {
        let r = self.post("/api/enrichment", body).await;
        assert_eq!(r.status, 202, "{r:?}");
        r.body["runId"].as_str().unwrap().to_string()
    }

    /// Upserts Leads and returns their ids in input order.
    pub async fn leads(&self, leads: Vec<Value>) -> Vec<String> {
        let mut ids = vec![];
        for chunk in leads.chunks(1000) {
            let r = self.post("/api/leads", json!({"leads": chunk})).await;
            assert_eq!(r.status, 200, "{r:?}");
            ids.extend(r.body["leads"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_string()));
        }
        ids
    }

    /// `n` people with distinct emails (`tag` keeps tests apart).
    pub async fn people(&self, tag: &str, n: usize) -> Vec<String> {
        self.leads((0..n).map(|i| person(&format!("{tag}{i}"))).collect()).await
    }

    /// A List holding `lead_ids`.
    pub async fn list(&self, lead_ids: &[String]) -> String {
        let r = self.post("/api/lists", json!({"name": "test list"})).await;
        assert_eq!(r.status, 201, "{r:?}");
        let id = r.body["list"]["id"].as_str().unwrap().to_string();
        for chunk in lead_ids.chunks(1000) {
            let r = self.post(&format!("/api/lists/{id}/leads"), json!({"leadIds": chunk})).await;
            assert_eq!(r.status, 200, "{r:?}");
        }
        id
    }

    pub async fn balance(&self) -> u64 {
        self.get("/api/credits").await.body["balance"].as_u64().unwrap()
    }

    /// Polls a run until it is terminal (a hang guard, not a speed check).
    pub async fn wait_terminal(&self, run_id: &str) -> Value {
        for _ in 0..1200 {
            let r = self.get(&format!("/api/enrichment/{run_id}")).await;
            assert_eq!(r.status, 200, "{r:?}");
            let st = r.body["run"]["status"].as_str().unwrap().to_string();
            if matches!(st.as_str(), "completed" | "failed" | "cancelled") {
                return r.body["run"].clone();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("run {run_id} did not finish within 5 minutes");
    }

    /// Every item of a run, following cursors.
    pub async fn all_items(&self, run_id: &str, query: &str) -> Vec<Value> {
        let mut items = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/enrichment/{run_id}/items?limit=100{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let r = self.get(&path).await;
            assert_eq!(r.status, 200, "{r:?}");
            items.extend(r.body["items"].as_array().unwrap().iter().cloned());
            match r.body["page"]["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return items,
            }
        }
    }
}

/// A person with a unique work email.
pub fn person(tag: &str) -> Value {
    json!({
        "type": "person",
        "name": {"full": format!("Person {tag}")},
        "title": "Engineering Manager",
        "contacts": [{"type": "email", "value": format!("{tag}-{}@acme-{tag}.com", unique())}]
    })
}

pub fn company(tag: &str) -> Value {
    // `.example` (RFC 2606) is registrable under the suffix list's default
    // rule; `x.example.com` would be the company `example.com`.
    json!({"type": "company", "company": {"name": format!("Co {tag}"), "domain": format!("{tag}-{}.example", unique())}})
}

/// A process-unique suffix, so tests never collide on identifiers.
pub fn unique() -> String {
    puffle_domain::ids::new_id("u")[2..].to_string()
}

/// A run's counts: [pending, running, completed, skipped, failed].
pub fn counts(run: &Value) -> [u64; 5] {
    let c = &run["scope"]["counts"];
    ["pending", "running", "completed", "skipped", "failed"]
        .map(|k| c[k].as_u64().unwrap_or_else(|| panic!("counts.{k} missing: {run}")))
}

#[track_caller]
pub fn assert_counts_add_up(run: &Value) {
    assert_eq!(
        counts(run).iter().sum::<u64>(),
        run["scope"]["resolvedCount"].as_u64().unwrap(),
        "counts do not add up: {}",
        run["scope"]
    );
}

/// An error answer: this status and code, and a message for people.
#[track_caller]
pub fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "expected {status} {code}, got {r:?}");
    assert_eq!(r.body["code"].as_str(), Some(code), "{r:?}");
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()), "error without message: {r:?}");
}

/// `GET /api/enrichment/{id}` → the run (asserting 200).
pub async fn status(ctx: &Ctx, run_id: &str) -> Value {
    let r = ctx.get(&format!("/api/enrichment/{run_id}")).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["run"].clone()
}

/// Waits until the run is terminal and nothing is pending or running (a
/// cancelled run is terminal before its last chunks are met); checks that
/// the counts add up. The loop is a hang guard, not a speed check.
pub async fn settle(ctx: &Ctx, run_id: &str) -> Value {
    for _ in 0..1200 {
        let run = status(ctx, run_id).await;
        let c = counts(&run);
        if matches!(run["status"].as_str(), Some("completed" | "failed" | "cancelled")) && c[0] == 0 && c[1] == 0 {
            assert_counts_add_up(&run);
            return run;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("run {run_id} did not settle within 5 minutes");
}

/// Billing by outcome, checked on a settled run: each item shows its cost
/// (`reserved` = the price; completed items charged, the rest released),
/// the run's `cost` sums its items (plus Leads released without an item:
/// never planned, or gone from a shrunk scope), `actual = charged`, nothing
/// is still held, and the run's ledger lines say the same. Returns
/// (charged, released).
pub async fn assert_billed(app: &puffle_app::App, ws: &str, run: &Value, items: &[Value], price: u64) -> (u64, u64) {
    use puffle_domain::credits::LedgerKind;
    let cost = &run["cost"];
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {v}"));
    let (reserved, charged, released) = (n(cost, "reserved"), n(cost, "charged"), n(cost, "released"));
    assert_eq!(n(cost, "actual"), charged, "actual = charged: {cost}");
    assert_eq!(charged + released, reserved, "a settled run holds nothing back: {cost}");
    let (mut item_charged, mut item_released) = (0, 0);
    for i in items {
        let c = &i["cost"];
        let (r, ch, rel) = (n(c, "reserved"), n(c, "charged"), n(c, "released"));
        assert_eq!(r, price, "each item reserves the price: {i}");
        if i["status"] == "completed" {
            // Charged, or released when the enrichment waives cached hits.
            assert!((ch, rel) == (price, 0) || (ch, rel) == (0, price), "{i}");
        } else {
            assert_eq!((ch, rel), (0, price), "a skipped or failed item is released: {i}");
        }
        item_charged += ch;
        item_released += rel;
    }
    assert_eq!(charged, item_charged, "charged = the items' charges: {cost}");
    // Leads without an item (a shrunk scope, never planned, a failed
    // dispatch) are released whole.
    assert_eq!(released, item_released + reserved - price * items.len() as u64, "{cost}");
    let run_id = run["id"].as_str().unwrap();
    let lines: Vec<_> =
        app.ledger(ws).await.unwrap().into_iter().filter(|e| e.run_id.as_deref() == Some(run_id)).collect();
    let sum = |k: LedgerKind| lines.iter().filter(|e| e.kind == k).map(|e| e.amount).sum::<u64>();
    assert_eq!(lines.iter().filter(|e| e.kind == LedgerKind::Reserve).count(), usize::from(reserved > 0), "{lines:?}");
    assert_eq!(
        (sum(LedgerKind::Reserve), sum(LedgerKind::Charge), sum(LedgerKind::Release)),
        (reserved, charged, released),
        "the run's ledger lines: {lines:?}"
    );
    (charged, released)
}
