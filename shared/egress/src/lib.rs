//! Safe outbound HTTP for anything that calls a URL a user (or an operator)
//! chose: enrichment providers today, webhooks later.
//!
//! The guard, in one place:
//! - only `http` and `https`;
//! - no request reaches a loopback, private, link-local (the cloud metadata
//!   address 169.254.169.254 among them), CGNAT, unspecified, multicast or
//!   otherwise reserved address. IP literals are refused before anything is
//!   sent; names are checked **after** DNS resolution, by the resolver the
//!   connection uses, so a name that resolves to 127.0.0.1 (or is rebound to
//!   it between two lookups) is refused at connect time;
//! - redirects are followed here (at most [`MAX_REDIRECTS`]), each target
//!   checked the same way; headers the caller set (they may carry keys) are
//!   dropped when a redirect leaves the origin;
//! - response bodies are capped at [`MAX_BODY_BYTES`];
//! - environment proxies are ignored, so `HTTP_PROXY` cannot route around it.
//!
//! [`AllowList`] (`PUFFLE_EGRESS_ALLOW_HOSTS`, comma-separated `host[:port]`,
//! empty by default) lets named hosts through, e.g. a local stub on
//! 127.0.0.1 in tests.

mod ranges;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, LOCATION};
/// The HTTP types of [`Outbound`] and [`Fetched`].
pub use reqwest::{header, Method, StatusCode};
pub use url::Url;

pub use ranges::refused_range;

/// Largest response body read; a larger one fails with [`EgressError::TooLarge`].
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Redirects followed before [`EgressError::TooManyRedirects`].
pub const MAX_REDIRECTS: usize = 3;
/// The environment variable [`AllowList::from_env`] reads.
pub const ALLOW_HOSTS_ENV: &str = "PUFFLE_EGRESS_ALLOW_HOSTS";

/// Why a target was refused. Messages name the host or address, never a
/// URL (URLs may carry keys in their query).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("only http and https URLs are allowed, not `{0}`")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("`{host}` is a {range} address")]
    Address { host: String, range: &'static str },
    #[error("`{0}` names this machine")]
    LocalName(String),
    #[error("`{host}` resolves only to refused addresses ({range})")]
    Resolved { host: String, range: &'static str },
    #[error("`{host}` is allowed only on port(s) {ports}, not {port}")]
    Port { host: String, port: u16, ports: String },
}

#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("egress refused: {0}")]
    Refused(Refusal),
    #[error("the request timed out")]
    Timeout,
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("the response body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("the request is invalid: {0}")]
    Invalid(String),
    #[error("the request failed: {0}")]
    Other(String),
}

/// Hosts let through although they would be refused (`host` or `host:port`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<(String, Option<u16>)>,
}

impl AllowList {
    /// Parses `host[:port],...`; IPv6 hosts in brackets (`[::1]:8080`).
    /// Blank entries are ignored; so is an unparsable port (the entry then
    /// allows nothing, which fails safe).
    pub fn parse(spec: &str) -> AllowList {
        let entries = spec
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .filter_map(|e| {
                let (host, port) = split_host_port(e)?;
                Some((normalise_host(host), port))
            })
            .collect();
        AllowList { entries }
    }

    pub fn from_env() -> AllowList {
        AllowList::parse(&std::env::var(ALLOW_HOSTS_ENV).unwrap_or_default())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn names_host(&self, host: &str) -> bool {
        let host = normalise_host(host);
        self.entries.iter().any(|(h, _)| *h == host)
    }

    /// `Ok(true)`: allowed; `Ok(false)`: not listed; `Err`: listed for other ports.
    fn check(&self, host: &str, port: u16) -> Result<bool, Refusal> {
        let host = normalise_host(host);
        let ports: Vec<Option<u16>> = self.entries.iter().filter(|(h, _)| *h == host).map(|(_, p)| *p).collect();
        if ports.is_empty() {
            return Ok(false);
        }
        if ports.iter().any(|p| p.is_none() || *p == Some(port)) {
            return Ok(true);
        }
        let ports = ports.iter().flatten().map(u16::to_string).collect::<Vec<_>>().join(", ");
        Err(Refusal::Port { host, port, ports })
    }
}

fn split_host_port(entry: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match entry.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((h, p)) if !h.contains(':') => Some((h, Some(p.parse().ok()?))),
        _ => Some((entry, None)),
    }
}

