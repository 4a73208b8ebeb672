//! SDK interceptors: a per-operation request counter (the request budget is
//! measured, not guessed), an opt-in request recorder (the least-privilege
//! test reads what each function really sends) and an opt-in throttling
//! fault injector.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

static COUNTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
static INJECTED: AtomicU64 = AtomicU64::new(0);
static RECORDING: AtomicBool = AtomicBool::new(false);
static RECORDED: Mutex<Vec<Recorded>> = Mutex::new(Vec::new());

/// One request as it left the process: `service:Operation` and its body.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub operation: String,
    pub body: Vec<u8>,
}

/// Starts (or stops) keeping every request's body. Off by default: only
/// tests turn it on, and then the process should do nothing else.
pub fn record_requests(on: bool) {
    RECORDING.store(on, Ordering::SeqCst);
}

/// The requests recorded since the last call.
pub fn take_recorded() -> Vec<Recorded> {
    RECORDED.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
}

/// Requests sent since start (every attempt counts, retries included), keyed
/// `service:Operation`.
pub fn snapshot() -> BTreeMap<String, u64> {
    COUNTS.lock().map(|m| m.clone()).unwrap_or_default()
}

pub fn injected_faults() -> u64 {
    INJECTED.load(Ordering::Relaxed)
}

pub fn reset() {
    if let Ok(mut m) = COUNTS.lock() {
        m.clear();
    }
}

#[derive(Debug)]
pub struct CountRequests;

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let key = format!("{}:{}", m.service(), m.name());
            if RECORDING.load(Ordering::Relaxed) {
                let body = ctx.request().body().bytes().map(<[u8]>::to_vec).unwrap_or_default();
                if let Ok(mut v) = RECORDED.lock() {
                    v.push(Recorded { operation: key.clone(), body });
                }
            }
            if let Ok(mut counts) = COUNTS.lock() {
                *counts.entry(key).or_default() += 1;
            }
        }
        Ok(())
    }
}

/// Replaces a share of DynamoDB responses with a `ThrottlingException`
/// (`PUFFLE_FAULT_THROTTLE_RATE`, 0.0..1.0; off by default) so tests can
/// prove the SDK's retries and our error mapping lose nothing.
#[derive(Debug)]
pub struct InjectThrottling {
    rate: f64,
}

impl InjectThrottling {
    pub fn from_env() -> Self {
        let rate = std::env::var("PUFFLE_FAULT_THROTTLE_RATE")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            .clamp(0.0, 1.0);
        InjectThrottling { rate }
    }
}

impl Intercept for InjectThrottling {
    fn name(&self) -> &'static str {
        "InjectThrottling"
    }

    /// The request is turned into a harmless DescribeLimits before it leaves,
    /// so an injected throttle never hides a write that really happened.
    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let inject = self.rate > 0.0 && rand::random::<f64>() < self.rate;
        cfg.interceptor_state().store_put(Injected(inject));
        if inject {
            let req = ctx.request_mut();
            req.headers_mut().insert("x-amz-target", "DynamoDB_20120810.DescribeLimits");
            // The length must match the new body, or the server waits for the rest.
            req.headers_mut().insert("content-length", "2");
            *req.body_mut() = SdkBody::from("{}");
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !cfg.load::<Injected>().is_some_and(|i| i.0) {
            return Ok(());
        }
        INJECTED.fetch_add(1, Ordering::Relaxed);
        let resp = ctx.response_mut();
        *resp.status_mut() = aws_smithy_runtime_api::http::StatusCode::try_from(400u16)?;
        resp.headers_mut().insert("content-type", "application/x-amz-json-1.0");
        resp.headers_mut().remove("x-amz-crc32");
        *resp.body_mut() = SdkBody::from(
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"injected by PUFFLE_FAULT_THROTTLE_RATE"}"#,
        );
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
struct Injected(bool);

impl Storable for Injected {
    type Storer = StoreReplace<Self>;
}
