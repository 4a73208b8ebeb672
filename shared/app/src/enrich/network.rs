//! Built-ins that need the network but no account: `email_verify` (DNS)
//! and `website_overview` (the company's homepage). Their rules live in
//! `puffle_domain::providers::{email_verify, website_overview}`; this is
//! the I/O.
//!
//! DNS goes through hickory's resolver, to the servers in
//! `PUFFLE_DNS_SERVERS` (comma-separated `ip` or `ip:port`; default: the
//! system's resolv.conf), each query bounded by `PUFFLE_DNS_TIMEOUT_MS`
//! (default 2000). A domain's answer is kept for [`DNS_CACHE_TTL`] in the
//! process, so the Leads of a run that share a domain ask once (a chunk
//! also asks once per distinct domain among its Leads).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use puffle_domain::lead::Lead;
use puffle_domain::providers::email_verify::{self, MailHosts};
use puffle_domain::providers::{first_contact, website_overview, Outcome, MISSING_INPUT};
use puffle_egress::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, USER_AGENT};
use puffle_egress::{EgressError, Limits, Method, Outbound, StatusCode, Url};
use tokio::sync::OnceCell;

use super::http::{codes, NO_MATCH};
use super::Enriched;
use crate::App;

/// The environment variable naming the DNS servers `email_verify` asks.
pub const DNS_SERVERS_ENV: &str = "PUFFLE_DNS_SERVERS";
/// How long a domain's mail hosts are reused within a process.
pub const DNS_CACHE_TTL: Duration = Duration::from_secs(300);
const DNS_CACHE_MAX: usize = 50_000;
/// `skippedReason` of a homepage that is not HTML.
pub const NOT_HTML: &str = "not_html";
/// Homepage fetches: total time, connect time, Leads in flight per chunk.
const PAGE_CONNECT_TIMEOUT_MS: u64 = 3_000;
const PAGE_CONCURRENCY: usize = 16;
const DNS_CONCURRENCY: usize = 16;

#[derive(Default)]
pub struct DnsState {
    resolver: OnceCell<Result<TokioResolver, String>>,
    cache: Mutex<HashMap<String, (Instant, MailHosts)>>,
    /// Servers and timeout given in code (tests); else the environment's.
    fixed: Option<(Vec<SocketAddr>, Duration)>,
}

fn env_timeout() -> Duration {
    let ms = std::env::var("PUFFLE_DNS_TIMEOUT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000u64);
    Duration::from_millis(ms.clamp(50, 10_000))
}

/// `PUFFLE_PAGE_TIMEOUT_MS` (default 10 000): the whole homepage fetch, redirects included.
fn page_timeout() -> Duration {
    let ms = std::env::var("PUFFLE_PAGE_TIMEOUT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000u64);
    Duration::from_millis(ms.clamp(100, 30_000))
}

/// `ip` or `ip:port` (port 53 by default), comma-separated.
fn parse_servers(spec: &str) -> Result<Vec<SocketAddr>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| format!("{DNS_SERVERS_ENV}: `{s}` is not an ip or ip:port"))
        })
        .collect()
}

fn build_resolver(servers: Vec<SocketAddr>, timeout: Duration) -> Result<TokioResolver, String> {
    let mut opts = ResolverOpts::default();
    opts.timeout = timeout;
    opts.attempts = 1;
    let provider = TokioRuntimeProvider::default();
    let mut builder = if servers.is_empty() {
        TokioResolver::builder(provider).map_err(|e| format!("no DNS configuration: {e}"))?
    } else {
        let mut config = ResolverConfig::from_parts(None, vec![], vec![]);
        for s in servers {
            let mut ns = NameServerConfig::udp_and_tcp(s.ip());
            for c in &mut ns.connections {
                c.port = s.port();
            }
            config.add_name_server(ns);
        }
        TokioResolver::builder_with_config(config, provider)
    };
    *builder.options_mut() = opts;
    builder.build().map_err(|e| format!("DNS resolver: {e}"))
}

impl DnsState {
    /// A resolver asking `servers` (none: the system's), each query
    /// bounded by `timeout`.
    pub fn new(servers: Vec<SocketAddr>, timeout: Duration) -> DnsState {
        DnsState { fixed: Some((servers, timeout)), ..Default::default() }
    }

    fn timeout(&self) -> Duration {
        self.fixed.as_ref().map_or_else(env_timeout, |(_, t)| *t)
    }

    async fn resolver(&self) -> Result<&TokioResolver, String> {
        let build = || async {
            let (servers, timeout) = match &self.fixed {
                Some(f) => f.clone(),
                None => (parse_servers(&std::env::var(DNS_SERVERS_ENV).unwrap_or_default())?, env_timeout()),
            };
            build_resolver(servers, timeout)
        };
        self.resolver.get_or_init(build).await.as_ref().map_err(Clone::clone)
    }

    fn cached(&self, domain: &str, now: Instant) -> Option<MailHosts> {
        let m = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        m.get(domain).filter(|(at, _)| now.duration_since(*at) < DNS_CACHE_TTL).map(|(_, h)| h.clone())
    }

