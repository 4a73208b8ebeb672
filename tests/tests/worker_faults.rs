//! Worker faults on a private stack (its own DynamoDB Local, SQS emulator,
//! API and worker on free ports): duplicate deliveries, a worker killed
//! mid-run, poison messages and dead-lettered chunks, a queue that rejects
//! the dispatch, a crash of the planner followed by a cancel, a plan step
//! given up before it was recorded, and two deliveries of one chunk racing
//! to settle it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use puffle_aws::store::{AttrWrite, ChunkLease, PlannedChunk};
use puffle_domain::credits::LedgerKind;
use puffle_domain::lead::LeadType;
use puffle_domain::plan::WorkMessage;
use puffle_tests::isolated::Isolated;
use puffle_tests::{assert_billed, assert_counts_add_up, counts, person, settle, status, unique, Ctx};
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

fn explicit(ids: &[String]) -> Value {
    json!({"type": "explicit_leads", "leadIds": ids})
}

fn req(enrichment: &str, scope: Value) -> Value {
    json!({"enrichmentId": enrichment, "scope": scope, "input": {}})
}

async fn items_by_lead(ctx: &Ctx, run_id: &str) -> HashMap<String, Value> {
    let mut m = HashMap::new();
    for i in ctx.all_items(run_id, "").await {
        let lead = i["leadId"].as_str().unwrap().to_string();
        assert!(m.insert(lead.clone(), i).is_none(), "lead {lead} has two items");
    }
    m
}

