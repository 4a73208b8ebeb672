//! Reads DynamoDB Local's change stream through the Streams API
//! (DescribeStream → GetShardIterator → GetRecords) and hands batches to the
//! same `handle_stream` the events Lambda runs, the way the DynamoDB event
//! source mapping would: in shard order, waiting up to `window` to fill a
//! batch, retrying from the first failed record, and checkpointing where it
//! stopped (so a restarted poller resumes instead of replaying the stream).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use puffle_app::App;
use puffle_aws::store::Row;
use puffle_aws::stream::{ChangeKind, StreamRecord};

/// Records per batch at most (the template's BatchSize).
const MAX_BATCH: usize = 500;

fn row(image: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>) -> Option<Row> {
    let image = image?.clone();
    if image.is_empty() {
        return None;
    }
    let item: serde_dynamo::Item = image.into();
    Some(item.into())
}

fn convert(r: &aws_sdk_dynamodbstreams::types::Record) -> Option<StreamRecord> {
    let d = r.dynamodb()?;
    Some(StreamRecord {
        event_id: r.event_id()?.to_string(),
        sequence_number: d.sequence_number()?.to_string(),
        kind: ChangeKind::parse(r.event_name()?.as_str())?,
        created_at_ms: d.approximate_creation_date_time().map(|t| t.secs().max(0) as u64 * 1000).unwrap_or(0),
        keys: row(d.keys.as_ref()).unwrap_or_default(),
        old_image: row(d.old_image.as_ref()),
        new_image: row(d.new_image.as_ref()),
    })
}

struct Shard {
    iterator: Option<String>,
    buffer: Vec<StreamRecord>,
    since: Option<Instant>,
}

pub async fn run(app: App, window: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let streams = aws_sdk_dynamodbstreams::Client::new(&app.aws.sdk);
    let mut arn: Option<String> = None;
    let mut shards: HashMap<String, Shard> = HashMap::new();
    let mut closed: HashSet<String> = HashSet::new();
    loop {
        if *stop.borrow() {
            return;
        }
        match poll_once(&app, &streams, &mut arn, &mut shards, &mut closed, window).await {
            Ok(true) => {}
            Ok(false) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.changed() => return,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "stream poll failed; retrying");
                arn = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One pass over the shards; true when it did any work.
async fn poll_once(
    app: &App,
    streams: &aws_sdk_dynamodbstreams::Client,
    arn: &mut Option<String>,
    shards: &mut HashMap<String, Shard>,
    closed: &mut HashSet<String>,
    window: Duration,
) -> anyhow::Result<bool> {
    if arn.is_none() {
        let t = app.store().client().describe_table().table_name(app.store().table()).send().await?;
        *arn = t.table.and_then(|t| t.latest_stream_arn);
        if arn.is_none() {
            anyhow::bail!("table {} has no stream", app.store().table());
        }
        shards.clear();
    }
    let stream_arn = arn.clone().expect("set above");
    // New shards (DynamoDB rolls them over): start each at its checkpoint.
    let mut start = None;
    loop {
        let d = streams.describe_stream().stream_arn(&stream_arn).set_exclusive_start_shard_id(start).send().await?;
        let Some(desc) = d.stream_description else { break };
        for s in desc.shards() {
            let Some(id) = s.shard_id() else { continue };
            if shards.contains_key(id) || closed.contains(id) {
                continue;
            }
            let req = streams.get_shard_iterator().stream_arn(&stream_arn).shard_id(id);
            let req = match app.store().stream_checkpoint(id).await? {
                Some(seq) => req.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(seq),
                None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let it = req.send().await?.shard_iterator;
            shards.insert(id.to_string(), Shard { iterator: it, buffer: vec![], since: None });
        }
        start = desc.last_evaluated_shard_id;
        if start.is_none() {
            break;
        }
    }
    let mut worked = false;
    let ids: Vec<String> = shards.keys().cloned().collect();
    for id in ids {
        let shard = shards.get_mut(&id).expect("listed");
        if let (Some(it), true) = (shard.iterator.clone(), shard.buffer.len() < MAX_BATCH) {
            let out = streams.get_records().shard_iterator(it).limit((MAX_BATCH - shard.buffer.len()) as i32).send().await?;
            let got: Vec<StreamRecord> = out.records().iter().filter_map(convert).collect();
            if !got.is_empty() && shard.since.is_none() {
                shard.since = Some(Instant::now());
            }
            shard.buffer.extend(got);
            shard.iterator = out.next_shard_iterator;
        }
        let ripe = shard.since.is_some_and(|t| t.elapsed() >= window) || shard.buffer.len() >= MAX_BATCH;
        if ripe && !shard.buffer.is_empty() {
            worked = true;
            let batch = std::mem::take(&mut shard.buffer);
            match app.handle_stream(&batch).await {
                None => {
                    // Checkpoint only batches that held more than checkpoints:
                    // the checkpoint write is itself a stream record.
                    let meaningful = batch.iter().any(|r| r.key("pk") != Some("CONFIG"));
                    if meaningful {
                        let last = &batch.last().expect("non-empty").sequence_number;
                        app.store().set_stream_checkpoint(&id, last).await?;
                    }
                    shard.since = None;
                }
                Some(failed) => {
                    // Redeliver from the first failed record after a pause.
                    let from = batch.iter().position(|r| r.sequence_number == failed).unwrap_or(0);
                    shard.buffer = batch[from..].to_vec();
                    shard.since = Some(Instant::now());
                }
            }
        }
        if shard.iterator.is_none() && shard.buffer.is_empty() {
            closed.insert(id.clone());
            shards.remove(&id);
        }
    }
    Ok(worked)
}
