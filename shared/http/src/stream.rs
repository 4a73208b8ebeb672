//! The events function's entry: Lambda's DynamoDB stream event in, partial
//! batch failures out (`ReportBatchItemFailures`: the first failed record's
//! sequence number; Lambda retries from it).

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::FutureExt;
use puffle_app::App;
use puffle_aws::store::Row;
use puffle_aws::stream::{ChangeKind, StreamRecord};

fn image(item: serde_dynamo::Item) -> Option<Row> {
    let row: Row = item.into();
    (!row.is_empty()).then_some(row)
}

/// One Lambda stream record as the event flow reads it.
pub fn record(r: EventRecord) -> Option<StreamRecord> {
    let kind = ChangeKind::parse(&r.event_name)?;
    let change = r.change;
    Some(StreamRecord {
        event_id: r.event_id,
        sequence_number: change.sequence_number.clone().unwrap_or_default(),
        kind,
        created_at_ms: change.approximate_creation_date_time.timestamp_millis().max(0) as u64,
        keys: change.keys.into(),
        old_image: image(change.old_image),
        new_image: image(change.new_image),
    })
}

#[derive(serde::Deserialize)]
struct GetRecordsOutput {
    #[serde(rename = "Records", default)]
    records: Vec<EventRecord>,
    #[serde(rename = "NextShardIterator", default)]
    next_shard_iterator: Option<String>,
}

/// A Streams API `GetRecords` answer (its JSON, as DynamoDB Local sends it):
/// the records, in the same shape as Lambda's DynamoDB event, and the next
/// shard iterator (None: the shard is closed).
pub fn parse_get_records(json: &str) -> Result<(Vec<StreamRecord>, Option<String>), serde_json::Error> {
    let mut v: serde_json::Value = serde_json::from_str(json)?;
    if let Some(records) = v.get_mut("Records").and_then(|r| r.as_array_mut()) {
        for r in records {
            for image in ["Keys", "NewImage", "OldImage"] {
                if let Some(serde_json::Value::Object(m)) = r.get_mut("dynamodb").and_then(|d| d.get_mut(image)) {
                    m.values_mut().for_each(repair_empty_map);
                }
            }
        }
    }
    let out: GetRecordsOutput = serde_json::from_value(v)?;
    Ok((out.records.into_iter().filter_map(record).collect(), out.next_shard_iterator))
}

/// DynamoDB Local writes an empty map attribute as `{}` in stream records
/// (DynamoDB writes `{"M":{}}`); read it as the empty map it is.
fn repair_empty_map(av: &mut serde_json::Value) {
    let Some(obj) = av.as_object_mut() else { return };
    if obj.is_empty() {
        obj.insert("M".into(), serde_json::json!({}));
        return;
    }
    if let Some(serde_json::Value::Object(m)) = obj.get_mut("M") {
        m.values_mut().for_each(repair_empty_map);
    }
    if let Some(serde_json::Value::Array(l)) = obj.get_mut("L") {
        l.iter_mut().for_each(repair_empty_map);
    }
}

pub async fn handle_event(app: &App, event: Event) -> DynamoDbEventResponse {
    let records: Vec<StreamRecord> = event.records.into_iter().filter_map(record).collect();
    let mut resp = DynamoDbEventResponse::default();
    if let Some(seq) = app.handle_stream(&records).boxed().await {
        let mut f = DynamoDbBatchItemFailure::default();
        f.item_identifier = Some(seq);
        resp.batch_item_failures.push(f);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_get_records_with_dynamodb_locals_empty_maps() {
        let json = r#"{"Records":[{"eventID":"e1","eventName":"INSERT","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"ddblocal",
            "dynamodb":{"ApproximateCreationDateTime":1795996800,"Keys":{"pk":{"S":"RUNS#ws_1"},"sk":{"S":"run_1"}},
            "NewImage":{"pk":{"S":"RUNS#ws_1"},"sk":{"S":"run_1"},"input":{},"deep":{"M":{"x":{},"l":{"L":[{}]}}}},
            "SequenceNumber":"000000000000000000001","SizeBytes":10,"StreamViewType":"NEW_AND_OLD_IMAGES"}}],"NextShardIterator":"it-2"}"#;
        let (records, next) = parse_get_records(json).unwrap();
        assert_eq!(next.as_deref(), Some("it-2"));
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(
            (r.kind, r.key("sk"), r.sequence_number.as_str()),
            (ChangeKind::Insert, Some("run_1"), "000000000000000000001")
        );
        let image = r.new_image.as_ref().unwrap();
        assert!(image["input"].as_m().unwrap().is_empty());
        assert!(image["deep"].as_m().unwrap()["x"].as_m().unwrap().is_empty());
        assert!(r.old_image.is_none());
    }
}
