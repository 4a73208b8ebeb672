//! Planned chunks: the planner writes one row per chunk of up to 100 Leads
//! (their ids, in id order) where it once wrote one pending item per Lead.
//! A Lead's item is written once, when it is terminal; until then it is
//! pending *because* its chunk is planned and not yet counted.
//!
//! Why: every row a chunk writes costs the worker, and on DynamoDB a
//! conditional row in a transaction costs about twice a BatchWriteItem row
//! (measured on DynamoDB Local: a transaction of 100 puts ~65 ms, 100 rows in
//! four BatchWriteItems ~35 ms). Pending items were a third row per Lead.
//!
//! Uncounted chunks sit in a sparse index (`gsi1pk = CHUNKS#{run}#uncounted`,
//! `gsi1sk` = the chunk's first Lead id); counting the chunk removes it from
//! there in the same transaction. Chunks of one run hold disjoint, ordered
//! ranges of Lead ids (the planner reads its scope in id order), so pending
//! items page in id order from that index, like the items themselves.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{from_row, key_of, row, s, Store};
use crate::error::{classify, StoreError};
use crate::keys;
use puffle_domain::page::MAX_QUERY_REQUESTS;

/// A planned chunk: which Leads it holds, and when the planner wrote it
/// (its pending items' `createdAt`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedChunk {
    pub chunk: u32,
    pub lead_ids: Vec<String>,
    pub planned_at: String,
}

impl Store {
    /// Writes the planned chunks of one plan step where none exists yet (a
    /// replayed step leaves what an earlier attempt wrote alone).
    pub async fn put_planned_chunks(&self, run_id: &str, chunks: &[PlannedChunk]) -> Result<u64, StoreError> {
        let rows = chunks
            .iter()
            .map(|c| {
                let first = c.lead_ids.first().cloned().unwrap_or_default();
                row(
                    c,
                    keys::planned_chunk(run_id, c.chunk),
                    &[("gsi1pk", s(keys::uncounted_chunks_pk(run_id))), ("gsi1sk", s(first))],
                )
                .map(|r| vec![r])
            })
            .collect::<Result<Vec<_>, _>>()?;
        let total = rows.len() as u64;
        let refused = self.put_where(rows, "attribute_not_exists(pk)").await?;
        Ok(total - refused.len() as u64)
    }

    /// The transaction action that takes a chunk out of the uncounted index
    /// (part of counting it). Unconditional: a chunk the planner wrote no
    /// row for (a cancelled run's, or one planned before chunk rows) gets a
    /// bare marker row, which nothing reads.
    pub(crate) fn uncount_action(&self, run_id: &str, chunk: u32, now: &str) -> TransactWriteItem {
        let u = Update::builder()
            .table_name(self.table())
            .set_key(Some(key_of(keys::planned_chunk(run_id, chunk))))
            .update_expression("REMOVE gsi1pk, gsi1sk SET countedAt = :countedAt")
            .expression_attribute_values(":countedAt", s(now))
            .build()
            .expect("update");
        TransactWriteItem::builder().update(u).build()
    }

    /// Every uncounted chunk of a run (the reaper's view of work whose
    /// message may be lost), by chunk number.
    pub async fn uncounted_chunks(&self, run_id: &str) -> Result<BTreeMap<u32, PlannedChunk>, StoreError> {
        let rows = self.query_index_all("gsi1", "gsi1pk", &keys::uncounted_chunks_pk(run_id)).await?;
        rows.into_iter().map(|r| from_row::<PlannedChunk>(r).map(|c| (c.chunk, c))).collect()
    }

