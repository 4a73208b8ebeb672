//! A model-checked core: random bounded sequences of operations run against
//! a private local stack, and after every operation what the API shows is
//! checked against a small reference model kept here.
//!
//! Operations: Lead upserts (new and repeated), List adds, creates with and
//! without idempotency keys (a key reused with another body too), repeats,
//! cancels, credit grants, duplicate and delayed deliveries of plan and chunk
//! messages, and worker kills. Checked: the balance (exact after every
//! operation), each create's answer and code, run statuses, counts, items
//! (one per Lead, the model's Leads), each run's cost, the ledger, Lists'
//! counters and the workspace's Leads.
//!
//! The sequence comes from a seed: fixed in CI (`MODEL_SEED`), or
//! `PUFFLE_MODEL_SEED=<n>` to replay one, `PUFFLE_MODEL_SEED=random` for a
//! new one (printed first). `PUFFLE_MODEL_OPS` sets the length.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use puffle_domain::credits::{replay, Totals};
use puffle_domain::plan::{chunks, WorkMessage};
use puffle_tests::isolated::Isolated;
use puffle_tests::{assert_error, settle, unique, Ctx, Resp};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const MODEL_SEED: u64 = 0x00c0_ffee_2026;
const DEFAULT_OPS: usize = 60;
const INITIAL_CREDITS: u64 = 25;

#[derive(Debug, Clone)]
enum Op {
    Upsert {
        new: usize,
        repeats: usize,
    },
    AddToList {
        list: Option<usize>,
        leads: usize,
    },
    Create {
        scope: ScopeChoice,
        key: KeyChoice,
    },
    Repeat {
        run: usize,
    },
    /// `latest`: the run just created (most likely still under way).
    Cancel {
        run: usize,
        latest: bool,
    },
    Grant {
        credits: u64,
    },
    DuplicatePlan {
        run: usize,
    },
    DuplicateChunk {
        run: usize,
        delay: bool,
    },
    KillWorker {
        down_ms: u64,
    },
}

#[derive(Debug, Clone)]
enum ScopeChoice {
    Explicit(usize),
    List(usize),
}

#[derive(Debug, Clone)]
enum KeyChoice {
    None,
    Fresh,
    /// An earlier key with this (new) body: 422.
    Reused(usize),
}

fn random_op(rng: &mut StdRng) -> Op {
    match rng.gen_range(0..100) {
        0..=14 => Op::Upsert { new: rng.gen_range(1..=6), repeats: rng.gen_range(0..=2) },
        15..=26 => Op::AddToList { list: rng.gen_bool(0.7).then(|| rng.gen_range(0..8)), leads: rng.gen_range(1..=8) },
        27..=54 => Op::Create {
            scope: if rng.gen_bool(0.6) {
                ScopeChoice::Explicit(rng.gen_range(1..=8))
            } else {
                ScopeChoice::List(rng.gen_range(0..8))
            },
            key: match rng.gen_range(0..10) {
                0..=3 => KeyChoice::None,
                4..=8 => KeyChoice::Fresh,
                _ => KeyChoice::Reused(rng.gen_range(0..16)),
            },
        },
        55..=64 => Op::Repeat { run: rng.gen_range(0..16) },
        65..=72 => Op::Cancel { run: rng.gen_range(0..16), latest: rng.gen_bool(0.6) },
        73..=76 => Op::Grant { credits: rng.gen_range(1..=12) },
        77..=84 => Op::DuplicatePlan { run: rng.gen_range(0..16) },
        85..=93 => Op::DuplicateChunk { run: rng.gen_range(0..16), delay: rng.gen_bool(0.5) },
        _ => Op::KillWorker { down_ms: rng.gen_range(0..1500) },
    }
}

/// What the service should show, kept by the test.
#[derive(Default)]
struct Model {
    balance: u64,
    grants: u64,
    /// email → Lead id, in creation order.
    leads: Vec<(String, String)>,
    lists: Vec<(String, BTreeSet<String>)>,
    runs: Vec<ModelRun>,
    /// Keys in use: (key, index of the run it stands for).
    keys: Vec<(String, usize)>,
}

