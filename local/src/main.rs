//! The local API server: every route of template.yaml served by the same
//! handler functions the Lambda binaries run, plus the worker and the DLQ
//! handler fed from the queues the way the SQS event source mapping would
//! (long polls, batches, partial batch failures).

mod http_bridge;
mod poller;
mod stream;

use std::net::SocketAddr;

use backon::Retryable;
use clap::Parser;
use puffle_http::sqs::Consumer;

#[derive(Parser, Debug, Clone)]
#[command(name = "puffle-local", about = "Serve the Puffle API and worker against the local stack")]
struct Args {
    /// Address of the HTTP API (loopback by default: it is a dev server).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Serve HTTP only; do not consume the queues.
    #[arg(long)]
    no_worker: bool,
    /// Consume the queues only; do not serve HTTP.
    #[arg(long)]
    worker_only: bool,
    /// Create the template's table and queues (if missing) and exit.
    #[arg(long)]
    provision_only: bool,
    /// Messages per worker invocation (the template's WorkerBatchSize).
    #[arg(long, default_value_t = 5)]
    batch_size: i32,
    /// Concurrent worker invocations (the template's WorkerMaxConcurrency).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seconds before a failed message is visible again. SQS waits for the
    /// visibility timeout; locally a short delay keeps retries quick.
    #[arg(long, default_value_t = 1)]
    retry_delay: i32,
    /// How long the stream poller waits to fill a batch (the template's
    /// MaximumBatchingWindowInSeconds).
    #[arg(long, default_value_t = 1000)]
    stream_window_ms: u64,
    /// Seconds between reaper passes (AWS: the template's ReaperSchedule).
    #[arg(long, env = "PUFFLE_REAPER_INTERVAL_SECONDS", default_value_t = 5)]
    reaper_interval: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    puffle_http::logging::init("puffle-local");
    let args = Args::parse();
    let app = puffle_app::App::from_env().await;
    // Provisioning is idempotent, and a throttled or still-starting emulator
    // must not stop the server: retry it as a whole, with backoff.
    (|| provision(&app))
        .retry(backon::ExponentialBuilder::default().with_max_times(4))
        .notify(|e, wait| tracing::warn!(error = %e, ?wait, "provisioning failed; retrying"))
        .await?;
    if args.provision_only {
        tracing::info!("provisioned");
        return Ok(());
    }
    let shutdown = tokio_shutdown();
    let mut tasks = vec![];
    if !args.no_worker {
        let work = app.aws.queue.clone();
        let dlq = app.aws.dead_letter_queue();
        for _ in 0..args.concurrency.max(1) {
            tasks.push(tokio::spawn(poller::run(
                app.clone(),
                work.clone(),
                Consumer::Worker,
                args.batch_size,
                args.retry_delay,
                shutdown.clone(),
            )));
        }
        tasks.push(tokio::spawn(poller::run(
            app.clone(),
            dlq,
            Consumer::DeadLetters,
            10,
            args.retry_delay,
            shutdown.clone(),
        )));
        // Webhook deliveries: their own pollers, so a slow endpoint never
        // holds up the worker (nor, with several pollers, another endpoint).
        for _ in 0..2 {
            tasks.push(tokio::spawn(poller::run(
                app.clone(),
                app.aws.webhook_queue.clone(),
                Consumer::Webhooks,
                10,
                args.retry_delay,
                shutdown.clone(),
            )));
        }
        tasks.push(tokio::spawn(stream::run(
            app.clone(),
            std::time::Duration::from_millis(args.stream_window_ms),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(reaper(app.clone(), args.reaper_interval, shutdown.clone())));
    }
    if !args.worker_only {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        tracing::info!(address = %args.listen, "local API listening");
        let mut rx = shutdown.clone();
        axum::serve(listener, http_bridge::router(app.clone()))
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await?;
    } else {
        let mut rx = shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Creates the template's table, queues and bus when they are missing.
async fn provision(app: &puffle_app::App) -> anyhow::Result<()> {
    puffle_aws::definitions::provision(
        app.store().client(),
        app.aws.queue.client(),
        &puffle_aws::definitions::LocalOverrides::from_env(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("could not create the local table and queues: {e}"))?;
    app.aws.bus.provision().await.map_err(|e| anyhow::anyhow!("could not create the local event bus: {e}"))
}

/// The reaper on a timer, as the template's schedule runs it in AWS.
async fn reaper(app: puffle_app::App, every_seconds: u64, mut stop: tokio::sync::watch::Receiver<bool>) {
    let settings = puffle_app::reaper::ReaperSettings::from_env();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(every_seconds.max(1))) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = app.reap(settings).await {
            tracing::warn!(error = %e, "reaper pass failed");
        }
    }
}

/// A watch channel that flips to true on Ctrl-C or SIGTERM.
fn tokio_shutdown() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = tx.send(true);
    });
    rx
}