    /// The chunk rows of a run numbered `first..=last`, counted or not, with
    /// whether each is still uncounted (one plan step's chunks fit one page).
    /// A bare marker (a chunk counted without a planned row) has no Leads.
    pub async fn chunks_between(
        &self,
        run_id: &str,
        first: u32,
        last: u32,
    ) -> Result<Vec<(PlannedChunk, bool)>, StoreError> {
        let (pk, from) = keys::planned_chunk(run_id, first);
        let (_, to) = keys::planned_chunk(run_id, last);
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                let uncounted = r.contains_key("gsi1pk");
                let sk = super::get_s(&r, "sk").unwrap_or_default();
                match from_row::<PlannedChunk>(r) {
                    Ok(c) => Ok((c, uncounted)),
                    Err(_) => {
                        let chunk = sk.parse().map_err(|_| StoreError::Corrupt(format!("chunk key {sk}")))?;
                        Ok((PlannedChunk { chunk, lead_ids: vec![], planned_at: String::new() }, uncounted))
                    }
                }
            })
            .collect()
    }

    /// The uncounted chunk whose range holds `lead_id`, if any.
    pub async fn uncounted_chunk_holding(
        &self,
        run_id: &str,
        lead_id: &str,
    ) -> Result<Option<PlannedChunk>, StoreError> {
        let chunk = self.uncounted_chunk_before(run_id, lead_id).await?;
        Ok(chunk.filter(|c| c.lead_ids.iter().any(|l| l == lead_id)))
    }

    /// Pending Leads of a run after `after`, in id order: the Leads of its
    /// uncounted chunks that have no item yet. At most `limit` of them, and
    /// whether more may follow.
    pub async fn pending_leads(
        &self,
        run_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<(String, String)>, bool), StoreError> {
        let mut found: Vec<(String, String)> = vec![];
        // The chunk whose range `after` falls in may hold Leads past it.
        if let Some(a) = after {
            if let Some(c) = self.uncounted_chunk_before(run_id, a).await? {
                found.extend(self.unwritten_of(run_id, c, after).await?);
            }
        }
        let mut start = None;
        for _ in 0..MAX_QUERY_REQUESTS {
            if found.len() > limit {
                break;
            }
            let mut q = self
                .client()
                .query()
                .table_name(self.table())
                .index_name("gsi1")
                .expression_attribute_values(":pk", s(keys::uncounted_chunks_pk(run_id)))
                // A chunk holds up to 100 Leads: a few chunks fill any page.
                .limit(4)
                .set_exclusive_start_key(start.take());
            q = match after {
                Some(a) => {
                    q.key_condition_expression("gsi1pk = :pk AND gsi1sk > :a").expression_attribute_values(":a", s(a))
                }
                None => q.key_condition_expression("gsi1pk = :pk"),
            };
            let out = q.send().await.map_err(classify)?;
            for r in out.items.unwrap_or_default() {
                found.extend(self.unwritten_of(run_id, from_row(r)?, after).await?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                found.sort();
                let more = found.len() > limit;
                found.truncate(limit);
                return Ok((found, more));
            }
        }
        found.sort();
        found.truncate(limit);
        // Stopped before the index ended: more may follow.
        Ok((found, true))
    }

    async fn uncounted_chunk_before(&self, run_id: &str, lead_id: &str) -> Result<Option<PlannedChunk>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk AND gsi1sk <= :lead")
            .expression_attribute_values(":pk", s(keys::uncounted_chunks_pk(run_id)))
            .expression_attribute_values(":lead", s(lead_id))
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(classify)?;
        out.items.unwrap_or_default().into_iter().next().map(from_row).transpose()
    }

    /// The chunk's Leads past `after` that have no item yet, with its planning time.
    async fn unwritten_of(
        &self,
        run_id: &str,
        chunk: PlannedChunk,
        after: Option<&str>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let ids: Vec<String> = chunk.lead_ids.into_iter().filter(|l| after.is_none_or(|a| l.as_str() > a)).collect();
        let written = self.written_items(run_id, &ids).await?;
        Ok(ids.into_iter().filter(|l| !written.contains(l)).map(|l| (l, chunk.planned_at.clone())).collect())
    }

    /// Which of `lead_ids` already have an item in the run (keys only).
    async fn written_items(&self, run_id: &str, lead_ids: &[String]) -> Result<HashSet<String>, StoreError> {
        if lead_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let rows =
            self.batch_get_projected(lead_ids.iter().map(|l| keys::item(run_id, l)).collect(), Some("sk")).await?;
        Ok(rows.iter().filter_map(|r| super::get_s(r, "sk")).collect())
    }
}
