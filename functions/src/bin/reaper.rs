//! The reaper Lambda: on a schedule, drives forward runs that stopped making progress.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    puffle_http::serve_reaper().await
}
