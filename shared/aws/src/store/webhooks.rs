//! Webhooks and their deliveries.
//!
//! A webhook row holds its secrets sealed (envelope encryption, as workspace
//! secrets); a delivery row is the log the API shows and the state its
//! attempts advance: each attempt is appended under the condition that the
//! log still has the length the attempt was scheduled for, so a duplicate
//! queue message never records twice.

use aws_sdk_dynamodb::types::AttributeValue;
use puffle_domain::secrets::Sealed;
use puffle_domain::webhook::{Attempt, DeliveryStatus};
use serde::{Deserialize, Serialize};

use super::{from_row, key_of, n, row, s, Row, Store};
use crate::error::{classify, StoreError};
use crate::keys;

/// Deliveries are kept 30 days.
pub const DELIVERY_TTL_SECONDS: i64 = 30 * 24 * 60 * 60;

/// One signing secret of a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecret {
    pub id: String,
    pub sealed: Sealed,
    pub created_at: String,
    /// Set when a newer secret replaced it: it signs beside it until then.
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRow {
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub enabled: bool,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Newest first.
    pub secrets: Vec<WebhookSecret>,
    /// When the endpoint started failing (cleared by a success).
    #[serde(default)]
    pub failing_since: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRow {
    pub id: String,
    pub webhook_id: String,
    pub workspace_id: String,
    /// The `webhook-id` header: the event's stable id.
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(default)]
    pub next_attempt_at: Option<String>,
    /// The body, fixed when the delivery was made: every attempt sends it.
    pub payload: String,
    /// Attempts before this index belong to earlier series (a replay starts one).
    #[serde(default)]
    pub series_start: usize,
    pub created_at: String,
    pub ttl: i64,
}

/// An attempt's outcome to record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub attempt: Attempt,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<String>,
}

impl Store {
    /// Adds a webhook; the id is new, so the condition only guards a retry.
    pub async fn put_webhook(&self, ws: &str, w: &WebhookRow) -> Result<(), StoreError> {
        let item = row(w, keys::webhook(ws, &w.id), &[])?;
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Replaces a webhook read at `expected_updated_at` (optimistic: a
    /// concurrent change makes this `ConditionFailed`).
    pub async fn replace_webhook(&self, ws: &str, w: &WebhookRow, expected_updated_at: &str) -> Result<(), StoreError> {
        let item = row(w, keys::webhook(ws, &w.id), &[])?;
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_exists(pk) AND updatedAt = :u")
            .expression_attribute_values(":u", s(expected_updated_at))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub async fn get_webhook(&self, ws: &str, id: &str) -> Result<Option<WebhookRow>, StoreError> {
        self.get_row(keys::webhook(ws, id)).await?.map(from_row).transpose()
    }

    /// A workspace's webhooks (at most a few dozen), oldest first.
    pub async fn list_webhooks(&self, ws: &str) -> Result<Vec<WebhookRow>, StoreError> {
        self.query_all(&keys::webhooks_pk(ws)).await?.into_iter().map(from_row).collect()
    }

    /// False when there was none.
    pub async fn delete_webhook(&self, ws: &str, id: &str) -> Result<bool, StoreError> {
        let out = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key_of(keys::webhook(ws, id))))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// Notes the first failure of a failing streak; returns when the streak began.
    pub async fn note_webhook_failing(&self, ws: &str, id: &str, now: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key_of(keys::webhook(ws, id))))
            .update_expression("SET failingSince = if_not_exists(failingSince, :now)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", s(now))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(o) => Ok(o.attributes.and_then(|a| a.get("failingSince").and_then(|v| v.as_s().ok()).cloned())),
            Err(e) => match classify(e) {
                StoreError::ConditionFailed => Ok(None),
                other => Err(other),
            },
        }
    }

    /// A success ends a failing streak.
    pub async fn clear_webhook_failing(&self, ws: &str, id: &str) -> Result<(), StoreError> {
        let out = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key_of(keys::webhook(ws, id))))
            .update_expression("REMOVE failingSince")
            .condition_expression("attribute_exists(failingSince)")
            .send()
            .await;
        match out.map_err(classify) {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Turns a webhook off (an endpoint that kept failing).
    pub async fn disable_webhook(&self, ws: &str, id: &str, reason: &str, now: &str) -> Result<(), StoreError> {
        let out = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key_of(keys::webhook(ws, id))))
            .update_expression("SET enabled = :f, disabledReason = :r, updatedAt = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(":r", s(reason))
            .expression_attribute_values(":now", s(now))
            .send()
            .await;
        match out.map_err(classify) {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Adds a delivery; false when it exists (the same event seen again).
    pub async fn put_delivery_if_new(&self, d: &DeliveryRow) -> Result<bool, StoreError> {
        let item = row(d, keys::delivery(&d.webhook_id, &d.id), &[])?;
        let out = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match out.map_err(classify) {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn get_delivery(&self, webhook_id: &str, id: &str) -> Result<Option<DeliveryRow>, StoreError> {
        self.get_row(keys::delivery(webhook_id, id)).await?.map(from_row).transpose()
    }

    /// Newest first, `limit` per page, after the delivery id `before`.
    pub async fn page_deliveries(
        &self,
        webhook_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<DeliveryRow>, bool), StoreError> {
        let mut q = self
            .client()
            .query()
            .table_name(self.table())
            .expression_attribute_values(":pk", s(keys::deliveries_pk(webhook_id)))
            .scan_index_forward(false)
            .limit(limit as i32 + 1)
            .consistent_read(true);
        q = match before {
            Some(b) => q.key_condition_expression("pk = :pk AND sk < :b").expression_attribute_values(":b", s(b)),
            None => q.key_condition_expression("pk = :pk"),
        };
        let out = q.send().await.map_err(classify)?;
        let mut rows: Vec<DeliveryRow> =
            out.items.unwrap_or_default().into_iter().map(from_row).collect::<Result<_, _>>()?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        Ok((rows, more))
    }

    /// Appends an attempt if the log still has `expected_len` attempts;
    /// false when another delivery of the message recorded first.
    pub async fn record_attempt(
        &self,
        d: &DeliveryRow,
        expected_len: usize,
        rec: &AttemptRecord,
    ) -> Result<bool, StoreError> {
        let attempt: Row = serde_dynamo::to_item(&rec.attempt)?;
        let status = s(rec.status.as_str());
        let next = match &rec.next_attempt_at {
            Some(t) => s(t),
            None => AttributeValue::Null(true),
        };
        let out = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key_of(keys::delivery(&d.webhook_id, &d.id))))
            .update_expression("SET attempts = list_append(attempts, :a), #st = :st, nextAttemptAt = :next")
            .condition_expression("size(attempts) = :len")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":a", AttributeValue::L(vec![AttributeValue::M(attempt)]))
            .expression_attribute_values(":st", status)
            .expression_attribute_values(":next", next)
            .expression_attribute_values(":len", n(expected_len))
            .send()
            .await;
        match out.map_err(classify) {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Starts a new series of attempts (a replay) at the log's current length.
    pub async fn restart_delivery(&self, d: &DeliveryRow, now: &str) -> Result<bool, StoreError> {
        let out = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key_of(keys::delivery(&d.webhook_id, &d.id))))
            .update_expression("SET #st = :p, seriesStart = :len, nextAttemptAt = :now")
            .condition_expression("size(attempts) = :len")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":p", s("pending"))
            .expression_attribute_values(":len", n(d.attempts.len()))
            .expression_attribute_values(":now", s(now))
            .send()
            .await;
        match out.map_err(classify) {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
