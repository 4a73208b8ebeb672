//! `toolBinding.type = "http"`: one chunk of Leads against an outside
//! provider.
//!
//! Per chunk: render each Lead's request (a Lead lacking a value is skipped
//! `missing_input`, no call), read the result cache in one BatchGetItem,
//! call the provider for the rest with bounded concurrency, through the
//! rate limiter, the circuit and the egress guard, with retries (backon:
//! exponential backoff with jitter on timeouts, 429 and 5xx, honouring
//! `Retry-After`), then write the new hits to the cache in BatchWriteItem.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use futures::stream::{self, StreamExt};
use puffle_aws::store::CachedResult;
use puffle_domain::binding::response::{Source, LOW_CONFIDENCE};
use puffle_domain::binding::template::lead_context;
use puffle_domain::binding::{
    below_min_confidence, cache_key, map_response_at, render, HttpBinding, Mapped, Missing, Rendered, StatusMeaning,
    Values,
};
use puffle_domain::catalog::Enrichment;
use puffle_domain::lead::Lead;
use puffle_domain::providers::{Outcome, MISSING_INPUT};
use puffle_domain::time;
use puffle_egress::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use puffle_egress::{EgressError, Fetched, Method, Outbound, StatusCode, Url};
use serde_json::{json, Value};

use super::resilience::Circuit;
use super::Enriched;
use crate::{App, AppError};

/// `skippedReason` of a Lead the provider does not know.
pub const NO_MATCH: &str = "no_match";
/// The longest `Retry-After` waited for; a longer one ends the retries.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Item error codes (`error.details.code`).
pub mod codes {
    pub const TIMEOUT: &str = "PROVIDER_TIMEOUT";
    pub const RATE_LIMITED: &str = "PROVIDER_RATE_LIMITED";
    pub const QUOTA_EXCEEDED: &str = "PROVIDER_QUOTA_EXCEEDED";
    pub const ERROR: &str = "PROVIDER_ERROR";
    pub const UNAVAILABLE: &str = "PROVIDER_UNAVAILABLE";
    pub const INVALID_RESPONSE: &str = "INVALID_PROVIDER_RESPONSE";
    pub const EGRESS_REFUSED: &str = "EGRESS_REFUSED";
    pub const DISABLED: &str = "ENRICHMENT_DISABLED";
    pub const INVALID_INPUT: &str = "INVALID_INPUT";
}

/// Why one call did not give a usable answer.
#[derive(Debug)]
enum CallError {
    Timeout,
    RateLimited {
        status: u16,
        retry_after: Option<Duration>,
    },
    Server {
        status: u16,
        retry_after: Option<Duration>,
    },
    Client {
        status: u16,
    },
    /// 401/403: the key is wrong or revoked. Not retried, but counted
    /// against the circuit: every other Lead would fail the same way, so the
    /// circuit opens instead of sending the whole run to a provider that
    /// refuses it.
    Account {
        status: u16,
    },
    /// 402, or a status the binding maps to `quota_exceeded`: the account's
    /// credits or quota are used up. Treated like a refused key.
    Quota {
        status: u16,
    },
    Connect(String),
    Refused(String),
    TooLarge,
    Other(String),
}

