//! The `lists` Lambda: serves puffle_http::handlers::lists (and links only that module's handlers).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    puffle_http::serve_http::<puffle_http::handlers::lists::Lists>().await
}
