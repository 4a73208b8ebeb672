//! `/mcp`: the MCP server (crate::mcp). Public at the transport, so a
//! client can initialize and list tools before it has a token; each tool
//! call is then admitted (token, rate limit) as the API route it calls.

use super::{misrouted, Ctx, Endpoint, Outcome, Reply};
use crate::routes::{Function, Op};

pub struct Mcp;

impl Endpoint for Mcp {
    const FUNCTION: Function = Function::Mcp;
    const PUBLIC: bool = true;
    async fn call<'a>(op: Op, cx: &'a Ctx<'a>) -> Result<Outcome, Reply> {
        match op {
            Op::McpPost | Op::McpGet | Op::McpDelete => {
                Ok(Outcome { response: crate::mcp::handle(cx.app, cx.req, cx.request_id).await, run_id: None })
            }
            _ => Err(misrouted(cx)),
        }
    }
}
