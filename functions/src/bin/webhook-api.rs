//! The `webhook-api` Lambda: `/api/webhooks…` (subscriptions, secrets, the delivery log, replay, test).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    puffle_http::serve_http::<puffle_http::handlers::webhooks::WebhookApi>().await
}
