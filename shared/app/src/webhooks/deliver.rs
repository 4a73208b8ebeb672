//! One attempt of a delivery: sign, POST through the egress guard (no
//! redirects, 64 KB of answer at most), record the attempt, schedule the
//! next one.
//!
//! At least once: the next attempt is queued before this one is recorded,
//! so a crash in between repeats an attempt rather than losing the
//! delivery; the recording is conditional on the log's length, so a
//! duplicate message records nothing. Receivers dedupe on `webhook-id`.

use std::time::{Duration, Instant};

use puffle_aws::store::{AttemptRecord, DeliveryRow, WebhookRow};
use puffle_domain::time;
use puffle_domain::webhook::{self, Attempt, DeliveryStatus};
use puffle_egress::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use puffle_egress::{Limits, Method, Outbound, Url};

use super::{now_ms, DeliveryMessage};
use crate::{App, AppError};

/// Why an attempt was not made at all; nothing later will change it.
fn final_error(w: Option<&WebhookRow>) -> Option<&'static str> {
    match w {
        None => Some("the webhook was deleted"),
        Some(w) if !w.enabled => Some("the webhook is disabled"),
        Some(_) => None,
    }
}

fn elapsed_since(rfc3339: &str) -> Duration {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .and_then(|t| (chrono::Utc::now() - t.to_utc()).to_std().ok())
        .unwrap_or_default()
}

fn at_in(delay: Duration) -> String {
    let d = chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::hours(1));
    (chrono::Utc::now() + d).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl App {
    /// Handles one webhook-queue message. Errors are the backend's (the
    /// message comes back); an endpoint's failure is a recorded attempt.
    pub async fn handle_webhook_delivery(&self, body: &str) -> Result<(), AppError> {
        let msg: DeliveryMessage = match serde_json::from_str(body) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "unreadable webhook message dropped");
                return Ok(());
            }
        };
        // Delays past SQS's 15 minutes arrive in hops.
        let now = now_ms();
        if msg.not_before_ms > now + 500 {
            self.send_delivery_message(&msg, msg.not_before_ms - now).await?;
            return Ok(());
        }
        let Some(d) = self.store().get_delivery(&msg.webhook_id, &msg.delivery_id).await? else {
            return Ok(());
        };
        if d.status != DeliveryStatus::Pending || d.attempts.len() != msg.seq {
            tracing::info!(delivery_id = %d.id, seq = msg.seq, attempts = d.attempts.len(), "stale webhook message dropped");
            return Ok(());
        }
        let hook = self.store().get_webhook(&msg.workspace_id, &msg.webhook_id).await?;
        if let Some(why) = final_error(hook.as_ref()) {
            let attempt = Attempt { at: time::now(), status_code: None, duration_ms: 0, error: Some(why.into()) };
            let rec = AttemptRecord { attempt, status: DeliveryStatus::Failed, next_attempt_at: None };
            self.store().record_attempt(&d, msg.seq, &rec).await?;
            return Ok(());
        }
        let hook = hook.expect("checked above");
        let attempt = self.attempt(&hook, &d).await?;
        let settings = self.webhook_settings();
        let ok = attempt.succeeded();
        let rec = if ok {
            AttemptRecord { attempt, status: DeliveryStatus::Succeeded, next_attempt_at: None }
        } else {
            let retry = d.attempts.len() - d.series_start.min(d.attempts.len());
            let first_at = d.attempts.get(d.series_start).map(|a| a.at.as_str()).unwrap_or(&attempt.at);
            match settings.next_delay(retry, elapsed_since(first_at)) {
                Some(delay) => {
                    self.enqueue_attempt(&d, msg.seq + 1, delay.as_millis() as u64).await?;
                    AttemptRecord { attempt, status: DeliveryStatus::Pending, next_attempt_at: Some(at_in(delay)) }
                }
                None => AttemptRecord { attempt, status: DeliveryStatus::Failed, next_attempt_at: None },
            }
        };
        tracing::info!(
            webhook_id = %d.webhook_id, delivery_id = %d.id, event_id = %d.event_id, attempt = msg.seq + 1,
            status_code = rec.attempt.status_code.unwrap_or(0), error = rec.attempt.error.as_deref().unwrap_or(""),
            outcome = rec.status.as_str(), "webhook attempt"
        );
        if !self.store().record_attempt(&d, msg.seq, &rec).await? {
            tracing::info!(delivery_id = %d.id, seq = msg.seq, "another delivery of this message recorded first");
            return Ok(());
        }
        self.track_endpoint_health(&hook, ok).await
    }

    /// One POST. Never an error for what the endpoint did.
    async fn attempt(&self, w: &WebhookRow, d: &DeliveryRow) -> Result<Attempt, AppError> {
        let at = time::now();
        let secrets = self.signing_secrets(w).await?;
        let keys: Vec<Vec<u8>> = secrets.iter().filter_map(|s| webhook::secret_key(s).ok()).collect();
        let fail = |error: String, started: Option<Instant>| Attempt {
            at: at.clone(),
            status_code: None,
            duration_ms: started.map(|s| s.elapsed().as_millis() as u64).unwrap_or(0),
            error: Some(error),
        };
        if keys.is_empty() {
            return Ok(fail("no signing secret could be opened".into(), None));
        }
        let url = match Url::parse(&w.url) {
            Ok(u) => u,
            Err(e) => return Ok(fail(format!("the stored URL is invalid: {e}"), None)),
        };
        let ts = time::epoch_seconds();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut set = |name: &'static str, v: &str| {
            if let Ok(v) = HeaderValue::from_str(v) {
                headers.insert(HeaderName::from_static(name), v);
            }
        };
        set("webhook-id", &d.event_id);
        set("webhook-timestamp", &ts.to_string());
        set("webhook-signature", &webhook::signature_header(&keys, &d.event_id, ts, &d.payload));
        let req = Outbound {
            method: Method::POST,
            url,
            headers,
            body: Some(bytes::Bytes::from(d.payload.clone())),
            timeout: self.webhook_settings().timeout,
        };
        let started = Instant::now();
        let egress = self.webhook_egress()?;
        Ok(match egress.send_with(req, Limits::WEBHOOK).await {
            Ok(f) => {
                let code = f.status.as_u16();
                Attempt {
                    at,
                    status_code: Some(code),
                    duration_ms: started.elapsed().as_millis() as u64,
                    error: (!f.status.is_success()).then(|| format!("HTTP {code}")),
                }
            }
            Err(e) => fail(e.to_string(), Some(started)),
        })
    }

    /// A success ends a failing streak; a streak longer than the limit
    /// disables the webhook.
    async fn track_endpoint_health(&self, w: &WebhookRow, ok: bool) -> Result<(), AppError> {
        let ws = &w.workspace_id;
        if ok {
            if w.failing_since.is_some() {
                self.store().clear_webhook_failing(ws, &w.id).await?;
            }
            return Ok(());
        }
        let since = self.store().note_webhook_failing(ws, &w.id, &time::now()).await?;
        if let Some(since) = since {
            if elapsed_since(&since) >= self.webhook_settings().disable_after {
                tracing::warn!(webhook_id = %w.id, failing_since = %since, "webhook disabled: its endpoint kept failing");
                self.store()
                    .disable_webhook(
                        ws,
                        &w.id,
                        &format!("the endpoint has failed every attempt since {since}"),
                        &time::now(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
