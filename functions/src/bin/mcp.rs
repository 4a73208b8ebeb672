//! The `mcp` Lambda: Puffle's MCP server over stateless Streamable HTTP at
//! `/mcp`; see puffle_http::mcp for how its tools reach the API (it links
//! every HTTP function's handlers, which its tools call in process).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    puffle_http::serve_http::<puffle_http::handlers::mcp::Mcp>().await
}
