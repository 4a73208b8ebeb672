//! The load clients: each one loops until the deadline, mixing creates
//! (with and without idempotency keys, repeats, conflicting repeats),
//! status polls, items pages and cancels on the one workspace. Everything a
//! client saw is recorded for the report and the audit.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

pub const ENRICHMENTS: &[&str] = &["email_domain", "job_seniority", "phone_normalize", "name_parse"];
const ITEM_STATUSES: &[&str] = &["pending", "completed", "skipped", "failed"];
/// How long a hot key stays the same: clients inside one window send the
/// same key and body at the same time (concurrent repeats).
const HOT_WINDOW_MS: u128 = 1500;
/// Polls, pages and cancels pick among the most recent runs (the ones still moving).
const RECENT_RUNS: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    Create,
    Status,
    Items,
    Cancel,
}

impl Endpoint {
    pub const ALL: [Endpoint; 4] = [Endpoint::Create, Endpoint::Status, Endpoint::Items, Endpoint::Cancel];
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Create => "create",
            Endpoint::Status => "status",
            Endpoint::Items => "items",
            Endpoint::Cancel => "cancel",
        }
    }
}

/// What kind of create a client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// No idempotency key: every accepted one is a new run.
    NoKey,
    /// A key never sent before (by this client).
    Fresh,
    /// A key and body sent before, sent again identically.
    Repeat,
    /// A shared key many clients send at the same moment (mostly the same body).
    Hot,
    /// A key sent before, with a different body: expect 422.
    Conflict,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::NoKey, Kind::Fresh, Kind::Repeat, Kind::Hot, Kind::Conflict];
    pub fn name(self) -> &'static str {
        match self {
            Kind::NoKey => "no key",
            Kind::Fresh => "fresh key",
            Kind::Repeat => "repeat (same key+body)",
            Kind::Hot => "hot key (concurrent)",
            Kind::Conflict => "same key, other body",
        }
    }
}

/// The seeded data the clients draw scopes from.
pub struct World {
    pub pool: Vec<String>,
    pub lists: Vec<ListInfo>,
}

pub struct ListInfo {
    pub id: String,
    pub size: u64,
    /// Members whose title contains "engineer" (case-insensitive).
    pub engineers: u64,
}

/// One HTTP exchange, for the latency and error tables.
pub struct Sample {
    pub endpoint: Endpoint,
    pub took: Duration,
    /// 0: no HTTP answer (transport error or client timeout).
    pub status: u16,
    /// Body `code` (and `reason` for 409s), "reused" for a 200 create.
    pub code: String,
    /// Outside what the contract allows for this request.
    pub unexpected: bool,
}

/// One create request as a client saw it.
#[derive(Debug, Clone)]
pub struct CreateRec {
    pub kind: Kind,
    pub key: Option<String>,
    /// The body as sent (without the key), the identity of "the same body".
    pub body_sig: String,
    /// Leads the create reserves for: the scope's size (a filtered List's bound, its size).
    pub expected: Option<u64>,
    /// Since the load started.
    pub started: Duration,
    pub ended: Duration,
    pub status: u16,
    pub code: String,
    pub run_id: Option<String>,
    pub reused: Option<bool>,
    pub lead_count: Option<u64>,
    pub required: Option<u64>,
}

#[derive(Default)]
pub struct ClientLog {
    pub samples: Vec<Sample>,
    pub creates: Vec<CreateRec>,
    /// Contract breaches seen in answers (counts not adding up, pages too long, ...).
    pub violations: Vec<String>,
    pub unexpected: Vec<String>,
}

struct KeyEntry {
    key: String,
    body: Value,
    in_header: bool,
    expected: Option<u64>,
}

/// State the clients share.
pub struct Shared {
    pub start: Instant,
    pub deadline: Instant,
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    pub seed: u64,
    /// Prefix of every idempotency key these clients make. The baseline and
    /// the load each count time from their own start, so without one the
    /// baseline's `hot3` and the load's `hot3` would be one key with two
    /// timelines, and the audit would compare instants of different clocks.
    key_prefix: &'static str,
    runs: Mutex<Vec<String>>,
    keys: Mutex<Vec<KeyEntry>>,
    hot_slots: Mutex<HashSet<u64>>,
    /// Credits the new creates asked for (repeats excluded), counted when
    /// sent and when answered: they drive the top-ups.
    pub demand: AtomicU64,
    pub demand_done: AtomicU64,
    pub requests: AtomicU64,
    pub runs_created: AtomicU64,
    pub first_402_ms: AtomicU64,
}

