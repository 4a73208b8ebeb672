//! template.yaml is the one source of truth: the route table, the function
//! binaries, the SQS consumers and the local table and queues must all agree
//! with it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use puffle_aws::definitions::{definitions, local_name};
use puffle_http::handlers::Function;
use puffle_http::routes::ROUTES;
use serde_yaml::Value;

/// A GSI as (name, key schema, projection), comparable across sources.
type Gsi = (String, Vec<(String, String)>, String);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    assert_eq!(text, puffle_aws::definitions::TEMPLATE, "the compiled-in template is the file on disk");
    serde_yaml::from_str(&text).expect("template.yaml parses")
}

/// `!Ref X` / `!GetAtt X.Arn` → (tag without `!`, value); plain values → ("", value).
fn tagged(v: &Value) -> (String, String) {
    match v {
        Value::Tagged(t) => (t.tag.to_string().trim_start_matches('!').to_string(), scalar(&t.value)),
        other => (String::new(), scalar(other)),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(t) => scalar(&t.value),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn resources(doc: &Value) -> BTreeMap<String, Value> {
    doc["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().expect("logical id").to_string(), v.clone()))
        .collect()
}

/// Logical id → (binary, events) of every AWS::Serverless::Function.
fn functions(doc: &Value) -> BTreeMap<String, (String, BTreeMap<String, Value>)> {
    resources(doc)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, r)| {
            let binary =
                r["Metadata"]["Binary"].as_str().unwrap_or_else(|| panic!("{id} has no Metadata.Binary")).to_string();
            let events = r["Properties"]["Events"]
                .as_mapping()
                .map(|m| m.iter().map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone())).collect())
                .unwrap_or_default();
            (id, (binary, events))
        })
        .collect()
}

fn bin_files() -> BTreeSet<String> {
    std::fs::read_dir(root().join("functions/src/bin"))
        .expect("functions/src/bin")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .collect()
}