impl CallError {
    fn retryable(&self) -> bool {
        matches!(
            self,
            CallError::Timeout | CallError::RateLimited { .. } | CallError::Server { .. } | CallError::Connect(_)
        )
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::RateLimited { retry_after, .. } | CallError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Counts against the circuit: the provider (or our account with it)
    /// is failing, not the Lead.
    fn is_provider_failure(&self) -> bool {
        self.retryable() || matches!(self, CallError::Account { .. } | CallError::Quota { .. })
    }

    fn outcome(&self, provider: &str) -> Outcome {
        let (code, message) = match self {
            CallError::Timeout => (codes::TIMEOUT, format!("{provider} did not answer in time")),
            CallError::RateLimited { .. } => {
                (codes::RATE_LIMITED, format!("{provider} kept answering 429 Too Many Requests"))
            }
            CallError::Server { status, .. } => (codes::ERROR, format!("{provider} answered HTTP {status}")),
            CallError::Client { status } => {
                (codes::ERROR, format!("{provider} refused the request with HTTP {status}"))
            }
            CallError::Quota { status } => (
                codes::QUOTA_EXCEEDED,
                format!("{provider} answered HTTP {status}: the account's credits or quota are used up"),
            ),
            CallError::Account { status } => (
                codes::ERROR,
                format!("{provider} refused the key with HTTP {status}: check the secret configured for it"),
            ),
            CallError::Connect(cause) => (codes::ERROR, format!("could not reach {provider}: {cause}")),
            CallError::Refused(why) => {
                (codes::EGRESS_REFUSED, format!("the request to {provider} was not sent: {why}"))
            }
            CallError::TooLarge => (
                codes::INVALID_RESPONSE,
                format!("{provider}'s response is larger than {} bytes", puffle_egress::MAX_BODY_BYTES),
            ),
            CallError::Other(m) => (codes::ERROR, format!("the call to {provider} failed: {m}")),
        };
        Outcome::Failed { message, code: code.to_string() }
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = (when.timestamp_millis() - chrono::Utc::now().timestamp_millis()).max(0);
    Some(Duration::from_millis(ms as u64))
}

fn submission_id_header(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id", "x-amzn-requestid", "x-correlation-id"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()).map(str::to_string))
}

/// Everything the calls of one chunk share.
pub(crate) struct Ctx {
    pub(crate) provider: String,
    pub(crate) egress: puffle_egress::Egress,
    pub(crate) limiter: std::sync::Arc<governor::DefaultDirectRateLimiter>,
    pub(crate) circuit: std::sync::Arc<Circuit>,
    pub(crate) validator: jsonschema::Validator,
    pub(crate) timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) charge_cache_hits: bool,
    /// The binding's own meaning of some error statuses.
    pub(crate) status_codes: std::collections::BTreeMap<u16, StatusMeaning>,
}

/// What one Lead's call sequence came to.
struct Called {
    outcome: Outcome,
    calls: u32,
    submission_id: Option<String>,
    status: Option<u16>,
    duration_ms: u64,
}

/// One guarded call sequence (circuit, rate limit, retries): the last
/// answer or why there was none, and the calls it took.
pub(crate) struct Sent {
    pub(crate) result: Result<Fetched, CallErrorBox>,
    pub(crate) calls: u32,
}

/// A failed call sequence, as the item will show it.
pub(crate) struct CallErrorBox(CallError);

impl CallErrorBox {
    pub(crate) fn outcome(&self, provider: &str) -> Outcome {
        self.0.outcome(provider)
    }
    pub(crate) fn status(&self) -> Option<u16> {
        match &self.0 {
            CallError::Server { status, .. }
            | CallError::Client { status }
            | CallError::Account { status }
            | CallError::Quota { status } => Some(*status),
            CallError::RateLimited { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub(crate) fn outbound(r: &Rendered, timeout: Duration) -> Result<Outbound, String> {
    let method =
        Method::from_bytes(r.method.as_bytes()).map_err(|_| format!("`{}` is not an HTTP method", r.method))?;
    let url = Url::parse(&r.url).map_err(|e| format!("the rendered URL is invalid ({e})"))?;
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    for (k, v) in &r.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("`{k}` is not a header name"))?;
        // The value may hold a secret: name the header, never the value.
        let value = HeaderValue::from_str(v).map_err(|_| format!("the {k} header's value cannot be sent"))?;
        headers.insert(name, value);
    }
    let body = match &r.body {
        Some(b) => {
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Some(bytes::Bytes::from(b.to_string()))
        }
        None => None,
    };
    Ok(Outbound { method, url, headers, body, timeout })
}

impl App {
    pub(crate) async fn enrich_http(
        &self,
        ws: &str,
        e: &Enrichment,
        h: &HttpBinding,
        input: &Value,
        leads: &[&Lead],
    ) -> Result<Vec<Enriched>, AppError> {
        let provider = h.provider_name();
        let catalog = super::secrets::is_catalog(e);
        // The circuit is per enrichment and the rate limit per provider, both
        // per workspace for a workspace's own enrichment or its own key.
        let (secrets, own_key) = self.secrets_and_source(ws, e).await?;
        let scope = if catalog && !own_key { "catalog".to_string() } else { format!("ws:{ws}") };
        let validator = e.compile_output().map_err(AppError::Internal)?;
        let ctx = Ctx {
            egress: self.egress(h.connect_timeout_ms())?,
            limiter: self.resilience.limiter(&format!("{scope}/{provider}"), h.rate_per_second()),
            circuit: self.resilience.circuit(
                &format!("{scope}/{}", e.slug),
                h.failure_threshold(),
                Duration::from_secs(h.open_seconds()),
            ),
            provider,
            validator,
            timeout: Duration::from_millis(h.timeout_ms()),
            max_attempts: h.max_attempts(),
            charge_cache_hits: h.charge_cache_hits(),
            status_codes: h.status_meanings(),
        };
        let secret = |name: &str| secrets.get(name).cloned();
        let ttl = h.cache_ttl_seconds();

        // 1. Render (pure).
        let mut results: Vec<Option<Enriched>> = vec![None; leads.len()];
        let mut to_send: Vec<(usize, Outbound, Option<String>)> = vec![];
        for (i, lead) in leads.iter().enumerate() {
            let lead_ctx = lead_context(lead);
            let values = Values { lead: &lead_ctx, input, secret: &secret };
            let done = |outcome| Some(enriched(&ctx, outcome, 0, None, false, None));
            match render(h, &values) {
                Err(Missing::Lead(_) | Missing::Input(_)) => {
                    results[i] = done(Outcome::Skipped { reason: MISSING_INPUT })
                }
                Err(m @ Missing::Secret(_)) => {
                    results[i] = done(Outcome::Failed { message: m.to_string(), code: codes::DISABLED.into() })
                }
                Ok(r) => match outbound(&r, ctx.timeout) {
                    Err(message) => {
                        results[i] = done(Outcome::Failed { message, code: codes::INVALID_INPUT.into() });
                    }
                    Ok(o) => {
                        let key = if ttl > 0 { cache_key(h, &lead_ctx, input).ok() } else { None };
                        to_send.push((i, o, key));
                    }
                },
            }
        }

        // 2. The cache (a failed read only costs calls).
        let now_epoch = time::epoch_seconds();
        let hashes: Vec<String> = to_send.iter().filter_map(|(_, _, k)| k.clone()).collect();
        let cached = if hashes.is_empty() {
            HashMap::new()
        } else {
            self.store().get_cached(ws, &e.slug, &hashes, now_epoch).await.unwrap_or_else(|err| {
                tracing::warn!(error = %err, enrichment = %e.slug, "provider cache unreadable; calling instead");
                HashMap::new()
            })
        };
        let mut calls = vec![];
        for (i, o, key) in to_send {
            match key.as_ref().and_then(|k| cached.get(k)) {
                Some(c) => {
                    results[i] = Some(enriched(
                        &ctx,
                        min_confidence(Outcome::Completed(c.result.clone()), input),
                        0,
                        c.submission_id.clone(),
                        true,
                        None,
                    ))
                }
                None => calls.push((i, o, key)),
            }
        }

        // 3. Calls, in order, `concurrency` at a time.
        let ctx_ref = &ctx;
        let called: Vec<(usize, Option<String>, Called)> = stream::iter(calls)
            .map(|(i, o, key)| async move { (i, key, call(ctx_ref, h, o).await) })
            .buffered(h.concurrency() as usize)
            .collect()
            .await;

        // 4. New hits into the cache.
        let now = time::now();
        let mut rows = vec![];
        for (i, key, c) in called {
            if let (Some(k), Outcome::Completed(v)) = (&key, &c.outcome) {
                let cr =
                    CachedResult { result: v.clone(), submission_id: c.submission_id.clone(), created_at: now.clone() };
                match self.store().cache_row(ws, &e.slug, k, &cr, now_epoch + ttl as i64) {
                    Ok(r) => rows.push(r),
                    Err(err) => tracing::warn!(error = %err, "provider cache row not built"),
                }
            }
            let mut r = enriched(&ctx, min_confidence(c.outcome, input), c.calls, c.submission_id, false, c.status);
            r.duration_ms = c.duration_ms;
            results[i] = Some(r);
        }
        if !rows.is_empty() {
            if let Err(err) = self.store().batch_put(rows).await {
                tracing::warn!(error = %err, enrichment = %e.slug, "provider results not cached");
            }
        }
        Ok(results.into_iter().map(|r| r.expect("every Lead has a result")).collect())
    }

    /// One guarded client per connect timeout (a connection pool each).
    pub(crate) fn egress(&self, connect_timeout_ms: u64) -> Result<puffle_egress::Egress, AppError> {
        let mut m = self.egress.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = m.get(&connect_timeout_ms) {
            return Ok(e.clone());
        }
        let e =
            puffle_egress::Egress::new(puffle_egress::AllowList::from_env(), Duration::from_millis(connect_timeout_ms))
                .map_err(|e| AppError::Internal(e.to_string()))?;
        m.insert(connect_timeout_ms, e.clone());
        Ok(e)
    }
}

pub(crate) fn enriched(
    ctx: &Ctx,
    outcome: Outcome,
    calls: u32,
    submission_id: Option<String>,
    cached: bool,
    status: Option<u16>,
) -> Enriched {
    let charge = !cached || ctx.charge_cache_hits;
    let mut e = Enriched::new(outcome, ctx.provider.clone());
    e.provider_submission_id = submission_id;
    e.calls = calls;
    e.cached = cached;
    e.charge = charge;
    e.metadata = match status {
        Some(s) => json!({"httpStatus": s}),
        None => Value::Null,
    };
    e
}

/// `input.minConfidence`: a hit below it is a miss (released, not charged).
pub(crate) fn min_confidence(outcome: Outcome, input: &Value) -> Outcome {
    match outcome {
        Outcome::Completed(v) if below_min_confidence(&v, input) => Outcome::Skipped { reason: LOW_CONFIDENCE },
        other => other,
    }
}

/// One Lead's call sequence through the circuit, the rate limit and the
/// retry policy. The circuit learns from it: an answer closes it, a
/// provider failure (after the retries) counts towards opening it.
pub(crate) async fn send(ctx: &Ctx, req: Outbound) -> Option<Sent> {
    if !ctx.circuit.allow(Instant::now()) {
        return None;
    }
    let started = Instant::now();
    let calls = AtomicU32::new(0);
    let attempt = || async {
        ctx.limiter.until_ready().await;
        calls.fetch_add(1, Ordering::Relaxed);
        match ctx.egress.send(req.clone()).await {
            Ok(f) if f.status.is_success() || f.status == StatusCode::NOT_FOUND => Ok(f),
            Ok(f) if ctx.status_codes.contains_key(&f.status.as_u16()) => {
                let status = f.status.as_u16();
                Err(match ctx.status_codes[&status] {
                    StatusMeaning::RateLimited => {
                        CallError::RateLimited { status, retry_after: retry_after(&f.headers) }
                    }
                    StatusMeaning::QuotaExceeded => CallError::Quota { status },
                })
            }
            Ok(f) if f.status == StatusCode::TOO_MANY_REQUESTS => {
                Err(CallError::RateLimited { status: 429, retry_after: retry_after(&f.headers) })
            }
            Ok(f) if f.status == StatusCode::PAYMENT_REQUIRED => Err(CallError::Quota { status: 402 }),
            Ok(f) if f.status.is_server_error() => {
                Err(CallError::Server { status: f.status.as_u16(), retry_after: retry_after(&f.headers) })
            }
            Ok(f) if matches!(f.status.as_u16(), 401..=403) => Err(CallError::Account { status: f.status.as_u16() }),
            Ok(f) => Err(CallError::Client { status: f.status.as_u16() }),
            Err(EgressError::Timeout) => Err(CallError::Timeout),
            Err(EgressError::Connect(m)) => Err(CallError::Connect(m)),
            Err(EgressError::Refused(r)) => Err(CallError::Refused(r.to_string())),
            Err(EgressError::TooLarge) => Err(CallError::TooLarge),
            Err(other) => Err(CallError::Other(other.to_string())),
        }
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(FIRST_BACKOFF)
        .with_max_delay(MAX_BACKOFF)
        .with_jitter()
        .with_max_times(ctx.max_attempts.saturating_sub(1) as usize);
    let result: Result<Fetched, CallError> = attempt
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(CallError::retryable)
        .adjust(|err, next| match (next, err.retry_after()) {
            (None, _) => None,
            (Some(_), Some(wait)) if wait > MAX_RETRY_AFTER => None,
            (Some(_), Some(wait)) => Some(wait),
            (Some(backoff), None) => Some(backoff),
        })
        .await;
    crate::emf::provider_call(&ctx.provider, started.elapsed().as_secs_f64() * 1000.0, 1, result.is_err() as u64);
    match &result {
        Err(err) if err.is_provider_failure() => ctx.circuit.failure(Instant::now()),
        _ => ctx.circuit.success(),
    }
    Some(Sent { result: result.map_err(CallErrorBox), calls: calls.into_inner() })
}

/// The outcome of a Lead whose circuit is open (no call made).
pub(crate) fn circuit_open(provider: &str) -> Outcome {
    let message = format!("{provider} is failing; calls are paused for a while (circuit open)");
    Outcome::Failed { message, code: codes::UNAVAILABLE.into() }
}

async fn call(ctx: &Ctx, binding: &HttpBinding, req: Outbound) -> Called {
    let started = Instant::now();
    let Some(sent) = send(ctx, req).await else {
        return Called {
            outcome: circuit_open(&ctx.provider),
            calls: 0,
            submission_id: None,
            status: None,
            duration_ms: 0,
        };
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let calls = sent.calls;
    match sent.result {
        Ok(f) => {
            let status = f.status.as_u16();
            let header_id = submission_id_header(&f.headers);
            if f.status == StatusCode::NOT_FOUND {
                return Called {
                    outcome: Outcome::Skipped { reason: NO_MATCH },
                    calls,
                    submission_id: header_id,
                    status: Some(status),
                    duration_ms,
                };
            }
            let now = time::now();
            let source = Source { provider: &ctx.provider, fetched_at: &now };
            let (outcome, submission_id) =
                match map_response_at(&binding.response, &f.body, &ctx.validator, Some(source)) {
                    Mapped::Hit { result, submission_id } => (Outcome::Completed(result), submission_id),
                    Mapped::Miss { submission_id } => (Outcome::Skipped { reason: NO_MATCH }, submission_id),
                    Mapped::Invalid(message) => {
                        (Outcome::Failed { message, code: codes::INVALID_RESPONSE.into() }, None)
                    }
                };
            Called { outcome, calls, submission_id: submission_id.or(header_id), status: Some(status), duration_ms }
        }
        Err(err) => Called {
            outcome: err.outcome(&ctx.provider),
            calls,
            submission_id: None,
            status: err.status(),
            duration_ms,
        },
    }
}
