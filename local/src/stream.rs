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
use puffle_aws::stream::StreamRecord;

/// Records per batch at most (the template's BatchSize).
const MAX_BATCH: usize = 500;

/// GetRecords, read as the JSON DynamoDB (Local) sends: the same record shape
/// Lambda's DynamoDB event carries, so it goes through the same conversion.
/// (The Rust SDK rejects some of DynamoDB Local's attribute values in
/// GetRecords answers: "Union did not contain a valid variant".)
async fn get_records(iterator: &str, limit: usize) -> anyhow::Result<(Vec<StreamRecord>, Option<String>)> {
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL_DYNAMODB"))
        .map_err(|_| anyhow::anyhow!("the local stream poller needs AWS_ENDPOINT_URL_DYNAMODB_STREAMS"))?;
    let http = HTTP.get_or_init(reqwest::Client::new);
    let resp = http
        .post(endpoint)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "DynamoDBStreams_20120810.GetRecords")
        // DynamoDB Local wants the header's shape, not a valid signature.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(serde_json::json!({"ShardIterator": iterator, "Limit": limit}).to_string())
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        anyhow::bail!("GetRecords answered {status}: {}", text.chars().take(300).collect::<String>());
    }
    Ok(puffle_http::stream::parse_get_records(&text)?)
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
                tracing::warn!(error = ?e, "stream poll failed; retrying");
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
            let (got, next) = get_records(&it, MAX_BATCH - shard.buffer.len()).await?;
            if !got.is_empty() && shard.since.is_none() {
                shard.since = Some(Instant::now());
            }
            shard.buffer.extend(got);
            shard.iterator = next;
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