    fn remember(&self, domain: &str, hosts: &MailHosts, now: Instant) {
        // An unknown answer is not an answer: ask again next time.
        if matches!(hosts, MailHosts::Unknown(_)) {
            return;
        }
        let mut m = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= DNS_CACHE_MAX {
            m.retain(|_, (at, _)| now.duration_since(*at) < DNS_CACHE_TTL);
            if m.len() >= DNS_CACHE_MAX {
                m.clear();
            }
        }
        m.insert(domain.to_string(), (now, hosts.clone()));
    }

    /// The mail hosts of `domain` (ASCII), from the cache or DNS.
    pub async fn mail_hosts(&self, domain: &str) -> MailHosts {
        let now = Instant::now();
        if let Some(h) = self.cached(domain, now) {
            return h;
        }
        let hosts = match self.resolver().await {
            Ok(r) => lookup(r, domain, self.timeout()).await,
            Err(e) => MailHosts::Unknown(e),
        };
        self.remember(domain, &hosts, now);
        hosts
    }
}

/// MX first; without MX, A/AAAA (RFC 5321's implicit MX). Each query is
/// also bounded here, whatever the resolver's own retries do.
async fn lookup(r: &TokioResolver, domain: &str, timeout: Duration) -> MailHosts {
    let fqdn = format!("{}.", domain.trim_end_matches('.'));
    let bound = timeout * 2 + Duration::from_millis(200);
    let mx = match tokio::time::timeout(bound, r.mx_lookup(fqdn.as_str())).await {
        Err(_) => return MailHosts::Unknown("DNS timeout".into()),
        Ok(r) => r,
    };
    match mx {
        Ok(found) => {
            let mut records: Vec<(u16, String)> = found
                .answers()
                .iter()
                .filter_map(|rec| match &rec.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                    _ => None,
                })
                .collect();
            if records.len() == 1 && (records[0].1 == "." || records[0].1.is_empty()) {
                return MailHosts::NullMx;
            }
            records.sort();
            let hosts: Vec<String> = records
                .into_iter()
                .map(|(_, h)| h.trim_end_matches('.').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect();
            if !hosts.is_empty() {
                return MailHosts::Mx(hosts);
            }
            address_fallback(r, &fqdn, domain, bound).await
        }
        Err(e) if e.is_nx_domain() => MailHosts::NoDomain,
        Err(e) if e.is_no_records_found() => address_fallback(r, &fqdn, domain, bound).await,
        Err(e) => MailHosts::Unknown(e.to_string()),
    }
}

async fn address_fallback(r: &TokioResolver, fqdn: &str, domain: &str, bound: Duration) -> MailHosts {
    match tokio::time::timeout(bound, r.lookup_ip(fqdn)).await {
        Err(_) => MailHosts::Unknown("DNS timeout".into()),
        Ok(Ok(ips)) if ips.iter().next().is_some() => MailHosts::Implicit(domain.to_string()),
        Ok(Ok(_)) => MailHosts::NoHost,
        Ok(Err(e)) if e.is_nx_domain() => MailHosts::NoDomain,
        Ok(Err(e)) if e.is_no_records_found() => MailHosts::NoHost,
        Ok(Err(e)) => MailHosts::Unknown(e.to_string()),
    }
}

impl App {
    /// `email_verify` and `website_overview` for a chunk of Leads, in order.
    pub(crate) async fn enrich_network(&self, slug: &str, provider: &str, leads: &[&Lead]) -> Vec<Enriched> {
        match provider {
            "email_verify" => {
                let emails: Vec<Option<&str>> = leads.iter().map(|l| first_contact(l, "email")).collect();
                self.verify_emails(&emails).await.into_iter().map(|o| Enriched::builtin(slug, o)).collect()
            }
            _ => self.overviews(slug, leads).await,
        }
    }

    /// Verifies addresses (in order); `None` is a Lead without one. Each
    /// distinct domain is asked once.
    pub(crate) async fn verify_emails(&self, emails: &[Option<&str>]) -> Vec<Outcome> {
        let parsed: Vec<Option<Result<email_verify::Address, String>>> =
            emails.iter().map(|e| e.map(email_verify::parse)).collect();
        let mut domains: Vec<String> =
            parsed.iter().filter_map(|p| p.as_ref()?.as_ref().ok()).map(|a| a.domain.clone()).collect();
        domains.sort();
        domains.dedup();
        let answers: HashMap<String, MailHosts> = stream::iter(domains)
            .map(|d| async move {
                let h = self.dns.mail_hosts(&d).await;
                (d, h)
            })
            .buffer_unordered(DNS_CONCURRENCY)
            .collect()
            .await;
        parsed
            .into_iter()
            .zip(emails)
            .map(|(p, raw)| match p {
                None => Outcome::Skipped { reason: MISSING_INPUT },
                Some(Err(why)) => Outcome::Completed(email_verify::invalid_syntax(raw.unwrap_or_default(), &why)),
                Some(Ok(a)) => {
                    let hosts = answers.get(&a.domain).cloned().unwrap_or(MailHosts::Unknown("not asked".into()));
                    Outcome::Completed(email_verify::verdict(&a, &hosts))
                }
            })
            .collect()
    }

