//! The work queue (SQS). Messages are JSON [`WorkMessage`]s.

use std::sync::Arc;

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use puffle_domain::plan::WorkMessage;
use tokio::sync::OnceCell;

use crate::error::{classify, StoreError};

/// SQS's longest message delay.
pub const MAX_DELAY_SECONDS: u32 = 900;

#[derive(Clone)]
pub struct Queue {
    sqs: aws_sdk_sqs::Client,
    url: Arc<OnceCell<String>>,
    name: String,
}

/// One received message (the local poller's view of an SQS record).
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub receive_count: u32,
}

fn queue_err<E, R>(e: aws_sdk_sqs::error::SdkError<E, R>) -> StoreError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match classify(e) {
        StoreError::Other(m) => StoreError::Queue(m),
        other => other,
    }
}

impl Queue {
    pub fn new(sqs: aws_sdk_sqs::Client, url: Option<String>, name: String) -> Queue {
        let cell = OnceCell::new();
        if let Some(u) = url {
            let _ = cell.set(u);
        }
        Queue { sqs, url: Arc::new(cell), name }
    }

    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    pub async fn url(&self) -> Result<String, StoreError> {
        self.url
            .get_or_try_init(|| async {
                let out = self.sqs.get_queue_url().queue_name(&self.name).send().await.map_err(queue_err)?;
                out.queue_url.ok_or_else(|| StoreError::Queue(format!("queue {} has no URL", self.name)))
            })
            .await
            .cloned()
    }

    /// Sends one message; returns its SQS message id.
    pub async fn send(&self, msg: &WorkMessage) -> Result<String, StoreError> {
        let body = serde_json::to_string(msg).map_err(|e| StoreError::Other(e.to_string()))?;
        self.send_raw(&body).await
    }

    pub async fn send_raw(&self, body: &str) -> Result<String, StoreError> {
        self.send_raw_after(body, std::time::Duration::ZERO).await
    }

    /// Sends one message that becomes visible only after `delay` (SQS caps
    /// it at 15 minutes).
    pub async fn send_after(&self, msg: &WorkMessage, delay: std::time::Duration) -> Result<String, StoreError> {
        let body = serde_json::to_string(msg).map_err(|e| StoreError::Other(e.to_string()))?;
        self.send_raw_after(&body, delay).await
    }

    pub async fn send_raw_after(&self, body: &str, delay: std::time::Duration) -> Result<String, StoreError> {
        let mut req = self.sqs.send_message().queue_url(self.url().await?).message_body(body);
        if !delay.is_zero() {
            req = req.delay_seconds(delay.as_secs().min(MAX_DELAY_SECONDS as u64) as i32);
        }
        let out = req.send().await.map_err(queue_err)?;
        out.message_id.ok_or_else(|| StoreError::Queue("SendMessage returned no id".into()))
    }

    /// Sends many messages, ten per request; fails if any entry failed (the
    /// caller's step is then retried as a whole, which is safe).
    pub async fn send_all(&self, msgs: &[WorkMessage]) -> Result<(), StoreError> {
        let url = self.url().await?;
        for batch in msgs.chunks(10) {
            let mut req = self.sqs.send_message_batch().queue_url(&url);
            for (i, m) in batch.iter().enumerate() {
                let body = serde_json::to_string(m).map_err(|e| StoreError::Other(e.to_string()))?;
                req = req.entries(
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .map_err(|e| StoreError::Other(e.to_string()))?,
                );
            }
            let out = req.send().await.map_err(queue_err)?;
            if !out.failed.is_empty() {
                return Err(StoreError::Queue(format!("{} messages were not accepted", out.failed.len())));
            }
        }
        Ok(())
    }

    pub async fn receive(&self, max: i32, wait_seconds: i32) -> Result<Vec<Received>, StoreError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(self.url().await?)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(queue_err)?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| Received {
                receive_count: m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1),
                message_id: m.message_id.unwrap_or_default(),
                receipt_handle: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect())
    }

    pub async fn delete(&self, receipt_handle: &str) -> Result<(), StoreError> {
        self.sqs
            .delete_message()
            .queue_url(self.url().await?)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(queue_err)?;
        Ok(())
    }

    pub async fn change_visibility(&self, receipt_handle: &str, seconds: i32) -> Result<(), StoreError> {
        self.sqs
            .change_message_visibility()
            .queue_url(self.url().await?)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(queue_err)?;
        Ok(())
    }

    /// The queue's visibility timeout in seconds, as the queue itself has it
    /// (the template's, or the local override it was provisioned with).
    pub async fn visibility_timeout(&self) -> Result<i32, StoreError> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(self.url().await?)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .map_err(queue_err)?;
        out.attributes
            .unwrap_or_default()
            .get(&QueueAttributeName::VisibilityTimeout)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Other(format!("queue {} has no VisibilityTimeout", self.name)))
    }

    /// Messages visible plus in flight (health checks, tests, benchmarks).
    pub async fn depth(&self) -> Result<(u64, u64), StoreError> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(self.url().await?)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(queue_err)?;
        let attrs = out.attributes.unwrap_or_default();
        let get = |k: QueueAttributeName| attrs.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }
}