/// Polls `cond` every 200 ms (hang guard: 2 minutes).
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Receives and deletes every message of the work queue (the worker must be
/// stopped); returns their bodies.
async fn drain_work_queue(app: &puffle_app::App) -> Vec<String> {
    let mut bodies = vec![];
    for _ in 0..50 {
        let got = app.aws.queue.receive(10, 1).await.unwrap();
        for m in &got {
            bodies.push(m.body.clone());
            app.aws.queue.delete(&m.receipt_handle).await.unwrap();
        }
        if got.is_empty() && app.aws.queue.depth().await.unwrap() == (0, 0) {
            return bodies;
        }
    }
    panic!("the work queue did not drain");
}

/// A run whose create request died after its commit (the stack's injected
/// `after_create_commit` fault answers 503), named by re-sending the request
/// with its idempotency key: pending, and nobody dispatched it.
async fn undispatched_run(ctx: &Ctx, ids: &[String]) -> String {
    let body = json!({"enrichmentId": "email_domain", "scope": explicit(ids), "input": {}, "idempotencyKey": unique()});
    let r = ctx.post("/api/enrichment", body.clone()).await;
    assert_eq!(r.status, 503, "the injected fault: {r:?}");
    let r = ctx.post("/api/enrichment", body).await;
    r.body["runId"].as_str().unwrap_or_else(|| panic!("the key names the committed run: {r:?}")).to_string()
}

/// What a crashed attempt of plan step 0 leaves behind: the run marked
/// running and its chunk rows of 100 written (`sorted_ids` in id order, as
/// the planner takes explicit ids), but the step not recorded.
async fn plant_crashed_step_zero(app: &puffle_app::App, ws: &str, run_id: &str, sorted_ids: &[String]) {
    let now = puffle_domain::time::now();
    assert!(app.store().mark_running(ws, run_id, &now).await.unwrap());
    let planned: Vec<PlannedChunk> = sorted_ids
        .chunks(100)
        .enumerate()
        .map(|(n, c)| PlannedChunk { chunk: n as u32, lead_ids: c.to_vec(), planned_at: now.clone() })
        .collect();
    let written = app.store().put_planned_chunks(run_id, &planned).await.unwrap();
    assert_eq!(written, planned.len() as u64);
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_chunk_delivery_changes_nothing() {
    let iso = Isolated::start(&[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;
    let ws = ctx.workspace_id.clone();
    let ids = ctx.people("dupc", 150).await;
    let run_id = ctx.start(req("email_domain", explicit(&ids))).await;
    let before = settle(&ctx, &run_id).await;
    assert_eq!(before["status"], "completed");
    assert_eq!(counts(&before), [0, 0, 150, 0, 0]);
    let items_before = items_by_lead(&ctx, &run_id).await;
    let chunk0: Vec<String> = ids[..100].to_vec();
    let attrs_before = app.store().get_lead_attrs(&ws, &chunk0, "email_domain").await.unwrap();
    assert_eq!(attrs_before.len(), 100);

    // Re-delivery through the queue (the worker consumes it) ...
    let msg = WorkMessage::Chunk {
        workspace_id: ws.clone(),
        run_id: run_id.clone(),
        chunk: 0,
        lead_ids: chunk0.clone(),
        correlation_id: None,
    };
    app.aws.queue.send(&msg).await.unwrap();
    // ... and a replayed plan step 0 ...
    app.aws
        .queue
        .send(&WorkMessage::Plan {
            workspace_id: ws.clone(),
            run_id: run_id.clone(),
            step: 0,
            cursor: None,
            correlation_id: None,
            backstop: false,
        })
        .await
        .unwrap();
    // ... and the handler called directly, twice.
    app.process_chunk(&ws, &run_id, 0, &chunk0, delivery("direct-1", 2)).await.unwrap();
    app.process_chunk(&ws, &run_id, 0, &chunk0, delivery("direct-2", 3)).await.unwrap();
    eventually("the worker ignored the duplicate and the queue drained", || async {
        iso.log("worker").contains("duplicate delivery ignored") && app.aws.queue.depth().await.unwrap() == (0, 0)
    })
    .await;

    let after = status(&ctx, &run_id).await;
    assert_eq!(after["status"], "completed");
    assert_eq!(counts(&after), [0, 0, 150, 0, 0]);
    assert_eq!(after["scope"]["resolvedCount"], 150);
    assert_eq!(after["timing"]["completedAt"], before["timing"]["completedAt"]);
    let items_after = items_by_lead(&ctx, &run_id).await;
    assert_eq!(items_after, items_before, "a duplicate delivery rewrote items");
    let attrs_after = app.store().get_lead_attrs(&ws, &chunk0, "email_domain").await.unwrap();
    assert_eq!(attrs_after, attrs_before, "a duplicate delivery rewrote attribute values");
    // Settled once: one reserve, charges for the 150 found, nothing twice.
    let all: Vec<Value> = items_after.values().cloned().collect();
    assert_eq!(assert_billed(&app, &ws, &after, &all, 1).await, (150, 0));
    assert_eq!(after["cost"], before["cost"], "a duplicate delivery settled again");
    assert_eq!(ctx.balance().await, 850);
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_killed_repeatedly_mid_run_still_completes_exactly() {
    let mut iso = Isolated::start(&[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 5000).await;
    let ids = ctx.people("kill", 3000).await;
    let list = ctx.list(&ids).await;
    let run_id = ctx.start(req("email_domain", json!({"type": "list", "listId": list}))).await;

    // Kill the worker (SIGKILL) at two points of progress, restart it each
    // time. Not three: messages in flight at a kill count as received, and
    // with maxReceiveCount 3 a chunk in flight at three kills is rightly
    // dead-lettered (WORKER_GAVE_UP) rather than completed.
    let mut kills = vec![];
    for threshold in [1u64, 1500] {
        let mut seen = status(&ctx, &run_id).await;
        for _ in 0..3000 {
            if counts(&seen)[2] >= threshold || seen["status"] == "completed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            seen = status(&ctx, &run_id).await;
        }
        iso.kill("worker");
        kills.push((seen["status"].as_str().unwrap().to_string(), counts(&seen)[2]));
        tokio::time::sleep(Duration::from_millis(300)).await;
        iso.start_component("worker").await;
    }
    eprintln!("kills at (status, completed): {kills:?}");
    assert_ne!(kills[0].0, "completed", "the first kill came after the run finished; the test proved nothing");

    let run = settle(&ctx, &run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["scope"]["resolvedCount"], 3000);
    assert_eq!(counts(&run), [0, 0, 3000, 0, 0]);
    let items = ctx.all_items(&run_id, "").await;
    assert_eq!(items.len(), 3000);
    let leads: HashSet<&str> = items.iter().map(|i| i["leadId"].as_str().unwrap()).collect();
    assert_eq!(leads, ids.iter().map(String::as_str).collect::<HashSet<_>>());
    assert!(items.iter().all(|i| i["status"] == "completed"));
    // Each chunk settled once despite the kills: 3000 charged, nothing released.
    assert_eq!(assert_billed(&app, &ctx.workspace_id, &run, &items, 1).await, (3000, 0));
    assert_eq!(ctx.balance().await, 2000);
    // Every Lead got its value.
    let attrs = app.store().get_lead_attrs(&ctx.workspace_id, &ids, "email_domain").await.unwrap();
    assert_eq!(attrs.len(), 3000);
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_message_is_dead_lettered_and_dropped() {
    let iso = Isolated::start(&[]).await;
    let app = iso.app().await;
    let dlq = app.aws.dead_letter_queue();
    app.aws.queue.send_raw("not json").await.unwrap();
    eventually("the poison message left both queues via the DLQ handler", || async {
        iso.log("worker").contains("unreadable dead letter dropped")
            && app.aws.queue.depth().await.unwrap() == (0, 0)
            && dlq.depth().await.unwrap() == (0, 0)
    })
    .await;
    let log = iso.log("worker");
    // It was tried on the work queue first (the redrive moved it, not us).
    assert!(log.contains("unreadable work message"), "{log}");
    // The worker still works afterwards.
    let ctx = Ctx::on(&app, iso.api_url(), 10).await;
    let ids = ctx.people("after-poison", 2).await;
    let run_id = ctx.start(req("email_domain", explicit(&ids))).await;
    let run = settle(&ctx, &run_id).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(counts(&run), [0, 0, 2, 0, 0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_lettered_chunk_fails_its_items_and_the_run_still_ends() {
    let mut iso = Isolated::start(&[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;
    let ws = ctx.workspace_id.clone();
    // No worker: nothing is processed until we say so.
    iso.kill("worker");
    let ids = ctx.people("dlq", 150).await;
    let run_id = ctx.start(req("email_domain", explicit(&ids))).await;
    // The planner runs (as the worker would), then its chunk messages are
    // taken off the queue: chunk 0 never gets processed.
    app.plan_step(&ws, &run_id, 0, None, None).await.unwrap();
    let bodies = drain_work_queue(&app).await;
    let mut chunks: HashMap<u32, (String, Vec<String>)> = HashMap::new();
    for b in &bodies {
        if let WorkMessage::Chunk { chunk, lead_ids, .. } = serde_json::from_str::<WorkMessage>(b).unwrap() {
            chunks.insert(chunk, (b.clone(), lead_ids));
        }
    }
    assert_eq!(chunks.len(), 2, "{bodies:?}");
    let (body0, leads0) = chunks[&0].clone();
    let (body1, leads1) = chunks[&1].clone();
    assert_eq!(leads0.len(), 100);
    assert_eq!(leads1.len(), 50);
    let mid = status(&ctx, &run_id).await;
    assert_eq!(mid["status"], "running");
    assert_eq!(counts(&mid), [150, 0, 0, 0, 0]);

    // Chunk 0 reaches the DLQ; chunk 1 is delivered normally.
    app.aws.dead_letter_queue().send_raw(&body0).await.unwrap();
    app.aws.queue.send_raw(&body1).await.unwrap();
    iso.start_component("worker").await;
    let run = settle(&ctx, &run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(counts(&run), [0, 0, 50, 0, 100]);
    let items = items_by_lead(&ctx, &run_id).await;
    assert_eq!(items.len(), 150);
    for l in &leads0 {
        let i = &items[l];
        assert_eq!(i["status"], "failed", "{i}");
        assert_eq!(i["error"]["details"]["code"], "WORKER_GAVE_UP", "{i}");
    }
    for l in &leads1 {
        assert_eq!(items[l]["status"], "completed", "{}", items[l]);
    }
    let failed = app.store().get_lead_attrs(&ws, &leads0, "email_domain").await.unwrap();
    assert!(failed.is_empty(), "gave-up leads got values");

    // The given-up chunk is released, the delivered one charged.
    let all: Vec<Value> = items.values().cloned().collect();
    assert_eq!(assert_billed(&app, &ws, &run, &all, 1).await, (50, 100));
    assert_eq!(ctx.balance().await, 950);

    // The handler is idempotent and leaves counted chunks alone (nothing
    // released twice).
    app.handle_dead_letter(&body0).await.unwrap();
    app.handle_dead_letter(&body1).await.unwrap();
    let again = status(&ctx, &run_id).await;
    assert_eq!(counts(&again), [0, 0, 50, 0, 100]);
    assert_eq!(again["cost"], run["cost"]);
    assert_eq!(items_by_lead(&ctx, &run_id).await, items);
    assert_eq!(ctx.balance().await, 950);
}

/// A run cancelled before it was planned, whose plan step then dead-letters:
/// the Leads never planned are skipped and their reservation comes back,
/// and the run stays cancelled.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_run_whose_planning_is_given_up_releases_everything() {
    let mut iso = Isolated::start(&[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;
    let ws = ctx.workspace_id.clone();
    iso.kill("worker");
    let ids = ctx.people("cancel-dlq", 150).await;
    let run_id = ctx.start(req("email_domain", explicit(&ids))).await;
    assert_eq!(ctx.balance().await, 850);
    let r = ctx.post(&format!("/api/enrichment/{run_id}/cancel"), json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");

    let bodies = drain_work_queue(&app).await;
    let plan = bodies
        .iter()
        .find(|b| matches!(serde_json::from_str(b).unwrap(), WorkMessage::Plan { step: 0, .. }))
        .unwrap_or_else(|| panic!("no plan step 0 on the queue: {bodies:?}"));
    app.handle_dead_letter(plan).await.unwrap();
    // A second dead-lettered copy changes nothing.
    app.handle_dead_letter(plan).await.unwrap();

    let run = status(&ctx, &run_id).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(counts(&run), [0, 0, 0, 150, 0], "{run}");
    assert_eq!(assert_billed(&app, &ws, &run, &[], 1).await, (0, 150));
    assert_eq!(ctx.balance().await, 1000);
}

/// Plan step 0 wrote its chunks and one of them was enriched and counted,
/// but the step itself never got recorded, and its message was
/// dead-lettered. Its Leads are in no `plannedCount`, so giving up must take
/// them from the chunk rows: the counted chunk keeps its results, the other
/// fails (skipped, on a run cancelled meanwhile), and none of them is counted
/// a second time as never planned.
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_step_given_up_after_writing_its_chunks_counts_each_lead_once() {
    let mut iso = Isolated::start(&[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;
    let ws = ctx.workspace_id.clone();
    iso.kill("worker");

    let mut charged = 0;
    for cancel in [false, true] {
        let mut ids = ctx.people(if cancel { "unrecorded-c" } else { "unrecorded" }, 150).await;
        let run_id = ctx.start(req("email_domain", explicit(&ids))).await;
        let plan = drain_work_queue(&app)
            .await
            .into_iter()
            .find(|b| matches!(serde_json::from_str(b).unwrap(), WorkMessage::Plan { step: 0, .. }))
            .expect("plan step 0 on the queue");
        ids.sort();
        plant_crashed_step_zero(&app, &ws, &run_id, &ids).await;
        app.process_chunk(&ws, &run_id, 0, &ids[..100], delivery("chunk-0", 1)).await.unwrap();
        if cancel {
            let r = ctx.post(&format!("/api/enrichment/{run_id}/cancel"), json!({})).await;
            assert_eq!(r.status, 200, "{r:?}");
        }

        app.handle_dead_letter(&plan).await.unwrap();
        app.handle_dead_letter(&plan).await.unwrap();

        let run = status(&ctx, &run_id).await;
        assert_counts_add_up(&run);
        let [pending, running, completed, skipped, failed] = counts(&run);
        assert_eq!((pending, running), (0, 0), "{run}");
        assert_eq!(completed + skipped + failed, 150, "{run}");
        let items = items_by_lead(&ctx, &run_id).await;
        assert_eq!(items.len(), 150);
        let of = |s: &str| items.values().filter(|i| i["status"] == s).count() as u64;
        assert_eq!(of("pending"), 0, "{items:?}");
        assert_eq!((of("completed"), of("skipped"), of("failed")), (completed, skipped, failed), "{run}");
        let second: Vec<&Value> = ids[100..].iter().map(|l| &items[l]).collect();
        if cancel {
            assert_eq!(run["status"], "cancelled", "{run}");
            assert!(second.iter().all(|i| i["skippedReason"] == "run_cancelled"), "{second:?}");
        } else {
            // Every Lead was in the given-up step and has its outcome now:
            // the run ends as one with a dead-lettered chunk does.
            assert_eq!(run["status"], "completed", "{run}");
            assert!(second.iter().all(|i| i["error"]["details"]["code"] == "WORKER_GAVE_UP"), "{second:?}");
        }
        let all: Vec<Value> = items.values().cloned().collect();
        charged += assert_billed(&app, &ws, &run, &all, 1).await.0;
    }
    assert_eq!(ctx.balance().await, 1000 - charged);
}

#[tokio::test(flavor = "multi_thread")]
async fn dispatch_rejected_by_the_queue_is_502_and_released() {
    let mut iso = Isolated::start(&[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 10).await;
    let ids = ctx.people("disp", 3).await;
    iso.kill("sqs");
    let r = ctx.post("/api/enrichment", req("email_domain", explicit(&ids))).await;
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(r.body["code"], "DISPATCH_FAILED");
    assert!(r.body["triggerRunId"].is_null(), "{r:?}");
    let run_id = r.body["enrichmentRunId"].as_str().expect("enrichmentRunId").to_string();
    let run = status(&ctx, &run_id).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(counts(&run), [0, 0, 0, 0, 3]);
    assert_counts_add_up(&run);
    assert_eq!(run["cost"], json!({"preview": 3, "reserved": 3, "charged": 0, "released": 3, "actual": 0}));
    assert_eq!(run["error"]["details"]["code"], "DISPATCH_FAILED");
    assert_eq!(ctx.balance().await, 10);
    let entries = app.ledger(&ctx.workspace_id).await.unwrap();
    let kinds: Vec<(LedgerKind, u64)> =
        entries.iter().filter(|e| e.kind != LedgerKind::Grant).map(|e| (e.kind, e.amount)).collect();
    assert_eq!(kinds.len(), 2, "{entries:?}");
    assert!(kinds.contains(&(LedgerKind::Reserve, 3)) && kinds.contains(&(LedgerKind::Release, 3)), "{entries:?}");
    assert_billed(&app, &ctx.workspace_id, &run, &[], 1).await;
    // A failed run cannot be cancelled.
    let r = ctx.post(&format!("/api/enrichment/{run_id}/cancel"), json!({})).await;
    assert_eq!(r.status, 409, "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn scope_shrinking_before_planning_is_released_and_growth_is_not_planned() {
    let mut iso = Isolated::start(&[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 10).await;
    iso.kill("worker");
    let inputs = vec![
        json!({"type": "person", "title": "VP Sales", "contacts": [{"type": "email", "value": format!("a-{}@shrink.com", puffle_tests::unique())}]}),
        json!({"type": "person", "title": "VP Ops", "contacts": [{"type": "email", "value": format!("b-{}@shrink.com", puffle_tests::unique())}]}),
        json!({"type": "person", "title": "Engineer", "contacts": [{"type": "email", "value": format!("c-{}@shrink.com", puffle_tests::unique())}]}),
    ];
    let ids = ctx.leads(inputs.clone()).await;
    let list = ctx.list(&ids).await;
    let scope = json!({"type": "filtered_list", "listId": list, "filter": {"all": [{"field": "title", "op": "contains", "value": "vp"}]}});
    let r = ctx.post("/api/enrichment", req("job_seniority", scope)).await;
    assert_eq!(r.status, 202, "{r:?}");
    // Reserved by the List's counter (3 people); the planner settles it.
    assert_eq!(r.body["leadCount"], 3);
    let run_id = r.body["runId"].as_str().unwrap().to_string();
    assert_eq!(ctx.balance().await, 7);
    // Before the worker plans: one match leaves, a new matching Lead joins the List.
    let mut changed = inputs[1].clone();
    changed["title"] = json!("Engineer");
    assert_eq!(ctx.leads(vec![changed]).await, vec![ids[1].clone()]);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let late = ctx.leads(vec![person("late-vp")]).await;
    let mut late_vp = person("late-vp2");
    late_vp["title"] = json!("VP Late");
    let late2 = ctx.leads(vec![late_vp]).await;
    let r = ctx.post(&format!("/api/lists/{list}/leads"), json!({"leadIds": [late[0], late2[0]]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    iso.start_component("worker").await;

    let run = settle(&ctx, &run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["scope"]["resolvedCount"], 1);
    assert_eq!(counts(&run), [0, 0, 1, 0, 0]);
    assert_eq!(run["cost"], json!({"preview": 3, "reserved": 3, "charged": 1, "released": 2, "actual": 1}));
    let items = items_by_lead(&ctx, &run_id).await;
    assert_eq!(items.keys().cloned().collect::<Vec<_>>(), vec![ids[0].clone()]);
    assert_eq!(ctx.balance().await, 9);
    let releases: Vec<_> =
        app.ledger(&ctx.workspace_id).await.unwrap().into_iter().filter(|e| e.kind == LedgerKind::Release).collect();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].amount, 2);
    assert_eq!(releases[0].run_id.as_deref(), Some(run_id.as_str()));
    let all: Vec<Value> = items.values().cloned().collect();
    assert_eq!(assert_billed(&app, &ctx.workspace_id, &run, &all, 1).await, (1, 2));
}

/// The worker dies after a plan step wrote its pending items and sent its
/// chunk messages, but before it recorded the step; the run is cancelled
/// before the step is redelivered. The replayed step counts the chunks as
/// skipped, so the chunk messages are then ignored as duplicates: whatever
/// happens, no item may stay `pending` once the counts say nothing is.
#[tokio::test(flavor = "multi_thread")]

async fn cancel_between_a_crashed_plan_step_and_its_replay_leaves_no_pending_items() {
    let mut iso = Isolated::start(&[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;
    let ws = ctx.workspace_id.clone();
    iso.kill("worker");
    let ids = ctx.people("crash", 150).await;
    let run_id = ctx.start(req("email_domain", explicit(&ids))).await;

    // What the crashed attempt of plan step 0 left behind: its two planned
    // chunks (the planner takes explicit ids in id order).
    let mut ids = ids;
    ids.sort();
    plant_crashed_step_zero(&app, &ws, &run_id, &ids).await;
    let pending = items_by_lead(&ctx, &run_id).await;
    assert_eq!(pending.len(), 150, "a planned chunk's Leads are listed as pending items");
    assert!(pending.values().all(|i| i["status"] == "pending" && i["cost"]["reserved"] == 1), "{pending:?}");

    let r = ctx.post(&format!("/api/enrichment/{run_id}/cancel"), json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");

    // Redelivery of the plan step, then of the chunk messages the crashed attempt sent.
    app.plan_step(&ws, &run_id, 0, None, None).await.unwrap();
    app.process_chunk(&ws, &run_id, 0, &ids[..100], delivery("redelivered-0", 2)).await.unwrap();
    app.process_chunk(&ws, &run_id, 1, &ids[100..], delivery("redelivered-1", 2)).await.unwrap();

    let run = settle(&ctx, &run_id).await;
    assert_eq!(run["status"], "cancelled");
    assert_eq!(counts(&run), [0, 0, 0, 150, 0]);
    let items = items_by_lead(&ctx, &run_id).await;
    assert_eq!(items.len(), 150);
    let by_status = |s: &str| items.values().filter(|i| i["status"] == s).count();
    assert_eq!(by_status("pending"), 0, "items left pending while the run counts them skipped");
    for i in items.values() {
        assert_eq!(i["status"], "skipped", "{i}");
        assert_eq!(i["skippedReason"], "run_cancelled", "{i}");
    }
    // Nothing ran, so all of it came back — once, though the chunks met
    // the cancel twice (the replayed step and the late chunk messages).
    let all: Vec<Value> = items.values().cloned().collect();
    assert_eq!(assert_billed(&app, &ws, &run, &all, 1).await, (0, 150));
    assert_eq!(ctx.balance().await, 1000);
}

/// A second message for a chunk that a live delivery holds (a reaper
/// re-send while a slow provider answers, a second planner) is dropped
/// without enriching anything; the holder's own redelivery, after its worker
/// died, takes the chunk back at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_is_enriched_by_one_delivery_at_a_time() {
    let mut iso = Isolated::start(&[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;
    let ws = ctx.workspace_id.clone();
    iso.kill("worker");
    let ids = ctx.people("lease", 100).await;
    let run_id = ctx.start(req("email_domain", explicit(&ids))).await;
    // A backstop for a run its create request dispatched plans nothing.
    app.plan_backstop(&ws, &run_id, None).await.unwrap();
    let rec = app.store().get_run(&ws, &run_id).await.unwrap().unwrap();
    assert!(rec.run.trigger.trigger_run_id.is_some());
    assert_eq!(
        (rec.run.status.as_str(), rec.progress.planned_count),
        ("pending", 0),
        "a backstop started a dispatched run"
    );

    let now = puffle_domain::time::now();
    assert!(app.store().mark_running(&ws, &run_id, &now).await.unwrap());
    let mut ids = ids;
    ids.sort();
    let planned = PlannedChunk { chunk: 0, lead_ids: ids.clone(), planned_at: now.clone() };
    assert_eq!(app.store().put_planned_chunks(&run_id, &[planned]).await.unwrap(), 1);
    let lease = std::time::Duration::from_secs(600);
    assert_eq!(app.store().lease_chunk(&run_id, 0, "holder", lease).await.unwrap(), ChunkLease::First);

    app.process_chunk(&ws, &run_id, 0, &ids, delivery("other", 1)).await.unwrap();
    let items = items_by_lead(&ctx, &run_id).await;
    assert!(items.values().all(|i| i["status"] == "pending"), "a second delivery enriched a leased chunk");
    assert_eq!(items.len(), 100, "{items:?}");
    assert_eq!(app.store().lease_chunk(&run_id, 0, "other", lease).await.unwrap(), ChunkLease::Held, "the lease moved");

    app.process_chunk(&ws, &run_id, 0, &ids, delivery("holder", 2)).await.unwrap();
    let items = items_by_lead(&ctx, &run_id).await;
    assert_eq!(items.values().filter(|i| i["status"] == "completed").count(), 100);
    let attrs = app.store().get_lead_attrs(&ws, &ids, "email_domain").await.unwrap();
    assert_eq!(attrs.len(), 100);
}

/// Two deliveries of one chunk that both enriched it (the first one's lease
/// lapsed under a slow provider): the one whose item writes are refused,
/// because the other finished those items first, puts the other's attribute
/// values back (or removes its own where the other found nothing), so every
/// attribute matches its item, and the chunk is counted from the items as
/// stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_that_loses_the_race_leaves_the_winners_values() {
    let mut iso = Isolated::start(&[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;
    let ws = ctx.workspace_id.clone();
    iso.kill("worker");
    let mut ids = ctx.people("race", 100).await;
    ids.sort();
    let run_id = ctx.start(req("email_domain", explicit(&ids))).await;
    let now = puffle_domain::time::now();
    assert!(app.store().mark_running(&ws, &run_id, &now).await.unwrap());
    let planned = PlannedChunk { chunk: 0, lead_ids: ids.clone(), planned_at: now.clone() };
    assert_eq!(app.store().put_planned_chunks(&run_id, &[planned]).await.unwrap(), 1);

    // The winner: 40 Leads found with its own value, 10 not found.
    let theirs = json!({"domain": "winner.example"});
    let mut winner = vec![];
    for lead in &ids[..40] {
        let (item, value) = puffle_domain::item::Item::pending(&run_id, lead, None, &now)
            .reserving(1)
            .finish(puffle_domain::providers::Outcome::Completed(theirs.clone()), &now);
        let value = value.unwrap();
        let a = AttrWrite { lead_id: lead, key: "email_domain", value: &value, run_id: Some(&run_id), now: &now };
        winner.push((item, Some(app.store().lead_attr_row(&ws, LeadType::Person, &a).unwrap())));
    }
    for lead in &ids[40..50] {
        winner.push((
            puffle_domain::item::Item::pending(&run_id, lead, None, &now).reserving(1).skipped("no_match", &now),
            None,
        ));
    }
    assert!(app.store().settle_items(winner).await.unwrap().is_empty());

    // The loser: a first delivery (no lease row, first receive), so it
    // enriches all 100 without reading the items first.
    app.process_chunk(&ws, &run_id, 0, &ids, delivery("late", 1)).await.unwrap();

    let items = items_by_lead(&ctx, &run_id).await;
    let attrs = app.store().get_lead_attrs(&ws, &ids, "email_domain").await.unwrap();
    for lead in &ids[..40] {
        assert_eq!(items[lead]["result"], theirs, "the winner's item was overwritten");
        assert_eq!(value_of(&attrs[lead]), theirs, "{lead}: the attribute is the loser's, not its item's");
    }
    for lead in &ids[40..50] {
        assert_eq!(items[lead]["status"], "skipped");
        assert!(!attrs.contains_key(lead), "{lead}: a value for an item that found nothing");
    }
    for lead in &ids[50..] {
        assert_eq!(items[lead]["status"], "completed");
        assert_ne!(items[lead]["result"], theirs);
        let own = attrs.get(lead).unwrap_or_else(|| panic!("{lead}: its own value is missing"));
        assert_eq!(value_of(own), items[lead]["result"]);
    }
    let run = status(&ctx, &run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(counts(&run), [0, 0, 90, 10, 0]);
    let all: Vec<Value> = items.values().cloned().collect();
    assert_eq!(assert_billed(&app, &ws, &run, &all, 1).await, (90, 10));
    assert_eq!(ctx.balance().await, 910);
}

/// A create request that died after its commit (injected fault) leaves a
/// pending run nobody dispatched: a backstop plans it, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_backstop_plans_a_run_its_create_request_never_dispatched_once() {
    let mut iso = Isolated::start(&[("PUFFLE_FAULTS", "after_create_commit=1")]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;
    let ws = ctx.workspace_id.clone();
    iso.kill("worker");
    let ids = ctx.people("backstop", 10).await;
    let run_id = undispatched_run(&ctx, &ids).await;
    let rec = app.store().get_run(&ws, &run_id).await.unwrap().unwrap();
    assert_eq!((rec.run.status.as_str(), rec.run.trigger.trigger_run_id.as_deref()), ("pending", None));

    app.plan_backstop(&ws, &run_id, None).await.unwrap();
    app.plan_backstop(&ws, &run_id, None).await.unwrap();
    let rec = app.store().get_run(&ws, &run_id).await.unwrap().unwrap();
    assert_eq!(rec.run.status.as_str(), "running");
    assert_eq!(rec.progress.planned_count, 10, "planned once");
    assert_eq!(items_by_lead(&ctx, &run_id).await.len(), 10);
    // A copy of step 0 that ran out of receives after the step was recorded
    // (slow under throttling) is dropped by the DLQ handler, not a failed run.
    let copy = WorkMessage::Plan {
        workspace_id: ws.clone(),
        run_id: run_id.clone(),
        step: 0,
        cursor: None,
        correlation_id: None,
        backstop: false,
    };
    app.handle_dead_letter(&serde_json::to_string(&copy).unwrap()).await.unwrap();
    let rec = app.store().get_run(&ws, &run_id).await.unwrap().unwrap();
    assert_eq!(rec.run.status.as_str(), "running", "a dead-lettered copy of a done step failed the run");
    // The stream's own backstop (on the queue since the INSERT) and the
    // chunk message finish it once a worker runs.
    iso.start_component("worker").await;
    let run = settle(&ctx, &run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(counts(&run), [0, 0, 10, 0, 0]);
}

/// A create whose send failed fails its run only while it is pending
/// (`fail_dispatch`), and plan step 0 starts it only while it is pending: run
/// side by side on 16 runs, each run ends one way or the other, never both.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_dispatch_and_the_first_plan_step_never_both_win() {
    use puffle_domain::credits::LedgerEntry;
    use puffle_domain::run::RunError;
    let mut iso = Isolated::start(&[("PUFFLE_FAULTS", "after_create_commit=1")]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;
    let ws = ctx.workspace_id.clone();
    iso.kill("worker");
    let mut runs = vec![];
    for i in 0..16 {
        let ids = ctx.people(&format!("race{i}"), 3).await;
        runs.push(undispatched_run(&ctx, &ids).await);
    }
    // Half the pairs start with the failure, half with the plan step, so both
    // orders happen whatever the scheduler does.
    let races = runs.iter().enumerate().map(|(i, run_id)| {
        let (app, ws) = (&app, ws.as_str());
        async move {
            let run = app.store().get_run(ws, run_id).await.unwrap().unwrap().run;
            let error = RunError {
                message: "the work queue rejected the dispatch".into(),
                details: json!({"code": "DISPATCH_FAILED"}),
            };
            let release =
                LedgerEntry::release(run.cost.reserved, "dispatch failed", run_id, &puffle_domain::time::now());
            let now = puffle_domain::time::now();
            let fail = app.store().fail_dispatch(ws, &run, &error, &release, &now);
            let plan = app.plan_step(ws, run_id, 0, None, None);
            if i % 2 == 0 {
                let (failed, planned) = tokio::join!(fail, plan);
                (failed.unwrap(), planned.unwrap())
            } else {
                let (planned, failed) = tokio::join!(plan, fail);
                (failed.unwrap(), planned.unwrap())
            }
        }
    });
    let outcomes = futures::future::join_all(races).await;
    iso.start_component("worker").await;
    let (mut failed_runs, mut completed_runs) = (0, 0);
    for (run_id, (failed, ())) in runs.iter().zip(outcomes) {
        let run = settle(&ctx, run_id).await;
        let items = ctx.all_items(run_id, "").await;
        if failed {
            failed_runs += 1;
            assert_eq!(run["status"], "failed", "fail_dispatch applied: {run}");
            assert!(items.is_empty(), "a failed dispatch was planned anyway: {items:?}");
            assert_eq!(run["cost"]["released"], 3, "{run}");
        } else {
            completed_runs += 1;
            assert_eq!(run["status"], "completed", "fail_dispatch lost, so the run goes on: {run}");
            assert_eq!(counts(&run), [0, 0, 3, 0, 0]);
        }
        assert_counts_add_up(&run);
        assert_billed(&app, &ws, &run, &items, 1).await;
    }
    assert_eq!(failed_runs + completed_runs, 16);
    let charged = 3 * completed_runs as u64;
    assert_eq!(ctx.balance().await, 1000 - charged, "each failed run released once, each completed run charged once");
    eprintln!("dispatch race: {failed_runs} failed first, {completed_runs} started first");
}

/// The value an attribute row holds.
fn value_of(row: &puffle_aws::store::Row) -> Value {
    serde_dynamo::from_attribute_value(row["value"].clone()).expect("an attribute value")
}

fn delivery(message_id: &str, receive_count: u32) -> puffle_app::worker::Delivery<'_> {
    puffle_app::worker::Delivery { message_id, receive_count }
}
