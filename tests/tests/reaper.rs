//! The reaper, branch by branch, on a private stack whose worker is stopped:
//! this process plays the worker, loses messages on purpose and runs
//! reaper passes itself (`App::reap`), so each pass's report is exact.
//!
//! Every stuck state the reaper knows gets a run: a pending run whose plan
//! message was lost, a run over more than one plan page whose second step
//! was lost, a planned run whose chunk messages were lost, a run whose last
//! chunk counted but whose completion never happened, and one stuck run it
//! gives up on. Each pass must do exactly one thing per stale run, and what
//! it sent must finish the runs once a worker takes it.

use std::collections::BTreeSet;
use std::time::Duration;

use puffle_app::reaper::{ReapReport, ReaperSettings};
use puffle_app::worker::Delivery;
use puffle_domain::plan::WorkMessage;
use puffle_tests::isolated::Isolated;
use puffle_tests::{assert_counts_add_up, counts, settle, status, Ctx};
use serde_json::{json, Value};

const FRESH: ReaperSettings = ReaperSettings { stale_after: Duration::from_secs(3600), max_reaps: u32::MAX };
const STALE: ReaperSettings = ReaperSettings { stale_after: Duration::ZERO, max_reaps: u32::MAX };
const GIVE_UP: ReaperSettings = ReaperSettings { stale_after: Duration::ZERO, max_reaps: 0 };

/// Receives and deletes every message on the work queue.
async fn take_all(app: &puffle_app::App) -> Vec<(String, WorkMessage)> {
    let mut out = vec![];
    for _ in 0..50 {
        let got = app.aws.queue.receive(10, 1).await.unwrap();
        for m in &got {
            app.aws.queue.delete(&m.receipt_handle).await.unwrap();
            out.push((m.message_id.clone(), serde_json::from_str(&m.body).expect("a work message")));
        }
        if got.is_empty() && app.aws.queue.depth().await.unwrap() == (0, 0) {
            return out;
        }
    }
    panic!("the work queue did not drain");
}

/// Takes the queue's messages and handles them here, as the worker would;
/// returns how many failed.
async fn work_once(app: &puffle_app::App) -> usize {
    let mut failed = 0;
    for (id, msg) in take_all(app).await {
        let body = serde_json::to_string(&msg).unwrap();
        if app.handle_work(&body, Delivery { message_id: &id, receive_count: 1 }).await.is_err() {
            failed += 1;
        }
    }
    failed
}

async fn create(app: &puffle_app::App, ws: &str, scope: Value) -> String {
    let body = json!({"enrichmentId": "email_domain", "scope": scope, "input": {}});
    let created = app.create_run(ws, &body, None, "reaper-test").await.expect("create");
    created.response.run_id.expect("a run")
}

fn explicit(ids: &[String]) -> Value {
    json!({"type": "explicit_leads", "leadIds": ids})
}

