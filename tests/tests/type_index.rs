//! `type` filters on Leads pages and List pages read an index, not the whole
//! partition (issue 15): DynamoDB requests are counted by the SDK
//! interceptor in this process, so this suite runs alone in its own binary
//! and its tests take turns.

use puffle_domain::lead::LeadType;
use puffle_tests::{company, Ctx};
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

/// DynamoDB requests `f` sends (every operation).
async fn requests<T>(f: impl std::future::Future<Output = T>) -> (T, u64) {
    puffle_aws::metrics::reset();
    let out = f.await;
    let n = puffle_aws::metrics::snapshot().iter().filter(|(k, _)| k.starts_with("DynamoDB:")).map(|(_, v)| v).sum();
    (out, n)
}

/// 1,500 people, then one company: the rare type sits behind every person.
async fn many_people_one_company(ctx: &Ctx) -> (Vec<String>, String) {
    let mut ids = ctx.people("ti", 1500).await;
    let c = ctx.leads(vec![company("ti")]).await.remove(0);
    ids.push(c.clone());
    (ids, c)
}

#[tokio::test]
async fn a_rare_type_on_a_leads_page_is_a_few_requests() {
    let _turn = TURN.lock().await;
    let ctx = Ctx::new(0).await;
    let (_, c) = many_people_one_company(&ctx).await;
    let app = puffle_tests::app().await;
    app.cursor_key().await.unwrap();
    let (page, n) = requests(app.list_leads(&ctx.workspace_id, Some(LeadType::Company), 1, None)).await;
    let page = page.unwrap();
    assert_eq!(page.leads.iter().map(|l| l.id.clone()).collect::<Vec<_>>(), vec![c]);
    assert!(n <= 3, "a page of the one company took {n} DynamoDB requests");
    assert!(page.next_cursor.is_none());
    // The common type pages normally.
    let (page, n) = requests(app.list_leads(&ctx.workspace_id, Some(LeadType::Person), 100, None)).await;
    assert_eq!(page.unwrap().leads.len(), 100);
    assert!(n <= 102, "{n} requests for a page of 100");
}

#[tokio::test]
async fn a_rare_type_on_a_list_page_is_a_few_requests() {
    let _turn = TURN.lock().await;
    let ctx = Ctx::new(0).await;
    let (ids, c) = many_people_one_company(&ctx).await;
    let list = ctx.list(&ids).await;
    let app = puffle_tests::app().await;
    app.cursor_key().await.unwrap();
    let (page, n) = requests(app.list_members(&ctx.workspace_id, &list, Some(LeadType::Company), 1, None)).await;
    let page = page.unwrap();
    assert_eq!(page.leads.iter().map(|l| l.lead.id.clone()).collect::<Vec<_>>(), vec![c]);
    assert_eq!(page.total, 1);
    assert!(n <= 5, "a List page of the one company took {n} DynamoDB requests");
    assert!(!page.has_more);
}

/// A `filtered_list` create is bounded by the List's counters: it sends the
/// same DynamoDB requests as a plain List create, whatever the List holds,
/// and reads none of its members or Leads (the planner does, later).
#[tokio::test]
async fn a_filtered_create_reads_nothing_of_its_list() {
    let _turn = TURN.lock().await;
    let ctx = Ctx::new(10_000).await;
    let ids = ctx.people("fc", 1500).await;
    let list = ctx.list(&ids).await;
    let app = puffle_tests::app().await;
    let body = |scope: serde_json::Value| serde_json::json!({"enrichmentId": "job_seniority", "scope": scope, "input": {}, "mode": "preview"});
    let plain = body(serde_json::json!({"type": "list", "listId": list}));
    let filtered = body(serde_json::json!({"type": "filtered_list", "listId": list,
        "filter": {"all": [{"field": "title", "op": "contains", "value": "vp"}]}}));
    let ws = &ctx.workspace_id;
    let (r, baseline) = requests(app.create_run(ws, &plain, None, "fc")).await;
    assert_eq!(r.unwrap().response.lead_count, 1500);
    puffle_aws::metrics::reset();
    let r = app.create_run(ws, &filtered, None, "fc").await.unwrap();
    let ops = puffle_aws::metrics::snapshot();
    let n: u64 = ops.iter().filter(|(k, _)| k.starts_with("DynamoDB:")).map(|(_, v)| v).sum();
    assert_eq!(r.response.lead_count, 1500, "the bound: the List's person counter");
    assert_eq!(ops.get("DynamoDB:BatchGetItem"), None, "no Lead was read: {ops:?}");
    assert_eq!(n, baseline, "a filtered create sends what a List create does: {ops:?}");
}
