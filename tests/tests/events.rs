//! The event flow on the shared local stack: lifecycle events observed the
//! way a subscriber in AWS would (an EventBridge rule with an SQS target, on
//! moto's EventBridge), redelivered stream batches, and List rules.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use puffle_domain::events::{event_id, RunEventType};
use puffle_tests::{assert_counts_add_up, person, settle, unique, Ctx};
use serde_json::{json, Value};

/// A queue on moto (beside its EventBridge) receiving this workspace's events.
struct Subscriber {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

async fn sdk() -> aws_config::SdkConfig {
    puffle_aws::config::sdk_loader().load().await
}

fn moto_url() -> String {
    std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE").expect("source scripts/env.sh (moto's EventBridge endpoint)")
}

impl Subscriber {
    async fn for_workspace(ws: &str) -> Subscriber {
        let sdk = sdk().await;
        let sqs =
            aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(&sdk).endpoint_url(moto_url()).build());
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        let name = format!("events-{}", unique());
        let url = sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        let pattern = json!({"source": ["puffle"], "detail": {"workspaceId": [ws]}});
        events.put_rule().name(&name).event_bus_name("puffle").event_pattern(pattern.to_string()).send().await.unwrap();
        events
            .put_targets()
            .rule(&name)
            .event_bus_name("puffle")
            .targets(aws_sdk_eventbridge::types::Target::builder().id("q").arn(arn).build().unwrap())
            .send()
            .await
            .unwrap();
        Subscriber { sqs, url }
    }

    /// Everything delivered so far (EventBridge envelopes), waiting until
    /// `done` says enough arrived or the hang guard runs out.
    async fn collect(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut got = vec![];
        for _ in 0..120 {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            for m in out.messages.unwrap_or_default() {
                got.push(serde_json::from_str::<Value>(m.body.as_deref().unwrap_or("{}")).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
            }
            if done(&got) {
                return got;
            }
        }
        panic!("events did not arrive; got {got:?}");
    }
}

fn of_run<'a>(events: &'a [Value], run_id: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["detail"]["runId"] == run_id).collect()
}

#[tokio::test]
async fn a_runs_lifecycle_arrives_on_eventbridge_in_order_with_stable_ids() {
    let ctx = Ctx::new(100).await;
    let sub = Subscriber::for_workspace(&ctx.workspace_id).await;
    let ids = ctx.people("ev", 3).await;
    let run_id = ctx
        .start(json!({"enrichmentId":"email_domain","scope":{"type":"explicit_leads","leadIds":ids},"input":{}}))
        .await;
    let run = settle(&ctx, &run_id).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(run["trigger"]["source"], "api", "an API-created run says so: {}", run["trigger"]);
    assert!(run["trigger"].get("ruleId").is_none_or(Value::is_null), "{}", run["trigger"]);

    let events = sub.collect(|got| of_run(got, &run_id).len() >= 3).await;
    let mine = of_run(&events, &run_id);
    let types: Vec<&str> = mine.iter().map(|e| e["detail-type"].as_str().unwrap()).collect();
    let mut by_time: Vec<&&Value> = mine.iter().collect();
    by_time.sort_by_key(|e| e["detail"]["occurredAt"].as_str().unwrap().to_string());
    let ordered: Vec<&str> = by_time.iter().map(|e| e["detail-type"].as_str().unwrap()).collect();
    assert_eq!(
        ordered,
        ["enrichment.run.created", "enrichment.run.started", "enrichment.run.completed"],
        "occurredAt must follow the lifecycle (arrival order was {types:?})"
    );
    for e in &mine {
        assert_eq!(e["source"], "puffle");
        let d = &e["detail"];
        let t = RunEventType::parse(e["detail-type"].as_str().unwrap()).unwrap();
        assert_eq!(d["eventId"], event_id(&run_id, t), "eventId is derived from run and type");
        assert_eq!(d["workspaceId"], ctx.workspace_id.as_str());
        assert_eq!(d["enrichmentId"], "email_domain");
        for k in ["counts", "cost", "timing", "status", "occurredAt"] {
            assert!(!d[k].is_null(), "detail.{k} missing: {d}");
        }
    }
    let last = by_time.last().unwrap();
    assert_eq!(last["detail"]["counts"]["completed"], 3);
    let distinct: HashSet<&str> = mine.iter().map(|e| e["detail"]["eventId"].as_str().unwrap()).collect();
    assert_eq!(distinct.len(), mine.len(), "one event per transition");

    // The stream's log lines for this run carry the create request's
    // correlation id (the local stack's logs: what CloudWatch would get).
    let correlation = run["trigger"]["correlationId"].as_str().expect("trigger.correlationId").to_string();
    let run_dir = std::env::var("RUN_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.run"));
    let mut published = vec![];
    for _ in 0..50 {
        published = ["api.log", "worker.log"]
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(run_dir.join(f))
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
            .filter(|l| l["message"] == "event published" && l["run_id"] == run_id.as_str())
            .collect();
        if published.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(published.len() >= 3, "the stream logged {} events of {run_id} in {}", published.len(), run_dir.display());
    for l in &published {
        assert_eq!(l["correlation_id"], correlation.as_str(), "{l}");
    }
}

