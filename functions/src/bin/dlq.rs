//! The dead-letter Lambda: fails the items of messages the worker gave up on.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    puffle_http::serve_sqs(puffle_http::sqs::DEAD_LETTERS).await
}
