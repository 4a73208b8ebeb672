//! The `create` Lambda: see puffle_http::handlers for what it serves.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    puffle_http::serve_http(puffle_http::Function::Create).await
}
