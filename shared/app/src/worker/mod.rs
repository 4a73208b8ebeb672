//! The worker flow. Every handler is safe to run twice on the same message
//! (SQS delivers at least once): see `puffle_domain::plan` for the scheme.

pub mod chunk;
pub mod dead_letter;
pub mod plan;

use puffle_domain::plan::WorkMessage;
use tracing::Instrument;

use crate::{App, AppError};

/// Which delivery of a work message this is.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The queue's id for the message: the same on every redelivery of it.
    pub message_id: &'a str,
    pub receive_count: u32,
}

impl App {
    /// Handles one message of the work queue. An error leaves the message
    /// on the queue (it is retried, then dead-lettered).
    pub async fn handle_work(&self, body: &str, delivery: Delivery<'_>) -> Result<(), AppError> {
        let msg: WorkMessage =
            serde_json::from_str(body).map_err(|e| AppError::Internal(format!("unreadable work message: {e}")))?;
        let span = tracing::info_span!(
            "work",
            run_id = %msg.run_id(),
            kind = msg.kind(),
            correlation_id = msg.correlation_id().unwrap_or(""),
        );
        async move {
            match &msg {
                WorkMessage::Plan { workspace_id, run_id, step: 0, backstop: true, correlation_id, .. } => {
                    self.plan_backstop(workspace_id, run_id, correlation_id.as_deref()).await
                }
                WorkMessage::Plan { workspace_id, run_id, step, cursor, correlation_id, .. } => {
                    self.plan_step(workspace_id, run_id, *step, cursor.clone(), correlation_id.as_deref()).await
                }
                WorkMessage::Chunk { workspace_id, run_id, chunk, lead_ids, .. } => {
                    self.process_chunk(workspace_id, run_id, *chunk, lead_ids, delivery).await
                }
            }
        }
        .instrument(span)
        .await
    }
}
