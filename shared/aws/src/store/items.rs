//! Run items: pending items written conditionally (a replayed plan step never
//! resets a finished item), results written in batches, pages by status via
//! the `gsi1` index.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use puffle_domain::item::{Item, ItemStatus};
use puffle_domain::page::{PageFill, MAX_QUERY_REQUESTS};

use super::{from_row, row, s, Row, Store};
use crate::error::{classify, StoreError};
use crate::keys;

pub struct ItemPage {
    pub items: Vec<Item>,
    pub has_more: bool,
}

impl Store {
    pub fn item_row(&self, item: &Item) -> Result<Row, StoreError> {
        row(
            item,
            keys::item(&item.run_id, &item.lead_id),
            &[
                ("gsi1pk", s(keys::items_by_status_pk(&item.run_id, item.status.as_str()))),
                ("gsi1sk", s(&item.lead_id)),
            ],
        )
    }

    /// Writes items only where none exists yet, 100 per transaction; items
    /// that already exist are left alone. Returns how many were written.
    pub async fn put_items_if_absent(&self, items: &[Item]) -> Result<u64, StoreError> {
        self.put_items_where(items, "attribute_not_exists(pk)").await
    }

    /// Writes items where none exists or the existing one is still pending:
    /// terminal items are never overwritten.
    pub async fn put_items_unless_terminal(&self, items: &[Item]) -> Result<u64, StoreError> {
        self.put_items_where(items, "attribute_not_exists(pk) OR #status = :pending").await
    }

    async fn put_items_where(&self, items: &[Item], condition: &str) -> Result<u64, StoreError> {
        let mut written = 0;
        for chunk in items.chunks(100) {
            let mut batch: Vec<&Item> = chunk.iter().collect();
            let mut rounds = 0;
            while !batch.is_empty() {
                rounds += 1;
                if rounds > 50 {
                    return Err(StoreError::Unavailable("items are too contended; retry".into()));
                }
                let actions = batch
                    .iter()
                    .map(|i| {
                        Ok(TransactWriteItem::builder()
                            .put(
                                Put::builder()
                                    .table_name(self.table())
                                    .set_item(Some(self.item_row(i)?))
                                    .condition_expression(condition)
                                    .set_expression_attribute_names(
                                        condition
                                            .contains("#status")
                                            .then(|| [("#status".to_string(), "status".to_string())].into()),
                                    )
                                    .set_expression_attribute_values(
                                        condition
                                            .contains(":pending")
                                            .then(|| [(":pending".to_string(), s("pending"))].into()),
                                    )
                                    .build()
                                    .expect("put"),
                            )
                            .build())
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                match self.transact(actions).await {
                    Ok(()) => {
                        written += batch.len() as u64;
                        batch.clear();
                    }
                    Err(StoreError::TransactionCanceled(codes)) => {
                        let exists: Vec<bool> =
                            codes.iter().map(|c| c.as_deref() == Some("ConditionalCheckFailed")).collect();
                        batch = batch.into_iter().zip(exists).filter(|(_, e)| !e).map(|(b, _)| b).collect();
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(written)
    }

    pub async fn get_item(&self, run_id: &str, lead_id: &str) -> Result<Option<Item>, StoreError> {
        self.get_row(keys::item(run_id, lead_id)).await?.map(from_row).transpose()
    }

    /// Items of a run in lead (= item) id order, optionally of one status.
    /// Follows DynamoDB's pages (each ends at 1 MB) until the page is full
    /// (see [`PageFill`]) or the items end.
    pub async fn query_items(
        &self,
        run_id: &str,
        status: Option<ItemStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ItemPage, StoreError> {
        let (index, pk_name, sk_name, pk) = match status {
            Some(st) => (Some("gsi1"), "gsi1pk", "gsi1sk", keys::items_by_status_pk(run_id, st.as_str())),
            None => (None, "pk", "sk", keys::items_pk(run_id)),
        };
        let mut fill = PageFill::new(limit);
        let mut items: Vec<Item> = vec![];
        let mut start = None;
        for _ in 0..MAX_QUERY_REQUESTS {
            let mut q = self
                .client()
                .query()
                .table_name(self.table())
                .set_index_name(index.map(str::to_string))
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_values(":pk", s(&pk))
                // One more than the page needs tells whether more follow.
                .limit((limit + 1 - items.len()) as i32)
                .set_exclusive_start_key(start.take())
                // Strong reads where the index allows them (GSIs are eventually consistent).
                .consistent_read(index.is_none());
            q = match after {
                Some(a) => q
                    .key_condition_expression("#pk = :pk AND #sk > :a")
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":a", s(a)),
                None => q.key_condition_expression("#pk = :pk"),
            };
            let out = q.send().await.map_err(classify)?;
            for r in out.items.unwrap_or_default() {
                let item: Item = from_row(r)?;
                if !fill.admit_json(&item) {
                    return Ok(ItemPage { items, has_more: true });
                }
                items.push(item);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(ItemPage { items, has_more: false });
            }
        }
        // Out of requests for this page: what was read so far, and a cursor.
        Ok(ItemPage { has_more: true, items })
    }

    /// Every item of a run (tests and audits).
    pub async fn all_items(&self, run_id: &str) -> Result<Vec<Item>, StoreError> {
        self.query_all(&keys::items_pk(run_id)).await?.into_iter().map(from_row).collect()
    }
}
