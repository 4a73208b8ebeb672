//! `/api/webhooks`: subscriptions, secrets, the delivery log, replay, test.

use puffle_aws::store::{DeliveryRow, WebhookRow, WebhookSecret};
use puffle_aws::StoreError;
use puffle_domain::secrets as sealed;
use puffle_domain::webhook::{self, Attempt, DeliveryStatus, Envelope, EventFilter, MAX_WEBHOOKS};
use puffle_domain::{ids, time, DomainError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::seal_name;
use crate::{App, AppError};

pub const DEFAULT_DELIVERIES_LIMIT: usize = 20;
pub const MAX_DELIVERIES_LIMIT: usize = 100;

/// A webhook as the API shows it (never its secrets).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&WebhookRow> for WebhookView {
    fn from(w: &WebhookRow) -> Self {
        WebhookView {
            id: w.id.clone(),
            url: w.url.clone(),
            events: w.events.clone(),
            description: w.description.clone(),
            enabled: w.enabled,
            disabled_reason: w.disabled_reason.clone(),
            created_at: w.created_at.clone(),
            updated_at: w.updated_at.clone(),
        }
    }
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
}

impl From<&DeliveryRow> for DeliveryView {
    fn from(d: &DeliveryRow) -> Self {
        DeliveryView {
            id: d.id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            status: d.status,
            attempts: d.attempts.clone(),
            next_attempt_at: d.next_attempt_at.clone(),
            created_at: d.created_at.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPageInfo {
    pub limit: usize,
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

#[derive(Debug, Serialize)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryView>,
    pub page: DeliveryPageInfo,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    url: String,
    events: Value,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    events: Option<Value>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct DeliveriesCursor {
    before: String,
}

/// `now`, or a millisecond after `prev` when the clock has not moved past it
/// (the optimistic write compares `updatedAt`, so it must change).
fn later_than(now: String, prev: &str) -> String {
    if now.as_str() > prev {
        return now;
    }
    chrono::DateTime::parse_from_rfc3339(prev)
        .map(|t| (t + chrono::Duration::milliseconds(1)).to_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or(now)
}

fn webhook_not_found(id: &str) -> AppError {
    AppError::not_found("WEBHOOK_NOT_FOUND", format!("no webhook {id} in this workspace"))
}

fn parse<T: serde::de::DeserializeOwned>(body: &Value, what: &str) -> Result<T, AppError> {
    if !body.is_object() {
        return Err(DomainError::invalid("the body must be a JSON object").into());
    }
    serde_json::from_value(body.clone()).map_err(|e| DomainError::invalid(format!("invalid {what}: {e}")).into())
}

fn check_description(d: &Option<String>) -> Result<(), AppError> {
    if d.as_ref().is_some_and(|d| d.chars().count() > webhook::MAX_DESCRIPTION_LEN) {
        return Err(DomainError::invalid_with(
            format!("description is at most {} characters", webhook::MAX_DESCRIPTION_LEN),
            json!({"field": "description"}),
        )
        .into());
    }
    Ok(())
}

impl App {
    /// A URL's shape, then where it points: literal refused addresses and
    /// names that resolve only to them are a 400 (the guard checks again
    /// at every delivery).
    async fn check_webhook_url(&self, raw: &str) -> Result<String, AppError> {
        let url = webhook::parse_url(raw, self.webhook_settings().https_only)?;
        let allow = self.webhook_egress()?.allow_list().clone();
        if let Err(r) = puffle_egress::check_resolved(&url, &allow).await {
            return Err(DomainError::invalid_with(
                format!("url is not an allowed target: {r}"),
                json!({"field": "url", "reason": r.to_string()}),
            )
            .into());
        }
        Ok(url.to_string())
    }

    async fn load_webhook(&self, ws: &str, id: &str) -> Result<WebhookRow, AppError> {
        if !ids::is_valid_id(id, "wh") {
            return Err(webhook_not_found(id));
        }
        self.store().get_webhook(ws, id).await?.ok_or_else(|| webhook_not_found(id))
    }

    async fn new_secret_entry(
        &self,
        ws: &str,
        webhook_id: &str,
        now: &str,
    ) -> Result<(String, WebhookSecret), AppError> {
        let kek = self.webhook_kek().await?;
        let secret = webhook::new_secret();
        let id = ids::new_id("whsec");
        let entry = WebhookSecret {
            sealed: sealed::seal(&kek, ws, &seal_name(webhook_id, &id), &secret),
            id,
            created_at: now.to_string(),
            expires_at: None,
        };
        Ok((secret, entry))
    }

    /// `POST /api/webhooks` → the webhook and its secret (shown only here).
    pub async fn create_webhook(&self, ws: &str, body: &Value) -> Result<(WebhookView, String), AppError> {
        let b: CreateBody = parse(body, "webhook")?;
        let filter = EventFilter::parse(&b.events)?;
        check_description(&b.description)?;
        let url = self.check_webhook_url(&b.url).await?;
        if self.store().list_webhooks(ws).await?.len() >= MAX_WEBHOOKS {
            return Err(AppError::Conflict {
                code: "WEBHOOK_LIMIT_REACHED",
                message: format!("a workspace has at most {MAX_WEBHOOKS} webhooks"),
                details: json!({"max": MAX_WEBHOOKS}),
            });
        }
        let now = time::now();
        let id = ids::new_id("wh");
        let (secret, entry) = self.new_secret_entry(ws, &id, &now).await?;
        let row = WebhookRow {
            id,
            workspace_id: ws.to_string(),
            url,
            events: filter.names(),
            description: b.description,
            enabled: true,
            disabled_reason: None,
            created_at: now.clone(),
            updated_at: now,
            secrets: vec![entry],
            failing_since: None,
        };
        self.store().put_webhook(ws, &row).await?;
        Ok((WebhookView::from(&row), secret))
    }

    pub async fn list_webhooks(&self, ws: &str) -> Result<Vec<WebhookView>, AppError> {
        Ok(self.store().list_webhooks(ws).await?.iter().map(WebhookView::from).collect())
    }

    pub async fn get_webhook(&self, ws: &str, id: &str) -> Result<WebhookView, AppError> {
        Ok(WebhookView::from(&self.load_webhook(ws, id).await?))
    }

    pub async fn delete_webhook(&self, ws: &str, id: &str) -> Result<(), AppError> {
        if !ids::is_valid_id(id, "wh") || !self.store().delete_webhook(ws, id).await? {
            return Err(webhook_not_found(id));
        }
        Ok(())
    }

    /// `PATCH /api/webhooks/{id}`. Enabling a webhook clears why it was off.
    pub async fn update_webhook(&self, ws: &str, id: &str, body: &Value) -> Result<WebhookView, AppError> {
        let b: PatchBody = parse(body, "webhook update")?;
        let filter = b.events.as_ref().map(EventFilter::parse).transpose()?;
        check_description(&b.description)?;
        let url = match &b.url {
            Some(u) => Some(self.check_webhook_url(u).await?),
            None => None,
        };
        self.modify_webhook(ws, id, |w| {
            if let Some(u) = &url {
                w.url = u.clone();
            }
            if let Some(f) = &filter {
                w.events = f.names();
            }
            if let Some(d) = &b.description {
                w.description = Some(d.clone());
            }
            if let Some(e) = b.enabled {
                w.enabled = e;
                if e {
                    w.disabled_reason = None;
                    w.failing_since = None;
                }
            }
        })
        .await
        .map(|w| WebhookView::from(&w))
    }

    /// `POST /api/webhooks/{id}/rotate-secret` → the new secret. The old one
    /// keeps signing beside it for the overlap; older ones stop now.
    pub async fn rotate_webhook_secret(&self, ws: &str, id: &str) -> Result<String, AppError> {
        let now = time::now();
        let (secret, entry) = self.new_secret_entry(ws, id, &now).await?;
        let overlap = chrono::Duration::from_std(self.webhook_settings().rotation_overlap)
            .unwrap_or_else(|_| chrono::Duration::hours(24));
        let expires = (chrono::Utc::now() + overlap).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.modify_webhook(ws, id, |w| {
            let previous =
                w.secrets.iter().find(|s| s.expires_at.as_deref().is_none_or(|e| e > now.as_str())).cloned().map(
                    |mut s| {
                        s.expires_at = Some(s.expires_at.clone().map_or(expires.clone(), |e| e.min(expires.clone())));
                        s
                    },
                );
            w.secrets = std::iter::once(entry.clone()).chain(previous).collect();
        })
        .await?;
        Ok(secret)
    }

    /// Read, change, write back under the read's `updatedAt`; a concurrent
    /// change makes it read again.
    async fn modify_webhook(
        &self,
        ws: &str,
        id: &str,
        change: impl Fn(&mut WebhookRow),
    ) -> Result<WebhookRow, AppError> {
        for _ in 0..5 {
            let mut w = self.load_webhook(ws, id).await?;
            let read_at = w.updated_at.clone();
            change(&mut w);
            let now = time::now();
            w.updated_at = later_than(now, &read_at);
            match self.store().replace_webhook(ws, &w, &read_at).await {
                Ok(()) => return Ok(w),
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Unavailable("the webhook kept changing under this request; retry".into()))
    }

    /// `GET /api/webhooks/{id}/deliveries`: newest first.
    pub async fn list_deliveries(
        &self,
        ws: &str,
        id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<DeliveryPage, AppError> {
        let w = self.load_webhook(ws, id).await?;
        let key = self.cursor_key().await?;
        let scope = format!("deliveries:{}", w.id);
        let before = match cursor {
            Some(c) => Some(key.decode::<DeliveriesCursor>(&scope, c).map_err(|_| DomainError::InvalidCursor)?.before),
            None => None,
        };
        let (rows, more) = self.store().page_deliveries(&w.id, before.as_deref(), limit).await?;
        let next_cursor = if more {
            rows.last().map(|d| key.encode(&scope, &DeliveriesCursor { before: d.id.clone() }))
        } else {
            None
        };
        Ok(DeliveryPage {
            deliveries: rows.iter().map(DeliveryView::from).collect(),
            page: DeliveryPageInfo { limit, has_more: next_cursor.is_some(), next_cursor },
        })
    }

    /// `POST /api/webhooks/{id}/deliveries/{deliveryId}/replay`: a new
    /// series of attempts with the same `webhook-id` and body.
    pub async fn replay_delivery(&self, ws: &str, id: &str, delivery_id: &str) -> Result<DeliveryView, AppError> {
        let w = self.load_webhook(ws, id).await?;
        let not_found =
            || AppError::not_found("DELIVERY_NOT_FOUND", format!("no delivery {delivery_id} of webhook {id}"));
        if !ids::is_valid_id(delivery_id, "dlv") {
            return Err(not_found());
        }
        for _ in 0..5 {
            let d = self.store().get_delivery(&w.id, delivery_id).await?.ok_or_else(not_found)?;
            if self.store().restart_delivery(&d, &time::now()).await? {
                self.enqueue_attempt(&d, d.attempts.len(), 0).await?;
                let d = self.store().get_delivery(&w.id, delivery_id).await?.ok_or_else(not_found)?;
                return Ok(DeliveryView::from(&d));
            }
        }
        Err(AppError::Unavailable("the delivery kept changing under this request; retry".into()))
    }

    /// `POST /api/webhooks/{id}/test`: a `webhook.test` event, whatever the filter.
    pub async fn test_webhook(&self, ws: &str, id: &str) -> Result<DeliveryView, AppError> {
        let w = self.load_webhook(ws, id).await?;
        let now = time::now();
        let event_id = ids::new_id("evt");
        let envelope = Envelope {
            event_type: webhook::TEST_EVENT.into(),
            timestamp: now.clone(),
            data: json!({"webhookId": w.id, "workspaceId": ws, "message": "a test event from Puffle"}),
        };
        let d = super::fanout::new_delivery(ids::new_id("dlv"), &w, ws, &event_id, &envelope);
        self.store().put_delivery_if_new(&d).await?;
        self.enqueue_attempt(&d, 0, 0).await?;
        Ok(DeliveryView::from(&d))
    }
}
