//! The worker Lambda: consumes the work queue (plan and chunk messages).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    puffle_http::serve_sqs(puffle_http::sqs::WORKER).await
}
