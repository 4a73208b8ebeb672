//! HTTP mapping: lambda_http requests in, contract responses out.
//!
//! Each Lambda binary calls one function of [`handlers`]; the local API
//! server calls the very same functions. Errors become contract bodies in
//! exactly one place: [`errors::error_response`].

pub mod errors;
pub mod handlers;
pub mod logging;
pub mod request;
pub mod routes;
pub mod sqs;

pub use handlers::Function;

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
            async move { Ok::<_, std::convert::Infallible>(sqs::handle_event(&app, consumer, event.payload).await) }
        },
    ))
    .await
}
