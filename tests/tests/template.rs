//! template.yaml is the one source of truth: the route table, the function
//! binaries, the SQS consumers and the local table and queues must all agree
//! with it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use puffle_aws::definitions::{definitions, local_name};
use puffle_http::routes::Function;
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
            // SAM's rust-cargolambda build reads the binary from here (and
            // builds every binary when it is missing).
            let binary = r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} has no Metadata.BuildProperties.Binary"))
                .to_string();
            assert!(r["Metadata"]["Binary"].is_null(), "{id}: Binary belongs under Metadata.BuildProperties");
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
    // `{id}` or `{ruleId}` (the names the handlers read).
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
    assert_eq!(files, binaries, "functions/src/bin/*.rs vs the template's Metadata.BuildProperties.Binary");
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
    // Every other function is HTTP.
    for (id, (binary, events)) in &fns {
        let allowed = match binary.as_str() {
            "worker" | "dlq" | "webhooks" => "SQS",
            "events" => "DynamoDB",
            "reaper" => "Schedule",
            _ => "HttpApi",
        };
        assert!(events.values().all(|e| e["Type"].as_str() == Some(allowed)), "{id}: only {allowed} events");
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

fn resource<'a>(doc: &'a Value, id: &str) -> &'a Value {
    let r = &doc["Resources"][id];
    assert!(!r.is_null(), "no resource {id}");
    r
}

