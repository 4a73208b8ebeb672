//! The DynamoDB store: one method per access pattern (see `keys.rs` for the
//! key shapes). Multi-item writes use BatchWriteItem with retries of
//! unprocessed items; anything that must not double-count uses a condition
//! or a transaction.

mod access;
mod chunks;
mod credits;
mod items;
mod leads;
mod leases;
mod lists;
mod providers;
mod retry;
mod rules;
mod runs;
mod webhooks;
mod workspaces;

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, TransactWriteItem, WriteRequest,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{classify, StoreError};

pub use chunks::PlannedChunk;
pub use items::ItemPage;
pub use leads::{AttrWrite, LeadPage};
pub use leases::ChunkLease;
pub use lists::{AddOutcome, MemberPage, MemberRow};
pub use providers::{CachedResult, SecretRow};
pub use runs::{active_shard_pk, ChunkDelta, CreateOutcome, IdempotencyRecord, RunRecord, ACTIVE_SHARDS};
pub use webhooks::{AttemptRecord, DeliveryRow, WebhookRow, WebhookSecret, DELIVERY_TTL_SECONDS};

pub type Row = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct Store {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A row for `value` with its key (and any extra attributes) set.
pub fn row<T: Serialize>(
    value: &T,
    key: (String, String),
    extra: &[(&str, AttributeValue)],
) -> Result<Row, StoreError> {
    let mut r: Row = serde_dynamo::to_item(value)?;
    r.insert("pk".into(), s(key.0));
    r.insert("sk".into(), s(key.1));
    for (k, v) in extra {
        r.insert((*k).to_string(), v.clone());
    }
    Ok(r)
}

pub fn from_row<T: DeserializeOwned>(r: Row) -> Result<T, StoreError> {
    Ok(serde_dynamo::from_item(r)?)
}

pub fn key_of(key: (String, String)) -> Row {
    HashMap::from([("pk".to_string(), s(key.0)), ("sk".to_string(), s(key.1))])
}

pub fn get_s(r: &Row, k: &str) -> Option<String> {
    r.get(k).and_then(|v| v.as_s().ok()).cloned()
}

pub fn get_n(r: &Row, k: &str) -> Option<i64> {
    r.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

impl Store {
    pub fn new(db: aws_sdk_dynamodb::Client, table: String) -> Store {
        Store { db, table }
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.db
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Cheap liveness check for `/api/health`: one key read (DescribeTable
    /// gets slower as DynamoDB Local's table grows; a missing table fails both).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.get_row(crate::keys::cursor_key()).await.map(|_| ())
    }

    pub async fn get_row(&self, key: (String, String)) -> Result<Option<Row>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item)
    }

    /// BatchGetItem in requests of 100 keys (four in flight), retrying
    /// unprocessed keys.
    pub async fn batch_get(&self, keys: Vec<(String, String)>) -> Result<Vec<Row>, StoreError> {
        self.batch_get_projected(keys, None).await
    }

    /// [`Store::batch_get`] reading only the named attributes
    /// (`projection`: attribute names, comma-separated, none reserved words).
    pub async fn batch_get_projected(
        &self,
        keys: Vec<(String, String)>,
        projection: Option<&str>,
    ) -> Result<Vec<Row>, StoreError> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let mut dedup = std::collections::HashSet::new();
        let keys: Vec<_> = keys.into_iter().filter(|k| dedup.insert(k.clone())).collect();
        // Futures collected first: a lazy `map` over `chunks` makes the
        // stream's future not `Send` for every lifetime the runtime needs.
        let pages: Vec<_> = keys.chunks(100).map(|c| self.batch_get_page(c.to_vec(), projection)).collect();
        let pages: Vec<Vec<Row>> = stream::iter(pages).buffer_unordered(4).try_collect().await?;
        Ok(pages.into_iter().flatten().collect())
    }

    async fn batch_get_page(
        &self,
        keys: Vec<(String, String)>,
        projection: Option<&str>,
    ) -> Result<Vec<Row>, StoreError> {
        let mut rows = Vec::with_capacity(keys.len());
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys.into_iter().map(key_of).collect()))
            .consistent_read(true)
            .set_projection_expression(projection.map(str::to_string))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let mut retries = retry::policy();
        loop {
            let out =
                self.db.batch_get_item().request_items(&self.table, pending.clone()).send().await.map_err(classify)?;
            if let Some(mut r) = out.responses {
                rows.extend(r.remove(&self.table).unwrap_or_default());
            }
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(left) if !left.keys.is_empty() => {
                    if !retry::wait(&mut retries).await {
                        return Err(StoreError::Unavailable("BatchGetItem kept leaving keys unprocessed".into()));
                    }
                    pending = left;
                }
                _ => return Ok(rows),
            }
        }
    }

    /// BatchWriteItem puts in requests of 25, retrying unprocessed items.
    pub async fn batch_put(&self, rows: Vec<Row>) -> Result<(), StoreError> {
        let puts = rows.into_iter().map(|r| {
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(r)).build().expect("item set"))
                .build()
        });
        self.batch_write(puts.collect()).await
    }

    /// BatchWriteItem deletes in requests of 25, retrying unprocessed items.
    pub async fn batch_delete(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        let deletes = keys.into_iter().map(|k| {
            WriteRequest::builder()
                .delete_request(DeleteRequest::builder().set_key(Some(key_of(k))).build().expect("key set"))
                .build()
        });
        self.batch_write(deletes.collect()).await
    }

    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk.to_vec();
            let mut retries = retry::policy();
            while !pending.is_empty() {
                let out = self
                    .db
                    .batch_write_item()
                    .request_items(&self.table, pending.clone())
                    .send()
                    .await
                    .map_err(classify)?;
                pending = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                if !pending.is_empty() && !retry::wait(&mut retries).await {
                    return Err(StoreError::Unavailable("BatchWriteItem kept leaving items unprocessed".into()));
                }
            }
        }
        Ok(())
    }

    /// A transaction action that puts a new item (the key must not exist).
    pub(crate) fn put_new(&self, item: Row) -> TransactWriteItem {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("table, item and condition are set");
        TransactWriteItem::builder().put(put).build()
    }

    /// TransactWriteItems; a cancellation comes back with its reason codes.
    /// Conflicts with other transactions are retried here.
    pub async fn transact(&self, actions: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        self.transact_with_token(actions, None).await
    }

    /// As [`Store::transact`], with a ClientRequestToken: a retry of a
    /// transaction that committed but whose answer was lost (the SDK's or
    /// ours) succeeds instead of tripping its own conditions.
    pub async fn transact_with_token(
        &self,
        actions: Vec<TransactWriteItem>,
        token: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut retries = retry::policy();
        loop {
            let res = self
                .db
                .transact_write_items()
                .set_transact_items(Some(actions.clone()))
                .set_client_request_token(token.map(str::to_string))
                .send()
                .await;
            match res {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let codes = match e.as_service_error() {
                        Some(TransactWriteItemsError::TransactionCanceledException(c)) => Some(
                            c.cancellation_reasons()
                                .iter()
                                .map(|r| r.code().filter(|c| *c != "None").map(str::to_string))
                                .collect::<Vec<_>>(),
                        ),
                        _ => None,
                    };
                    match codes {
                        Some(codes) => {
                            let conflict_only =
                                codes.iter().flatten().all(|c| c == "TransactionConflict" || c == "ThrottlingError");
                            if conflict_only {
                                if retry::wait(&mut retries).await {
                                    continue;
                                }
                                return Err(StoreError::Unavailable(
                                    "transaction kept conflicting with concurrent writes".into(),
                                ));
                            }
                            return Err(StoreError::TransactionCanceled(codes));
                        }
                        // The same token's earlier attempt (an SDK retry after a
                        // timeout) is still being applied: the SDK does not retry
                        // this one, and the next attempt with the token either
                        // waits again or finds it committed.
                        None if e.as_service_error().is_some_and(|s| s.is_transaction_in_progress_exception()) => {
                            if retry::wait(&mut retries).await {
                                continue;
                            }
                            return Err(classify(e));
                        }
                        // Throttling and 5xx: the SDK has retried them already.
                        None => return Err(classify(e)),
                    }
                }
            }
        }
    }

    /// Queries a whole partition of a global index (following pages) — only
    /// for bounded ranges. Eventually consistent, as every index read is.
    pub(crate) async fn query_index_all(&self, index: &str, pk_attr: &str, pk: &str) -> Result<Vec<Row>, StoreError> {
        let mut rows = vec![];
        let mut start = None;
        loop {
            let out = self
                .db
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", pk_attr)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            rows.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(rows);
            }
        }
    }

    /// Queries a whole key range (following pages) — only for bounded ranges.
    pub async fn query_all(&self, pk: &str) -> Result<Vec<Row>, StoreError> {
        let mut rows = vec![];
        let mut start = None;
        loop {
            let out = self
                .db
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(classify)?;
            rows.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(rows);
            }
        }
    }
}
