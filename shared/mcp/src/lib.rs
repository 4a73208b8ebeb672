//! Puffle as a Model Context Protocol server (rmcp, the official Rust SDK).
//!
//! The tools and resources live here once, over a small port ([`api::Api`]:
//! one API request in, the API's status and JSON out), and two transports
//! serve them: stdio (`puffle mcp`, the CLI's HTTP client behind the port)
//! and stateless Streamable HTTP (`/mcp`: the `mcp` Lambda and the local
//! server, with the HTTP handlers called in process behind the port).

pub mod api;
mod args;
pub mod reply;
pub mod resources;
mod schemas;
pub mod server;
pub mod transport;
pub mod wait;

pub use api::{Api, ApiReply, ApiRequest, Caller, Method, Unreachable};
pub use server::PuffleMcp;

#[cfg(test)]
mod tests;
