//! Table and queue definitions, read from `template.yaml` — the one source of
//! truth for what AWS deploys and what the local stack creates.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml::Value;

use crate::error::{classify, StoreError};

pub const TEMPLATE: &str = include_str!("../../../template.yaml");

/// Local resource name for a template logical id (`Table` → `puffle-table`).
pub fn local_name(logical_id: &str) -> String {
    format!("puffle-{}", logical_id.to_lowercase())
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub logical_id: String,
    pub attributes: Vec<(String, String)>,
    pub key_schema: Vec<(String, String)>,
    pub gsis: Vec<GsiDef>,
    pub ttl_attribute: Option<String>,
    /// `StreamSpecification.StreamViewType`, when the table has a stream.
    pub stream_view_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GsiDef {
    pub name: String,
    pub key_schema: Vec<(String, String)>,
    pub projection: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueDef {
    pub logical_id: String,
    pub visibility_timeout: u32,
    pub retention: u32,
    /// Dead-letter queue logical id and maxReceiveCount.
    pub redrive: Option<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Definitions {
    pub tables: Vec<TableDef>,
    pub queues: Vec<QueueDef>,
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

fn s(v: &Value, k: &str) -> String {
    untag(&v[k])
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| untag(&v[k]).as_u64().map(|n| n.to_string()).unwrap_or_default())
}

fn pairs(v: &Value, a: &str, b: &str) -> Vec<(String, String)> {
    v.as_sequence().map(|seq| seq.iter().map(|e| (s(e, a), s(e, b))).collect()).unwrap_or_default()
}

fn num(v: &Value, default: u32) -> u32 {
    match untag(v) {
        Value::Number(n) => n.as_u64().map(|n| n as u32).unwrap_or(default),
        Value::String(s) => s.parse().unwrap_or(default),
        _ => default,
    }
}

pub fn parse(template: &str) -> Result<Definitions, String> {
    let doc: Value = serde_yaml::from_str(template).map_err(|e| format!("template.yaml: {e}"))?;
    let resources = doc["Resources"].as_mapping().ok_or("template.yaml has no Resources")?;
    let mut defs = Definitions { tables: vec![], queues: vec![] };
    let ordered: BTreeMap<String, &Value> =
        resources.iter().filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v))).collect();
    for (id, res) in ordered {
        let props = &res["Properties"];
        match res["Type"].as_str() {
            Some("AWS::DynamoDB::Table") => defs.tables.push(TableDef {
                logical_id: id,
                attributes: pairs(&props["AttributeDefinitions"], "AttributeName", "AttributeType"),
                key_schema: pairs(&props["KeySchema"], "AttributeName", "KeyType"),
                gsis: props["GlobalSecondaryIndexes"]
                    .as_sequence()
                    .map(|g| {
                        g.iter()
                            .map(|i| GsiDef {
                                name: s(i, "IndexName"),
                                key_schema: pairs(&i["KeySchema"], "AttributeName", "KeyType"),
                                projection: s(&i["Projection"], "ProjectionType"),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                ttl_attribute: props["TimeToLiveSpecification"]["AttributeName"].as_str().map(str::to_string),
                stream_view_type: props["StreamSpecification"]["StreamViewType"].as_str().map(str::to_string),
            }),
            Some("AWS::SQS::Queue") => {
                let redrive = &props["RedrivePolicy"];
                let target = untag(&redrive["deadLetterTargetArn"]);
                // `!GetAtt WorkDeadLetterQueue.Arn` → `WorkDeadLetterQueue`
                let dlq = target.as_str().map(|t| t.trim_end_matches(".Arn").to_string());
                defs.queues.push(QueueDef {
                    logical_id: id,
                    visibility_timeout: num(&props["VisibilityTimeout"], 30),
                    retention: num(&props["MessageRetentionPeriod"], 345_600),
                    redrive: dlq.map(|d| (d, num(&redrive["maxReceiveCount"], 5))),
                })
            }
            _ => {}
        }
    }
    Ok(defs)
}

pub fn definitions() -> Definitions {
    parse(TEMPLATE).expect("template.yaml is checked by tests")
}

/// Local knobs (env) layered over the template's queue settings, so tests do
/// not wait six minutes for a visibility timeout.
#[derive(Debug, Clone)]
pub struct LocalOverrides {
    pub visibility_timeout: Option<u32>,
    pub max_receive_count: Option<u32>,
}

impl LocalOverrides {
    pub fn from_env() -> Self {
        let n = |k: &str| std::env::var(k).ok().and_then(|v| v.parse().ok());
        LocalOverrides {
            visibility_timeout: n("PUFFLE_LOCAL_VISIBILITY_TIMEOUT"),
            max_receive_count: n("PUFFLE_LOCAL_MAX_RECEIVE_COUNT"),
        }
    }
}

/// Creates the template's tables and queues if they are missing (idempotent).
pub async fn provision(
    db: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    overrides: &LocalOverrides,
) -> Result<(), StoreError> {
    let defs = definitions();
    let existing = db.list_tables().send().await.map_err(classify)?.table_names.unwrap_or_default();
    for t in &defs.tables {
        let name = local_name(&t.logical_id);
        if existing.contains(&name) {
            continue;
        }
        let key = |(n, k): &(String, String)| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(if k == "HASH" { KeyType::Hash } else { KeyType::Range })
                .build()
                .expect("key schema")
        };
        let mut req = db.create_table().table_name(&name).billing_mode(BillingMode::PayPerRequest);
        for (n, ty) in &t.attributes {
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(n)
                    .attribute_type(ScalarAttributeType::from(ty.as_str()))
                    .build()
                    .expect("attribute definition"),
            );
        }
        for k in &t.key_schema {
            req = req.key_schema(key(k));
        }
        for g in &t.gsis {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&g.name)
                    .set_key_schema(Some(g.key_schema.iter().map(key).collect()))
                    .projection(
                        Projection::builder().projection_type(ProjectionType::from(g.projection.as_str())).build(),
                    )
                    .build()
                    .expect("gsi"),
            );
        }
        if let Some(view) = &t.stream_view_type {
            req = req.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(view.as_str()))
                    .build()
                    .expect("stream specification"),
            );
        }
        match req.send().await {
            Ok(_) => {}
            Err(e) => {
                let err = classify(e);
                // Two starters racing: the other one created it.
                if !matches!(&err, StoreError::Other(m) if m.contains("ResourceInUse")) {
                    return Err(err);
                }
            }
        }
        if let Some(ttl) = &t.ttl_attribute {
            let _ = db
                .update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder().attribute_name(ttl).enabled(true).build().expect("ttl"),
                )
                .send()
                .await;
        }
    }
    // Dead-letter queues first: the work queue's redrive policy names them.
    let mut queues = defs.queues.clone();
    queues.sort_by_key(|q| q.redrive.is_some());
    for q in &queues {
        let mut req = sqs
            .create_queue()
            .queue_name(local_name(&q.logical_id))
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                overrides.visibility_timeout.unwrap_or(q.visibility_timeout).to_string(),
            )
            .attributes(QueueAttributeName::MessageRetentionPeriod, q.retention.to_string());
        if let Some((dlq, max)) = &q.redrive {
            let dlq_url = sqs
                .get_queue_url()
                .queue_name(local_name(dlq))
                .send()
                .await
                .map_err(classify)?
                .queue_url
                .unwrap_or_default();
            let arn = sqs
                .get_queue_attributes()
                .queue_url(dlq_url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(classify)?
                .attributes
                .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
                .unwrap_or_default();
            let policy = serde_json::json!({
                "deadLetterTargetArn": arn,
                "maxReceiveCount": overrides.max_receive_count.unwrap_or(*max).to_string(),
            });
            req = req.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        req.send().await.map_err(classify)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_defines_the_table_and_both_queues() {
        let d = definitions();
        assert_eq!(d.tables.len(), 1);
        let t = &d.tables[0];
        assert_eq!(t.key_schema, vec![("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]);
        assert_eq!(t.gsis[0].name, "gsi1");
        assert_eq!(t.gsis[1].name, "gsi2");
        assert_eq!(t.stream_view_type.as_deref(), Some("NEW_AND_OLD_IMAGES"));
        assert_eq!(t.ttl_attribute.as_deref(), Some("ttl"));
        let work = d.queues.iter().find(|q| q.logical_id == "WorkQueue").unwrap();
        assert_eq!(work.redrive.as_ref().unwrap().0, "WorkDeadLetterQueue");
        assert!(d.queues.iter().any(|q| q.logical_id == "WorkDeadLetterQueue"));
    }
}
