//! Long-polls a queue and hands batches to the consumer, deleting what
//! succeeded and returning failures to the queue — what the SQS event source
//! mapping does for a Lambda with ReportBatchItemFailures.

use std::time::Duration;

use puffle_app::App;
use puffle_aws::Queue;
use puffle_http::sqs::{handle_batch, Consumer, Message};

pub async fn run(
    app: App,
    queue: Queue,
    consumer: Consumer,
    batch_size: i32,
    retry_delay: i32,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // Read from the queue, so the heartbeat matches what it was provisioned
    // with; without it a busy batch may come back early (logged), as before.
    let visibility = match queue.visibility_timeout().await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, ?consumer, "no visibility timeout read; busy batches are not kept invisible");
            None
        }
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let received = tokio::select! {
            r = queue.receive(batch_size, 2) => r,
            _ = stop.changed() => return,
        };
        let batch = match received {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, ?consumer, "receive failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if batch.is_empty() {
            continue;
        }
        let receipts: Vec<(String, String)> =
            batch.iter().map(|m| (m.message_id.clone(), m.receipt_handle.clone())).collect();
        let messages = batch
            .into_iter()
            .map(|m| Message { id: m.message_id, body: m.body, receive_count: m.receive_count })
            .collect();
        let handling = handle_batch(&app, consumer, messages);
        let failed = match visibility {
            Some(v) => keep_invisible(&queue, &receipts, v, handling).await,
            None => handling.await,
        };
        for (id, receipt) in receipts {
            let r = if failed.contains(&id) {
                queue.change_visibility(&receipt, retry_delay).await
            } else {
                queue.delete(&receipt).await
            };
            if let Err(e) = r {
                tracing::warn!(error = %e, message_id = %id, "could not settle message");
            }
        }
    }
}

/// Awaits `handling` while extending its messages' visibility every half
/// timeout. On AWS a message is never redelivered while its invocation runs
/// (the function's timeout is below the queue's visibility timeout); locally
/// the timeout is short and nothing stops a slow batch (a provider held to
/// its rate limit), so a redelivery here, too, means the handler died.
async fn keep_invisible<T>(
    queue: &Queue,
    receipts: &[(String, String)],
    visibility: i32,
    handling: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(handling);
    let mut heartbeat = tokio::time::interval(Duration::from_secs((visibility / 2).max(1) as u64));
    heartbeat.tick().await;
    loop {
        tokio::select! {
            out = &mut handling => return out,
            _ = heartbeat.tick() => {
                for (id, receipt) in receipts {
                    if let Err(e) = queue.change_visibility(receipt, visibility).await {
                        tracing::warn!(error = %e, message_id = %id, "could not extend the message's visibility");
                    }
                }
            }
        }
    }
}
