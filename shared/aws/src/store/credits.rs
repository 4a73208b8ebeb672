//! A workspace's balance, spread over credit buckets (`WS#{ws}` / `B{k}`,
//! beside the workspace item). Every create reserves in one transaction with
//! its run, and every chunk settles in one with its counts; were the balance
//! one item, concurrent ones in a workspace would cancel each other
//! (DynamoDB rejects concurrent transactions on an item) and queue up in
//! retries. So a reservation takes from one bucket picked at random, and
//! only when that bucket cannot cover it reads them all and draws from the
//! fullest (`puffle_domain::credits::draws`); 402 still means the sum is
//! short. Credits coming back go to a random bucket, grants are spread over
//! all of them. The workspace item's own `balance` (workspaces created
//! before buckets) is one more bucket.

use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem, Update};
use puffle_domain::credits::{spread, Bucket, LedgerEntry, LedgerKind, BUCKETS};

use super::{get_n, get_s, key_of, n, Store};
use crate::error::StoreError;
use crate::keys;

/// A random number (it spreads load, it protects nothing).
fn random() -> u64 {
    rand::random()
}

pub(crate) fn random_bucket() -> Bucket {
    Bucket::Spread((random() % BUCKETS as u64) as u32)
}

pub(crate) fn random_index(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (random() % len as u64) as usize
    }
}

/// A pause of 0–(5 × round) ms before a create draws again.
pub(crate) fn jitter(round: u32) -> std::time::Duration {
    std::time::Duration::from_millis(random() % (5 * u64::from(round) + 1))
}

impl Store {
    fn bucket_key(ws: &str, b: Bucket) -> (String, String) {
        match b {
            Bucket::Workspace => keys::workspace(ws),
            Bucket::Spread(k) => keys::credit_bucket(ws, k),
        }
    }

    /// Adds `amount` to bucket `b` (created on first use).
    pub(crate) fn credit_add_to(&self, ws: &str, b: Bucket, amount: u64) -> TransactWriteItem {
        let u = Update::builder()
            .table_name(self.table())
            .set_key(Some(key_of(Self::bucket_key(ws, b))))
            .update_expression("ADD balance :d")
            .expression_attribute_values(":d", n(amount))
            .build()
            .expect("update");
        TransactWriteItem::builder().update(u).build()
    }

    /// Credits coming back (a release): into a random bucket.
    pub(crate) fn credit_add(&self, ws: &str, amount: u64) -> TransactWriteItem {
        self.credit_add_to(ws, random_bucket(), amount)
    }

    /// A grant, spread over every bucket.
    pub(crate) fn credit_spread(&self, ws: &str, amount: u64) -> Vec<TransactWriteItem> {
        spread(amount).into_iter().map(|(b, a)| self.credit_add_to(ws, b, a)).collect()
    }

    /// Takes `amount` from bucket `b`, only if it holds that much.
    pub(crate) fn credit_take(&self, ws: &str, b: Bucket, amount: u64) -> TransactWriteItem {
        let u = Update::builder()
            .table_name(self.table())
            .set_key(Some(key_of(Self::bucket_key(ws, b))))
            .update_expression("SET balance = balance - :d")
            .condition_expression("balance >= :d")
            .expression_attribute_values(":d", n(amount))
            .build()
            .expect("update");
        TransactWriteItem::builder().update(u).build()
    }

    /// The workspace must exist (a free run still needs its workspace).
    pub(crate) fn workspace_exists(&self, ws: &str) -> TransactWriteItem {
        let c = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(key_of(keys::workspace(ws))))
            .condition_expression("attribute_exists(pk)")
            .build()
            .expect("check");
        TransactWriteItem::builder().condition_check(c).build()
    }

    /// Every bucket's balance (one consistent Query of the workspace's
    /// partition), or None when the workspace does not exist.
    pub async fn balances(&self, ws: &str) -> Result<Option<Vec<(Bucket, u64)>>, StoreError> {
        let rows = self.query_all(&keys::workspace(ws).0).await?;
        let mut found = false;
        let mut out = vec![];
        for r in &rows {
            let balance = get_n(r, "balance").unwrap_or(0).max(0) as u64;
            match get_s(r, "sk").as_deref() {
                Some("WS") => {
                    found = true;
                    out.push((Bucket::Workspace, balance));
                }
                Some(sk) => {
                    if let Some(k) = sk.strip_prefix('B').and_then(|k| k.parse().ok()) {
                        out.push((Bucket::Spread(k), balance));
                    }
                }
                None => {}
            }
        }
        Ok(found.then_some(out))
    }

    pub async fn balance(&self, ws: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.balances(ws).await?.map(|b| b.iter().map(|(_, a)| a).sum()))
    }

    /// Grants credits: balance and ledger move together or not at all.
    pub async fn grant(&self, ws: &str, entry: &LedgerEntry) -> Result<(), StoreError> {
        debug_assert_eq!(entry.kind, LedgerKind::Grant);
        let mut actions = vec![self.workspace_exists(ws)];
        actions.extend(self.credit_spread(ws, entry.amount));
        actions.push(self.ledger_put(ws, entry)?);
        self.transact(actions).await
    }
}