#[tokio::test]
async fn a_redelivered_stream_batch_publishes_the_same_event_ids() {
    let ctx = Ctx::new(100).await;
    let ids = ctx.people("redeliver", 2).await;
    let run_id = ctx
        .start(json!({"enrichmentId":"email_domain","scope":{"type":"explicit_leads","leadIds":ids},"input":{}}))
        .await;
    settle(&ctx, &run_id).await;
    let sub = Subscriber::for_workspace(&ctx.workspace_id).await;

    // Read this run's records back from the real stream, and hand them to the
    // handler again, as a retried Lambda invocation would.
    let app = puffle_tests::app().await;
    let records = stream_records_of(&app, &run_id).await;
    assert!(records.len() >= 3, "expected the run's insert and status changes, got {}", records.len());
    assert_eq!(app.handle_stream(&records).await, None);
    let events = sub.collect(|got| of_run(got, &run_id).len() >= 3).await;
    let ids: BTreeMap<String, String> = of_run(&events, &run_id)
        .iter()
        .map(|e| (e["detail-type"].as_str().unwrap().to_string(), e["detail"]["eventId"].as_str().unwrap().to_string()))
        .collect();
    for t in [RunEventType::Created, RunEventType::Started, RunEventType::Completed] {
        assert_eq!(ids.get(t.as_str()), Some(&event_id(&run_id, t)), "{t:?}");
    }
}

/// The stream records of one run's item, read through the Streams API.
async fn stream_records_of(app: &puffle_app::App, run_id: &str) -> Vec<puffle_aws::stream::StreamRecord> {
    stream_records(app, |r| r.key("sk") == Some(run_id)).await
}