#[test]
fn the_table_outlives_the_stack_and_is_protected_in_prod() {
    let doc = template();
    let t = resource(&doc, "Table");
    assert_eq!(t["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(t["UpdateReplacePolicy"].as_str(), Some("Retain"));
    // DeletionProtectionEnabled follows the ProtectTable condition, which is
    // on for Stage=prod unless DeletionProtection says otherwise.
    let p = &t["Properties"]["DeletionProtectionEnabled"];
    let Value::Tagged(if_) = p else { panic!("{p:?}") };
    assert_eq!(if_.tag.to_string(), "!If");
    assert_eq!(scalar(&if_.value[0]), "ProtectTable");
    let cond = format!("{:?}", doc["Conditions"]["ProtectTable"]);
    assert!(cond.contains("IsProd") && cond.contains("auto"), "{cond}");
    assert_eq!(format!("{:?}", doc["Conditions"]["IsProd"]).matches("prod").count(), 1);
    assert_eq!(doc["Parameters"]["DeletionProtection"]["Default"].as_str(), Some("auto"));
}

#[test]
fn functions_trace_and_only_the_self_feeding_ones_allow_recursive_loops() {
    let doc = template();
    assert_eq!(doc["Globals"]["Function"]["Tracing"].as_str(), Some("Active"));
    // The worker's plan steps and the webhook retries send their own next message.
    let self_feeding = ["worker", "webhooks"];
    for (id, (binary, _)) in functions(&doc) {
        let p = &resource(&doc, &id)["Properties"];
        let want = if self_feeding.contains(&binary.as_str()) { Some("Allow") } else { None };
        assert_eq!(p["RecursiveLoop"].as_str(), want, "{id}");
    }
}

/// Deployed functions are arm64; x86_64 exists only for building where
/// Rust's aarch64 standard library is missing (CI's sam build check), and no
/// function overrides the one global setting.
#[test]
fn functions_are_arm64_unless_the_build_asks_otherwise() {
    let doc = template();
    let archs = doc["Globals"]["Function"]["Architectures"].as_sequence().expect("Globals Architectures");
    assert_eq!(archs.iter().map(tagged).collect::<Vec<_>>(), vec![("Ref".to_string(), "Architecture".to_string())]);
    let param = &doc["Parameters"]["Architecture"];
    assert_eq!(param["Default"].as_str(), Some("arm64"));
    let allowed: Vec<String> =
        param["AllowedValues"].as_sequence().expect("AllowedValues").iter().map(scalar).collect();
    assert_eq!(allowed, ["arm64", "x86_64"]);
    for (id, _) in functions(&doc) {
        assert!(resource(&doc, &id)["Properties"]["Architectures"].is_null(), "{id} sets its own Architectures");
    }
}

/// Every alarm the README documents, each wired to the alarm topic.
#[test]
fn alarms_cover_dead_letters_queue_age_functions_api_and_table_throttles() {
    let doc = template();
    let res = resources(&doc);
    let alarms: BTreeMap<&String, &Value> =
        res.iter().filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm")).collect();
    for (id, a) in &alarms {
        let actions: Vec<(String, String)> =
            a["Properties"]["AlarmActions"].as_sequence().expect("AlarmActions").iter().map(tagged).collect();
        assert_eq!(actions, vec![("Ref".to_string(), "AlarmTopic".to_string())], "{id}");
    }
    assert_eq!(resource(&doc, "AlarmTopic")["Type"].as_str(), Some("AWS::SNS::Topic"));
    let sub = resource(&doc, "AlarmEmailSubscription");
    assert_eq!(sub["Condition"].as_str(), Some("HasAlarmEmail"));
    assert_eq!(tagged(&sub["Properties"]["Endpoint"]), ("Ref".into(), "AlarmEmail".into()));
    let metric = |a: &Value| a["Properties"]["MetricName"].as_str().unwrap_or_default().to_string();
    let dlq = alarms[&"DeadLetterAlarm".to_string()];
    assert_eq!(metric(dlq), "NumberOfMessagesReceived", "the DLQ handler drains the DLQ: alarm on arrivals");
    assert!(format!("{:?}", dlq["Properties"]["Dimensions"]).contains("WorkDeadLetterQueue"));
    assert_eq!(metric(alarms[&"QueueAgeAlarm".to_string()]), "ApproximateAgeOfOldestMessage");
    let api = format!("{:?}", alarms[&"Api5xxAlarm".to_string()]["Properties"]["Metrics"]);
    assert!(api.contains("5xx") && api.contains("Count"), "a rate: 5xx over requests");
    let ddb = format!("{:?}", alarms[&"TableThrottleAlarm".to_string()]["Properties"]["Metrics"]);
    assert!(ddb.contains("ReadThrottleEvents") && ddb.contains("WriteThrottleEvents") && ddb.contains("gsi1"));
    // Errors and throttles of every function, whatever functions exist.
    for id in functions(&doc).keys() {
        for m in ["Errors", "Throttles"] {
            let found = alarms.values().any(|a| {
                metric(a) == m
                    && a["Properties"]["Namespace"].as_str() == Some("AWS/Lambda")
                    && format!("{:?}", a["Properties"]["Dimensions"]).contains(&format!("\"{id}\""))
            });
            assert!(found, "no {m} alarm for {id}");
        }
    }
    let dash = resource(&doc, "Dashboard");
    assert_eq!(dash["Type"].as_str(), Some("AWS::CloudWatch::Dashboard"));
}

#[test]
fn costly_routes_have_their_own_throttles_and_concurrency_is_a_parameter() {
    let doc = template();
    let api = &resource(&doc, "HttpApi")["Properties"];
    for route in ["POST /api/enrichment", "POST /api/leads"] {
        let s = &api["RouteSettings"][route];
        assert!(!s["ThrottlingRateLimit"].is_null() && !s["ThrottlingBurstLimit"].is_null(), "{route}");
        assert!(ROUTES.iter().any(|r| format!("{} {}", r.method, r.path) == route), "{route} is a route");
    }
    for p in ["ApiReservedConcurrency", "WorkerReservedConcurrency", "TokenRateLimits", "AlarmEmail"] {
        assert!(!doc["Parameters"][p].is_null(), "parameter {p}");
    }
    let worker = &resource(&doc, "WorkerFunction")["Properties"];
    assert!(format!("{:?}", worker["ReservedConcurrentExecutions"]).contains("WorkerReservedConcurrency"));
    assert!(
        format!("{:?}", doc["Globals"]["Function"]["ReservedConcurrentExecutions"]).contains("ApiReservedConcurrency")
    );
}
