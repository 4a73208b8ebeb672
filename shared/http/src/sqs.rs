//! SQS event handling for the worker and the DLQ handler, with partial
//! batch failures: only the messages that failed go back to the queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::future::BoxFuture;
use futures::FutureExt;
use puffle_app::worker::Delivery;
use puffle_app::{App, AppError};
use tracing::Instrument;

use crate::logging::correlation_span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    Worker,
    DeadLetters,
    /// The webhooks function: one delivery attempt per message.
    Webhooks,
}

impl Consumer {
    /// The binary (and template `Metadata.BuildProperties.Binary`) name.
    pub fn binary(self) -> &'static str {
        self.flow().binary
    }

    /// This consumer's flow (the local pollers and tests choose at run time).
    pub fn flow(self) -> Flow {
        match self {
            Consumer::Worker => WORKER,
            Consumer::DeadLetters => DEAD_LETTERS,
            Consumer::Webhooks => WEBHOOKS,
        }
    }
}

/// One message's handling.
pub type HandleOne = for<'a> fn(&'a App, &'a Message) -> BoxFuture<'a, Result<(), AppError>>;

/// What a queue's messages go through. A Lambda binary names its flow as a
/// constant (`serve_sqs(sqs::WEBHOOKS)`), so it links that flow's code
/// alone: choosing by `Consumer` at run time kept all three in each zip —
/// the worker's providers, HTML parser and DNS resolver in the dlq and
/// webhooks functions too.
#[derive(Clone, Copy)]
pub struct Flow {
    /// The binary (and template `Metadata.BuildProperties.Binary`) name.
    pub binary: &'static str,
    pub handle: HandleOne,
    /// A failed message comes back after a short, growing delay instead of
    /// the whole visibility timeout (the work queue).
    pub retry_backoff: bool,
}

pub const WORKER: Flow = Flow { binary: "worker", handle: work, retry_backoff: true };
pub const DEAD_LETTERS: Flow = Flow { binary: "dlq", handle: dead_letter, retry_backoff: false };
pub const WEBHOOKS: Flow = Flow { binary: "webhooks", handle: webhook, retry_backoff: false };

// Boxed: the flows nest deep enough to overflow rustc's layout query depth
// in the binaries otherwise.
fn work<'a>(app: &'a App, m: &'a Message) -> BoxFuture<'a, Result<(), AppError>> {
    app.handle_work(&m.body, Delivery { message_id: &m.id, receive_count: m.receive_count }).boxed()
}

fn dead_letter<'a>(app: &'a App, m: &'a Message) -> BoxFuture<'a, Result<(), AppError>> {
    app.handle_dead_letter(&m.body).boxed()
}

fn webhook<'a>(app: &'a App, m: &'a Message) -> BoxFuture<'a, Result<(), AppError>> {
    app.handle_webhook_delivery(&m.body).boxed()
}

/// The one field of a message body this layer reads: the correlation id the
/// sender carried over from the request that caused the message.
#[derive(serde::Deserialize)]
struct Correlated {
    #[serde(rename = "correlationId")]
    correlation_id: Option<String>,
}

/// A message's correlation id: the body's `correlationId`, else the message id.
pub fn correlation_id(m: &Message) -> String {
    serde_json::from_str::<Correlated>(&m.body)
        .ok()
        .and_then(|c| c.correlation_id)
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| m.id.clone())
}

/// One message to handle: its id, body and how often it was received.
pub struct Message {
    pub id: String,
    pub body: String,
    pub receive_count: u32,
}

pub fn messages(event: SqsEvent) -> Vec<Message> {
    event
        .records
        .into_iter()
        .map(|r| Message {
            receive_count: r.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1),
            id: r.message_id.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
        })
        .collect()
}

/// Handles a batch concurrently; returns the ids of the messages that failed.
pub async fn handle_batch(app: &App, consumer: Consumer, batch: Vec<Message>) -> Vec<String> {
    handle_batch_with(app, consumer.flow(), batch).await
}

/// [`handle_batch`] for a flow named at compile time.
pub async fn handle_batch_with(app: &App, flow: Flow, batch: Vec<Message>) -> Vec<String> {
    let futures = batch.into_iter().map(|m| {
        let span = correlation_span(&correlation_id(&m));
        async move {
            let result = (flow.handle)(app, &m).await;
            match result {
                Ok(()) => None,
                Err(e) => {
                    tracing::error!(message_id = %m.id, receive_count = m.receive_count, error = %e, "message failed; left for retry");
                    Some(m.id)
                }
            }
        }
        .instrument(span)
    });
    futures::future::join_all(futures).await.into_iter().flatten().collect()
}

/// Seconds a failed work message stays invisible before its next attempt:
/// short and growing, rather than the queue's whole visibility timeout.
pub fn retry_backoff_seconds(receive_count: u32) -> i32 {
    (1i32 << receive_count.min(5)).min(30)
}

pub async fn handle_event(app: &App, consumer: Consumer, event: SqsEvent) -> SqsBatchResponse {
    handle_event_with(app, consumer.flow(), event).await
}

/// [`handle_event`] for a flow named at compile time (the Lambda binaries).
pub async fn handle_event_with(app: &App, flow: Flow, event: SqsEvent) -> SqsBatchResponse {
    let receipts: Vec<(String, String, u32)> = event
        .records
        .iter()
        .map(|r| {
            let count = r.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1);
            (r.message_id.clone().unwrap_or_default(), r.receipt_handle.clone().unwrap_or_default(), count)
        })
        .collect();
    let failed = handle_batch_with(app, flow, messages(event)).await;
    if flow.retry_backoff {
        for (id, receipt, count) in receipts.iter().filter(|(id, _, _)| failed.contains(id)) {
            if let Err(e) = app.aws.queue.change_visibility(receipt, retry_backoff_seconds(*count)).await {
                // The message still comes back, after the full visibility timeout.
                tracing::warn!(message_id = %id, error = %e, "could not shorten the retry delay");
            }
        }
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_consumer_names_its_binary_and_only_the_work_queue_backs_off() {
        let flows: Vec<(&str, bool)> = [Consumer::Worker, Consumer::DeadLetters, Consumer::Webhooks]
            .iter()
            .map(|c| (c.binary(), c.flow().retry_backoff))
            .collect();
        assert_eq!(flows, [("worker", true), ("dlq", false), ("webhooks", false)]);
        let bins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../functions/src/bin");
        for (binary, _) in flows {
            assert!(bins.join(format!("{binary}.rs")).is_file(), "no functions/src/bin/{binary}.rs");
        }
    }

    fn msg(body: &str) -> Message {
        Message { id: "m-1".into(), body: body.into(), receive_count: 1 }
    }

    #[test]
    fn the_correlation_id_comes_from_the_body_or_the_message_id() {
        assert_eq!(correlation_id(&msg(r#"{"type":"plan","correlationId":"req-9"}"#)), "req-9");
        assert_eq!(correlation_id(&msg(r#"{"type":"plan"}"#)), "m-1");
        assert_eq!(correlation_id(&msg("not json")), "m-1");
    }

    #[test]
    fn a_failed_message_comes_back_sooner_the_fewer_times_it_failed() {
        let delays: Vec<i32> = (1..=8).map(retry_backoff_seconds).collect();
        assert_eq!(delays, vec![2, 4, 8, 16, 30, 30, 30, 30]);
        // SQS may report 0 before the first receive is counted; still a short, positive delay.
        assert_eq!(retry_backoff_seconds(0), 1);
        // A huge count never overflows the shift nor exceeds the cap.
        assert_eq!(retry_backoff_seconds(u32::MAX), 30);
    }
}