/// Every stream record `keep` selects, from the start of each shard.
async fn stream_records(
    app: &puffle_app::App,
    keep: impl Fn(&puffle_aws::stream::StreamRecord) -> bool,
) -> Vec<puffle_aws::stream::StreamRecord> {
    let streams = aws_sdk_dynamodbstreams::Client::new(&app.aws.sdk);
    let t = app.store().client().describe_table().table_name(app.store().table()).send().await.unwrap();
    let arn = t.table.unwrap().latest_stream_arn.unwrap();
    let desc = streams.describe_stream().stream_arn(&arn).send().await.unwrap().stream_description.unwrap();
    let mut out = vec![];
    for shard in desc.shards() {
        let mut it = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(i) = it {
            // Raw GetRecords, as the local poller reads it (see local/src/stream.rs).
            let text = reqwest::Client::new()
                .post(std::env::var("AWS_ENDPOINT_URL_DYNAMODB_STREAMS").unwrap())
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amz-target", "DynamoDBStreams_20120810.GetRecords")
                .header("authorization", "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
                .body(json!({"ShardIterator": i, "Limit": 1000}).to_string())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let (records, next) = puffle_http::stream::parse_get_records(&text).unwrap();
            let empty = records.is_empty();
            out.extend(records.into_iter().filter(|r| keep(r)));
            it = if empty { None } else { next };
        }
    }
    out
}

async fn person_list(ctx: &Ctx) -> String {
    let r = ctx.post("/api/lists", json!({"name":"rules","leadType":"person"})).await;
    assert_eq!(r.status, 201, "{r:?}");
    r.body["list"]["id"].as_str().unwrap().to_string()
}

async fn rule_runs(ctx: &Ctx, list: &str, rule: &str) -> Vec<Value> {
    let r = ctx.get(&format!("/api/lists/{list}/rules/{rule}/runs")).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["runs"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_rule_enriches_leads_as_they_join_in_few_runs_and_never_twice() {
    let ctx = Ctx::new(5_000).await;
    let list = person_list(&ctx).await;
    let r = ctx.post(&format!("/api/lists/{list}/rules"), json!({"enrichmentId":"email_domain","input":{}})).await;
    assert_eq!(r.status, 201, "{r:?}");
    let rule = &r.body["rule"];
    assert_eq!(rule["output"], json!({"target":"lead","attributeKey":"email_domain"}));
    assert_eq!(rule["writePolicy"], "overwrite");
    let rule_id = rule["id"].as_str().unwrap().to_string();
    let listed = ctx.get(&format!("/api/lists/{list}/rules")).await;
    assert_eq!(listed.body["rules"].as_array().unwrap().len(), 1);

    let leads = ctx.leads((0..1000).map(|i| person(&format!("rule{i}"))).collect()).await;
    for chunk in leads.chunks(100) {
        let r = ctx.post(&format!("/api/lists/{list}/leads"), json!({"leadIds": chunk})).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    // Wait for the rule's runs to cover every Lead and finish (a hang guard).
    let mut runs = vec![];
    for _ in 0..240 {
        runs = rule_runs(&ctx, &list, &rule_id).await;
        let covered: u64 = runs.iter().map(|r| r["leadCount"].as_u64().unwrap()).sum();
        if covered >= 1000 && runs.iter().all(|r| r["status"] == "completed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(!runs.is_empty() && runs.len() <= 20, "1,000 joins in 10 calls start at most 20 runs, got {}", runs.len());
    let mut seen = HashSet::new();
    for r in &runs {
        let run = settle(&ctx, r["id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "completed");
        assert_eq!(run["trigger"]["source"], "rule");
        assert_eq!(run["trigger"]["ruleId"], rule_id.as_str());
        assert_counts_add_up(&run);
        for item in ctx.all_items(r["id"].as_str().unwrap(), "").await {
            assert!(seen.insert(item["leadId"].as_str().unwrap().to_string()), "a Lead was enriched twice: {item}");
        }
    }
    let expected: HashSet<String> = leads.iter().cloned().collect();
    assert_eq!(seen, expected, "the runs cover exactly the Leads that joined");
    assert_eq!(ctx.balance().await, 5_000 - 1_000, "charged like any run");

    // Adding them again changes no membership, so nothing starts.
    for chunk in leads.chunks(100) {
        ctx.post(&format!("/api/lists/{list}/leads"), json!({"leadIds": chunk})).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rule_runs(&ctx, &list, &rule_id).await.len(), runs.len());

    // The membership inserts, redelivered as a retried invocation would hand
    // them over again, in one batch and then cut otherwise than the first
    // time (as the stream bisects a failing batch): every membership is
    // claimed already, so nothing starts.
    let app = puffle_tests::app().await;
    let pk = format!("LIST#{}#{list}", ctx.workspace_id);
    let inserts = stream_records(&app, |r| r.key("pk") == Some(pk.as_str())).await;
    assert_eq!(inserts.len(), 1000, "one membership insert per Lead that joined");
    assert_eq!(app.handle_stream(&inserts).await, None);
    for batch in inserts.chunks(37) {
        assert_eq!(app.handle_stream(batch).await, None);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rule_runs(&ctx, &list, &rule_id).await.len(), runs.len(), "a redelivered join starts nothing");
    assert_eq!(ctx.balance().await, 5_000 - 1_000, "and charges nothing");
}

#[tokio::test]
async fn a_rule_the_workspace_cannot_afford_leaves_a_failed_run() {
    let ctx = Ctx::new(1).await;
    let sub = Subscriber::for_workspace(&ctx.workspace_id).await;
    let list = person_list(&ctx).await;
    let r = ctx.post(&format!("/api/lists/{list}/rules"), json!({"enrichmentId":"email_domain","input":{}})).await;
    let rule_id = r.body["rule"]["id"].as_str().unwrap().to_string();
    let leads = ctx.people("poor", 3).await;
    ctx.post(&format!("/api/lists/{list}/leads"), json!({"leadIds": leads})).await;
    let mut runs = vec![];
    for _ in 0..120 {
        runs = rule_runs(&ctx, &list, &rule_id).await;
        if !runs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "failed");
    let run = settle(&ctx, runs[0]["id"].as_str().unwrap()).await;
    assert_eq!(run["error"]["details"]["code"], "INSUFFICIENT_CREDITS");
    assert_eq!(run["error"]["details"]["required"], 3);
    assert_eq!(run["scope"]["counts"]["failed"], 3);
    assert_eq!(ctx.balance().await, 1, "nothing charged");

    // Subscribers hear of it: created, then failed, with the failure's counts.
    let run_id = runs[0]["id"].as_str().unwrap().to_string();
    let events = sub.collect(|got| of_run(got, &run_id).len() >= 2).await;
    let mine = of_run(&events, &run_id);
    let failed = mine.iter().find(|e| e["detail-type"] == "enrichment.run.failed").expect("a failed event");
    assert_eq!(failed["detail"]["eventId"], event_id(&run_id, RunEventType::Failed));
    assert_eq!(failed["detail"]["status"], "failed");
    assert_eq!(failed["detail"]["counts"]["failed"], 3, "{failed}");
    assert_eq!(failed["detail"]["cost"]["charged"], 0, "{failed}");
    let created = mine.iter().find(|e| e["detail-type"] == "enrichment.run.created").expect("a created event");
    assert!(created["detail"]["occurredAt"].as_str() <= failed["detail"]["occurredAt"].as_str());
    assert!(!mine.iter().any(|e| e["detail-type"] == "enrichment.run.started"), "a run that never ran never started");
}

#[tokio::test]
async fn a_cancelled_run_publishes_its_cancel_last() {
    let ctx = Ctx::new(10_000).await;
    let sub = Subscriber::for_workspace(&ctx.workspace_id).await;
    // Two plan pages: the cancel lands long before the run could finish.
    let ids = ctx.people("evcancel", 2_000).await;
    let list = ctx.list(&ids).await;
    let run_id =
        ctx.start(json!({"enrichmentId":"email_domain","scope":{"type":"list","listId":list},"input":{}})).await;
    let c = ctx.post(&format!("/api/enrichment/{run_id}/cancel"), json!({})).await;
    assert_eq!(c.status, 200, "{c:?}");
    let run = settle(&ctx, &run_id).await;
    assert_eq!(run["status"], "cancelled");

    let events =
        sub.collect(|got| of_run(got, &run_id).iter().any(|e| e["detail-type"] == "enrichment.run.cancelled")).await;
    let mut mine = of_run(&events, &run_id);
    mine.sort_by_key(|e| e["detail"]["occurredAt"].as_str().unwrap().to_string());
    let types: Vec<&str> = mine.iter().map(|e| e["detail-type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"enrichment.run.created"), "{types:?}");
    assert_eq!(types.last(), Some(&"enrichment.run.cancelled"), "the cancel occurs last: {types:?}");
    assert!(!types.contains(&"enrichment.run.completed"), "a cancelled run never completes: {types:?}");
    let cancelled = mine.last().unwrap();
    assert_eq!(cancelled["detail"]["eventId"], event_id(&run_id, RunEventType::Cancelled));
    assert_eq!(cancelled["detail"]["status"], "cancelled");
    assert!(!cancelled["detail"]["timing"]["cancelledAt"].is_null(), "{cancelled}");
}

#[tokio::test]
async fn rule_requests_are_checked_like_creates() {
    let ctx = Ctx::new(10).await;
    let list = person_list(&ctx).await;
    let mixed = ctx.post("/api/lists", json!({"name":"mixed"})).await.body["list"]["id"].as_str().unwrap().to_string();
    let cases = [
        (
            "/api/lists/list_nope/rules".to_string(),
            json!({"enrichmentId":"email_domain","input":{}}),
            404,
            "LIST_NOT_FOUND",
        ),
        (format!("/api/lists/{list}/rules"), json!({"enrichmentId":"nope","input":{}}), 404, "ENRICHMENT_NOT_FOUND"),
        (
            format!("/api/lists/{list}/rules"),
            json!({"enrichmentId":"company_domain","input":{}}),
            400,
            "SUBJECT_MISMATCH",
        ),
        (
            format!("/api/lists/{mixed}/rules"),
            json!({"enrichmentId":"email_domain","input":{}}),
            400,
            "SUBJECT_MISMATCH",
        ),
        (
            format!("/api/lists/{list}/rules"),
            json!({"enrichmentId":"phone_normalize","input":{"defaultCountry":"usa"}}),
            400,
            "INVALID_INPUT",
        ),
        (format!("/api/lists/{list}/rules"), json!({"enrichmentId":"email_domain"}), 400, "INVALID_REQUEST"),
    ];
    for (path, body, status, code) in cases {
        let r = ctx.post(&path, body.clone()).await;
        assert_eq!((r.status, r.body["code"].as_str()), (status, Some(code)), "{path} {body}: {r:?}");
    }
    let r = ctx.send("DELETE", &format!("/api/lists/{list}/rules/rule_nope"), None, Some(&ctx.token)).await;
    assert_eq!((r.status, r.body["code"].as_str()), (404, Some("RULE_NOT_FOUND")));
    let created =
        ctx.post(&format!("/api/lists/{list}/rules"), json!({"enrichmentId":"email_domain","input":{}})).await;
    let id = created.body["rule"]["id"].as_str().unwrap();
    let r = ctx.send("DELETE", &format!("/api/lists/{list}/rules/{id}"), None, Some(&ctx.token)).await;
    assert_eq!(r.status, 204);
    assert_eq!(ctx.get(&format!("/api/lists/{list}/rules")).await.body["rules"], json!([]));
    // Another workspace sees none of it.
    let other = Ctx::new(0).await;
    assert_eq!(other.get(&format!("/api/lists/{list}/rules")).await.status, 404);
}
