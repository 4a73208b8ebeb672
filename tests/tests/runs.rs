//! Enrichment runs over the shared local stack: the create rules in the
//! contract's order, each built-in's results, the three scopes, membership
//! output, write policies, preview, idempotency and credits under
//! concurrency, items paging and filters, and cancel.
//!
//! Every test uses fresh workspaces and unique identifiers, so the tests run
//! in parallel with each other and with other suites.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use puffle_domain::credits::LedgerKind;
use puffle_tests::{
    assert_billed, assert_counts_add_up, assert_error, company, counts, person, settle, status, unique, Ctx, Resp,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

async fn create(ctx: &Ctx, body: Value) -> Resp {
    ctx.post("/api/enrichment", body).await
}

fn explicit(ids: &[String]) -> Value {
    json!({"type": "explicit_leads", "leadIds": ids})
}

fn list_scope(list_id: &str) -> Value {
    json!({"type": "list", "listId": list_id})
}

fn filtered(list_id: &str, filter: Value) -> Value {
    json!({"type": "filtered_list", "listId": list_id, "filter": filter})
}

fn req(enrichment: &str, scope: Value) -> Value {
    json!({"enrichmentId": enrichment, "scope": scope, "input": {}})
}

/// A person with a unique email plus the given fields (replacing person()'s).
fn person_with(tag: &str, fields: Value) -> Value {
    let mut p = person(tag);
    for (k, v) in fields.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

/// A person whose contacts are a unique email plus `extra`.
fn person_contacts(tag: &str, extra: &[(&str, &str)]) -> Value {
    let mut contacts = vec![json!({"type": "email", "value": format!("{tag}-{}@acme-{}.com", unique(), unique())})];
    contacts.extend(extra.iter().map(|(t, v)| json!({"type": t, "value": v})));
    json!({"type": "person", "name": {"full": format!("Person {tag}")}, "contacts": contacts})
}

/// Creates a run and expects a new one (202); returns its id.
async fn start(ctx: &Ctx, body: Value) -> String {
    let r = create(ctx, body).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["reusedExistingRun"], false, "{r:?}");
    let id = r.body["runId"].as_str().expect("runId").to_string();
    assert_eq!(r.body["enrichmentRunId"], r.body["runId"], "{r:?}");
    id
}

async fn run_to_end(ctx: &Ctx, body: Value) -> (String, Value) {
    let id = start(ctx, body).await;
    let run = settle(ctx, &id).await;
    (id, run)
}

async fn items_by_lead(ctx: &Ctx, run_id: &str) -> HashMap<String, Value> {
    let items = ctx.all_items(run_id, "").await;
    let mut m = HashMap::new();
    for i in items {
        let lead = i["leadId"].as_str().unwrap().to_string();
        assert!(m.insert(lead.clone(), i).is_none(), "lead {lead} has two items");
    }
    m
}

async fn lead(ctx: &Ctx, id: &str) -> Value {
    let r = ctx.get(&format!("/api/leads?id={id}")).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["lead"].clone()
}

async fn ledger(ctx: &Ctx) -> Vec<puffle_domain::credits::LedgerEntry> {
    puffle_tests::app().await.ledger(&ctx.workspace_id).await.unwrap()
}

async fn run_count(ctx: &Ctx) -> usize {
    puffle_tests::app().await.store().all_runs(&ctx.workspace_id).await.unwrap().len()
}

/// Runs `slug` over explicit Leads made from `leads`; returns (ids, run, items by lead).
async fn builtin(
    ctx: &Ctx,
    slug: &str,
    leads: Vec<Value>,
    input: Value,
) -> (Vec<String>, Value, HashMap<String, Value>) {
    let ids = ctx.leads(leads).await;
    let (run_id, run) = run_to_end(ctx, json!({"enrichmentId": slug, "scope": explicit(&ids), "input": input})).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["enrichment"], json!({"id": format!("enr_{slug}"), "slug": slug, "version": 1}));
    let items = items_by_lead(ctx, &run_id).await;
    assert_eq!(items.len(), ids.len());
    for (lead_id, item) in &items {
        assert_eq!(item["runId"], run_id.as_str());
        assert_eq!(item["id"], format!("{run_id}.{lead_id}"));
        assert!(item["timing"]["completedAt"].is_string(), "{item}");
    }
    (ids, run, items)
}

fn completed_result(item: &Value) -> &Value {
    assert_eq!(item["status"], "completed", "{item}");
    &item["result"]
}

fn assert_skipped(item: &Value, reason: &str) {
    assert_eq!(item["status"], "skipped", "{item}");
    assert_eq!(item["skippedReason"], reason, "{item}");
    assert!(item["result"].is_null(), "{item}");
}

