//! The two transports: stdio, and stateless Streamable HTTP.

use std::sync::Arc;
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::ServiceExt;

use crate::server::PuffleMcp;
use crate::wait;

/// stdio has no gateway in front of it: wait_for_run may take its full 60 s.
pub const STDIO_WAIT_CAP: Duration = wait::MAX_TIMEOUT;
/// Through API Gateway a request must end within 29 s and the function
/// within its 25 s timeout: wait_for_run stops at 20 s and says `terminal: false`.
pub const HTTP_WAIT_CAP: Duration = Duration::from_secs(20);
/// Lambda's request payload limit, as for the API itself.
pub const MAX_HTTP_BODY: usize = 6 * 1024 * 1024;

/// Serves MCP on stdin/stdout until the client closes it.
pub async fn serve_stdio(server: PuffleMcp) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let running = server.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

pub type HttpService = StreamableHttpService<PuffleMcp, NeverSessionManager>;

/// Stateless Streamable HTTP: every POST stands alone (no session to keep
/// between Lambda invocations) and is answered with plain JSON, which an API
/// Gateway integration can carry; GET and DELETE answer 405, as the spec
/// asks of a server without streams or sessions.
///
/// Host checks are off: they guard unauthenticated servers on localhost
/// against DNS rebinding, while every tool call here needs the bearer token
/// (never a cookie a browser would add), the same as `/api/*`.
pub fn http_service(server: PuffleMcp) -> HttpService {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts()
        .with_max_request_body_bytes(MAX_HTTP_BODY);
    StreamableHttpService::new(move || Ok(server.clone()), Arc::new(NeverSessionManager::default()), config)
}
