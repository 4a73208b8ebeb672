//! The events Lambda: the table's change stream (dispatch backstop, lifecycle events, List rules).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    puffle_http::serve_stream().await
}