fn assert_failed(item: &Value, code: &str) {
    assert_eq!(item["status"], "failed", "{item}");
    assert_eq!(item["error"]["details"]["code"], code, "{item}");
    assert!(item["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{item}");
}

// ------------------------------------------------------- rule 1: shape

#[tokio::test(flavor = "multi_thread")]
async fn create_shape_errors_are_400_invalid_request_and_charge_nothing() {
    let ctx = Ctx::new(100).await;
    let ids = ctx.people("shape", 2).await;
    let list = ctx.list(&ids).await;
    let good = req("email_domain", explicit(&ids));
    // Sanity: the base body is accepted in preview (no run, no charge).
    let mut p = good.clone();
    p["mode"] = json!("preview");
    assert_eq!(create(&ctx, p).await.status, 200);

    let mut cases: Vec<(&str, Value)> = vec![];
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("enrichmentId");
    cases.push(("missing enrichmentId", missing));
    let mut b = good.clone();
    b["enrichmentId"] = json!("");
    cases.push(("empty enrichmentId", b));
    let mut b = good.clone();
    b["enrichmentId"] = json!("   ");
    cases.push(("blank enrichmentId", b));
    cases.push((
        "scope with subject",
        req("email_domain", json!({"type": "list", "listId": list, "subject": "person"})),
    ));
    cases.push((
        "explicit scope with subject",
        req("email_domain", json!({"type": "explicit_leads", "leadIds": ids, "subject": "person"})),
    ));
    let mut b = good.clone();
    b["mode"] = json!("dry_run");
    cases.push(("bad mode", b));
    let mut b = good.clone();
    b["bogus"] = json!(1);
    cases.push(("unknown top-level field", b));
    let many: Vec<String> = (0..1001).map(|i| format!("lead_{i:026}")).collect();
    cases.push(("1001 leadIds", req("email_domain", explicit(&many))));
    cases.push(("filter missing", req("email_domain", json!({"type": "filtered_list", "listId": list}))));
    cases.push(("filter empty", req("email_domain", filtered(&list, json!({"all": []})))));
    cases.push((
        "filter unknown field",
        req("email_domain", filtered(&list, json!({"all": [{"field": "salary", "op": "eq", "value": 1}]}))),
    ));
    cases.push((
        "filter unknown op",
        req("email_domain", filtered(&list, json!({"all": [{"field": "title", "op": "like", "value": "x"}]}))),
    ));
    cases.push((
        "filter eq without value",
        req("email_domain", filtered(&list, json!({"all": [{"field": "title", "op": "eq"}]}))),
    ));
    cases.push((
        "filter any",
        req("email_domain", filtered(&list, json!({"any": [{"field": "title", "op": "exists"}]}))),
    ));
    cases.push(("scope type unknown", req("email_domain", json!({"type": "everything"}))));
    cases.push(("scope missing listId", req("email_domain", json!({"type": "list"}))));
    cases.push(("leadIds not an array", req("email_domain", json!({"type": "explicit_leads", "leadIds": ids[0]}))));
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("scope");
    cases.push(("missing scope", missing));
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("input");
    cases.push(("missing input", missing));
    let mut b = good.clone();
    b["input"] = json!([]);
    cases.push(("input not an object", b));
    let mut b = good.clone();
    b["writePolicy"] = json!("merge");
    cases.push(("bad writePolicy", b));
    let mut b = good.clone();
    b["output"] = json!({"target": "account"});
    cases.push(("bad output target", b));
    let mut b = good.clone();
    b["output"] = json!({"attributeKey": "a b"});
    cases.push(("bad attributeKey", b));
    // Shape errors come before the enrichment lookup (rule 1 before rule 2).
    cases.push((
        "unknown enrichment and bad scope",
        req("nope_nope", json!({"type": "list", "listId": list, "subject": "x"})),
    ));

    for (name, body) in cases {
        let r = create(&ctx, body).await;
        assert_eq!((r.status, r.body["code"].as_str()), (400, Some("INVALID_REQUEST")), "{name}: {r:?}");
    }
    // Details name the offending field where the rule is about one field.
    let r = create(&ctx, req("email_domain", json!({"type": "list", "listId": list, "subject": "person"}))).await;
    assert_eq!(r.body["details"]["field"], "scope.subject", "{r:?}");
    let r = create(&ctx, req("email_domain", explicit(&many))).await;
    assert_eq!(r.body["details"]["field"], "scope.leadIds", "{r:?}");
    assert_eq!(r.body["details"]["max"], 1000, "{r:?}");
    let r = create(
        &ctx,
        req("email_domain", filtered(&list, json!({"all": [{"field": "salary", "op": "eq", "value": 1}]}))),
    )
    .await;
    assert_eq!(r.body["details"]["field"], "scope.filter.all[0]", "{r:?}");

    // Exactly 1000 ids is not a shape error (they just do not exist).
    let r = create(&ctx, req("email_domain", explicit(&many[..1000]))).await;
    assert_error(&r, 400, "LEADS_NOT_FOUND");

    assert_eq!(ctx.balance().await, 100);
    assert_eq!(run_count(&ctx).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_non_json_or_non_object_body_is_invalid_request() {
    let ctx = Ctx::new(10).await;
    for body in [json!("text"), json!([1, 2]), json!(null)] {
        let r = create(&ctx, body).await;
        assert_error(&r, 400, "INVALID_REQUEST");
    }
    let r = ctx
        .http
        .post(format!("{}/api/enrichment", ctx.base))
        .bearer_auth(&ctx.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], "INVALID_REQUEST");
    let r = ctx
        .send("POST", "/api/enrichment", Some(req("email_domain", json!({"type": "list", "listId": "list_x"}))), None)
        .await;
    assert_error(&r, 401, "UNAUTHENTICATED");
}

// ------------------------------------------------------- rule 2

#[tokio::test(flavor = "multi_thread")]
async fn create_unknown_enrichment_is_404_before_input_and_planner_checks() {
    let ctx = Ctx::new(10).await;
    let ids = ctx.people("unk", 1).await;
    for e in ["does_not_exist", "enr_nope", "EMAIL_DOMAIN"] {
        let r = create(&ctx, req(e, explicit(&ids))).await;
        assert_error(&r, 404, "ENRICHMENT_NOT_FOUND");
    }
    // Unknown enrichment wins over bad input and an empty scope.
    let r = create(&ctx, json!({"enrichmentId": "nope", "scope": explicit(&[]), "input": {"x": 1}})).await;
    assert_error(&r, 404, "ENRICHMENT_NOT_FOUND");
    // By id works as well as by slug.
    let r = create(
        &ctx,
        json!({"enrichmentId": "enr_email_domain", "scope": explicit(&ids), "input": {}, "mode": "preview"}),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(ctx.balance().await, 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_input_failing_the_schema_is_400_invalid_input() {
    let ctx = Ctx::new(10).await;
    let ids = ctx.people("inp", 1).await;
    for input in [
        json!({"defaultCountry": "usa"}),
        json!({"x": 1}),
        json!({"defaultCountry": 5}),
        json!({"defaultCountry": "ZZ"}),
    ] {
        let r = create(&ctx, json!({"enrichmentId": "phone_normalize", "scope": explicit(&ids), "input": input})).await;
        assert_error(&r, 400, "INVALID_INPUT");
        let errors = r.body["details"]["errors"].as_array().unwrap_or_else(|| panic!("details.errors: {r:?}"));
        assert!(!errors.is_empty(), "{r:?}");
    }
    let r = create(
        &ctx,
        json!({"enrichmentId": "phone_normalize", "scope": explicit(&ids), "input": {"defaultCountry": "usa"}}),
    )
    .await;
    assert!(r.body["details"]["errors"][0].as_str().unwrap().starts_with("/defaultCountry"), "{r:?}");
    // Input errors come before planner errors (rule 2 before rule 3).
    let r = create(&ctx, json!({"enrichmentId": "phone_normalize", "scope": explicit(&[]), "input": {"x": 1}})).await;
    assert_error(&r, 400, "INVALID_INPUT");
    // Every enrichment rejects unknown input properties.
    let r = create(&ctx, json!({"enrichmentId": "email_domain", "scope": explicit(&ids), "input": {"x": 1}})).await;
    assert_error(&r, 400, "INVALID_INPUT");
    // A valid country passes.
    let r = create(&ctx, json!({"enrichmentId": "phone_normalize", "scope": explicit(&ids), "input": {"defaultCountry": "GB"}, "mode": "preview"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(ctx.balance().await, 10);
    assert_eq!(run_count(&ctx).await, 0);
}

// ------------------------------------------------------- rule 3: planner

#[tokio::test(flavor = "multi_thread")]
async fn create_empty_scopes_are_empty_lead_scope() {
    let ctx = Ctx::new(10).await;
    let ids = ctx.people("empty", 2).await;
    let r = create(&ctx, req("email_domain", explicit(&[]))).await;
    assert_error(&r, 400, "EMPTY_LEAD_SCOPE");
    let empty_list = ctx.list(&[]).await;
    let r = create(&ctx, req("email_domain", list_scope(&empty_list))).await;
    assert_error(&r, 400, "EMPTY_LEAD_SCOPE");
    let list = ctx.list(&ids).await;
    // A filter on type that nothing can match (answered from counters).
    let r = create(&ctx, req("email_domain", filtered(&list, json!({"all": [{"field": "type", "op": "eq", "value": "person"}, {"field": "type", "op": "eq", "value": "company"}]})))).await;
    assert_error(&r, 400, "EMPTY_LEAD_SCOPE");
    // Preview of an empty scope is rejected the same way.
    let r =
        create(&ctx, json!({"enrichmentId": "email_domain", "scope": explicit(&[]), "input": {}, "mode": "preview"}))
            .await;
    assert_error(&r, 400, "EMPTY_LEAD_SCOPE");
    assert_eq!(ctx.balance().await, 10);
    assert_eq!(run_count(&ctx).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_lead_of_the_wrong_type_is_subject_mismatch() {
    let ctx = Ctx::new(10).await;
    let people = ctx.people("subj", 2).await;
    let co = ctx.leads(vec![company("subj")]).await;
    // A company in a person enrichment.
    let r = create(&ctx, req("email_domain", explicit(&co))).await;
    assert_error(&r, 400, "SUBJECT_MISMATCH");
    assert_eq!(r.body["details"]["leadIds"], json!(co), "{r:?}");
    // A mixed explicit list: only the company is named.
    let mixed: Vec<String> = people.iter().chain(co.iter()).cloned().collect();
    let r = create(&ctx, req("email_domain", explicit(&mixed))).await;
    assert_error(&r, 400, "SUBJECT_MISMATCH");
    assert_eq!(r.body["details"]["leadIds"], json!(co), "{r:?}");
    // People in a company enrichment.
    let r = create(&ctx, req("company_domain", explicit(&people))).await;
    assert_error(&r, 400, "SUBJECT_MISMATCH");
    // A mixed List.
    let list = ctx.list(&mixed).await;
    let r = create(&ctx, req("email_domain", list_scope(&list))).await;
    assert_error(&r, 400, "SUBJECT_MISMATCH");
    // A filter that still matches the company.
    let r = create(
        &ctx,
        req("email_domain", filtered(&list, json!({"all": [{"field": "company.name", "op": "neq", "value": "zzz"}]}))),
    )
    .await;
    assert_error(&r, 400, "SUBJECT_MISMATCH");
    assert_eq!(ctx.balance().await, 10);
    assert_eq!(run_count(&ctx).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_membership_output_without_a_list_is_output_target_unsupported() {
    let ctx = Ctx::new(10).await;
    let ids = ctx.people("mem", 2).await;
    let r = create(&ctx, json!({"enrichmentId": "email_domain", "scope": explicit(&ids), "input": {}, "output": {"target": "membership"}})).await;
    assert_error(&r, 400, "OUTPUT_TARGET_UNSUPPORTED");
    // A List given, but a Lead that is not in it.
    let list = ctx.list(&ids[..1]).await;
    let r = create(&ctx, json!({"enrichmentId": "email_domain", "scope": {"type": "explicit_leads", "leadIds": ids, "listId": list}, "input": {}, "output": {"target": "membership"}})).await;
    assert_error(&r, 400, "OUTPUT_TARGET_UNSUPPORTED");
    assert_eq!(ctx.balance().await, 10);
    assert_eq!(run_count(&ctx).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_unknown_or_foreign_list_is_list_not_found() {
    let ctx = Ctx::new(10).await;
    let other = Ctx::new(10).await;
    let ids = ctx.people("lnf", 1).await;
    let other_ids = other.people("lnf-o", 1).await;
    let foreign = other.list(&other_ids).await;
    let unknown = format!("list_{}", unique());
    for list in [unknown.as_str(), foreign.as_str(), "not-a-list-id"] {
        for scope in [
            list_scope(list),
            filtered(list, json!({"all": [{"field": "title", "op": "exists"}]})),
            json!({"type": "explicit_leads", "leadIds": ids, "listId": list}),
        ] {
            let r = create(&ctx, req("email_domain", scope)).await;
            assert_error(&r, 400, "LIST_NOT_FOUND");
            assert_eq!(r.body["details"]["listId"], list, "{r:?}");
        }
    }
    assert_eq!(ctx.balance().await, 10);
    assert_eq!(run_count(&ctx).await, 0);
    assert_eq!(other.balance().await, 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_unknown_lead_ids_are_leads_not_found_with_the_ids() {
    let ctx = Ctx::new(10).await;
    let other = Ctx::new(10).await;
    let ids = ctx.people("lnf", 2).await;
    let foreign = other.people("lnf-f", 1).await;
    let unknown = format!("lead_{}", unique());
    let scope: Vec<String> =
        vec![ids[0].clone(), unknown.clone(), foreign[0].clone(), "garbage#id".into(), ids[1].clone()];
    let r = create(&ctx, req("email_domain", explicit(&scope))).await;
    assert_error(&r, 400, "LEADS_NOT_FOUND");
    let mut reported: Vec<String> =
        r.body["details"]["leadIds"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    reported.sort();
    let mut expected = vec![unknown, foreign[0].clone(), "garbage#id".to_string()];
    expected.sort();
    assert_eq!(reported, expected);
    assert_eq!(ctx.balance().await, 10);
    assert_eq!(run_count(&ctx).await, 0);
}

// ------------------------------------------------------- rule 5: credits

#[tokio::test(flavor = "multi_thread")]
async fn create_without_enough_credits_is_402_and_creates_nothing() {
    let ctx = Ctx::new(2).await;
    let ids = ctx.people("poor", 3).await;
    let before = ledger(&ctx).await;
    let key = format!("k-{}", unique());
    let body = json!({"enrichmentId": "email_domain", "scope": explicit(&ids), "input": {}, "idempotencyKey": key});
    let r = create(&ctx, body.clone()).await;
    assert_error(&r, 402, "INSUFFICIENT_CREDITS");
    assert_eq!(r.body["required"], 3, "{r:?}");
    assert_eq!(r.body["balance"], 2, "{r:?}");
    assert_eq!(ctx.balance().await, 2);
    assert_eq!(run_count(&ctx).await, 0);
    assert_eq!(ledger(&ctx).await, before);
    // The key was not recorded: once affordable, the same request makes a new run.
    puffle_tests::app().await.grant_credits(&ctx.workspace_id, 1, "test top-up").await.unwrap();
    let r = create(&ctx, body.clone()).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(ctx.balance().await, 0);
    assert_eq!(run_count(&ctx).await, 1);
    let run_id = r.body["runId"].as_str().unwrap().to_string();
    // The repeat of an accepted request is answered with its run, not a 402 (rule 7).
    let r = create(&ctx, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["runId"], run_id.as_str());
    assert_eq!(r.body["reusedExistingRun"], true);
    // Planner rejections come before the credit check (rule 3 before rule 5).
    let r = create(&ctx, req("email_domain", explicit(&[]))).await;
    assert_error(&r, 400, "EMPTY_LEAD_SCOPE");
    let r = create(&ctx, req("email_domain", explicit(&[format!("lead_{}", unique())]))).await;
    assert_error(&r, 400, "LEADS_NOT_FOUND");
    // A preview is not refused for lack of credits (rule 4 before rule 5).
    let r =
        create(&ctx, json!({"enrichmentId": "email_domain", "scope": explicit(&ids), "input": {}, "mode": "preview"}))
            .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["preview"], json!({"creditsRequired": 3, "balance": 0, "affordable": false}));
    assert_eq!(run_count(&ctx).await, 1);
}

// ------------------------------------------------------- rule 7: idempotency

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_key_reuse_returns_the_run_and_a_different_body_is_422() {
    let ctx = Ctx::new(20).await;
    let ids = ctx.people("idem", 3).await;
    let key = format!("key-{}", unique());
    let body = json!({"enrichmentId": "email_domain", "scope": explicit(&ids), "input": {}, "idempotencyKey": key});
    let first = create(&ctx, body.clone()).await;
    assert_eq!(first.status, 202, "{first:?}");
    let run_id = first.body["runId"].as_str().unwrap().to_string();
    assert!(first.body["triggerRunId"].is_string(), "{first:?}");
    assert_eq!(ctx.balance().await, 17);

    // Same body (keys reordered, defaults spelled out) → the same run, no charge.
    let same = json!({"input": {}, "mode": "persisted", "writePolicy": "overwrite", "idempotencyKey": key, "scope": {"leadIds": ids, "type": "explicit_leads"}, "enrichmentId": "email_domain"});
    let again = create(&ctx, same).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["reusedExistingRun"], true);
    assert_eq!(again.body["runId"], run_id.as_str());
    assert_eq!(again.body["enrichmentRunId"], run_id.as_str());
    assert_eq!(again.body["leadCount"], 3);
    assert_eq!(again.body["triggerRunId"], first.body["triggerRunId"]);
    // The key in the Idempotency-Key header is the same key.
    let mut no_body_key = body.clone();
    no_body_key.as_object_mut().unwrap().remove("idempotencyKey");
    let r = ctx
        .http
        .post(format!("{}/api/enrichment", ctx.base))
        .bearer_auth(&ctx.token)
        .header("Idempotency-Key", &key)
        .json(&no_body_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["runId"], run_id.as_str());
    assert_eq!(b["reusedExistingRun"], true);
    assert_eq!(ctx.balance().await, 17);

    // Same key, different body → 422, nothing charged.
    let mut different = body.clone();
    different["scope"] = explicit(&ids[..2]);
    let r = create(&ctx, different).await;
    assert_error(&r, 422, "IDEMPOTENCY_KEY_REUSED");
    let mut different = body.clone();
    different["writePolicy"] = json!("skip_existing");
    assert_error(&create(&ctx, different).await, 422, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(ctx.balance().await, 17);
    assert_eq!(run_count(&ctx).await, 1);

    // The repeat answers with the run even after it completed.
    settle(&ctx, &run_id).await;
    let r = create(&ctx, body.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["runId"], run_id.as_str());
    assert_eq!(r.body["status"], "completed");

    // Keys are per workspace.
    let other = Ctx::new(5).await;
    let other_ids = other.people("idem-o", 1).await;
    let r = create(
        &other,
        json!({"enrichmentId": "email_domain", "scope": explicit(&other_ids), "input": {}, "idempotencyKey": key}),
    )
    .await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_ne!(r.body["runId"], run_id.as_str());

    let reserves: Vec<_> = ledger(&ctx).await.into_iter().filter(|e| e.kind == LedgerKind::Reserve).collect();
    assert_eq!(reserves.len(), 1);
    assert_eq!(reserves[0].amount, 3);
    assert_eq!(reserves[0].run_id.as_deref(), Some(run_id.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_creates_with_one_key_make_one_run_and_one_charge() {
    let ctx = Ctx::new(100).await;
    let ids = ctx.people("conc", 3).await;
    let key = format!("conc-{}", unique());
    let body = json!({"enrichmentId": "email_domain", "scope": explicit(&ids), "input": {}, "idempotencyKey": key});
    let futs = (0..20).map(|_| {
        let ctx = ctx.clone();
        let body = body.clone();
        tokio::spawn(async move { create(&ctx, body).await })
    });
    let results: Vec<Resp> = futures::future::join_all(futs).await.into_iter().map(|r| r.unwrap()).collect();
    let created: Vec<&Resp> = results.iter().filter(|r| r.status == 202).collect();
    let reused: Vec<&Resp> = results.iter().filter(|r| r.status == 200).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    assert_eq!(reused.len(), 19, "{results:?}");
    let run_id = created[0].body["runId"].as_str().unwrap();
    for r in &reused {
        assert_eq!(r.body["reusedExistingRun"], true, "{r:?}");
        assert_eq!(r.body["runId"], run_id, "{r:?}");
    }
    assert_eq!(ctx.balance().await, 97);
    let reserves: Vec<_> = ledger(&ctx).await.into_iter().filter(|e| e.kind == LedgerKind::Reserve).collect();
    assert_eq!(reserves.len(), 1, "{reserves:?}");
    assert_eq!(reserves[0].amount, 3);
    assert_eq!(reserves[0].run_id.as_deref(), Some(run_id));
    assert_eq!(run_count(&ctx).await, 1);
    let run = settle(&ctx, run_id).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(counts(&run)[2], 3);
}

/// The balance covers the run once: the twins that lose the race for the
/// credits must still answer with the winner's run (or 422 for another
/// body), never 402 — the key decides before the balance (rule 7).
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_with_one_key_and_credits_for_one_run_never_answer_402() {
    let ctx = Ctx::new(3).await;
    let ids = ctx.people("conc402", 3).await;
    let key = format!("c402-{}", unique());
    let futs = (0..20).map(|i| {
        let ctx = ctx.clone();
        let mut body =
            json!({"enrichmentId": "email_domain", "scope": explicit(&ids), "input": {}, "idempotencyKey": key});
        if i % 5 == 4 {
            body["writePolicy"] = json!("skip_existing");
        }
        tokio::spawn(async move { (i % 5 == 4, create(&ctx, body).await) })
    });
    let results: Vec<(bool, Resp)> = futures::future::join_all(futs).await.into_iter().map(|r| r.unwrap()).collect();
    let statuses: Vec<(bool, u16)> = results.iter().map(|(other, r)| (*other, r.status)).collect();
    assert!(results.iter().all(|(_, r)| r.status != 402), "{statuses:?}");
    let created: Vec<&(bool, Resp)> = results.iter().filter(|(_, r)| r.status == 202).collect();
    assert_eq!(created.len(), 1, "{statuses:?}");
    let winner_other = created[0].0;
    let run_id = created[0].1.body["runId"].as_str().unwrap();
    for (other, r) in results.iter().filter(|(_, r)| r.status != 202) {
        if *other == winner_other {
            assert_eq!((r.status, r.body["runId"].as_str()), (200, Some(run_id)), "{r:?}");
        } else {
            assert_eq!((r.status, r.body["code"].as_str()), (422, Some("IDEMPOTENCY_KEY_REUSED")), "{r:?}");
        }
    }
    assert_eq!(ctx.balance().await, 0);
    assert_eq!(run_count(&ctx).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_with_one_key_and_different_bodies_make_one_run_and_422s() {
    let ctx = Ctx::new(100).await;
    let ids = ctx.people("conc422", 2).await;
    let key = format!("c422-{}", unique());
    let futs = (0..10).map(|i| {
        let ctx = ctx.clone();
        let body = json!({"enrichmentId": "email_domain", "scope": explicit(&ids), "input": {}, "idempotencyKey": key, "output": {"attributeKey": format!("k{i}")}});
        tokio::spawn(async move { create(&ctx, body).await })
    });
    let results: Vec<Resp> = futures::future::join_all(futs).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.status == 202).count(), 1, "{results:?}");
    let rejected: Vec<&Resp> = results.iter().filter(|r| r.status == 422).collect();
    assert_eq!(rejected.len(), 9, "{results:?}");
    assert!(rejected.iter().all(|r| r.body["code"] == "IDEMPOTENCY_KEY_REUSED"));
    assert_eq!(ctx.balance().await, 98);
    assert_eq!(run_count(&ctx).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_concurrent_creates_with_credits_for_three_runs_give_three_202_and_seven_402() {
    let ctx = Ctx::new(6).await;
    let ids = ctx.people("race", 2).await;
    let futs = (0..10).map(|i| {
        let ctx = ctx.clone();
        // Different bodies, no key: ten distinct requests of 2 credits each.
        let body = json!({"enrichmentId": "email_domain", "scope": explicit(&ids), "input": {}, "output": {"attributeKey": format!("race_{i}")}});
        tokio::spawn(async move { create(&ctx, body).await })
    });
    let results: Vec<Resp> = futures::future::join_all(futs).await.into_iter().map(|r| r.unwrap()).collect();
    let ok = results.iter().filter(|r| r.status == 202).count();
    let poor: Vec<&Resp> = results.iter().filter(|r| r.status == 402).collect();
    assert_eq!(ok, 3, "{results:?}");
    assert_eq!(poor.len(), 7, "{results:?}");
    for r in poor {
        assert_eq!(r.body["code"], "INSUFFICIENT_CREDITS");
        assert_eq!(r.body["required"], 2);
        assert!(r.body["balance"].as_u64().unwrap() < 2, "{r:?}");
    }
    assert_eq!(ctx.balance().await, 0);
    assert_eq!(run_count(&ctx).await, 3);
    let reserves = ledger(&ctx).await.into_iter().filter(|e| e.kind == LedgerKind::Reserve).count();
    assert_eq!(reserves, 3);
}

// ------------------------------------------------------- rule 4: preview

#[tokio::test(flavor = "multi_thread")]
async fn preview_plans_only_and_writes_nothing() {
    let ctx = Ctx::new(5).await;
    let ids = ctx.people("prev", 3).await;
    let list = ctx.list(&ids).await;
    let before = ledger(&ctx).await;
    let r = create(&ctx, json!({"enrichmentId": "email_domain", "scope": list_scope(&list), "input": {}, "mode": "preview", "idempotencyKey": format!("p-{}", unique())})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "preview");
    assert!(r.body["runId"].is_null(), "{r:?}");
    assert!(r.body["enrichmentRunId"].is_null(), "{r:?}");
    assert!(r.body["triggerRunId"].is_null(), "{r:?}");
    assert_eq!(r.body["reusedExistingRun"], false);
    assert_eq!(r.body["leadCount"], 3);
    assert_eq!(r.body["preview"], json!({"creditsRequired": 3, "balance": 5, "affordable": true}));

    // A preview the workspace cannot afford is still a 200 that says so.
    let more = ctx.people("prev-more", 4).await;
    let all: Vec<String> = ids.iter().chain(more.iter()).cloned().collect();
    let r =
        create(&ctx, json!({"enrichmentId": "email_domain", "scope": explicit(&all), "input": {}, "mode": "preview"}))
            .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["preview"], json!({"creditsRequired": 7, "balance": 5, "affordable": false}));

    assert_eq!(ctx.balance().await, 5);
    assert_eq!(ledger(&ctx).await, before);
    assert_eq!(run_count(&ctx).await, 0);
    for id in &ids {
        assert!(lead(&ctx, id).await["attributes"].get("email_domain").is_none());
    }
    // A preview records no idempotency key: the persisted request with that key is new.
    let key = format!("pk-{}", unique());
    let r = create(&ctx, json!({"enrichmentId": "email_domain", "scope": explicit(&ids), "input": {}, "mode": "preview", "idempotencyKey": key})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = create(
        &ctx,
        json!({"enrichmentId": "email_domain", "scope": explicit(&ids), "input": {}, "idempotencyKey": key}),
    )
    .await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(ctx.balance().await, 2);
}

// ------------------------------------------------------- built-ins

#[tokio::test(flavor = "multi_thread")]
async fn email_domain_writes_domain_and_free_mail_flag() {
    let ctx = Ctx::new(10).await;
    let u = unique();
    let (ids, run, items) = builtin(
        &ctx,
        "email_domain",
        vec![
            person_with("ed", json!({"contacts": [{"type": "email", "value": format!("ada-{u}@Acme-{u}.com")}]})),
            person_with("ed", json!({"contacts": [{"type": "email", "value": format!("bob-{u}@gmail.com")}]})),
            person_with(
                "ed",
                json!({"contacts": [], "socials": [{"url": format!("https://www.linkedin.com/in/nomail-{u}")}]}),
            ),
        ],
        json!({}),
    )
    .await;
    let acme = json!({"domain": format!("acme-{u}.com"), "freeMail": false});
    let gmail = json!({"domain": "gmail.com", "freeMail": true});
    assert_eq!(completed_result(&items[&ids[0]]), &acme);
    assert_eq!(completed_result(&items[&ids[1]]), &gmail);
    assert_skipped(&items[&ids[2]], "missing_input");
    assert_eq!(counts(&run), [0, 0, 2, 1, 0]);
    assert_eq!(run["output"]["attributeKey"], "email_domain");
    // Item metadata records what the provider saw.
    let i = &items[&ids[0]];
    assert_eq!(i["metadata"]["provider"], "builtin:email_domain");
    assert_eq!(i["metadata"]["result"], acme);
    assert_eq!(i["metadata"]["leadSnapshot"]["id"], ids[0].as_str());
    assert!(i["listId"].is_null(), "{i}");
    assert!(i["attempts"].as_u64().unwrap() >= 1, "{i}");
    // And the Leads carry the results.
    assert_eq!(lead(&ctx, &ids[0]).await["attributes"]["email_domain"], acme);
    assert_eq!(lead(&ctx, &ids[1]).await["attributes"]["email_domain"], gmail);
    assert!(lead(&ctx, &ids[2]).await["attributes"].get("email_domain").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn name_parse_splits_full_names() {
    let ctx = Ctx::new(10).await;
    let (ids, run, items) = builtin(
        &ctx,
        "name_parse",
        vec![
            person_with("np", json!({"name": {"full": "Ada Lovelace"}})),
            person_with("np", json!({"name": {"full": "Dr. Ada King Lovelace"}})),
            person_with("np", json!({"name": {"full": "Lovelace, Ada"}})),
            person_with("np", json!({"name": {"full": "Cher"}})),
            person_with("np", json!({"name": null})),
        ],
        json!({}),
    )
    .await;
    let expected = [
        json!({"first": "Ada", "last": "Lovelace"}),
        json!({"first": "Ada", "last": "King Lovelace"}),
        json!({"first": "Ada", "last": "Lovelace"}),
        json!({"first": "Cher", "last": null}),
    ];
    for (id, want) in ids.iter().zip(expected.iter()) {
        assert_eq!(completed_result(&items[id]), want);
        assert_eq!(&lead(&ctx, id).await["attributes"]["name_parse"], want);
    }
    assert_skipped(&items[&ids[4]], "missing_input");
    assert!(lead(&ctx, &ids[4]).await["attributes"].get("name_parse").is_none());
    assert_eq!(counts(&run), [0, 0, 4, 1, 0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn phone_normalize_writes_e164_and_fails_unparseable_numbers() {
    let ctx = Ctx::new(20).await;
    let (ids, run, items) = builtin(
        &ctx,
        "phone_normalize",
        vec![
            person_contacts("ph", &[("phone", "(415) 555-0123")]),
            person_contacts("ph", &[("phone", "+44 20 7946 0958")]),
            person_contacts("ph", &[("phone", "12")]),
            person_contacts("ph", &[]),
        ],
        json!({}),
    )
    .await;
    assert_eq!(completed_result(&items[&ids[0]]), &json!({"e164": "+14155550123"}));
    assert_eq!(completed_result(&items[&ids[1]]), &json!({"e164": "+442079460958"}));
    assert_failed(&items[&ids[2]], "INVALID_PHONE");
    assert_skipped(&items[&ids[3]], "missing_input");
    assert_eq!(counts(&run), [0, 0, 2, 1, 1]);
    // Billing by outcome: the two found are charged; the missing_input skip
    // and the unparseable number are released.
    let all: Vec<Value> = items.values().cloned().collect();
    assert_eq!(assert_billed(&puffle_tests::app().await, &ctx.workspace_id, &run, &all, 1).await, (2, 2));
    assert_eq!(items[&ids[0]]["cost"], json!({"reserved": 1, "charged": 1, "released": 0}));
    assert_eq!(items[&ids[3]]["cost"], json!({"reserved": 1, "charged": 0, "released": 1}));
    assert_eq!(ctx.balance().await, 18);
    assert_eq!(lead(&ctx, &ids[0]).await["attributes"]["phone_normalize"], json!({"e164": "+14155550123"}));
    assert_eq!(lead(&ctx, &ids[1]).await["attributes"]["phone_normalize"], json!({"e164": "+442079460958"}));
    assert!(lead(&ctx, &ids[2]).await["attributes"].get("phone_normalize").is_none());
    assert!(lead(&ctx, &ids[3]).await["attributes"].get("phone_normalize").is_none());

    // defaultCountry reads national numbers in that country.
    let (ids, _, items) = builtin(
        &ctx,
        "phone_normalize",
        vec![person_contacts("ph-gb", &[("phone", "020 7946 0958")])],
        json!({"defaultCountry": "GB"}),
    )
    .await;
    assert_eq!(completed_result(&items[&ids[0]]), &json!({"e164": "+442079460958"}));
    assert_eq!(items[&ids[0]]["metadata"]["inputSnapshot"], json!({"defaultCountry": "GB"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn job_seniority_classifies_titles() {
    let ctx = Ctx::new(10).await;
    let titles = [
        ("CEO", "c_level"),
        ("VP of Engineering", "vp"),
        ("Director of Sales", "director"),
        ("Engineering Manager", "manager"),
    ];
    let mut leads: Vec<Value> = titles.iter().map(|(t, _)| person_with("js", json!({"title": t}))).collect();
    leads.push(person_with("js", json!({"title": null})));
    let (ids, run, items) = builtin(&ctx, "job_seniority", leads, json!({})).await;
    for (id, (title, want)) in ids.iter().zip(titles.iter()) {
        assert_eq!(completed_result(&items[id]), &json!({"seniority": want}), "{title}");
        assert_eq!(lead(&ctx, id).await["attributes"]["job_seniority"], json!({"seniority": want}), "{title}");
    }
    assert_skipped(&items[&ids[4]], "missing_input");
    assert_eq!(counts(&run), [0, 0, 4, 1, 0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn company_domain_reads_the_website_contact() {
    let ctx = Ctx::new(10).await;
    let u = unique();
    let (ids, run, items) = builtin(
        &ctx,
        "company_domain",
        vec![
            json!({"type": "company", "company": {"name": "Web Co"}, "contacts": [{"type": "website", "value": format!("https://www.Web-{u}.com/about")}]}),
            json!({"type": "company", "company": {"name": "Dom Co", "domain": format!("www.dom-{u}.example")}}),
        ],
        json!({}),
    )
    .await;
    assert_eq!(completed_result(&items[&ids[0]]), &json!({"domain": format!("web-{u}.com")}));
    assert_eq!(completed_result(&items[&ids[1]]), &json!({"domain": format!("dom-{u}.example")}));
    assert_eq!(lead(&ctx, &ids[0]).await["attributes"]["company_domain"], json!({"domain": format!("web-{u}.com")}));
    assert_eq!(counts(&run), [0, 0, 2, 0, 0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn output_attribute_key_override_writes_that_key_only() {
    let ctx = Ctx::new(10).await;
    let ids = ctx.people("key", 1).await;
    let (_, run) = run_to_end(&ctx, json!({"enrichmentId": "job_seniority", "scope": explicit(&ids), "input": {}, "output": {"attributeKey": "my_level"}, "displayRequest": {"fieldId": "col-7"}})).await;
    assert_eq!(
        run["output"],
        json!({"target": "lead", "attributeKey": "my_level", "writePolicy": "overwrite", "persistResults": true})
    );
    assert_eq!(run["trigger"]["dispatchMetadata"]["displayRequest"], json!({"fieldId": "col-7"}));
    let l = lead(&ctx, &ids[0]).await;
    assert_eq!(l["attributes"]["my_level"], json!({"seniority": "manager"}));
    assert!(l["attributes"].get("job_seniority").is_none(), "{l}");
}

// ------------------------------------------------------- scopes and lifecycle

#[tokio::test(flavor = "multi_thread")]
async fn explicit_scope_counts_duplicate_lead_ids_once() {
    let ctx = Ctx::new(10).await;
    let ids = ctx.people("dup", 2).await;
    let dupes = vec![ids[0].clone(), ids[1].clone(), ids[0].clone(), ids[0].clone()];
    let r = create(&ctx, req("email_domain", explicit(&dupes))).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["leadCount"], 2);
    let run_id = r.body["runId"].as_str().unwrap();
    let run = settle(&ctx, run_id).await;
    assert_eq!(run["scope"]["resolvedCount"], 2);
    assert_eq!(run["scope"]["type"], "explicit_leads");
    assert_eq!(run["scope"]["requested"]["leadIds"], json!(ids));
    assert_eq!(run["cost"], json!({"preview": 2, "reserved": 2, "charged": 2, "released": 0, "actual": 2}));
    assert_eq!(counts(&run), [0, 0, 2, 0, 0]);
    let items = items_by_lead(&ctx, run_id).await;
    assert_eq!(items.keys().cloned().collect::<HashSet<_>>(), ids.iter().cloned().collect::<HashSet<_>>());
    assert_eq!(ctx.balance().await, 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_moves_pending_running_completed() {
    let ctx = Ctx::new(500).await;
    let ids = ctx.people("life", 250).await;
    let list = ctx.list(&ids).await;
    let r = create(&ctx, req("email_domain", list_scope(&list))).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["leadCount"], 250);
    assert!(r.body["triggerRunId"].as_str().is_some_and(|t| !t.is_empty()), "{r:?}");
    let run_id = r.body["runId"].as_str().unwrap().to_string();
    let rank = |s: &str| match s {
        "pending" => 0,
        "running" => 1,
        "completed" => 2,
        other => panic!("unexpected status {other}"),
    };
    let mut seen = vec!["pending".to_string()];
    let mut polls = 0;
    let run = loop {
        polls += 1;
        assert!(polls < 15_000, "run {run_id} did not complete within 5 minutes: {seen:?}");
        let run = status(&ctx, &run_id).await;
        assert_counts_add_up(&run);
        let st = run["status"].as_str().unwrap().to_string();
        assert!(rank(&st) >= rank(seen.last().unwrap()), "status went back: {seen:?} then {st}");
        if seen.last() != Some(&st) {
            seen.push(st.clone());
        }
        if st == "completed" {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(run["id"], run_id.as_str());
    assert_eq!(run["mode"], "persisted");
    assert_eq!(run["scope"]["type"], "list");
    assert_eq!(run["scope"]["listId"], list.as_str());
    assert_eq!(run["scope"]["resolvedCount"], 250);
    assert_eq!(counts(&run), [0, 0, 250, 0, 0]);
    assert_eq!(run["trigger"]["triggerRunId"], r.body["triggerRunId"]);
    assert!(run["trigger"]["correlationId"].is_string());
    assert!(run["error"].is_null());
    let t = &run["timing"];
    let (created, started, completed) =
        (t["createdAt"].as_str().unwrap(), t["startedAt"].as_str().unwrap(), t["completedAt"].as_str().unwrap());
    assert!(created <= started && started <= completed, "{t}");
    assert!(t["cancelledAt"].is_null());
    let items = items_by_lead(&ctx, &run_id).await;
    assert_eq!(items.len(), 250);
    for id in &ids {
        let i = &items[id];
        assert_eq!(i["status"], "completed");
        assert_eq!(i["listId"], list.as_str());
        assert_eq!(i["membershipId"], format!("{list}.{id}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_scope_plans_every_lead_of_the_list_once() {
    let ctx = Ctx::new(20).await;
    let ids = ctx.people("ls", 6).await;
    let list = ctx.list(&ids).await;
    // Adding the same Leads again changes nothing.
    let r = ctx.post(&format!("/api/lists/{list}/leads"), json!({"leadIds": ids[..3]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = create(&ctx, req("name_parse", list_scope(&list))).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["leadCount"], 6);
    let run_id = r.body["runId"].as_str().unwrap();
    let run = settle(&ctx, run_id).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(run["scope"]["resolvedCount"], 6);
    let items = items_by_lead(&ctx, run_id).await;
    assert_eq!(items.keys().cloned().collect::<HashSet<_>>(), ids.iter().cloned().collect::<HashSet<_>>());
    assert_eq!(ctx.balance().await, 14);
}

#[tokio::test(flavor = "multi_thread")]
async fn filtered_list_scope_plans_only_matching_leads() {
    let ctx = Ctx::new(50).await;
    let leads = vec![
        person_with("fl", json!({"title": "VP of Sales"})),
        person_with("fl", json!({"title": "Senior vp, Marketing"})),
        person_with("fl", json!({"title": "Director of Engineering"})),
        person_with("fl", json!({"title": "Engineering Manager"})),
    ];
    let ids = ctx.leads(leads).await;
    let list = ctx.list(&ids).await;
    let r = create(
        &ctx,
        req("job_seniority", filtered(&list, json!({"all": [{"field": "title", "op": "contains", "value": "vp"}]}))),
    )
    .await;
    assert_eq!(r.status, 202, "{r:?}");
    // The create reserves by the List's person counter, without reading the
    // List; the planner applies the filter and releases the rest.
    assert_eq!(r.body["leadCount"], 4);
    let run_id = r.body["runId"].as_str().unwrap();
    // Read from the ledger, not the balance: the planner may already have
    // released the two Leads the filter drops (the balance is then 48).
    let reserves: Vec<_> = ledger(&ctx)
        .await
        .into_iter()
        .filter(|e| e.kind == LedgerKind::Reserve && e.run_id.as_deref() == Some(run_id))
        .collect();
    assert_eq!(reserves.iter().map(|e| e.amount).collect::<Vec<_>>(), [4]);
    let run = settle(&ctx, run_id).await;
    assert_eq!(run["scope"]["resolvedCount"], 2);
    assert_eq!(run["scope"]["type"], "filtered_list");
    assert_eq!(counts(&run), [0, 0, 2, 0, 0]);
    assert_eq!(run["cost"], json!({"preview": 4, "reserved": 4, "charged": 2, "released": 2, "actual": 2}));
    assert_eq!(ctx.balance().await, 48);
    let items = items_by_lead(&ctx, run_id).await;
    assert_eq!(items.keys().cloned().collect::<HashSet<_>>(), ids[..2].iter().cloned().collect::<HashSet<_>>());
    for id in &ids[..2] {
        assert_eq!(completed_result(&items[id]), &json!({"seniority": "vp"}));
    }
    for id in &ids[2..] {
        assert!(lead(&ctx, id).await["attributes"].get("job_seniority").is_none());
    }

    // attributes.<key> exists after an earlier run wrote it to two Leads.
    let (_, first) = run_to_end(&ctx, req("email_domain", explicit(&[ids[1].clone(), ids[3].clone()]))).await;
    assert_eq!(first["status"], "completed");
    let r = create(
        &ctx,
        req("name_parse", filtered(&list, json!({"all": [{"field": "attributes.email_domain", "op": "exists"}]}))),
    )
    .await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["leadCount"], 4);
    let run_id = r.body["runId"].as_str().unwrap();
    let run = settle(&ctx, run_id).await;
    assert_eq!(run["scope"]["resolvedCount"], 2);
    let items = items_by_lead(&ctx, run_id).await;
    assert_eq!(items.keys().cloned().collect::<HashSet<_>>(), HashSet::from([ids[1].clone(), ids[3].clone()]));
    // ... and not_exists picks the other two; a nested path works too.
    let run = run_to_end(
        &ctx,
        req("name_parse", filtered(&list, json!({"all": [{"field": "attributes.email_domain", "op": "not_exists"}]}))),
    )
    .await
    .1;
    assert_eq!(run["scope"]["resolvedCount"], 2, "{run}");
    let (nested, run) = run_to_end(
        &ctx,
        req(
            "name_parse",
            filtered(
                &list,
                json!({"all": [{"field": "attributes.email_domain.freeMail", "op": "eq", "value": false}]}),
            ),
        ),
    )
    .await;
    assert_eq!(run["scope"]["resolvedCount"], 2, "{run}");
    assert_eq!(items_by_lead(&ctx, &nested).await.len(), 2);
    // A preview answers the bound a create would reserve.
    let r = create(&ctx, json!({"enrichmentId": "name_parse", "scope": filtered(&list, json!({"all": [{"field": "title", "op": "exists"}]})), "input": {}, "mode": "preview"})).await;
    assert_eq!(
        (r.body["leadCount"].as_u64(), r.body["preview"]["creditsRequired"].as_u64()),
        (Some(4), Some(4)),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filter_that_matches_nothing_completes_and_releases_everything() {
    let ctx = Ctx::new(10).await;
    let ids = ctx.people("nomatch", 3).await;
    let list = ctx.list(&ids).await;
    let r = create(
        &ctx,
        req(
            "email_domain",
            filtered(&list, json!({"all": [{"field": "title", "op": "contains", "value": "zzz-nothing"}]})),
        ),
    )
    .await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["leadCount"], 3);
    let run = settle(&ctx, r.body["runId"].as_str().unwrap()).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["scope"]["resolvedCount"], 0, "{run}");
    assert_eq!(counts(&run), [0, 0, 0, 0, 0]);
    assert_eq!(run["cost"], json!({"preview": 3, "reserved": 3, "charged": 0, "released": 3, "actual": 0}));
    assert_eq!(ctx.balance().await, 10);
    assert!(items_by_lead(&ctx, r.body["runId"].as_str().unwrap()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn filtered_list_on_type_narrows_a_mixed_list() {
    let ctx = Ctx::new(20).await;
    let people = ctx.people("mix", 2).await;
    let co = ctx.leads(vec![company("mix")]).await;
    let all: Vec<String> = people.iter().chain(co.iter()).cloned().collect();
    let list = ctx.list(&all).await;
    let (p_run, run) = run_to_end(
        &ctx,
        req("email_domain", filtered(&list, json!({"all": [{"field": "type", "op": "eq", "value": "person"}]}))),
    )
    .await;
    assert_eq!(run["scope"]["resolvedCount"], 2);
    assert_eq!(counts(&run), [0, 0, 2, 0, 0]);
    assert_eq!(
        items_by_lead(&ctx, &p_run).await.keys().cloned().collect::<HashSet<_>>(),
        people.iter().cloned().collect::<HashSet<_>>()
    );
    let (c_run, run) = run_to_end(
        &ctx,
        req("company_domain", filtered(&list, json!({"all": [{"field": "type", "op": "eq", "value": "company"}]}))),
    )
    .await;
    assert_eq!(run["scope"]["resolvedCount"], 1);
    assert_eq!(counts(&run), [0, 0, 1, 0, 0]);
    assert!(items_by_lead(&ctx, &c_run).await.contains_key(&co[0]));
    assert_eq!(ctx.balance().await, 17);
}

// ------------------------------------------------------- output and policies

#[tokio::test(flavor = "multi_thread")]
async fn membership_output_goes_to_the_membership_not_the_lead() {
    let ctx = Ctx::new(20).await;
    let u = unique();
    let ids = ctx
        .leads(vec![
            person_with("mo", json!({"contacts": [{"type": "email", "value": format!("a-{u}@mo-{u}.com")}]})),
            person_with("mo", json!({"contacts": [{"type": "email", "value": format!("b-{u}@yahoo.com")}]})),
        ])
        .await;
    let list = ctx.list(&ids).await;
    let (run_id, run) = run_to_end(&ctx, json!({"enrichmentId": "email_domain", "scope": list_scope(&list), "input": {}, "output": {"target": "membership"}})).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(run["output"]["target"], "membership");
    assert_eq!(counts(&run), [0, 0, 2, 0, 0]);
    let expected: HashMap<&String, Value> = HashMap::from([
        (&ids[0], json!({"domain": format!("mo-{u}.com"), "freeMail": false})),
        (&ids[1], json!({"domain": "yahoo.com", "freeMail": true})),
    ]);
    let r = ctx.get(&format!("/api/lists/{list}/leads")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let members = r.body["leads"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    for m in members {
        let id = m["id"].as_str().unwrap().to_string();
        assert_eq!(m["membership"]["attributes"]["email_domain"], expected[&id], "{m}");
        assert!(m["attributes"].get("email_domain").is_none(), "membership output leaked into the lead: {m}");
    }
    for id in &ids {
        assert!(lead(&ctx, id).await["attributes"].get("email_domain").is_none());
    }
    let items = items_by_lead(&ctx, &run_id).await;
    assert_eq!(completed_result(&items[&ids[0]]), &expected[&ids[0]]);

    // Explicit Leads with the List named write to the membership too.
    let other_list = ctx.list(&ids).await;
    let (_, run) = run_to_end(&ctx, json!({"enrichmentId": "job_seniority", "scope": {"type": "explicit_leads", "leadIds": [ids[0]], "listId": other_list}, "input": {}, "output": {"target": "membership"}})).await;
    assert_eq!(counts(&run), [0, 0, 1, 0, 0]);
    let r = ctx.get(&format!("/api/lists/{other_list}/leads")).await;
    let m = r.body["leads"].as_array().unwrap().iter().find(|m| m["id"] == ids[0].as_str()).unwrap().clone();
    assert_eq!(m["membership"]["attributes"]["job_seniority"], json!({"seniority": "manager"}));
    assert!(lead(&ctx, &ids[0]).await["attributes"].get("job_seniority").is_none());
    // The first List's memberships did not get it.
    let r = ctx.get(&format!("/api/lists/{list}/leads")).await;
    for m in r.body["leads"].as_array().unwrap() {
        assert!(m["membership"]["attributes"].get("job_seniority").is_none(), "{m}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_existing_skips_leads_that_already_have_the_attribute() {
    let ctx = Ctx::new(30).await;
    let ids = ctx.people("skip", 4).await;
    let (_, first) = run_to_end(&ctx, req("email_domain", explicit(&ids[..2]))).await;
    assert_eq!(counts(&first), [0, 0, 2, 0, 0]);
    let (run_id, run) = run_to_end(
        &ctx,
        json!({"enrichmentId": "email_domain", "scope": explicit(&ids), "input": {}, "writePolicy": "skip_existing"}),
    )
    .await;
    assert_eq!(run["status"], "completed");
    assert_eq!(run["output"]["writePolicy"], "skip_existing");
    assert_eq!(counts(&run), [0, 0, 2, 2, 0]);
    let items = items_by_lead(&ctx, &run_id).await;
    for id in &ids[..2] {
        assert_skipped(&items[id], "attribute_exists");
    }
    for id in &ids[2..] {
        assert_eq!(items[id]["status"], "completed", "{}", items[id]);
        assert!(lead(&ctx, id).await["attributes"]["email_domain"]["domain"].is_string());
    }
    // An attribute set at import counts as existing too.
    let pre = ctx
        .leads(vec![person_with("skip-imp", json!({"attributes": {"job_seniority": {"seniority": "custom"}}}))])
        .await;
    let (run_id, run) = run_to_end(
        &ctx,
        json!({"enrichmentId": "job_seniority", "scope": explicit(&pre), "input": {}, "writePolicy": "skip_existing"}),
    )
    .await;
    assert_eq!(counts(&run), [0, 0, 0, 1, 0]);
    assert_skipped(&items_by_lead(&ctx, &run_id).await[&pre[0]], "attribute_exists");
    assert_eq!(lead(&ctx, &pre[0]).await["attributes"]["job_seniority"], json!({"seniority": "custom"}));
    // overwrite (the default) rewrites it.
    let (_, run) = run_to_end(&ctx, req("job_seniority", explicit(&pre))).await;
    assert_eq!(counts(&run), [0, 0, 1, 0, 0]);
    assert_eq!(lead(&ctx, &pre[0]).await["attributes"]["job_seniority"], json!({"seniority": "manager"}));
}

// ------------------------------------------------------- items

#[tokio::test(flavor = "multi_thread")]
async fn items_page_in_id_order_and_filter_by_status_and_lead() {
    let ctx = Ctx::new(100).await;
    // 30 Leads: 10 valid phones, 10 unparseable, 10 without a phone.
    let leads: Vec<Value> = (0..30)
        .map(|i| match i % 3 {
            0 => person_contacts(&format!("pg{i}"), &[("phone", "(415) 555-0123")]),
            1 => person_contacts(&format!("pg{i}"), &[("phone", "12")]),
            _ => person_contacts(&format!("pg{i}"), &[]),
        })
        .collect();
    let ids = ctx.leads(leads).await;
    let by_kind = |k: usize| -> HashSet<String> {
        ids.iter().enumerate().filter(|(i, _)| i % 3 == k).map(|(_, id)| id.clone()).collect()
    };
    let (run_id, run) =
        run_to_end(&ctx, json!({"enrichmentId": "phone_normalize", "scope": explicit(&ids), "input": {}})).await;
    assert_eq!(counts(&run), [0, 0, 10, 10, 10]);

    // Pages of 7.
    let mut seen: Vec<String> = vec![];
    let mut cursor: Option<String> = None;
    let mut sizes = vec![];
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/enrichment/{run_id}/items?limit=7&cursor={c}"),
            None => format!("/api/enrichment/{run_id}/items?limit=7"),
        };
        let r = ctx.get(&path).await;
        assert_eq!(r.status, 200, "{r:?}");
        let page = &r.body["page"];
        assert_eq!(page["limit"], 7);
        let items = r.body["items"].as_array().unwrap();
        sizes.push(items.len());
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        if page["hasMore"] == true {
            assert!(page["nextCursor"].is_string(), "{page}");
            cursor = page["nextCursor"].as_str().map(str::to_string);
        } else {
            assert!(page["nextCursor"].is_null(), "{page}");
            break;
        }
        assert!(sizes.len() < 10, "more pages than 30 items can fill: {sizes:?}");
    }
    assert_eq!(sizes, vec![7, 7, 7, 7, 2]);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "items are not in ascending id order");
    let leads_seen: Vec<String> = seen.iter().map(|i| i.split_once('.').unwrap().1.to_string()).collect();
    assert_eq!(leads_seen.iter().cloned().collect::<HashSet<_>>().len(), 30, "a lead appears twice");
    assert_eq!(leads_seen.iter().cloned().collect::<HashSet<_>>(), ids.iter().cloned().collect::<HashSet<_>>());

    // Default page: 50 → all 30, no more.
    let r = ctx.get(&format!("/api/enrichment/{run_id}/items")).await;
    assert_eq!(r.body["page"]["limit"], 50);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 30);
    assert_eq!(r.body["page"]["hasMore"], false);

    // By status (paged too).
    for (st, kind) in [("completed", 0), ("failed", 1), ("skipped", 2)] {
        let items = ctx.all_items(&run_id, &format!("&status={st}")).await;
        assert!(items.iter().all(|i| i["status"] == st), "{st}: {items:?}");
        let got: HashSet<String> = items.iter().map(|i| i["leadId"].as_str().unwrap().to_string()).collect();
        assert_eq!(got, by_kind(kind), "{st}");
        let r = ctx.get(&format!("/api/enrichment/{run_id}/items?status={st}&limit=4")).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 4);
        assert_eq!(r.body["page"]["hasMore"], true);
        let c = r.body["page"]["nextCursor"].as_str().unwrap();
        let r2 = ctx.get(&format!("/api/enrichment/{run_id}/items?status={st}&limit=4&cursor={c}")).await;
        assert_eq!(r2.status, 200, "{r2:?}");
        assert!(r2.body["items"].as_array().unwrap().iter().all(|i| i["status"] == st));
        assert!(r2.body["items"][0]["id"].as_str().unwrap() > r.body["items"][3]["id"].as_str().unwrap());
    }
    for st in ["pending", "running"] {
        let r = ctx.get(&format!("/api/enrichment/{run_id}/items?status={st}")).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["items"], json!([]));
    }

    // By Lead.
    let r = ctx.get(&format!("/api/enrichment/{run_id}/items?leadId={}", ids[0])).await;
    assert_eq!(r.status, 200, "{r:?}");
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["leadId"], ids[0].as_str());
    assert_eq!(items[0]["result"], json!({"e164": "+14155550123"}));
    let r = ctx.get(&format!("/api/enrichment/{run_id}/items?leadId={}&status=failed", ids[0])).await;
    assert_eq!(r.body["items"], json!([]));
    let r = ctx.get(&format!("/api/enrichment/{run_id}/items?leadId={}&status=failed", ids[1])).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let outside = ctx.people("pg-out", 1).await;
    let r = ctx.get(&format!("/api/enrichment/{run_id}/items?leadId={}", outside[0])).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["items"], json!([]));

    // Bad parameters.
    for q in ["limit=0", "limit=101", "limit=abc", "limit=-1", "status=done", "cursor=garbage"] {
        let r = ctx.get(&format!("/api/enrichment/{run_id}/items?{q}")).await;
        assert_error(&r, 400, "INVALID_REQUEST");
    }
    let r = ctx.get(&format!("/api/enrichment/{run_id}/items?limit=100")).await;
    assert_eq!(r.status, 200);
    // A cursor of the completed listing does not page the unfiltered one.
    let r = ctx.get(&format!("/api/enrichment/{run_id}/items?status=completed&limit=2")).await;
    let c = r.body["page"]["nextCursor"].as_str().unwrap().to_string();
    let r = ctx.get(&format!("/api/enrichment/{run_id}/items?cursor={c}")).await;
    assert_error(&r, 400, "INVALID_REQUEST");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_foreign_runs_are_404_run_not_found() {
    let ctx = Ctx::new(10).await;
    let other = Ctx::new(10).await;
    let oids = other.people("foreign", 1).await;
    let foreign = start(&other, req("email_domain", explicit(&oids))).await;
    let unknown = format!("run_{}", unique());
    for id in [unknown.as_str(), foreign.as_str(), "nope"] {
        assert_error(&ctx.get(&format!("/api/enrichment/{id}")).await, 404, "RUN_NOT_FOUND");
        assert_error(&ctx.get(&format!("/api/enrichment/{id}/items")).await, 404, "RUN_NOT_FOUND");
        assert_error(&ctx.post(&format!("/api/enrichment/{id}/cancel"), json!({})).await, 404, "RUN_NOT_FOUND");
    }
    // Without a token: 401 whatever the run.
    for (m, path) in [
        ("GET", format!("/api/enrichment/{foreign}")),
        ("GET", format!("/api/enrichment/{foreign}/items")),
        ("POST", format!("/api/enrichment/{foreign}/cancel")),
    ] {
        let r = ctx.send(m, &path, None, None).await;
        assert_error(&r, 401, "UNAUTHENTICATED");
        let r = ctx.send(m, &path, None, Some("pfl_not_a_token")).await;
        assert_error(&r, 401, "UNAUTHENTICATED");
    }
    // The foreign run is untouched (not cancelled by the attempt above).
    let run = settle(&other, &foreign).await;
    assert_eq!(run["status"], "completed");
    assert!(run["timing"]["cancelledAt"].is_null());
}

// ------------------------------------------------------- cancel

#[tokio::test(flavor = "multi_thread")]
async fn cancel_of_a_large_run_skips_pending_items_and_releases_them() {
    let ctx = Ctx::new(3000).await;
    let ids = ctx.people("big", 2000).await;
    let list = ctx.list(&ids).await;
    let run_id = start(&ctx, req("email_domain", list_scope(&list))).await;
    let r = ctx.post(&format!("/api/enrichment/{run_id}/cancel"), json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["run"]["id"], run_id.as_str());
    assert_eq!(r.body["run"]["status"], "cancelled");
    let cancelled_at = r.body["run"]["cancelledAt"].as_str().expect("cancelledAt").to_string();
    // A second cancel is refused.
    let r = ctx.post(&format!("/api/enrichment/{run_id}/cancel"), json!({})).await;
    assert_error(&r, 409, "RUN_NOT_CANCELLABLE");
    assert_eq!(r.body["reason"], "run_not_cancellable");

    let run = settle(&ctx, &run_id).await;
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["timing"]["cancelledAt"], cancelled_at.as_str());
    assert_eq!(run["scope"]["resolvedCount"], 2000);
    let c = counts(&run);
    assert_eq!(c[0], 0);
    assert!(c[3] > 0, "nothing was skipped: {c:?}");
    let items = ctx.all_items(&run_id, "").await;
    assert_eq!(items.len(), 2000);
    let leads: HashSet<&str> = items.iter().map(|i| i["leadId"].as_str().unwrap()).collect();
    assert_eq!(leads.len(), 2000);
    let cancelled =
        items.iter().filter(|i| i["status"] == "skipped" && i["skippedReason"] == "run_cancelled").count() as u64;
    assert!(cancelled > 0);
    assert_eq!(cancelled, c[3], "every skipped item of this run was skipped by the cancel");
    let completed = items.iter().filter(|i| i["status"] == "completed").count() as u64;
    assert_eq!(completed, c[2]);
    assert!(items.iter().all(|i| i["status"] != "pending" && i["status"] != "running"));
    // Billing by outcome: only what ran is charged; what the cancel kept
    // from running comes back.
    let (charged, released) = assert_billed(&puffle_tests::app().await, &ctx.workspace_id, &run, &items, 1).await;
    assert_eq!((charged, released), (c[2], c[3]));
    assert_eq!(run["cost"]["reserved"], 2000);
    assert_eq!(ctx.balance().await, 3000 - c[2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_of_a_completed_run_is_409() {
    let ctx = Ctx::new(10).await;
    let ids = ctx.people("done", 2).await;
    let (run_id, run) = run_to_end(&ctx, req("email_domain", explicit(&ids))).await;
    assert_eq!(run["status"], "completed");
    let r = ctx.post(&format!("/api/enrichment/{run_id}/cancel"), json!({})).await;
    assert_error(&r, 409, "RUN_NOT_CANCELLABLE");
    assert_eq!(r.body["reason"], "run_not_cancellable");
    let after = status(&ctx, &run_id).await;
    assert_eq!(after["status"], "completed");
    assert!(after["timing"]["cancelledAt"].is_null());
    assert_eq!(counts(&after), [0, 0, 2, 0, 0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_racing_completion_leaves_a_consistent_run() {
    let ctx = Ctx::new(100).await;
    let delays = [0u64, 10, 30, 60, 100, 150, 250, 400];
    let mut charged_total = 0;
    let mut tasks = vec![];
    for (n, delay) in delays.into_iter().enumerate() {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            let ids = ctx.people(&format!("race{n}-"), 3).await;
            let run_id = start(&ctx, req("email_domain", explicit(&ids))).await;
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let r = ctx.post(&format!("/api/enrichment/{run_id}/cancel"), json!({})).await;
            let run = settle(&ctx, &run_id).await;
            let items = ctx.all_items(&run_id, "").await;
            (r, run, items)
        }));
    }
    for t in tasks {
        let (r, run, items) = t.await.unwrap();
        assert_eq!(items.len(), 3);
        let c = counts(&run);
        match r.status {
            200 => {
                assert_eq!(run["status"], "cancelled", "{r:?} {run}");
                assert_eq!(run["timing"]["cancelledAt"], r.body["run"]["cancelledAt"]);
            }
            409 => {
                assert_eq!(r.body["code"], "RUN_NOT_CANCELLABLE");
                assert!(
                    matches!(r.body["reason"].as_str(), Some("run_not_cancellable" | "run_status_changed")),
                    "{r:?}"
                );
                assert_eq!(run["status"], "completed", "{run}");
                assert!(run["timing"]["cancelledAt"].is_null(), "{run}");
                assert_eq!(c, [0, 0, 3, 0, 0]);
            }
            other => panic!("cancel answered {other}: {r:?}"),
        }
        // Item states agree with the counts, and credits with both.
        let n = |st: &str| items.iter().filter(|i| i["status"] == st).count() as u64;
        assert_eq!([n("pending"), n("running"), n("completed"), n("skipped"), n("failed")], c, "{run}");
        let (charged, _) = assert_billed(&puffle_tests::app().await, &ctx.workspace_id, &run, &items, 1).await;
        assert_eq!(charged, c[2], "{run}");
        charged_total += charged;
    }
    assert_eq!(ctx.balance().await, 100 - charged_total, "the balance is the grant minus what was charged");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_mid_run_lets_met_chunks_finish_and_skips_the_rest() {
    // Large enough that the worker cannot have every chunk in flight at once
    // (chunks it already started finish, as the contract allows).
    let ctx = Ctx::new(5000).await;
    let ids = ctx.people("mid", 4000).await;
    let list = ctx.list(&ids).await;
    let run_id = start(&ctx, req("email_domain", list_scope(&list))).await;
    // Wait for some progress (hang guard only), then cancel.
    let mut run = status(&ctx, &run_id).await;
    for _ in 0..2400 {
        if counts(&run)[2] > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        run = status(&ctx, &run_id).await;
    }
    assert!(counts(&run)[2] > 0, "no progress: {run}");
    let run_at_cancel = run;
    let r = ctx.post(&format!("/api/enrichment/{run_id}/cancel"), json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["run"]["status"], "cancelled");
    let run = settle(&ctx, &run_id).await;
    assert_eq!(run["status"], "cancelled");
    let c = counts(&run);
    assert_eq!(run["scope"]["resolvedCount"], 4000);
    eprintln!("mid-run cancel: counts at cancel {:?}, final {c:?}", counts(&run_at_cancel));
    assert!(c[2] > 0 && c[3] > 0, "expected both completed and skipped items: {c:?}");
    assert_eq!(c[4], 0);
    let items = ctx.all_items(&run_id, "").await;
    assert_eq!(items.len(), 4000);
    let n = |st: &str| items.iter().filter(|i| i["status"] == st).count() as u64;
    assert_eq!([n("pending"), n("running"), n("completed"), n("skipped"), n("failed")], c);
    assert!(items.iter().filter(|i| i["status"] == "skipped").all(|i| i["skippedReason"] == "run_cancelled"));
    // Completed items wrote their values; cancelled ones did not.
    let done = items.iter().find(|i| i["status"] == "completed").unwrap();
    assert!(lead(&ctx, done["leadId"].as_str().unwrap()).await["attributes"]["email_domain"].is_object());
    let skipped = items.iter().find(|i| i["status"] == "skipped").unwrap();
    assert!(lead(&ctx, skipped["leadId"].as_str().unwrap()).await["attributes"].get("email_domain").is_none());
    let (charged, released) = assert_billed(&puffle_tests::app().await, &ctx.workspace_id, &run, &items, 1).await;
    assert_eq!((charged, released), (c[2], c[3]));
    assert_eq!(ctx.balance().await, 5000 - c[2], "what the cancel kept from running is released");
}
