//! HTTP mapping: lambda_http requests in, contract responses out.
//!
//! Each Lambda binary calls one function of [`handlers`]; the local API
//! server calls the very same functions. Errors become contract bodies in
//! exactly one place: [`errors::error_response`].

pub mod errors;
pub mod handlers;
pub mod logging;
pub mod mcp;
pub mod request;
pub mod routes;
pub mod sqs;
pub mod stream;
pub mod webhooks;

pub use handlers::Function;

// Boxing the consumers' futures keeps the binaries' future types shallow
// (the SDK's futures are deep; rustc's layout query has a depth limit).
use futures::FutureExt;

/// Runs an HTTP function under the Lambda runtime. Clients are built once
/// here (cold start) and shared by every invocation.
pub async fn serve_http(function: Function) -> Result<(), lambda_http::Error> {
    logging::init();
    let app = puffle_app::App::from_env().await;
    lambda_http::run(lambda_http::service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(handlers::handle(&app, function, req).await) }
    }))
    .await
}

/// Runs an SQS consumer (the worker or the DLQ handler) under the Lambda runtime.
pub async fn serve_sqs(consumer: sqs::Consumer) -> Result<(), lambda_runtime::Error> {
    logging::init();
    let app = puffle_app::App::from_env().await;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| {
            let app = app.clone();
            async move { Ok::<_, std::convert::Infallible>(sqs::handle_event(&app, consumer, event.payload).boxed().await) }
        },
    ))
    .await
}

/// Runs the events function (the table's change stream) under the Lambda runtime.
pub async fn serve_stream() -> Result<(), lambda_runtime::Error> {
    logging::init();
    let app = puffle_app::App::from_env().await;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<aws_lambda_events::event::dynamodb::Event>| {
            let app = app.clone();
            async move { Ok::<_, std::convert::Infallible>(stream::handle_event(&app, event.payload).boxed().await) }
        },
    ))
    .await
}

/// Runs the reaper (an EventBridge schedule) under the Lambda runtime.
pub async fn serve_reaper() -> Result<(), lambda_runtime::Error> {
    logging::init();
    let app = puffle_app::App::from_env().await;
    let settings = puffle_app::reaper::ReaperSettings::from_env();
    lambda_runtime::run(lambda_runtime::service_fn(move |_event: lambda_runtime::LambdaEvent<serde_json::Value>| {
        let app = app.clone();
        async move {
            let report = app.reap(settings).boxed().await.map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            Ok::<_, lambda_runtime::Error>(serde_json::json!({
                "live": report.live, "retired": report.retired, "dispatched": report.dispatched,
                "replanned": report.replanned, "chunksResent": report.chunks_resent,
                "completed": report.completed, "givenUp": report.given_up,
            }))
        }
    }))
    .await
}
