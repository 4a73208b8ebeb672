//! The webhooks Lambda: consumes the webhook queue (one signed delivery attempt per message).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    puffle_http::serve_sqs(puffle_http::sqs::WEBHOOKS).await
}
