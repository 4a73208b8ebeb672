//! Webhooks (Standard Webhooks): a workspace subscribes a URL to run
//! lifecycle events; every delivery is signed, retried with backoff for a
//! day, logged, and can be replayed.
//!
//! ```text
//! stream ─▶ handle_stream ─▶ fanout: one delivery row per (webhook, event) ─▶ webhook queue
//! webhook queue ─▶ deliver: sign, POST through the egress guard, record the attempt,
//!                  schedule the next one (SQS delay, re-sent past 15 minutes)
//! ```
//!
//! - [`api`]: the `/api/webhooks` use cases;
//! - [`fanout`]: lifecycle events → deliveries;
//! - [`deliver`]: one attempt of a delivery;
//! - [`settings`]: the retry schedule and limits.

pub mod api;
pub mod deliver;
pub mod fanout;
pub mod settings;

use puffle_domain::secrets::{self as sealed, Kek};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

use crate::{App, AppError};
use puffle_aws::store::{DeliveryRow, WebhookRow};
pub use settings::WebhookSettings;

/// Per-process state: the settings and the guarded client deliveries use.
#[derive(Default)]
pub struct WebhookState {
    settings: OnceLock<WebhookSettings>,
    egress: OnceLock<puffle_egress::Egress>,
}

/// One message on the webhook queue: attempt number `seq` of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryMessage {
    pub workspace_id: String,
    pub webhook_id: String,
    pub delivery_id: String,
    /// Attempts the log held when this one was scheduled: a message whose
    /// delivery moved on is stale and dropped.
    pub seq: usize,
    /// Epoch ms before which the attempt must not run (delays past SQS's
    /// 15 minutes are served in hops).
    #[serde(default)]
    pub not_before_ms: u64,
}

/// The name a webhook secret is sealed under (its row's identity).
fn seal_name(webhook_id: &str, secret_id: &str) -> String {
    format!("webhook:{webhook_id}:{secret_id}")
}

pub(crate) fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

impl App {
    pub fn webhook_settings(&self) -> WebhookSettings {
        *self.webhooks.settings.get_or_init(WebhookSettings::from_env)
    }

    pub(crate) fn webhook_egress(&self) -> Result<&puffle_egress::Egress, AppError> {
        if let Some(e) = self.webhooks.egress.get() {
            return Ok(e);
        }
        let e = puffle_egress::Egress::new(puffle_egress::AllowList::from_env(), std::time::Duration::from_secs(5))
            .map_err(|e| AppError::Internal(format!("the webhook HTTP client: {e}")))?;
        Ok(self.webhooks.egress.get_or_init(|| e))
    }

    async fn webhook_kek(&self) -> Result<Kek, AppError> {
        self.kek().await?.ok_or_else(|| {
            AppError::Internal(format!("webhook secrets need {} to be configured", crate::enrich::secrets::KEK_NAME))
        })
    }

    /// The secrets that sign now (the newest, and a rotated one in its overlap).
    pub(crate) async fn signing_secrets(&self, w: &WebhookRow) -> Result<Vec<String>, AppError> {
        let kek = self.webhook_kek().await?;
        let now = puffle_domain::time::now();
        let mut out = vec![];
        for s in &w.secrets {
            if s.expires_at.as_deref().is_some_and(|e| e <= now.as_str()) {
                continue;
            }
            match sealed::open(&kek, &w.workspace_id, &seal_name(&w.id, &s.id), &s.sealed) {
                Ok(v) => out.push(v),
                Err(e) => {
                    tracing::error!(webhook_id = %w.id, secret_id = %s.id, error = %e, "a webhook secret does not open")
                }
            }
        }
        Ok(out)
    }

    /// Queues attempt `seq` of a delivery, visible after `delay_ms`.
    pub(crate) async fn enqueue_attempt(&self, d: &DeliveryRow, seq: usize, delay_ms: u64) -> Result<(), AppError> {
        let msg = DeliveryMessage {
            workspace_id: d.workspace_id.clone(),
            webhook_id: d.webhook_id.clone(),
            delivery_id: d.id.clone(),
            seq,
            not_before_ms: now_ms() + delay_ms,
        };
        self.send_delivery_message(&msg, delay_ms).await
    }

    async fn send_delivery_message(&self, msg: &DeliveryMessage, delay_ms: u64) -> Result<(), AppError> {
        let body = serde_json::to_string(msg).map_err(|e| AppError::Internal(e.to_string()))?;
        // Whole seconds, rounded up: an attempt never runs before its time.
        let delay_s = delay_ms.div_ceil(1000).min(puffle_aws::queue::MAX_DELAY_SECONDS as u64);
        self.aws.webhook_queue.send_raw_after(&body, std::time::Duration::from_secs(delay_s)).await?;
        Ok(())
    }
}
