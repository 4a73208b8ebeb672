//! `POST /api/enrichment/{id}/retry`: a new run over the Leads of a finished
//! run's `failed` (or `skipped`) items, charged and gated like any run, and
//! linked both ways (`retryOf` on the new run, `retries` on the original,
//! written in the new run's create transaction).
//!
//! Idempotent without a key too: the key defaults to one derived from the
//! run and the status, and the request hash covers only (run, status), so a
//! duplicated request (a client retry, a double click) answers the first
//! run and charges once. Retry the retry to go again.

use puffle_domain::create::{CreateRequest, Mode, OutputRequest, MAX_IDEMPOTENCY_KEY_LEN};
use puffle_domain::item::ItemStatus;
use puffle_domain::run::RunStatus;
use puffle_domain::scope::Scope;
use puffle_domain::DomainError;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::create::{Created, RetryStart, Start};
use crate::{App, AppError};

/// Leads one retry may carry (they are stored in the run's explicit scope,
/// and a DynamoDB item holds at most 400 KB).
pub const MAX_RETRY_LEADS: usize = 5_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RetryBody {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// What a retry asks for, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryRequest {
    pub status: ItemStatus,
    pub idempotency_key: Option<String>,
}

impl RetryRequest {
    pub fn parse(body: &Value) -> Result<RetryRequest, DomainError> {
        if !body.is_object() {
            return Err(DomainError::invalid("the body must be a JSON object"));
        }
        let b: RetryBody = serde_json::from_value(body.clone())
            .map_err(|e| DomainError::invalid(format!("invalid retry request: {e}")))?;
        let status = match b.status.as_deref() {
            None | Some("failed") => ItemStatus::Failed,
            Some("skipped") => ItemStatus::Skipped,
            Some(_) => {
                return Err(DomainError::invalid_with("status must be failed or skipped", json!({"field": "status"})))
            }
        };
        if let Some(k) = &b.idempotency_key {
            if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY_LEN {
                return Err(DomainError::invalid_with(
                    format!("idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"),
                    json!({"field": "idempotencyKey"}),
                ));
            }
        }
        Ok(RetryRequest { status, idempotency_key: b.idempotency_key })
    }

    /// The key, given or derived from what is retried.
    pub fn key(&self, run_id: &str) -> String {
        self.idempotency_key.clone().unwrap_or_else(|| format!("retry:{run_id}:{}", self.status.as_str()))
    }

    pub fn hash(&self, run_id: &str) -> String {
        hex::encode(Sha256::digest(format!("retry\n{run_id}\n{}", self.status.as_str()).as_bytes()))
    }
}

impl App {
    pub async fn retry_run(
        &self,
        ws: &str,
        run_id: &str,
        body: &Value,
        idempotency_header: Option<&str>,
        correlation_id: &str,
    ) -> Result<Created, AppError> {
        let mut req = RetryRequest::parse(body)?;
        match (&req.idempotency_key, idempotency_header) {
            (Some(b), Some(h)) if b != h => {
                return Err(DomainError::invalid_with(
                    "the Idempotency-Key header and idempotencyKey differ",
                    json!({"field": "idempotencyKey"}),
                )
                .into())
            }
            (None, Some(h)) => req.idempotency_key = Some(h.to_string()),
            _ => {}
        }
        let original = self.load_run(ws, run_id).await?.run;
        let (key, hash) = (req.key(&original.id), req.hash(&original.id));
        // A repeat answers with its run before anything is read or charged.
        if let Some(found) = self.reuse(ws, &key, &hash).await? {
            return Ok(found);
        }
        // Items settle a moment after a cancel: wait for them too.
        if !original.status.is_terminal() || original.scope.counts.pending > 0 || original.scope.counts.running > 0 {
            return Err(AppError::Conflict {
                code: "RUN_NOT_TERMINAL",
                message: format!("run {} is {}; retry it once it has finished", original.id, original.status.as_str()),
                details: json!({"status": original.status.as_str(), "pending": original.scope.counts.pending}),
            });
        }
        debug_assert!(original.status != RunStatus::Pending);
        let lead_ids = self.lead_ids_with_status(&original.id, req.status).await?;
        if lead_ids.is_empty() {
            return Err(DomainError::planner(
                "EMPTY_LEAD_SCOPE",
                format!("run {} has no {} items", original.id, req.status.as_str()),
                json!({"runId": original.id, "status": req.status.as_str()}),
            )
            .into());
        }
        if lead_ids.len() > MAX_RETRY_LEADS {
            return Err(DomainError::invalid_with(
                format!(
                    "run {} has {} {} items; a retry takes at most {MAX_RETRY_LEADS}",
                    original.id,
                    lead_ids.len(),
                    req.status.as_str()
                ),
                json!({"field": "status", "count": lead_ids.len(), "max": MAX_RETRY_LEADS}),
            )
            .into());
        }
        let create = CreateRequest {
            enrichment_id: original.enrichment.slug.clone(),
            mode: Mode::Persisted,
            scope: Scope::ExplicitLeads { lead_ids, list_id: original.scope.list_id().map(str::to_string) },
            input: original.input.clone(),
            output: OutputRequest {
                attribute_key: Some(original.output.attribute_key.clone()),
                target: Some(original.output.target),
            },
            display_request: None,
            idempotency_key: Some(key),
            write_policy: original.output.write_policy,
        };
        let start = Start {
            correlation_id: correlation_id.to_string(),
            rule: None,
            retry: Some(RetryStart { of: original.id.clone(), request_hash: hash }),
        };
        self.start_run(ws, &create, start).await
    }

    /// Lead ids of a run's items in `status`, read through the status index.
    async fn lead_ids_with_status(&self, run_id: &str, status: ItemStatus) -> Result<Vec<String>, AppError> {
        let mut out = vec![];
        let mut after: Option<String> = None;
        loop {
            let page = self.store().query_items(run_id, Some(status), after.as_deref(), 1000).await?;
            out.extend(page.items.iter().map(|i| i.lead_id.clone()));
            if !page.has_more || out.len() > MAX_RETRY_LEADS {
                return Ok(out);
            }
            after = page.items.last().map(|i| i.lead_id.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_derives_keys() {
        let r = RetryRequest::parse(&json!({})).unwrap();
        assert_eq!(r, RetryRequest { status: ItemStatus::Failed, idempotency_key: None });
        assert_eq!(RetryRequest::parse(&json!({"status": "skipped"})).unwrap().status, ItemStatus::Skipped);
        for bad in
            [json!({"status": "completed"}), json!({"x": 1}), json!([]), Value::Null, json!({"idempotencyKey": ""})]
        {
            assert!(RetryRequest::parse(&bad).is_err(), "{bad}");
        }
        assert_eq!(r.key("run_1"), "retry:run_1:failed");
        let k = RetryRequest { status: ItemStatus::Failed, idempotency_key: Some("k".into()) };
        assert_eq!(k.key("run_1"), "k");
        // The hash is about what is retried, not the key.
        assert_eq!(r.hash("run_1"), k.hash("run_1"));
        assert_ne!(r.hash("run_1"), r.hash("run_2"));
        assert_ne!(r.hash("run_1"), RetryRequest::parse(&json!({"status": "skipped"})).unwrap().hash("run_1"));
    }
}
