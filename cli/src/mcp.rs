//! `puffle mcp`: Puffle's MCP server on stdio, for MCP clients that launch
//! a command. Its tools call the API through the CLI's own client (same URL,
//! token, timeouts and 429/503 retries as every other command).

use std::sync::Arc;

use futures::future::BoxFuture;
use puffle_mcp::{Api, ApiReply, ApiRequest, Caller, Method, PuffleMcp, Unreachable};
use serde_json::json;

use crate::client::{Client, Retry};
use crate::config::Resolved;
use crate::error::{CliError, Result};

pub async fn serve(client: Client, cfg: &Resolved) -> Result<()> {
    // stdout carries the protocol: anything for people goes to stderr.
    let token = match cfg.token {
        Some(_) => format!("token from {}", cfg.token_source.as_str()),
        None => "no token, so tool calls answer UNAUTHENTICATED: set PUFFLE_TOKEN or run `puffle login`".into(),
    };
    eprintln!("puffle mcp: serving MCP on stdio for {} ({token})", cfg.api_url);
    let server = PuffleMcp::new(Arc::new(ClientApi { client }), puffle_mcp::transport::STDIO_WAIT_CAP);
    puffle_mcp::transport::serve_stdio(server)
        .await
        .map_err(|e| CliError::Local(format!("the MCP session on stdio ended with an error: {e}")))
}

struct ClientApi {
    client: Client,
}

impl Api for ClientApi {
    fn call<'a>(
        &'a self,
        _caller: &'a Caller,
        r: ApiRequest,
    ) -> BoxFuture<'a, std::result::Result<ApiReply, Unreachable>> {
        Box::pin(async move {
            let segments: Vec<&str> = r.segments.iter().map(String::as_str).collect();
            let answer = match r.method {
                Method::Get => {
                    let query: Vec<(&str, String)> = r.query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                    self.client.get(&segments, &query).await.map(|body| ApiReply { status: 200, body })
                }
                Method::Post => {
                    let retry = if r.retry_safe { Retry::Safe } else { Retry::Never };
                    let body = r.body.clone().unwrap_or_else(|| json!({}));
                    self.client.post(&segments, &body, retry).await.map(|a| ApiReply { status: a.status, body: a.body })
                }
            };
            match answer {
                Ok(reply) => Ok(reply),
                Err(CliError::Api { status, body, .. }) => Ok(ApiReply { status, body }),
                // What the API answers a request without a token, said before sending one.
                Err(CliError::NoToken) => Ok(ApiReply {
                    status: 401,
                    body: json!({
                        "code": "UNAUTHENTICATED",
                        "message": "no API token configured for `puffle mcp`: set PUFFLE_TOKEN, pass --token, or run `puffle login --token <token>`",
                    }),
                }),
                Err(CliError::Network { url, message }) => Err(Unreachable(format!("{url}: {message}"))),
                Err(other) => Err(Unreachable(other.report())),
            }
        })
    }
}