    async fn overviews(&self, slug: &str, leads: &[&Lead]) -> Vec<Enriched> {
        let egress = match self.egress(PAGE_CONNECT_TIMEOUT_MS) {
            Ok(e) => e,
            Err(err) => {
                let message = format!("no HTTP client: {err}");
                return leads
                    .iter()
                    .map(|_| {
                        Enriched::builtin(slug, Outcome::Failed { message: message.clone(), code: codes::ERROR.into() })
                    })
                    .collect();
            }
        };
        // Futures built first, then run `PAGE_CONCURRENCY` at a time: a
        // stream of closures over borrowed Leads trips the compiler's Send
        // check of the worker's boxed future.
        let futures: Vec<_> = leads.iter().map(|lead| overview_one(&egress, slug, lead)).collect();
        stream::iter(futures).buffered(PAGE_CONCURRENCY).collect().await
    }
}

async fn overview_one(egress: &puffle_egress::Egress, slug: &str, lead: &Lead) -> Enriched {
    let started = Instant::now();
    let url = website_overview::homepage(first_contact(lead, "website"), lead.company.domain.as_deref());
    let (outcome, calls) = match url {
        None => (Outcome::Skipped { reason: MISSING_INPUT }, 0),
        Some(u) => (fetch_overview(egress, &u).await, 1),
    };
    let mut e = Enriched::builtin(slug, outcome);
    e.calls = calls;
    e.duration_ms = started.elapsed().as_millis() as u64;
    e
}

async fn fetch_overview(egress: &puffle_egress::Egress, url: &str) -> Outcome {
    let Ok(parsed) = Url::parse(url) else {
        return Outcome::Skipped { reason: MISSING_INPUT };
    };
    let host = parsed.host_str().unwrap_or_default().to_string();
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"));
    headers.insert(USER_AGENT, HeaderValue::from_static("PuffleBot/1.0 (+website_overview)"));
    let req = Outbound { method: Method::GET, url: parsed, headers, body: None, timeout: page_timeout() };
    // A huge homepage still has a head and a first paragraph: read the
    // first 2 MB and parse that, rather than fail the Lead.
    let limits = Limits { truncate: true, ..Limits::default() };
    let fetched = match egress.send_with(req, limits).await {
        Ok(f) => f,
        Err(e) => {
            let (code, message) = match e {
                EgressError::Timeout => (codes::TIMEOUT, format!("{host} did not answer in time")),
                EgressError::Refused(r) => (codes::EGRESS_REFUSED, format!("the request to {host} was not sent: {r}")),
                EgressError::TooManyRedirects => {
                    (codes::ERROR, format!("{host} redirected more than {} times", puffle_egress::MAX_REDIRECTS))
                }
                EgressError::Connect(m) => (codes::ERROR, format!("could not reach {host}: {m}")),
                other => (codes::ERROR, format!("fetching {host} failed: {other}")),
            };
            return Outcome::Failed { message, code: code.into() };
        }
    };
    if matches!(fetched.status, StatusCode::NOT_FOUND | StatusCode::GONE) {
        return Outcome::Skipped { reason: NO_MATCH };
    }
    if !fetched.status.is_success() {
        let message = format!("{host} answered HTTP {}", fetched.status.as_u16());
        return Outcome::Failed { message, code: codes::ERROR.into() };
    }
    let content_type = fetched.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    if !website_overview::is_html(content_type.as_deref()) {
        return Outcome::Skipped { reason: NOT_HTML };
    }
    let url = url.to_string();
    let final_url = fetched.final_url.clone();
    // Parsing is CPU work (up to 2 MB of HTML): off the async threads.
    let parsed = tokio::task::spawn_blocking(move || {
        let html = String::from_utf8_lossy(&fetched.body);
        website_overview::overview(&html, &url, &final_url)
    })
    .await;
    match parsed {
        Ok(v) => Outcome::Completed(v),
        Err(e) => Outcome::Failed { message: format!("parsing the page failed: {e}"), code: codes::ERROR.into() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_servers_parse() {
        assert_eq!(
            parse_servers("127.0.0.1:5353, 10.0.0.2").unwrap(),
            vec!["127.0.0.1:5353".parse::<SocketAddr>().unwrap(), "10.0.0.2:53".parse().unwrap()]
        );
        assert!(parse_servers("dns.example").is_err());
    }

    #[test]
    fn unknown_answers_are_not_cached() {
        let s = DnsState::default();
        let now = Instant::now();
        s.remember("a.test", &MailHosts::Unknown("timeout".into()), now);
        assert_eq!(s.cached("a.test", now), None);
        s.remember("a.test", &MailHosts::NoDomain, now);
        assert_eq!(s.cached("a.test", now), Some(MailHosts::NoDomain));
        assert_eq!(s.cached("a.test", now + DNS_CACHE_TTL), None);
    }
}
