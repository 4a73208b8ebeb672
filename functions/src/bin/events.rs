//! The events Lambda: the table's change stream (dispatch backstop, lifecycle events, List rules).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    puffle_http::serve_stream().await
}