struct ModelRun {
    id: String,
    /// The Leads of the run, in the order they were planned.
    leads: Vec<String>,
    body: Value,
    key: Option<String>,
    cancelled: bool,
    explicit: bool,
}

impl Model {
    fn lead_ids(&self) -> Vec<String> {
        self.leads.iter().map(|(_, id)| id.clone()).collect()
    }
}

struct World {
    iso: Isolated,
    app: puffle_app::App,
    ctx: Ctx,
    rng: StdRng,
    model: Model,
    tag: String,
}

fn seed() -> u64 {
    match std::env::var("PUFFLE_MODEL_SEED").ok().as_deref() {
        None | Some("") => MODEL_SEED,
        Some("random") => rand::random(),
        Some(n) => n.parse().expect("PUFFLE_MODEL_SEED is a number or `random`"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_operation_sequences_match_the_reference_model() {
    let seed = seed();
    let ops: usize = std::env::var("PUFFLE_MODEL_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_OPS);
    // Printed first: a failure's output starts with how to replay it.
    println!("model: seed {seed}, {ops} operations (replay: PUFFLE_MODEL_SEED={seed} PUFFLE_MODEL_OPS={ops})");
    let iso = Isolated::start(&[("PUFFLE_RATE_LIMITS", "off")]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), INITIAL_CREDITS).await;
    let mut w = World {
        iso,
        app,
        ctx,
        rng: StdRng::seed_from_u64(seed),
        model: Model { balance: INITIAL_CREDITS, grants: INITIAL_CREDITS, ..Default::default() },
        tag: unique(),
    };
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    for step in 0..ops {
        let op = random_op(&mut w.rng);
        let outcome = w.apply(&op).await;
        println!("model: {step:>3} {op:?} → {outcome}");
        *counts.entry(outcome_kind(&outcome)).or_default() += 1;
        let balance = w.ctx.balance().await;
        assert_eq!(balance, w.model.balance, "balance after step {step} ({op:?}); seed {seed}");
    }
    w.check_final(seed).await;
    println!("model: outcomes {counts:?}");
}

fn outcome_kind(outcome: &str) -> &'static str {
    ["202", "200", "402", "422", "400", "409", "sent", "killed", "granted"]
        .into_iter()
        .find(|k| outcome.starts_with(k))
        .unwrap_or("other")
}

impl World {
    async fn apply(&mut self, op: &Op) -> String {
        match op.clone() {
            Op::Upsert { new, repeats } => self.upsert(new, repeats).await,
            Op::AddToList { list, leads } => self.add_to_list(list, leads).await,
            Op::Create { scope, key } => self.create(scope, key).await,
            Op::Repeat { run } => self.repeat(run).await,
            Op::Cancel { run, latest } => self.cancel(if latest { usize::MAX } else { run }).await,
            Op::Grant { credits } => {
                self.app.grant_credits(&self.ctx.workspace_id, credits, "model grant").await.unwrap();
                self.model.balance += credits;
                self.model.grants += credits;
                format!("granted {credits}")
            }
            Op::DuplicatePlan { run } => {
                let Some(r) = self.pick_run(run) else { return "no run".into() };
                let msg = WorkMessage::first_step(&self.ctx.workspace_id, &r.id, None, false);
                self.app.aws.queue.send(&msg).await.unwrap();
                format!("sent plan step 0 of {} again", r.id)
            }
            Op::DuplicateChunk { run, delay } => {
                let Some(r) = self.pick_run(run) else { return "no run".into() };
                if !r.explicit {
                    return "no chunk known (a List run)".into();
                }
                // A copy of a chunk message exists only once the planner sent
                // the original (after writing its items): wait for that.
                if !self.planned(&r.id).await {
                    return "not planned yet".into();
                }
                let (chunk, lead_ids) = chunks(0, &r.leads).remove(0);
                let msg = WorkMessage::Chunk {
                    workspace_id: self.ctx.workspace_id.clone(),
                    run_id: r.id.clone(),
                    chunk,
                    lead_ids,
                    correlation_id: None,
                };
                if delay {
                    self.app.aws.queue.send_after(&msg, Duration::from_secs(2)).await.unwrap();
                } else {
                    self.app.aws.queue.send(&msg).await.unwrap();
                }
                format!("sent chunk {chunk} of {} again{}", r.id, if delay { " (2 s late)" } else { "" })
            }
            Op::KillWorker { down_ms } => {
                self.iso.kill("worker");
                tokio::time::sleep(Duration::from_millis(down_ms)).await;
                self.iso.start_component("worker").await;
                format!("killed the worker for {down_ms} ms")
            }
        }
    }

    /// Whether plan step 0 of the run is recorded (waits up to 10 s).
    async fn planned(&self, run_id: &str) -> bool {
        for _ in 0..100 {
            let rec = self.app.store().get_run(&self.ctx.workspace_id, run_id).await.unwrap().expect("the run");
            if rec.progress.plan_done || rec.progress.plan_step > 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    fn pick_run(&self, i: usize) -> Option<&ModelRun> {
        (!self.model.runs.is_empty()).then(|| &self.model.runs[i % self.model.runs.len()])
    }

    async fn upsert(&mut self, new: usize, repeats: usize) -> String {
        let mut batch = vec![];
        let mut expected: Vec<Option<String>> = vec![];
        for _ in 0..new {
            let email = format!("m{}-{}@model-{}.com", self.model.leads.len() + batch.len(), self.tag, self.tag);
            batch.push(json!({"type": "person", "name": {"full": "Model Lead"}, "title": "Engineer",
                "contacts": [{"type": "email", "value": email}]}));
            expected.push(None);
        }
        for _ in 0..repeats.min(self.model.leads.len()) {
            let (email, id) = self.model.leads.choose(&mut self.rng).unwrap().clone();
            // The same person again, spelled in capitals, with a new title.
            batch.push(json!({"type": "person", "title": format!("VP {}", self.rng.gen::<u16>()),
                "contacts": [{"type": "email", "value": email.to_uppercase()}]}));
            expected.push(Some(id));
        }
        let r = self.ctx.post("/api/leads", json!({"leads": batch})).await;
        assert_eq!(r.status, 200, "{r:?}");
        let ids: Vec<String> = r.body["leads"].as_array().unwrap().iter().map(|l| s(&l["id"])).collect();
        assert_eq!(ids.len(), batch.len(), "{r:?}");
        let known = self.model.lead_ids();
        let mut fresh = BTreeSet::new();
        for (i, (id, want)) in ids.iter().zip(&expected).enumerate() {
            match want {
                Some(existing) => assert_eq!(id, existing, "a repeated Lead keeps its id"),
                None => {
                    assert!(!known.contains(id) && fresh.insert(id.clone()), "a new Lead gets a new id: {id}");
                    let email = batch[i]["contacts"][0]["value"].as_str().unwrap().to_string();
                    self.model.leads.push((email, id.clone()));
                }
            }
        }
        format!("200 {new} new, {} repeated", expected.iter().filter(|e| e.is_some()).count())
    }

    async fn add_to_list(&mut self, list: Option<usize>, n: usize) -> String {
        if self.model.leads.is_empty() {
            return "no Leads yet".into();
        }
        let index = match list {
            Some(i) if !self.model.lists.is_empty() => i % self.model.lists.len(),
            _ => {
                let r = self.ctx.post("/api/lists", json!({"name": format!("model {}", self.model.lists.len())})).await;
                assert_eq!(r.status, 201, "{r:?}");
                self.model.lists.push((s(&r.body["list"]["id"]), BTreeSet::new()));
                self.model.lists.len() - 1
            }
        };
        let ids = self.model.lead_ids();
        let picked: Vec<String> = ids.choose_multiple(&mut self.rng, n.min(ids.len())).cloned().collect();
        let (list_id, members) = &mut self.model.lists[index];
        let r = self.ctx.post(&format!("/api/lists/{list_id}/leads"), json!({"leadIds": picked})).await;
        assert_eq!(r.status, 200, "{r:?}");
        members.extend(picked.iter().cloned());
        let list = self.ctx.get(&format!("/api/lists/{list_id}")).await;
        assert_eq!(list.body["list"]["leadCount"].as_u64(), Some(members.len() as u64), "{list:?}");
        assert_eq!(list.body["list"]["personCount"].as_u64(), Some(members.len() as u64), "{list:?}");
        format!("200 list {index} now {} Leads", members.len())
    }

    async fn create(&mut self, scope: ScopeChoice, key: KeyChoice) -> String {
        let (scope_json, leads, explicit) = match scope {
            ScopeChoice::Explicit(n) => {
                if self.model.leads.is_empty() {
                    return "no Leads yet".into();
                }
                let ids = self.model.lead_ids();
                let picked: Vec<String> = ids.choose_multiple(&mut self.rng, n.min(ids.len())).cloned().collect();
                (json!({"type": "explicit_leads", "leadIds": picked}), picked, true)
            }
            ScopeChoice::List(i) => {
                if self.model.lists.is_empty() {
                    return "no List yet".into();
                }
                let (id, members) = &self.model.lists[i % self.model.lists.len()];
                (json!({"type": "list", "listId": id}), members.iter().cloned().collect(), false)
            }
        };
        let mut body = json!({"enrichmentId": "email_domain", "scope": scope_json, "input": {}});
        let key = match key {
            KeyChoice::None => None,
            KeyChoice::Fresh => Some(format!("model-{}-{}", self.tag, self.model.keys.len())),
            KeyChoice::Reused(i) if !self.model.keys.is_empty() => {
                Some(self.model.keys[i % self.model.keys.len()].0.clone())
            }
            KeyChoice::Reused(_) => None,
        };
        if let Some(k) = &key {
            body["idempotencyKey"] = json!(k);
        }
        let r = self.ctx.post("/api/enrichment", body.clone()).await;
        // A key already standing for a run: the same body reuses it, another is 422.
        if let Some((_, run)) = key.as_ref().and_then(|k| self.model.keys.iter().find(|(used, _)| used == k)) {
            let earlier = &self.model.runs[*run];
            if earlier.body == body {
                assert_reused(&r, &earlier.id);
                return format!("200 reused {}", earlier.id);
            }
            assert_error(&r, 422, "IDEMPOTENCY_KEY_REUSED");
            return "422 key reused with another body".into();
        }
        if leads.is_empty() {
            assert_error(&r, 400, "EMPTY_LEAD_SCOPE");
            return "400 empty List".into();
        }
        let cost = leads.len() as u64;
        if cost > self.model.balance {
            assert_error(&r, 402, "INSUFFICIENT_CREDITS");
            assert_eq!(
                (r.body["required"].as_u64(), r.body["balance"].as_u64()),
                (Some(cost), Some(self.model.balance)),
                "{r:?}"
            );
            return format!("402 needs {cost}, has {}", self.model.balance);
        }
        assert_eq!(r.status, 202, "{r:?}");
        assert_eq!(r.body["leadCount"].as_u64(), Some(cost), "{r:?}");
        let id = s(&r.body["runId"]);
        assert!(self.model.runs.iter().all(|m| m.id != id), "a new run id");
        self.model.balance -= cost;
        if let Some(k) = &key {
            self.model.keys.push((k.clone(), self.model.runs.len()));
        }
        self.model.runs.push(ModelRun { id: id.clone(), leads, body, key, cancelled: false, explicit });
        format!("202 {id} over {cost}")
    }

    async fn repeat(&mut self, i: usize) -> String {
        let keyed: Vec<usize> = (0..self.model.runs.len()).filter(|&r| self.model.runs[r].key.is_some()).collect();
        if keyed.is_empty() {
            return "no keyed run".into();
        }
        let run = &self.model.runs[keyed[i % keyed.len()]];
        let r = self.ctx.post("/api/enrichment", run.body.clone()).await;
        assert_reused(&r, &run.id);
        format!("200 reused {}", run.id)
    }

    async fn cancel(&mut self, i: usize) -> String {
        if self.model.runs.is_empty() {
            return "no run".into();
        }
        let index = if i == usize::MAX { self.model.runs.len() - 1 } else { i % self.model.runs.len() };
        let id = self.model.runs[index].id.clone();
        let r = self.ctx.post(&format!("/api/enrichment/{id}/cancel"), json!({})).await;
        let run = settle(&self.ctx, &id).await;
        match r.status {
            200 => {
                assert!(!self.model.runs[index].cancelled, "a second cancel answers 409: {r:?}");
                assert_eq!(run["status"], "cancelled", "{run}");
                self.model.runs[index].cancelled = true;
                // What the cancel kept from running is released once settled.
                let released = run["cost"]["released"].as_u64().unwrap();
                self.model.balance += released;
                format!("200 cancelled {id}, {released} released")
            }
            409 => {
                assert_eq!(r.body["code"], "RUN_NOT_CANCELLABLE", "{r:?}");
                let status = run["status"].as_str().unwrap();
                let want = if self.model.runs[index].cancelled { "cancelled" } else { "completed" };
                assert_eq!(status, want, "409 only for a finished run: {run}");
                format!("409 {id} is {status}")
            }
            _ => panic!("cancel answered {r:?}"),
        }
    }

    async fn check_final(&self, seed: u64) {
        let ws = &self.ctx.workspace_id;
        let mut charged_total = 0;
        for m in &self.model.runs {
            let run = settle(&self.ctx, &m.id).await;
            let n = m.leads.len() as u64;
            let want = if m.cancelled { "cancelled" } else { "completed" };
            assert_eq!(run["status"], want, "run {} (seed {seed}): {run}", m.id);
            assert_eq!(run["scope"]["resolvedCount"].as_u64(), Some(n), "{run}");
            let items = self.ctx.all_items(&m.id, "").await;
            let by_lead: BTreeSet<String> = items.iter().map(|i| s(&i["leadId"])).collect();
            assert_eq!(by_lead.len(), items.len(), "one item per Lead in {}", m.id);
            assert_eq!(by_lead, m.leads.iter().cloned().collect::<BTreeSet<_>>(), "the model's Leads in {}", m.id);
            let count = |st: &str| items.iter().filter(|i| i["status"] == st).count() as u64;
            let (completed, skipped) = (count("completed"), count("skipped"));
            assert_eq!(count("failed") + count("pending") + count("running"), 0, "{}: {items:?}", m.id);
            let c = &run["scope"]["counts"];
            assert_eq!((c["completed"].as_u64(), c["skipped"].as_u64()), (Some(completed), Some(skipped)), "{run}");
            if !m.cancelled {
                // Every Lead has an email: every one found and charged.
                assert_eq!(completed, n, "{run}");
            }
            assert_eq!(
                run["cost"],
                json!({"preview": n, "reserved": n, "charged": completed, "released": skipped, "actual": completed}),
                "cost of {} (seed {seed})",
                m.id
            );
            charged_total += completed;
        }
        // Nothing held, nothing charged twice: grants − charges, by the ledger too.
        assert_eq!(self.ctx.balance().await, self.model.grants - charged_total, "seed {seed}");
        let ledger = self.app.store().ledger(ws).await.unwrap();
        let totals = Totals::of(&ledger);
        assert_eq!(totals.held(), 0, "{totals:?}");
        assert_eq!((totals.grants, totals.charges), (self.model.grants, charged_total), "{totals:?}");
        assert_eq!(replay(&ledger), (self.model.grants - charged_total) as i128);
        let runs = self.app.store().all_runs(ws).await.unwrap();
        assert_eq!(runs.len(), self.model.runs.len(), "no run the model does not know");
        assert!(runs.iter().all(|r| r.run.status.is_terminal()));
        // The workspace holds exactly the model's Leads.
        let mut listed = BTreeSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/leads?limit=100&cursor={c}"),
                None => "/api/leads?limit=100".into(),
            };
            let r = self.ctx.get(&path).await;
            assert_eq!(r.status, 200, "{r:?}");
            for l in r.body["leads"].as_array().unwrap() {
                assert!(listed.insert(s(&l["id"])), "a Lead listed twice");
            }
            match r.body["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(listed, self.model.lead_ids().into_iter().collect::<BTreeSet<_>>());
        println!(
            "model: {} runs ({} cancelled), {} Leads, {} Lists, {charged_total} credits charged",
            self.model.runs.len(),
            self.model.runs.iter().filter(|r| r.cancelled).count(),
            self.model.leads.len(),
            self.model.lists.len()
        );
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

#[track_caller]
fn assert_reused(r: &Resp, run_id: &str) {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["runId"], run_id, "{r:?}");
    assert_eq!(r.body["reusedExistingRun"], true, "{r:?}");
}
