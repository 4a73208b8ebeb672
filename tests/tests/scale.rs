//! On demand (`cargo test -p puffle-tests --test scale -- --ignored`): a run
//! longer than Lambda's recursive-loop limit. Each plan step sends the next
//! (Lambda → SQS → Lambda on one trace); AWS stops such a chain after about
//! 16 hops unless the function sets `RecursiveLoop: Allow` (the worker does,
//! template.yaml). Locally there is no such detector: this shows the chain
//! itself carries a 20,000-Lead run (20 plan steps) to `completed`, with
//! every item counted.

use puffle_tests::{assert_counts_add_up, Ctx};
use serde_json::json;

const LEADS: usize = 20_000;

#[tokio::test]
#[ignore = "minutes of work; run on demand"]
async fn a_20000_lead_run_of_20_plan_steps_completes() {
    let ctx = Ctx::new(LEADS as u64).await;
    let ids = ctx.people(&format!("scale{}", puffle_tests::unique()), LEADS).await;
    let list = ctx.list(&ids).await;
    let started = std::time::Instant::now();
    let run_id = ctx
        .start(json!({"enrichmentId": "email_domain", "scope": {"type": "list", "listId": list}, "input": {}}))
        .await;
    let run = ctx.wait_terminal(&run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["scope"]["resolvedCount"], LEADS as u64);
    assert_eq!(run["scope"]["counts"]["completed"], LEADS as u64, "{run}");
    assert_counts_add_up(&run);
    let rec = puffle_tests::app().await.store().get_run(&ctx.workspace_id, &run_id).await.unwrap().unwrap();
    assert!(rec.progress.plan_done);
    assert!(rec.progress.plan_step >= 20, "{:?}: more than 16 plan steps, one after another", rec.progress);
    eprintln!(
        "scale: {LEADS} Leads, {} plan steps, completed in {:.1} s",
        rec.progress.plan_step,
        started.elapsed().as_secs_f64()
    );
}
