//! Chaos: the create path and the worker are interrupted at every step
//! boundary, by injected failures (`PUFFLE_FAULTS`) and by killing the
//! worker, over 200+ runs on a private stack. Afterwards every run is
//! terminal, its counts add up, it has exactly one terminal item per
//! resolved Lead, each item settled once (found Leads charged, the rest
//! released), and the ledger replays to the stored balance to the credit.

use std::collections::HashSet;
use std::time::Duration;

use puffle_app::worker::Delivery;
use puffle_domain::credits::{replay, Totals};
use puffle_domain::item::ItemStatus;
use puffle_tests::isolated::Isolated;
use puffle_tests::{person, Ctx};
use serde_json::json;

const SMALL_RUNS: usize = 200;
const BIG_RUNS: usize = 2;
const BIG: usize = 2_500;

#[tokio::test]
async fn every_run_ends_terminal_and_exact_whatever_dies_when() {
    let faults = "after_create_commit=0.2,after_plan_record=0.3,after_chunk_count=0.15,in_dead_letter=0.3";
    // One token sends all 200+ creates: no per-token limit (tests/admission.rs).
    let mut iso =
        Isolated::start(&[("PUFFLE_FAULTS", faults), ("PUFFLE_REAPER_MAX_REAPS", "20"), ("PUFFLE_RATE_LIMITS", "off")])
            .await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1_000_000).await;
    let ws = ctx.workspace_id.clone();
    let small = ctx.leads((0..60).map(|i| person(&format!("chaos{i}"))).collect()).await;
    let big = ctx.leads((0..BIG).map(|i| person(&format!("chaosbig{i}"))).collect()).await;
    let big_list = ctx.list(&big).await;

    // Creates in parallel; some answer 503 after their commit (the injected
    // death), which leaves a pending run only the stream or the reaper can move.
    let mut answers = vec![];
    let mut dead_lettered = 0;
    for wave in 0..(SMALL_RUNS / 20) {
        let calls = (0..20).map(|i| {
            let n = wave * 20 + i;
            let ids: Vec<&String> = small.iter().skip(n % 50).take(1 + n % 10).collect();
            let ctx = ctx.clone();
            async move {
                ctx.post(
                    "/api/enrichment",
                    json!({"enrichmentId":"email_domain","scope":{"type":"explicit_leads","leadIds":ids},"input":{}}),
                )
                .await
                .status
            }
        });
        answers.extend(futures::future::join_all(calls).await);
        if wave == 3 || wave == 7 {
            // Kill the worker mid-flight and bring it back; the first time,
            // the chunks it left on the queue go to the dead-letter queue, as
            // if every receive of theirs had failed.
            iso.kill("worker");
            if wave == 3 {
                dead_lettered = dead_letter_waiting_chunks(&app).await;
            }
            iso.start_component("worker").await;
        }
    }
    for _ in 0..BIG_RUNS {
        let r = ctx
            .post(
                "/api/enrichment",
                json!({"enrichmentId":"email_domain","scope":{"type":"list","listId":big_list},"input":{}}),
            )
            .await;
        answers.push(r.status);
    }
    let accepted = answers.iter().filter(|s| **s == 202).count();
    let interrupted = answers.iter().filter(|s| **s == 503).count();
    assert!(answers.iter().all(|s| *s == 202 || *s == 503), "only accepted or interrupted creates: {answers:?}");
    assert!(interrupted > 0, "the create boundary was never hit; the test proves nothing");
    assert!(dead_lettered > 0, "no chunk was waiting when the worker was killed; the DLQ path is untested");

    // Every run terminal (the reaper's period is seconds on this stack).
    let mut runs = vec![];
    for _ in 0..600 {
        runs = app.store().all_runs(&ws).await.unwrap();
        let open = runs.iter().filter(|r| !r.run.status.is_terminal() || r.run.scope.counts.pending > 0).count();
        if runs.len() >= SMALL_RUNS + BIG_RUNS && open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        runs.len() >= SMALL_RUNS + BIG_RUNS,
        "every commit made a run: {} of {}",
        runs.len(),
        SMALL_RUNS + BIG_RUNS
    );
    let stuck: Vec<String> = runs
        .iter()
        .filter(|r| !r.run.status.is_terminal() || r.run.scope.counts.pending > 0)
        .map(|r| format!("{} {:?} {:?}", r.run.id, r.run.status, r.run.scope.counts))
        .collect();
    assert!(stuck.is_empty(), "runs left unfinished: {stuck:?}\nworker log tail: {}", tail(&iso.log("worker")));

    let ledger = app.store().ledger(&ws).await.unwrap();
    for r in &runs {
        let c = r.run.scope.counts;
        assert_eq!(c.total(), r.run.scope.resolved_count, "counts add up for {}", r.run.id);
        let items = app.store().all_items(&r.run.id).await.unwrap();
        let leads: HashSet<&str> = items.iter().map(|i| i.lead_id.as_str()).collect();
        assert_eq!(leads.len(), items.len(), "one item per Lead in {}", r.run.id);
        assert_eq!(items.len() as u64, r.run.scope.resolved_count, "one item per resolved Lead in {}", r.run.id);
        assert!(
            items.iter().all(|i| matches!(i.status, ItemStatus::Completed | ItemStatus::Skipped | ItemStatus::Failed)),
            "every item of {} is terminal",
            r.run.id
        );
        let done = |s| items.iter().filter(|i| i.status == s).count() as u64;
        assert_eq!(
            (done(ItemStatus::Completed), done(ItemStatus::Skipped), done(ItemStatus::Failed)),
            (c.completed, c.skipped, c.failed),
            "counts match the items of {}",
            r.run.id
        );
        // Settled exactly once per item, whatever died when: the run's
        // charges are its items' charges (every found Lead), the rest of
        // the reservation released, the ledger lines the same.
        let cost = &r.run.cost;
        let charged: u64 = items.iter().map(|i| i.cost.charged).sum();
        let released: u64 = items.iter().map(|i| i.cost.released).sum();
        assert_eq!((cost.charged, cost.actual), (charged, charged), "charges of {}: {cost:?}", r.run.id);
        assert_eq!(charged, c.completed * r.credits_per_lead, "every found Lead of {} charged once", r.run.id);
        assert_eq!(cost.charged + cost.released, cost.reserved, "nothing held by {}: {cost:?}", r.run.id);
        assert_eq!(cost.released, released + cost.reserved - items.len() as u64 * r.credits_per_lead, "{}", r.run.id);
        let lines = Totals::of(ledger.iter().filter(|e| e.run_id.as_deref() == Some(r.run.id.as_str())));
        assert_eq!(
            (lines.reserves, lines.charges, lines.releases),
            (cost.reserved, cost.charged, cost.released),
            "ledger lines of {}",
            r.run.id
        );
    }
    let balance = app.store().balance(&ws).await.unwrap().unwrap();
    assert_eq!(replay(&ledger), balance as i128, "the ledger replays to the balance");
    let totals = Totals::of(&ledger);
    assert_eq!(totals.held(), 0, "every run terminal, nothing reserved: {totals:?}");
    assert_eq!(totals.expected_balance(), balance as i128, "balance = grants − charges: {totals:?}");
    assert_eq!(totals.grants, 1_000_000);
    // Every boundary was interrupted at least once (the logs of every
    // process, across the worker's restarts).
    let logs = format!("{}{}", iso.log("api"), iso.log("worker"));
    let fired = |b: &str| {
        logs.lines().filter(|l| l.contains("injected fault") && l.contains(&format!("\"boundary\":\"{b}\""))).count()
    };
    let hits: Vec<(&str, usize)> = ["after_create_commit", "after_plan_record", "after_chunk_count", "in_dead_letter"]
        .map(|b| (b, fired(b)))
        .into();
    assert!(hits.iter().all(|(_, n)| *n > 0), "a boundary never fired: {hits:?}");
    println!("chaos: faults injected {hits:?}; {dead_lettered} chunk messages dead-lettered");
    println!(
        "chaos: {} runs ({accepted} accepted, {interrupted} interrupted after commit), {} Leads in all",
        runs.len(),
        runs.iter().map(|r| r.run.scope.resolved_count).sum::<u64>()
    );
}

/// With the worker stopped: plans here whatever plan step waits on the
/// work queue, and moves every chunk message (those plans' and any other
/// waiting) to the dead-letter queue, as if each of its receives had
/// failed. Returns how many chunks moved.
async fn dead_letter_waiting_chunks(app: &puffle_app::App) -> usize {
    let dlq = app.aws.dead_letter_queue();
    let mut moved = 0;
    for _ in 0..200 {
        let got = app.aws.queue.receive(10, 1).await.unwrap();
        if got.is_empty() {
            return moved;
        }
        for m in got {
            if m.body.contains("\"type\":\"chunk\"") {
                dlq.send_raw(&m.body).await.unwrap();
                moved += 1;
            } else {
                let delivery = Delivery { message_id: &m.message_id, receive_count: m.receive_count };
                if app.handle_work(&m.body, delivery).await.is_err() {
                    app.aws.queue.send_raw(&m.body).await.unwrap();
                }
            }
            app.aws.queue.delete(&m.receipt_handle).await.unwrap();
        }
    }
    panic!("the work queue did not drain");
}

fn tail(s: &str) -> String {
    s.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}