fn normalise_host(host: &str) -> String {
    host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

fn is_local_name(host: &str) -> bool {
    let h = normalise_host(host);
    h == "localhost" || h.ends_with(".localhost") || h == "localhost.localdomain"
}

/// The check that needs no network: scheme, host present, IP literals and
/// `localhost`. Run when a URL is accepted (creating a workspace enrichment)
/// and before every request and redirect; names are checked again after
/// resolution by the connection's resolver.
pub fn check_url(url: &Url, allow: &AllowList) -> Result<(), Refusal> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(Refusal::Scheme(other.to_string())),
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or(Refusal::NoHost)?;
    let port = url.port_or_known_default().unwrap_or(0);
    if allow.check(host, port)? {
        return Ok(());
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => literal(host, IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => literal(host, IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) if is_local_name(d) => Err(Refusal::LocalName(normalise_host(d))),
        Some(url::Host::Domain(_)) => Ok(()),
        None => Err(Refusal::NoHost),
    }
}

fn literal(host: &str, ip: IpAddr) -> Result<(), Refusal> {
    match refused_range(ip) {
        Some(range) => Err(Refusal::Address { host: normalise_host(host), range }),
        None => Ok(()),
    }
}

/// Resolves names with the system resolver and keeps only addresses that
/// are not refused: the connection can only go where the filter let it.
struct GuardedResolver {
    allow: Arc<AllowList>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allow.names_host(&host) {
                let addrs: Addrs = Box::new(found.into_iter());
                return Ok(addrs);
            }
            let mut refused = None;
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match refused_range(a.ip()) {
                    Some(range) => {
                        refused = Some(range);
                        false
                    }
                    None => true,
                })
                .collect();
            if kept.is_empty() {
                let range = refused.unwrap_or("unresolvable");
                return Err(Box::new(Refusal::Resolved { host: normalise_host(&host), range }) as _);
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// Limits of one request beyond the guard itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Redirects followed (each checked); `None`: a 3xx is the answer.
    pub redirects: Option<usize>,
    /// Body bytes read at most.
    pub max_body: usize,
    /// Past `max_body`: stop reading and keep what was read (true), or fail
    /// with [`EgressError::TooLarge`] (false).
    pub truncate: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { redirects: Some(MAX_REDIRECTS), max_body: MAX_BODY_BYTES, truncate: false }
    }
}

impl Limits {
    /// Webhook deliveries: redirects are not followed and only the first
    /// 64 KB of an answer is read (its status is what counts).
    pub const WEBHOOK: Limits = Limits { redirects: None, max_body: 64 * 1024, truncate: true };
}

/// Whether `url`'s host, resolved now, has an address the guard would let
/// a connection reach. For refusing a URL when it is registered; the
/// connection's resolver checks again at every request (DNS can change).
/// A name that does not resolve passes: delivery fails and is retried.
pub async fn check_resolved(url: &Url, allow: &AllowList) -> Result<(), Refusal> {
    check_url(url, allow)?;
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(0);
    if allow.check(host, port)? {
        return Ok(());
    }
    let Some(url::Host::Domain(name)) = url.host() else { return Ok(()) };
    let Ok(found) = tokio::net::lookup_host((name, port)).await else { return Ok(()) };
    let found: Vec<SocketAddr> = found.collect();
    let refused: Vec<&'static str> = found.iter().filter_map(|a| refused_range(a.ip())).collect();
    if !found.is_empty() && refused.len() == found.len() {
        return Err(Refusal::Resolved { host: normalise_host(name), range: refused[0] });
    }
    Ok(())
}

/// One outbound request.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// Total time, connect to last body byte, redirects included.
    pub timeout: Duration,
}

/// A response whose body was read in full (at most [`MAX_BODY_BYTES`]).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The URL that answered, after the redirects followed.
    pub final_url: Url,
}

/// An HTTP client behind the guard. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Egress {
    client: reqwest::Client,
    allow: Arc<AllowList>,
}