/// What the reaper sent, as (run, "plan N" | "chunk N").
fn sent(msgs: &[(String, WorkMessage)]) -> BTreeSet<(String, String)> {
    msgs.iter()
        .map(|(_, m)| match m {
            WorkMessage::Plan { run_id, step, .. } => (run_id.clone(), format!("plan {step}")),
            WorkMessage::Chunk { run_id, chunk, .. } => (run_id.clone(), format!("chunk {chunk}")),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_reaper_branch_drives_its_run_forward_once() {
    // The API dies after every create commit, before it dispatches; this
    // process (the other creates, and the worker's part) fails every
    // completion right after a chunk counts instead.
    let mut iso = Isolated::start(&[("PUFFLE_FAULTS", "after_create_commit=1")]).await;
    iso.kill("worker");
    std::env::set_var("PUFFLE_FAULTS", "after_chunk_count=1");
    // A backstop dispatch waits out a grace (30 s by default) on the queue.
    std::env::set_var("PUFFLE_DISPATCH_GRACE_SECONDS", "0");
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 10_000).await;
    let ws = ctx.workspace_id.clone();
    let ids = ctx.people("reap", 1_200).await;
    let list = ctx.list(&ids).await;

    // Pending: the create request died after its commit, before it sent
    // anything; its idempotency key names the run.
    let body = json!({"enrichmentId": "email_domain", "scope": explicit(&ids[..5]), "input": {},
        "idempotencyKey": puffle_tests::unique()});
    assert_eq!(ctx.post("/api/enrichment", body.clone()).await.status, 503, "the injected death");
    let r = ctx.post("/api/enrichment", body).await;
    let pending = r.body["runId"].as_str().unwrap_or_else(|| panic!("the key names the run: {r:?}")).to_string();
    assert!(take_all(&app).await.is_empty(), "nothing was dispatched");
    // Lost plan step: 1,200 Leads plan in two steps; step 0 ran, step 1 and
    // step 0's chunks were lost.
    let replan = create(&app, &ws, json!({"type": "list", "listId": list})).await;
    assert_eq!(work_once(&app).await, 0, "plan step 0");
    let lost = take_all(&app).await;
    assert_eq!(lost.len(), 11, "step 1 and ten chunks: {:?}", sent(&lost));
    // Lost chunks: planned in one step, both chunk messages lost.
    let resend = create(&app, &ws, explicit(&ids[..150])).await;
    assert_eq!(work_once(&app).await, 0, "plan step 0");
    assert_eq!(take_all(&app).await.len(), 2, "two chunks of 100 and 50");
    // Nothing pending, never completed: the chunk counted, then completion failed.
    let complete = create(&app, &ws, explicit(&ids[..3])).await;
    assert_eq!(work_once(&app).await, 0, "plan step 0");
    assert_eq!(work_once(&app).await, 1, "the injected fault after the chunk's count");
    let run = status(&ctx, &complete).await;
    assert_eq!((run["status"].as_str(), counts(&run)), (Some("running"), [0, 0, 3, 0, 0]));

    // A pass that finds every run fresh does nothing at all.
    let report = app.reap(FRESH).await.unwrap();
    assert_eq!(report, ReapReport { live: 4, ..Default::default() });
    assert!(take_all(&app).await.is_empty(), "a pass over fresh runs sent something");

    // A pass over stale runs drives each one once, by its own branch.
    let report = app.reap(STALE).await.unwrap();
    assert_eq!(
        report,
        ReapReport { live: 4, dispatched: 1, replanned: 1, chunks_resent: 2, completed: 1, ..Default::default() }
    );
    let run = status(&ctx, &complete).await;
    assert_eq!(run["status"], "completed", "{run}");
    let resent = take_all(&app).await;
    let expected: BTreeSet<(String, String)> = [
        (pending.clone(), "plan 0".to_string()),
        (replan.clone(), "plan 1".to_string()),
        (resend.clone(), "chunk 0".to_string()),
        (resend.clone(), "chunk 1".to_string()),
    ]
    .into_iter()
    .collect();
    assert_eq!(sent(&resent), expected);
    assert_eq!(resent.len(), 4, "one message per stuck step or chunk");
    // Put them back; a real worker (no faults) takes it from here. The
    // replanned run's step 0 chunks are still lost: the worker's own reaper
    // (every second, stale after 5 s on this stack) re-sends them.
    let msgs: Vec<WorkMessage> = resent.into_iter().map(|(_, m)| m).collect();
    app.aws.queue.send_all(&msgs).await.unwrap();
    iso.start_component("worker").await;
    for run_id in [&pending, &replan, &resend] {
        let run = settle(&ctx, run_id).await;
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(run["scope"]["counts"]["failed"], 0, "{run}");
    }
    let run = status(&ctx, &replan).await;
    assert_eq!(counts(&run), [0, 0, 1_200, 0, 0], "every Lead of both plan steps enriched once");

    // Given up: a run stuck past max_reaps fails what is left and releases it.
    iso.kill("worker");
    let before = ctx.balance().await;
    let doomed = create(&app, &ws, explicit(&ids[..7])).await;
    assert_eq!(take_all(&app).await.len(), 1);
    let report = app.reap(GIVE_UP).await.unwrap();
    assert_eq!(report.given_up, 1, "{report:?}");
    assert_eq!((report.dispatched, report.replanned, report.chunks_resent, report.completed), (0, 0, 0, 0));
    let run = status(&ctx, &doomed).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(counts(&run), [0, 0, 0, 0, 7], "{run}");
    assert_counts_add_up(&run);
    assert_eq!(run["cost"]["charged"], 0);
    assert_eq!(run["cost"]["released"], 7, "{run}");
    assert_eq!(ctx.balance().await, before, "the reservation came back whole");
    assert!(take_all(&app).await.is_empty(), "giving up sends nothing");

    // Terminal runs leave the live index (the worker's own reaper may have
    // retired the first four already; the given-up run is this pass's).
    let r = app.reap(STALE).await.unwrap();
    assert!(r.retired >= 1, "{r:?}");
    assert_eq!((r.dispatched, r.replanned, r.chunks_resent, r.completed, r.given_up), (0, 0, 0, 0, 0), "{r:?}");
    assert_eq!(app.reap(STALE).await.unwrap(), ReapReport::default(), "nothing left in the live index");
}
