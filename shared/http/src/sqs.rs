//! SQS event handling for the worker and the DLQ handler, with partial
//! batch failures: only the messages that failed go back to the queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use puffle_app::App;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    Worker,
    DeadLetters,
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
    let futures = batch.into_iter().map(|m| async move {
        let result = match consumer {
            Consumer::Worker => app.handle_work(&m.body, m.receive_count).await,
            Consumer::DeadLetters => app.handle_dead_letter(&m.body).await,
        };
        match result {
            Ok(()) => None,
            Err(e) => {
                tracing::error!(message_id = %m.id, receive_count = m.receive_count, error = %e, "message failed; left for retry");
                Some(m.id)
            }
        }
    });
    futures::future::join_all(futures).await.into_iter().flatten().collect()
}

pub async fn handle_event(app: &App, consumer: Consumer, event: SqsEvent) -> SqsBatchResponse {
    let failed = handle_batch(app, consumer, messages(event)).await;
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
