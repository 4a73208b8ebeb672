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