impl Shared {
    pub fn new(
        base: String,
        token: String,
        http: reqwest::Client,
        seed: u64,
        seconds: u64,
        key_prefix: &'static str,
    ) -> Shared {
        let start = Instant::now();
        Shared {
            start,
            deadline: start + Duration::from_secs(seconds),
            base,
            token,
            http,
            seed,
            key_prefix,
            runs: Mutex::new(vec![]),
            keys: Mutex::new(vec![]),
            hot_slots: Mutex::new(HashSet::new()),
            demand: AtomicU64::new(0),
            demand_done: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            runs_created: AtomicU64::new(0),
            first_402_ms: AtomicU64::new(u64::MAX),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        idem_header: Option<&str>,
    ) -> (u16, Value, Duration) {
        let mut req = self.http.request(method, format!("{}{}", self.base, path)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(k) = idem_header {
            req = req.header("Idempotency-Key", k);
        }
        let t0 = Instant::now();
        let out = match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
            }
            Err(e) => (0, json!({"transport": e.to_string()})),
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        (out.0, out.1, t0.elapsed())
    }

    fn recent_run(&self, rng: &mut StdRng) -> Option<String> {
        let runs = self.runs.lock().unwrap();
        let from = runs.len().saturating_sub(RECENT_RUNS);
        runs[from..].choose(rng).cloned()
    }
}

fn code_of(status: u16, body: &Value) -> String {
    if status == 0 {
        return "TRANSPORT".into();
    }
    let code = body["code"].as_str().unwrap_or("").to_string();
    match body["reason"].as_str() {
        Some(r) if status == 409 => format!("{code}/{r}"),
        _ => code,
    }
}

/// A create body: enrichment, scope, input, sometimes a write policy.
/// Returns the body and the scope's size when it can be known in advance.
pub fn gen_body(rng: &mut StdRng, w: &World) -> (Value, Option<u64>) {
    let enrichment = *ENRICHMENTS.choose(rng).unwrap();
    let input = if enrichment == "phone_normalize" {
        [json!({}), json!({"defaultCountry": "US"}), json!({"defaultCountry": "GB"})].choose(rng).unwrap().clone()
    } else {
        json!({})
    };
    let list = w.lists.choose(rng).unwrap();
    let r = rng.gen_range(0..100);
    let (scope, expected) = if r < 45 {
        (json!({"type": "list", "listId": list.id}), Some(list.size))
    } else if r < 75 {
        let n = rng.gen_range(1..=40);
        let ids: Vec<&String> = w.pool.choose_multiple(rng, n).collect();
        (json!({"type": "explicit_leads", "leadIds": ids}), Some(n as u64))
    } else if r < 85 || (r < 90 && list.engineers == 0) {
        (
            json!({"type": "filtered_list", "listId": list.id, "filter": {"all": [{"field": "type", "op": "eq", "value": "person"}]}}),
            Some(list.size),
        )
    } else if r < 90 {
        // A filtered create reserves by the List's counters (every Lead of
        // these Lists is a person); the planner releases what the filter drops.
        (
            json!({"type": "filtered_list", "listId": list.id, "filter": {"all": [{"field": "title", "op": "contains", "value": "engineer"}]}}),
            Some(list.size),
        )
    } else {
        // "Leads not enriched yet": concurrent runs change what it matches
        // between create and plan; the create still answers the bound.
        (
            json!({"type": "filtered_list", "listId": list.id, "filter": {"all": [{"field": format!("attributes.{enrichment}"), "op": "not_exists"}]}}),
            Some(list.size),
        )
    };
    let mut body = json!({"enrichmentId": enrichment, "scope": scope, "input": input});
    if rng.gen_bool(0.2) {
        body["writePolicy"] = json!("skip_existing");
    }
    (body, expected)
}

fn is_attr_filter(body: &Value) -> bool {
    body["scope"]["filter"]["all"][0]["field"].as_str().is_some_and(|f| f.starts_with("attributes."))
}

/// A different body for the same key: the other write policy, or another List.
fn mutate(rng: &mut StdRng, w: &World, body: &Value, expected: Option<u64>) -> (Value, Option<u64>) {
    let mut b = body.clone();
    if rng.gen_bool(0.5) {
        if b["writePolicy"] == json!("skip_existing") {
            b.as_object_mut().unwrap().remove("writePolicy");
        } else {
            b["writePolicy"] = json!("skip_existing");
        }
        (b, expected)
    } else {
        let current = body["scope"]["listId"].as_str().unwrap_or("");
        let other = w.lists.iter().filter(|l| l.id != current).collect::<Vec<_>>();
        let l = other.choose(rng).unwrap();
        b["scope"] = json!({"type": "list", "listId": l.id});
        (b, Some(l.size))
    }
}

pub async fn client(id: usize, sh: Arc<Shared>, w: Arc<World>) -> ClientLog {
    let mut rng = StdRng::seed_from_u64(sh.seed ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut log = ClientLog::default();
    let mut n = 0u64;
    while Instant::now() < sh.deadline {
        n += 1;
        let run = sh.recent_run(&mut rng);
        let r = rng.gen_range(0..100);
        match run {
            Some(run) if r >= 35 => {
                if r < 72 {
                    status(&sh, &mut log, &run).await
                } else if r < 94 {
                    items(&sh, &mut rng, &mut log, &run).await
                } else {
                    cancel(&sh, &mut log, &run).await
                }
            }
            _ => create(&sh, &w, &mut rng, &mut log, id, n).await,
        }
    }
    log
}

async fn create(sh: &Shared, w: &World, rng: &mut StdRng, log: &mut ClientLog, id: usize, n: u64) {
    let k = rng.gen_range(0..100);
    let mut kind = match k {
        0..=29 => Kind::NoKey,
        30..=59 => Kind::Fresh,
        60..=79 => Kind::Hot,
        80..=94 => Kind::Repeat,
        _ => Kind::Conflict,
    };
    let known = {
        let keys = sh.keys.lock().unwrap();
        keys.choose(rng).map(|e| (e.key.clone(), e.body.clone(), e.in_header, e.expected))
    };
    if known.is_none() && matches!(kind, Kind::Repeat | Kind::Conflict) {
        kind = Kind::Fresh;
    }
    // Credits this create newly asks for (a filter on attributes: ~ its List's size).
    let mut demand = 0;
    let (key, body, in_header, expected) = match kind {
        Kind::NoKey => {
            let (b, e) = gen_body(rng, w);
            demand = e.unwrap_or(200);
            (None, b, false, e)
        }
        Kind::Fresh => {
            let (b, e) = gen_body(rng, w);
            let key = format!("{}k{id}-{n}", sh.key_prefix);
            let in_header = rng.gen_bool(0.25);
            demand = e.unwrap_or(200);
            // Registered before it is sent, so others may repeat it concurrently.
            sh.keys.lock().unwrap().push(KeyEntry { key: key.clone(), body: b.clone(), in_header, expected: e });
            (Some(key), b, in_header, e)
        }
        Kind::Repeat => {
            let (key, b, h, e) = known.unwrap();
            (Some(key), b, h, e)
        }
        Kind::Conflict => {
            let (key, b, h, e) = known.unwrap();
            let (b, e) = mutate(rng, w, &b, e);
            (Some(key), b, h, e)
        }
        Kind::Hot => {
            let slot = (sh.start.elapsed().as_millis() / HOT_WINDOW_MS) as u64;
            let mut slot_rng = StdRng::seed_from_u64(sh.seed ^ 0xA5A5_0000 ^ slot);
            let (mut b, mut e) = gen_body(&mut slot_rng, w);
            if sh.hot_slots.lock().unwrap().insert(slot) {
                demand = e.unwrap_or(200);
            }
            // Now and then a client sends the hot key with another body.
            if rng.gen_bool(0.05) {
                (b, e) = mutate(rng, w, &b, e);
            }
            (Some(format!("{}hot{slot}", sh.key_prefix)), b, false, e)
        }
    };
    let body_sig = body.to_string();
    let mut sent = body.clone();
    if let (Some(k), false) = (&key, in_header) {
        sent["idempotencyKey"] = json!(k);
    }
    let started = sh.start.elapsed();
    let header = if in_header { key.as_deref() } else { None };
    sh.demand.fetch_add(demand, Ordering::Relaxed);
    let (st, resp, took) = sh.call(reqwest::Method::POST, "/api/enrichment", Some(&sent), header).await;
    sh.demand_done.fetch_add(demand, Ordering::Relaxed);
    let ended = sh.start.elapsed();
    let mut code = code_of(st, &resp);
    let rec = CreateRec {
        kind,
        key: key.clone(),
        body_sig,
        expected,
        started,
        ended,
        status: st,
        code: code.clone(),
        run_id: resp["runId"].as_str().map(str::to_string),
        reused: resp["reusedExistingRun"].as_bool(),
        lead_count: resp["leadCount"].as_u64(),
        required: resp["required"].as_u64(),
    };
    if st == 202 {
        sh.runs.lock().unwrap().push(rec.run_id.clone().unwrap_or_default());
        sh.runs_created.fetch_add(1, Ordering::Relaxed);
    }
    if st == 200 && rec.reused == Some(true) {
        code = "reused".into();
    }
    if st == 402 {
        sh.first_402_ms.fetch_min(started.as_millis() as u64, Ordering::Relaxed);
    }
    let unexpected = match (st, code.as_str()) {
        (0, _) => false, // no answer in time: reported, not a contract breach
        (202, _) | (200, "reused") | (402, "INSUFFICIENT_CREDITS") | (503, "SERVICE_UNAVAILABLE") => false,
        (422, "IDEMPOTENCY_KEY_REUSED") => key.is_none(),
        (400, "EMPTY_LEAD_SCOPE") => !is_attr_filter(&body),
        _ => true,
    };
    if unexpected {
        log.unexpected.push(format!("create {:?} key={:?} → {st} {}", kind, key, short(&resp)));
    }
    log.samples.push(Sample { endpoint: Endpoint::Create, took, status: st, code, unexpected });
    log.creates.push(rec);
}

async fn status(sh: &Shared, log: &mut ClientLog, run: &str) {
    let (st, resp, took) = sh.call(reqwest::Method::GET, &format!("/api/enrichment/{run}"), None, None).await;
    if st == 200 {
        let r = &resp["run"];
        let c = &r["scope"]["counts"];
        let sum: u64 =
            ["pending", "running", "completed", "skipped", "failed"].iter().map(|k| c[k].as_u64().unwrap_or(0)).sum();
        let resolved = r["scope"]["resolvedCount"].as_u64().unwrap_or(u64::MAX);
        if sum != resolved || r["id"].as_str() != Some(run) {
            log.violations.push(format!("status of {run}: counts {c} add up to {sum}, resolvedCount {resolved}"));
        }
    }
    let code = code_of(st, &resp);
    let unexpected = !matches!(st, 0 | 200 | 503);
    if unexpected {
        log.unexpected.push(format!("status {run} → {st} {}", short(&resp)));
    }
    log.samples.push(Sample { endpoint: Endpoint::Status, took, status: st, code, unexpected });
}

async fn items(sh: &Shared, rng: &mut StdRng, log: &mut ClientLog, run: &str) {
    let limit = *[10u64, 50, 100].choose(rng).unwrap();
    let filter = rng.gen_bool(0.3).then(|| *ITEM_STATUSES.choose(rng).unwrap());
    let mut path = format!("/api/enrichment/{run}/items?limit={limit}");
    if let Some(s) = filter {
        path.push_str(&format!("&status={s}"));
    }
    let follow = rng.gen_bool(0.3);
    let mut cursor: Option<String> = None;
    for page in 0..2 {
        let p = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.clone(),
        };
        let (st, resp, took) = sh.call(reqwest::Method::GET, &p, None, None).await;
        let code = code_of(st, &resp);
        let unexpected = !matches!(st, 0 | 200 | 503);
        if unexpected {
            log.unexpected.push(format!("items {p} → {st} {}", short(&resp)));
        }
        log.samples.push(Sample { endpoint: Endpoint::Items, took, status: st, code, unexpected });
        if st != 200 {
            return;
        }
        let items = resp["items"].as_array().cloned().unwrap_or_default();
        if items.len() as u64 > limit {
            log.violations.push(format!("items of {run} page {page}: {} items for limit {limit}", items.len()));
        }
        for it in &items {
            if it["runId"].as_str() != Some(run) || filter.is_some_and(|f| it["status"].as_str() != Some(f)) {
                log.violations.push(format!(
                    "items of {run} (status={filter:?}): item {} has runId {} status {}",
                    it["id"], it["runId"], it["status"]
                ));
                break;
            }
        }
        cursor = resp["page"]["nextCursor"].as_str().map(str::to_string);
        if !follow || cursor.is_none() || Instant::now() >= sh.deadline {
            return;
        }
    }
}

async fn cancel(sh: &Shared, log: &mut ClientLog, run: &str) {
    let (st, resp, took) = sh.call(reqwest::Method::POST, &format!("/api/enrichment/{run}/cancel"), None, None).await;
    let code = code_of(st, &resp);
    if st == 200 && resp["run"]["status"].as_str() != Some("cancelled") {
        log.violations.push(format!("cancel of {run} answered 200 with {}", short(&resp)));
    }
    let unexpected = !matches!(
        (st, code.as_str()),
        (0, _)
            | (200, _)
            | (503, _)
            | (409, "RUN_NOT_CANCELLABLE/run_not_cancellable")
            | (409, "RUN_NOT_CANCELLABLE/run_status_changed")
    );
    if unexpected {
        log.unexpected.push(format!("cancel {run} → {st} {}", short(&resp)));
    }
    log.samples.push(Sample { endpoint: Endpoint::Cancel, took, status: st, code, unexpected });
}

pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s
    }
}