#[test]
fn template_routes_and_the_route_table_name_the_same_functions() {
    let doc = template();
    let mut from_template = BTreeSet::new();
    for (id, (binary, events)) in functions(&doc) {
        for (name, ev) in events {
            if ev["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let p = &ev["Properties"];
            assert_eq!(tagged(&p["ApiId"]), ("Ref".into(), "HttpApi".into()), "{id}.{name} is on the HttpApi");
            let route = (scalar(&p["Method"]).to_uppercase(), scalar(&p["Path"]), binary.clone());
            assert!(from_template.insert(route.clone()), "route {route:?} appears twice in the template");
        }
    }
    let mut from_table = BTreeSet::new();
    for r in ROUTES {
        let route = (r.method.to_string(), r.path.to_string(), r.function.binary().to_string());
        assert!(from_table.insert(route.clone()), "route {route:?} appears twice in ROUTES");
    }
    assert!(!from_template.is_empty());
    let only_template: Vec<_> = from_template.difference(&from_table).collect();
    let only_table: Vec<_> = from_table.difference(&from_template).collect();
    assert!(
        only_template.is_empty() && only_table.is_empty(),
        "only in template.yaml: {only_template:?}\nonly in ROUTES: {only_table:?}"
    );
    // Every HTTP function serves at least one route, and path parameters are
    // all `{id}` (the name the handlers read).
    for f in Function::ALL {
        assert!(ROUTES.iter().any(|r| r.function == *f), "{f:?} serves no route");
    }
    for r in ROUTES {
        let params: Vec<&str> = r.path.split('/').filter(|s| s.starts_with('{')).collect();
        assert!(params.iter().all(|p| ["{id}", "{ruleId}", "{deliveryId}"].contains(p)), "{}: {params:?}", r.path);
    }
}

#[test]
fn every_binary_is_a_template_function_and_every_template_function_has_a_binary() {
    let doc = template();
    let fns = functions(&doc);
    let mut binaries = BTreeSet::new();
    for (id, (binary, _)) in &fns {
        assert!(binaries.insert(binary.clone()), "binary {binary} is used by two functions ({id})");
        let r = &resources(&doc)[id];
        assert_eq!(r["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{id}");
        assert_eq!(r["Properties"]["CodeUri"].as_str(), Some("./functions"), "{id}");
    }
    let files = bin_files();
    for b in &binaries {
        assert!(
            root().join(format!("functions/src/bin/{b}.rs")).is_file(),
            "template binary {b} has no functions/src/bin/{b}.rs"
        );
    }
    assert_eq!(files, binaries, "functions/src/bin/*.rs vs the template's Metadata.Binary");
    for f in Function::ALL {
        assert!(binaries.contains(f.binary()), "{f:?} ({}) is not deployed", f.binary());
    }
    for extra in ["worker", "dlq", "webhooks"] {
        assert!(binaries.contains(extra), "{extra} is not deployed");
    }
}

#[test]
fn worker_and_dlq_consume_their_queues_with_partial_batch_failures() {
    let doc = template();
    let fns = functions(&doc);
    let by_binary: BTreeMap<&str, &BTreeMap<String, Value>> = fns.values().map(|(b, e)| (b.as_str(), e)).collect();
    for (binary, queue) in [("worker", "WorkQueue"), ("dlq", "WorkDeadLetterQueue"), ("webhooks", "WebhookQueue")] {
        let events = by_binary.get(binary).unwrap_or_else(|| panic!("no {binary} function"));
        let sqs: Vec<&Value> = events.values().filter(|e| e["Type"].as_str() == Some("SQS")).collect();
        assert_eq!(sqs.len(), 1, "{binary} has one SQS event: {events:?}");
        assert_eq!(events.len(), 1, "{binary} has no other events");
        let p = &sqs[0]["Properties"];
        assert_eq!(tagged(&p["Queue"]), ("GetAtt".into(), format!("{queue}.Arn")), "{binary} consumes {queue}");
        let types: Vec<String> =
            p["FunctionResponseTypes"].as_sequence().expect("FunctionResponseTypes").iter().map(scalar).collect();
        assert_eq!(types, vec!["ReportBatchItemFailures".to_string()], "{binary}");
        assert!(p["BatchSize"] != Value::Null, "{binary} sets a BatchSize");
    }
    // The events function reads the table's stream, so a poison record
    // never blocks its shard: partial failures, bisection, bounded retries,
    // an on-failure queue.
    let events = by_binary.get("events").expect("an events function");
    let stream: Vec<&Value> = events.values().filter(|e| e["Type"].as_str() == Some("DynamoDB")).collect();
    assert_eq!((stream.len(), events.len()), (1, 1), "events has one DynamoDB stream event: {events:?}");
    let p = &stream[0]["Properties"];
    assert_eq!(tagged(&p["Stream"]), ("GetAtt".into(), "Table.StreamArn".into()));
    let types: Vec<String> =
        p["FunctionResponseTypes"].as_sequence().expect("FunctionResponseTypes").iter().map(scalar).collect();
    assert_eq!(types, vec!["ReportBatchItemFailures".to_string()]);
    assert_eq!(scalar(&p["BisectBatchOnFunctionError"]), "true");
    assert!(scalar(&p["MaximumRetryAttempts"]).parse::<u32>().is_ok_and(|n| n > 0 && n <= 100));
    assert_eq!(
        tagged(&p["DestinationConfig"]["OnFailure"]["Destination"]),
        ("GetAtt".into(), "EventsFailureQueue.Arn".into())
    );
    // The reaper runs on a schedule.
    let reaper = by_binary.get("reaper").expect("a reaper function");
    assert!(reaper.values().all(|e| e["Type"].as_str() == Some("Schedule")) && reaper.len() == 1, "{reaper:?}");
    // Nothing else consumes a queue or a stream.
    for (id, (binary, events)) in &fns {
        if !["worker", "dlq", "webhooks", "events", "reaper"].contains(&binary.as_str()) {
            assert!(events.values().all(|e| e["Type"].as_str() == Some("HttpApi")), "{id} has a non-HTTP event");
        }
    }
}

#[test]
fn definitions_read_the_template_faithfully() {
    let doc = template();
    let res = resources(&doc);
    let d = definitions();
    let tables: Vec<(&String, &Value)> =
        res.iter().filter(|(_, r)| r["Type"].as_str() == Some("AWS::DynamoDB::Table")).collect();
    assert_eq!(d.tables.len(), tables.len());
    let pairs = |v: &Value, a: &str, b: &str| -> Vec<(String, String)> {
        v.as_sequence().unwrap().iter().map(|e| (scalar(&e[a]), scalar(&e[b]))).collect()
    };
    for (id, t) in tables {
        let def = d.tables.iter().find(|x| &x.logical_id == id).unwrap_or_else(|| panic!("no definition for {id}"));
        let p = &t["Properties"];
        assert_eq!(def.key_schema, pairs(&p["KeySchema"], "AttributeName", "KeyType"), "{id}");
        assert_eq!(def.attributes, pairs(&p["AttributeDefinitions"], "AttributeName", "AttributeType"), "{id}");
        let gsis: Vec<Gsi> = p["GlobalSecondaryIndexes"]
            .as_sequence()
            .map(|s| {
                s.iter()
                    .map(|g| {
                        (
                            scalar(&g["IndexName"]),
                            pairs(&g["KeySchema"], "AttributeName", "KeyType"),
                            scalar(&g["Projection"]["ProjectionType"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let defined: Vec<Gsi> =
            def.gsis.iter().map(|g| (g.name.clone(), g.key_schema.clone(), g.projection.clone())).collect();
        assert_eq!(defined, gsis, "{id}");
        assert_eq!(def.ttl_attribute.as_deref(), p["TimeToLiveSpecification"]["AttributeName"].as_str(), "{id}");
    }
    let queues: Vec<(&String, &Value)> =
        res.iter().filter(|(_, r)| r["Type"].as_str() == Some("AWS::SQS::Queue")).collect();
    assert_eq!(d.queues.len(), queues.len());
    for (id, q) in queues {
        let def = d.queues.iter().find(|x| &x.logical_id == id).unwrap_or_else(|| panic!("no definition for {id}"));
        let p = &q["Properties"];
        assert_eq!(def.visibility_timeout.to_string(), scalar(&p["VisibilityTimeout"]), "{id}");
        assert_eq!(def.retention.to_string(), scalar(&p["MessageRetentionPeriod"]), "{id}");
        match p["RedrivePolicy"] {
            Value::Null => assert_eq!(def.redrive, None, "{id}"),
            ref r => {
                let (tag, target) = tagged(&r["deadLetterTargetArn"]);
                assert_eq!(tag, "GetAtt");
                let dlq = target.strip_suffix(".Arn").expect("…Arn").to_string();
                assert!(res.contains_key(&dlq), "{id} redrives to a missing {dlq}");
                assert_eq!(def.redrive, Some((dlq, scalar(&r["maxReceiveCount"]).parse().unwrap())), "{id}");
            }
        }
    }
    assert!(d
        .queues
        .iter()
        .any(|q| q.logical_id == "WorkQueue" && q.redrive.as_ref().is_some_and(|r| r.0 == "WorkDeadLetterQueue")));
}

#[tokio::test]
async fn local_table_matches_the_template() {
    let app = puffle_tests::app().await;
    let d = definitions();
    let def = d.tables.iter().find(|t| t.logical_id == "Table").expect("Table in template");
    let name = local_name("Table");
    let client = app.store().client();
    let out = client.describe_table().table_name(&name).send().await.expect("DescribeTable on the local table");
    let t = out.table().expect("table description");
    // (The SDK types are not named: this crate does not depend on the SDK.)
    macro_rules! keys {
        ($ks:expr) => {
            $ks.iter()
                .map(|k| (k.attribute_name().to_string(), k.key_type().as_str().to_string()))
                .collect::<Vec<(String, String)>>()
        };
    }
    assert_eq!(keys!(t.key_schema()), def.key_schema, "key schema of {name}");
    let mut attrs: Vec<(String, String)> = t
        .attribute_definitions()
        .iter()
        .map(|a| (a.attribute_name().to_string(), a.attribute_type().as_str().to_string()))
        .collect();
    let mut want_attrs = def.attributes.clone();
    attrs.sort();
    want_attrs.sort();
    assert_eq!(attrs, want_attrs, "attribute definitions of {name}");
    let mut gsis: Vec<Gsi> = t
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            (
                g.index_name().unwrap_or_default().to_string(),
                keys!(g.key_schema()),
                g.projection().and_then(|p| p.projection_type()).map(|p| p.as_str().to_string()).unwrap_or_default(),
            )
        })
        .collect();
    let mut want: Vec<Gsi> =
        def.gsis.iter().map(|g| (g.name.clone(), g.key_schema.clone(), g.projection.clone())).collect();
    gsis.sort();
    want.sort();
    assert_eq!(gsis, want, "GSIs of {name}");
    assert!(!want.is_empty());
    if let Some(ttl) = &def.ttl_attribute {
        let out = client.describe_time_to_live().table_name(&name).send().await.expect("DescribeTimeToLive");
        let d = out.time_to_live_description().expect("ttl description");
        assert_eq!(d.attribute_name(), Some(ttl.as_str()), "TTL attribute of {name}");
        assert_eq!(d.time_to_live_status().map(|s| s.as_str()), Some("ENABLED"));
    }
}

async fn queue_attributes(app: &puffle_app::App, logical_id: &str) -> (String, BTreeMap<String, String>) {
    let sqs = app.aws.queue.client();
    let url = sqs
        .get_queue_url()
        .queue_name(local_name(logical_id))
        .send()
        .await
        .unwrap_or_else(|e| panic!("local queue for {logical_id}: {e:?}"))
        .queue_url()
        .expect("queue url")
        .to_string();
    let out = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names("All".into())
        .send()
        .await
        .expect("GetQueueAttributes");
    let attrs = out
        .attributes()
        .map(|m| m.iter().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect())
        .unwrap_or_default();
    (url, attrs)
}

#[tokio::test]
async fn local_work_queue_redrives_to_the_dlq() {
    let app = puffle_tests::app().await;
    let d = definitions();
    let work = d.queues.iter().find(|q| q.logical_id == "WorkQueue").expect("WorkQueue");
    let (dlq_id, max) = work.redrive.clone().expect("WorkQueue has a redrive policy in the template");
    let (_, work_attrs) = queue_attributes(&app, "WorkQueue").await;
    let (_, dlq_attrs) = queue_attributes(&app, &dlq_id).await;
    let dlq_arn = dlq_attrs.get("QueueArn").expect("DLQ QueueArn");
    assert!(!dlq_arn.is_empty());
    let policy: serde_json::Value =
        serde_json::from_str(work_attrs.get("RedrivePolicy").expect("work queue RedrivePolicy"))
            .expect("RedrivePolicy is JSON");
    assert_eq!(policy["deadLetterTargetArn"].as_str(), Some(dlq_arn.as_str()), "{policy}");
    let got: u32 = match &policy["maxReceiveCount"] {
        serde_json::Value::String(s) => s.parse().unwrap(),
        n => n.as_u64().expect("maxReceiveCount") as u32,
    };
    // The local stack may lower it (PUFFLE_LOCAL_MAX_RECEIVE_COUNT) so
    // poison messages reach the DLQ quickly; otherwise the template's value.
    let want = std::env::var("PUFFLE_LOCAL_MAX_RECEIVE_COUNT").ok().and_then(|v| v.parse().ok()).unwrap_or(max);
    assert_eq!(got, want, "{policy}");
    assert!(got >= 1);
    // The DLQ itself does not redrive anywhere.
    assert!(dlq_attrs.get("RedrivePolicy").is_none_or(|p| p.is_empty()), "{dlq_attrs:?}");
    // The app's queue is that queue.
    let app_url = app.aws.queue.url().await.expect("app queue url");
    assert!(app_url.ends_with(&local_name("WorkQueue")), "{app_url}");
}
