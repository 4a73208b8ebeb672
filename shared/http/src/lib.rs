//! HTTP mapping: lambda_http requests in, contract responses out.
//!
//! Each Lambda binary serves one function's [`handlers::Endpoint`] (and
//! links only its handlers); the local API server calls the very same
//! handlers through [`handlers::handle`]. Errors become contract bodies in
//! exactly one place: [`errors::error_response`].

pub mod errors;
pub mod handlers;
pub mod logging;
pub mod mcp;
pub mod request;
pub mod routes;
pub mod sqs;
pub mod stream;

pub use routes::Function;

// Boxing the consumers' futures keeps the binaries' future types shallow
// (the SDK's futures are deep; rustc's layout query has a depth limit).
use futures::FutureExt;
use tracing::Instrument;

/// Runs an HTTP function under the Lambda runtime. Clients are built once
/// here (cold start) and shared by every invocation.
pub async fn serve_http<E: handlers::Endpoint>() -> std::process::ExitCode {
    let started = std::time::Instant::now();
    logging::init(E::FUNCTION.binary());
    let app = puffle_app::App::for_lambda().await;
    initialised(started);
    ended(
        lambda_http::run(lambda_http::service_fn(move |req| {
            let app = app.clone();
            async move {
                logging::invocation_started();
                Ok::<_, std::convert::Infallible>(handlers::serve::<E>(&app, req).await)
            }
        }))
        .await,
    )
}

/// Runs one SQS flow (worker, DLQ handler or webhook deliveries) under the Lambda runtime.
pub async fn serve_sqs(flow: sqs::Flow) -> std::process::ExitCode {
    let started = std::time::Instant::now();
    logging::init(flow.binary);
    let app = puffle_app::App::for_lambda().await;
    initialised(started);
    ended(
        lambda_runtime::run(lambda_runtime::service_fn(
            move |event: lambda_runtime::LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| {
                let app = app.clone();
                async move {
                    logging::invocation_started();
                    Ok::<_, std::convert::Infallible>(sqs::handle_event_with(&app, flow, event.payload).boxed().await)
                }
            },
        ))
        .await,
    )
}

/// Runs the events function (the table's change stream) under the Lambda runtime.
pub async fn serve_stream() -> std::process::ExitCode {
    let started = std::time::Instant::now();
    logging::init("events");
    let app = puffle_app::App::for_lambda().await;
    initialised(started);
    ended(
        lambda_runtime::run(lambda_runtime::service_fn(
            move |event: lambda_runtime::LambdaEvent<aws_lambda_events::event::dynamodb::Event>| {
                let app = app.clone();
                async move {
                    logging::invocation_started();
                    Ok::<_, std::convert::Infallible>(stream::handle_event(&app, event.payload).boxed().await)
                }
            },
        ))
        .await,
    )
}

/// Runs the reaper (an EventBridge schedule) under the Lambda runtime.
pub async fn serve_reaper() -> std::process::ExitCode {
    let started = std::time::Instant::now();
    logging::init("reaper");
    let app = puffle_app::App::for_lambda().await;
    let settings = puffle_app::reaper::ReaperSettings::from_env();
    initialised(started);
    ended(
        lambda_runtime::run(lambda_runtime::service_fn(
            move |_event: lambda_runtime::LambdaEvent<serde_json::Value>| {
                let app = app.clone();
                async move {
                    logging::invocation_started();
                    let span = logging::correlation_span(&puffle_domain::ids::new_id("reap"));
                    let report = app
                        .reap(settings)
                        .boxed()
                        .instrument(span)
                        .await
                        .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
                    Ok::<_, lambda_runtime::Error>(serde_json::json!({
                        "live": report.live, "retired": report.retired, "dispatched": report.dispatched,
                        "replanned": report.replanned, "chunksResent": report.chunks_resent,
                        "completed": report.completed, "givenUp": report.given_up,
                    }))
                }
            },
        ))
        .await,
    )
}

/// How a function's process ends: a runtime that stops with an error (it
/// lost the Runtime API, or a handler's error it cannot report) is logged as
/// one JSON line with the rest, not left to `main`'s bare `Error: …` on
/// stderr, and the process exits non-zero so Lambda starts a fresh one.
fn ended(result: Result<(), lambda_runtime::Error>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the Lambda runtime stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The init line: how long the function took from `main` to being ready for
/// its first event (`make bench` reports it per function).
fn initialised(started: std::time::Instant) {
    tracing::info!(init_ms = started.elapsed().as_secs_f64() * 1000.0, "initialised");
}
