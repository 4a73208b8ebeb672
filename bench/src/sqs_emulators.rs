//! How fast an SQS emulator takes and gives back a deep queue, through the
//! same Rust SDK the worker uses: SendMessageBatch of 10, then receive
//! batches of 10 and delete each message, as the local poller does.

use std::time::Instant;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};

pub async fn run(messages: usize, label: &str) -> anyhow::Result<()> {
    let sdk = puffle_aws::config::sdk_loader().load().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = format!("bench-{}", puffle_domain::ids::new_id("q").replace('_', "-"));
    let url = sqs.create_queue().queue_name(&name).send().await?.queue_url.unwrap_or_default();
    let body = "x".repeat(2_000); // a chunk message of 100 lead ids is ~3 KB
    let t = Instant::now();
    for batch in (0..messages).collect::<Vec<_>>().chunks(10) {
        let mut req = sqs.send_message_batch().queue_url(&url);
        for i in batch {
            req = req.entries(SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(&body).build()?);
        }
        req.send().await?;
    }
    let send_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut drained = 0;
    while drained < messages {
        let out = sqs.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(1).send().await?;
        let msgs = out.messages.unwrap_or_default();
        if msgs.is_empty() {
            break;
        }
        let mut del = sqs.delete_message_batch().queue_url(&url);
        for (i, m) in msgs.iter().enumerate() {
            del = del.entries(
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()?,
            );
        }
        del.send().await?;
        drained += msgs.len();
    }
    let drain_secs = t.elapsed().as_secs_f64();
    sqs.delete_queue().queue_url(&url).send().await?;
    println!(
        "{}",
        serde_json::json!({
            "emulator": label,
            "messages": messages,
            "sendPerSecond": (messages as f64 / send_secs).round(),
            "drainPerSecond": (drained as f64 / drain_secs).round(),
            "drained": drained,
        })
    );
    Ok(())
}
