//! The reaper Lambda: on a schedule, drives forward runs that stopped making progress.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    puffle_http::serve_reaper().await
}
