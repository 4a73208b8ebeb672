//! Chunk leases: one worker at a time enriches a chunk. A second message for
//! the same chunk (a reaper re-send, a second planner, a duplicate delivery
//! with another message id) would otherwise call every provider again for
//! the same Leads while the first is still at it.

use std::time::Duration;

use super::{key_of, n, s, Store};
use crate::error::{classify, StoreError};
use crate::keys;

/// What taking a chunk's lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkLease {
    /// Taken, and no delivery ever held it: none of the chunk's items can
    /// have been written yet.
    First,
    /// Taken back: a redelivery of the holder's message, or a lease that
    /// lapsed. An earlier delivery may have finished some items.
    Again,
    /// Another holder's lease is live.
    Held,
}

impl Store {
    /// Takes or renews the lease on `chunk` of `run_id` for `holder` (the
    /// SQS message id: a redelivery of the holder's own message, after its
    /// worker died, takes the chunk back at once). False while another
    /// holder's lease is live.
    pub async fn lease_chunk(
        &self,
        run_id: &str,
        chunk: u32,
        holder: &str,
        lease: Duration,
    ) -> Result<ChunkLease, StoreError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let until = now_ms + lease.as_millis() as i64;
        let mut item = key_of(keys::chunk_lease(run_id, chunk));
        item.insert("holder".into(), s(holder));
        item.insert("leaseUntil".into(), n(until));
        // Kept a day after it lapses, then DynamoDB's TTL removes it.
        item.insert("ttl".into(), n(until / 1000 + 86_400));
        let put = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR holder = :holder OR leaseUntil < :now")
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":now", n(now_ms))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match put.map_err(classify) {
            Ok(out) if out.attributes.as_ref().is_none_or(|a| a.is_empty()) => Ok(ChunkLease::First),
            Ok(_) => Ok(ChunkLease::Again),
            Err(StoreError::ConditionFailed) => Ok(ChunkLease::Held),
            Err(e) => Err(e),
        }
    }
}