impl Egress {
    pub fn new(allow: AllowList, connect_timeout: Duration) -> Result<Egress, EgressError> {
        let allow = Arc::new(allow);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow: allow.clone() }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(connect_timeout)
            .user_agent(concat!("puffle/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EgressError::Other(root_cause(&e.without_url())))?;
        Ok(Egress { client, allow })
    }

    pub fn allow_list(&self) -> &AllowList {
        &self.allow
    }

    /// Sends `req`, following redirects under the guard, and reads the body.
    pub async fn send(&self, req: Outbound) -> Result<Fetched, EgressError> {
        self.send_with(req, Limits::default()).await
    }

    /// [`Egress::send`] under other [`Limits`].
    pub async fn send_with(&self, req: Outbound, limits: Limits) -> Result<Fetched, EgressError> {
        let deadline = tokio::time::Instant::now() + req.timeout;
        match tokio::time::timeout_at(deadline, self.send_inner(req, deadline, limits)).await {
            Ok(r) => r,
            Err(_) => Err(EgressError::Timeout),
        }
    }

    async fn send_inner(
        &self,
        req: Outbound,
        deadline: tokio::time::Instant,
        limits: Limits,
    ) -> Result<Fetched, EgressError> {
        let Outbound { mut method, mut url, mut headers, mut body, .. } = req;
        let max_redirects = limits.redirects.unwrap_or(0);
        for redirect in 0..=max_redirects {
            check_url(&url, &self.allow).map_err(EgressError::Refused)?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let mut rb = self.client.request(method.clone(), url.clone()).headers(headers.clone()).timeout(left);
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            let resp = rb.send().await.map_err(classify)?;
            let status = resp.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED && limits.redirects.is_some() {
                if let Some(next) = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok()) {
                    if redirect == max_redirects {
                        return Err(EgressError::TooManyRedirects);
                    }
                    let next = url.join(next).map_err(|e| EgressError::Invalid(format!("bad redirect target: {e}")))?;
                    if (next.scheme(), next.host_str(), next.port_or_known_default())
                        != (url.scheme(), url.host_str(), url.port_or_known_default())
                    {
                        // The caller's headers may hold keys meant for the first origin only.
                        let content_type = headers.get(CONTENT_TYPE).cloned();
                        headers = HeaderMap::new();
                        if let Some(ct) = content_type {
                            headers.insert(CONTENT_TYPE, ct);
                        }
                    }
                    // 303 (and 301/302 after a POST, as browsers do) turn into a GET without body.
                    if status == StatusCode::SEE_OTHER
                        || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                            && method == Method::POST)
                    {
                        method = Method::GET;
                        body = None;
                        headers.remove(CONTENT_TYPE);
                    }
                    url = next;
                    continue;
                }
            }
            let headers = resp.headers().clone();
            let body = read_capped(resp, limits).await?;
            return Ok(Fetched { status, headers, body, final_url: url });
        }
        Err(EgressError::TooManyRedirects)
    }
}

async fn read_capped(mut resp: reqwest::Response, limits: Limits) -> Result<Bytes, EgressError> {
    let max = limits.max_body;
    if !limits.truncate && resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(EgressError::TooLarge);
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(classify)? {
        if buf.len() + chunk.len() > max {
            if !limits.truncate {
                return Err(EgressError::TooLarge);
            }
            // Dropping the response closes the connection: the rest is never read.
            buf.extend_from_slice(&chunk[..max - buf.len()]);
            break;
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Maps a reqwest error, dropping its URL (which may carry a key).
fn classify(e: reqwest::Error) -> EgressError {
    let e = e.without_url();
    if let Some(r) = find_refusal(&e) {
        return EgressError::Refused(r);
    }
    if e.is_timeout() {
        return EgressError::Timeout;
    }
    if e.is_connect() {
        return EgressError::Connect(root_cause(&e));
    }
    if e.is_builder() {
        return EgressError::Invalid(root_cause(&e));
    }
    EgressError::Other(root_cause(&e))
}

fn find_refusal(e: &(dyn std::error::Error + 'static)) -> Option<Refusal> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refusal>() {
            return Some(r.clone());
        }
        cur = err.source();
    }
    None
}

/// The innermost cause's message (io and hyper errors name no URL).
fn root_cause(e: &reqwest::Error) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A header value, or `None` when it cannot be sent (control characters).
pub fn header_value(v: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(v).ok()
}

#[cfg(test)]
mod tests;
