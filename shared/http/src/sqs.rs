//! SQS event handling for the worker and the DLQ handler, with partial
//! batch failures: only the messages that failed go back to the queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::FutureExt;
use puffle_app::worker::Delivery;
use puffle_app::App;
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
        match self {
            Consumer::Worker => "worker",
            Consumer::DeadLetters => "dlq",
            Consumer::Webhooks => "webhooks",
        }
    }
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
    let futures = batch.into_iter().map(|m| {
        let span = correlation_span(&correlation_id(&m));
        async move {
            let result = match consumer {
                // Boxed: the flows nest deep enough to overflow rustc's layout
                // query depth in the binaries otherwise.
                Consumer::Worker => {
                    let delivery = Delivery { message_id: &m.id, receive_count: m.receive_count };
                    app.handle_work(&m.body, delivery).boxed().await
                }
                Consumer::DeadLetters => app.handle_dead_letter(&m.body).boxed().await,
                Consumer::Webhooks => app.handle_webhook_delivery(&m.body).boxed().await,
            };
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
    let receipts: Vec<(String, String, u32)> = event
        .records
        .iter()
        .map(|r| {
            let count = r.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1);
            (r.message_id.clone().unwrap_or_default(), r.receipt_handle.clone().unwrap_or_default(), count)
        })
        .collect();
    let failed = handle_batch(app, consumer, messages(event)).await;
    if consumer == Consumer::Worker {
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
