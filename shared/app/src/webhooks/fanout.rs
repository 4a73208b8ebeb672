//! Lifecycle events → deliveries: one row per (webhook, event), its id
//! derived from both, so a redelivered stream batch finds the row it made
//! and sends nothing new.

use std::collections::HashMap;

use puffle_aws::store::{DeliveryRow, WebhookRow, DELIVERY_TTL_SECONDS};
use puffle_domain::events::RunEvent;
use puffle_domain::run::Run;
use puffle_domain::webhook::{DeliveryStatus, Envelope, EventFilter};
use puffle_domain::{ids, time};

use crate::{App, AppError};

fn occurred_ms(e: &RunEvent) -> u64 {
    chrono::DateTime::parse_from_rfc3339(&e.occurred_at).map(|t| t.timestamp_millis().max(0) as u64).unwrap_or(0)
}

/// The delivery of `event` to `webhook`, before any attempt.
pub fn delivery_for(webhook: &WebhookRow, event: &RunEvent, run: &Run) -> DeliveryRow {
    let envelope = Envelope {
        event_type: event.event_type.as_str().to_string(),
        timestamp: event.occurred_at.clone(),
        data: serde_json::to_value(run).unwrap_or_default(),
    };
    let id = ids::derived_id("dlv", occurred_ms(event), &format!("{}\n{}", webhook.id, event.event_id));
    new_delivery(id, webhook, &event.workspace_id, &event.event_id, &envelope)
}

/// A delivery of `envelope` to `webhook`, due now, before any attempt.
pub(crate) fn new_delivery(
    id: String,
    webhook: &WebhookRow,
    ws: &str,
    event_id: &str,
    envelope: &Envelope,
) -> DeliveryRow {
    let now = time::now();
    DeliveryRow {
        id,
        webhook_id: webhook.id.clone(),
        workspace_id: ws.to_string(),
        event_id: event_id.to_string(),
        event_type: envelope.event_type.clone(),
        status: DeliveryStatus::Pending,
        attempts: vec![],
        next_attempt_at: Some(now.clone()),
        payload: envelope.body(),
        series_start: 0,
        created_at: now,
        ttl: time::epoch_seconds() + DELIVERY_TTL_SECONDS,
    }
}

impl App {
    /// Makes and queues the deliveries of a stream batch's events (each with
    /// the run as its new image shows it).
    pub async fn fan_out_webhooks(&self, events: &[(RunEvent, Run)]) -> Result<usize, AppError> {
        let mut hooks: HashMap<String, Vec<WebhookRow>> = HashMap::new();
        let mut queued = 0;
        for (event, run) in events {
            if !hooks.contains_key(&event.workspace_id) {
                let found = self.store().list_webhooks(&event.workspace_id).await?;
                hooks.insert(event.workspace_id.clone(), found);
            }
            for w in &hooks[&event.workspace_id] {
                if !w.enabled || !EventFilter::from_names(&w.events).accepts(event.event_type) {
                    continue;
                }
                let d = delivery_for(w, event, run);
                if self.store().put_delivery_if_new(&d).await? {
                    self.enqueue_attempt(&d, 0, 0).await?;
                    queued += 1;
                    continue;
                }
                // Seen before: re-queue only if its first attempt may never
                // have been queued (the batch failed after the row was put).
                if let Some(existing) = self.store().get_delivery(&d.webhook_id, &d.id).await? {
                    if existing.attempts.is_empty() && existing.status == DeliveryStatus::Pending {
                        self.enqueue_attempt(&existing, 0, 0).await?;
                        queued += 1;
                    }
                }
            }
        }
        Ok(queued)
    }
}
