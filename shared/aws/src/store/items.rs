//! Run items: written once each, when terminal, under a condition (a second
//! delivery never rewrites a finished item); pages by status via the `gsi1`
//! index. Pending items are not rows: see `chunks.rs`.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use puffle_domain::item::{Item, ItemCost, ItemStatus};
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

    /// A pending item as the planner writes it: with its chunk number, so
    /// the reaper can re-send the chunk of items a lost message left pending.
    pub fn planned_item_row(&self, item: &Item, chunk: u32) -> Result<Row, StoreError> {
        let mut r = self.item_row(item)?;
        r.insert("chunk".into(), super::n(chunk));
        Ok(r)
    }

    /// Moves items from pending (or absent: the planner writes chunks, not
    /// items) to terminal, each under a condition, so an item another
    /// delivery already finished is left as it is. The rows that go with
    /// them (attribute values) are written first, by BatchWriteItem: a
    /// terminal item's value is always in place, and a delivery that dies
    /// between the two leaves values its retry rewrites. Returns the Leads
    /// whose item was already finished: their values may be this call's,
    /// not their item's, and the caller puts them right.
    pub async fn settle_items(&self, items: Vec<(Item, Option<Row>)>) -> Result<Vec<String>, StoreError> {
        let (items, extras): (Vec<Item>, Vec<Option<Row>>) = items.into_iter().unzip();
        self.batch_put(extras.into_iter().flatten().collect()).await?;
        let rows = items.iter().map(|i| self.item_row(i).map(|r| vec![r])).collect::<Result<_, StoreError>>()?;
        let refused = self.put_where(rows, "attribute_not_exists(pk) OR #status = :pending").await?;
        Ok(refused.into_iter().map(|i| items[i].lead_id.clone()).collect())
    }

    /// Items of a run as stored, by Lead id (read strongly).
    pub async fn get_items(
        &self,
        run_id: &str,
        lead_ids: &[String],
    ) -> Result<std::collections::HashMap<String, Item>, StoreError> {
        let rows = self.batch_get(lead_ids.iter().map(|l| keys::item(run_id, l)).collect()).await?;
        rows.into_iter().map(|r| from_row::<Item>(r).map(|i| (i.lead_id.clone(), i))).collect()
    }

    /// The status and settled cost of each of a run's items for `lead_ids`,
    /// read strongly.
    pub async fn item_statuses(
        &self,
        run_id: &str,
        lead_ids: &[String],
    ) -> Result<std::collections::HashMap<String, (ItemStatus, ItemCost)>, StoreError> {
        let rows = self.batch_get(lead_ids.iter().map(|l| keys::item(run_id, l)).collect()).await?;
        Ok(rows
            .into_iter()
            .filter_map(|mut r| {
                let lead = super::get_s(&r, "leadId")?;
                let st = ItemStatus::parse(&super::get_s(&r, "status")?)?;
                // Items written before billing by outcome carry no cost.
                let cost =
                    r.remove("cost").and_then(|c| serde_dynamo::from_attribute_value(c).ok()).unwrap_or_default();
                Some((lead, (st, cost)))
            })
            .collect())
    }

    /// Pending Leads of a run grouped by chunk number (the reaper's view of
    /// work whose message may be lost): its uncounted chunks, and pending
    /// item rows of runs planned before chunk rows.
    pub async fn pending_chunks(
        &self,
        run_id: &str,
    ) -> Result<std::collections::BTreeMap<u32, Vec<String>>, StoreError> {
        let mut out: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
        for r in self.query_index_all("gsi1", "gsi1pk", &keys::items_by_status_pk(run_id, "pending")).await? {
            if let (Some(lead), Some(chunk)) = (super::get_s(&r, "leadId"), super::get_n(&r, "chunk")) {
                out.entry(chunk as u32).or_default().push(lead);
            }
        }
        for (n, c) in self.uncounted_chunks(run_id).await? {
            let ids = out.entry(n).or_default();
            ids.extend(c.lead_ids);
            ids.sort();
            ids.dedup();
        }
        Ok(out)
    }

    /// Writes items where none exists or the existing one is still pending:
    /// terminal items are never overwritten.
    pub async fn put_items_unless_terminal(&self, items: &[(Item, u32)]) -> Result<u64, StoreError> {
        let rows: Vec<Vec<Row>> =
            items.iter().map(|(i, c)| self.planned_item_row(i, *c).map(|r| vec![r])).collect::<Result<_, _>>()?;
        let total = rows.len() as u64;
        let refused = self.put_where(rows, "attribute_not_exists(pk) OR #status = :pending").await?;
        Ok(total - refused.len() as u64)
    }

    /// Writes groups of rows in transactions of at most 100 actions; the
    /// first row of each group is put under `condition`, the rest ride along
    /// unconditionally. A group whose first row fails the condition is
    /// dropped and the rest retried. Returns the indices (into `groups`) of
    /// the groups refused.
    pub(super) async fn put_where(&self, groups: Vec<Vec<Row>>, condition: &str) -> Result<Vec<usize>, StoreError> {
        let mut refused_all = vec![];
        let mut rest = groups.into_iter().enumerate().peekable();
        while rest.peek().is_some() {
            // As many whole groups as fit in one transaction.
            let mut batch: Vec<(usize, Vec<Row>)> = vec![];
            let mut actions = 0;
            while let Some((_, g)) = rest.peek() {
                if actions + g.len() > 100 && !batch.is_empty() {
                    break;
                }
                actions += g.len();
                batch.push(rest.next().expect("peeked"));
            }
            let mut rounds = 0;
            while !batch.is_empty() {
                rounds += 1;
                if rounds > 50 {
                    return Err(StoreError::Unavailable("items are too contended; retry".into()));
                }
                let mut tx = vec![];
                let mut owner = vec![];
                for (gi, (_, g)) in batch.iter().enumerate() {
                    for (ri, r) in g.iter().enumerate() {
                        let mut put = Put::builder().table_name(self.table()).set_item(Some(r.clone()));
                        if ri == 0 {
                            put = put
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
                                );
                        }
                        tx.push(TransactWriteItem::builder().put(put.build().expect("put")).build());
                        owner.push(gi);
                    }
                }
                match self.transact(tx).await {
                    Ok(()) => batch.clear(),
                    Err(StoreError::TransactionCanceled(codes)) => {
                        let refused: std::collections::HashSet<usize> = codes
                            .iter()
                            .zip(&owner)
                            .filter(|(c, _)| c.as_deref() == Some("ConditionalCheckFailed"))
                            .map(|(_, g)| *g)
                            .collect();
                        if refused.is_empty() {
                            return Err(StoreError::Unavailable(format!("item transaction cancelled: {codes:?}")));
                        }
                        let mut kept = vec![];
                        for (i, g) in batch.into_iter().enumerate() {
                            if refused.contains(&i) {
                                refused_all.push(g.0);
                            } else {
                                kept.push(g);
                            }
                        }
                        batch = kept;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(refused_all)
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
