//! Workspaces, API tokens, credits and the ledger.

use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem};
use puffle_domain::credits::LedgerEntry;

use super::{from_row, get_s, key_of, row, s, Row, Store};
use crate::error::{classify, StoreError};
use crate::keys;

impl Store {
    pub(crate) fn ledger_put(&self, ws: &str, e: &LedgerEntry) -> Result<TransactWriteItem, StoreError> {
        let item = row(e, (keys::ledger_pk(ws), format!("{}#{}", e.created_at, e.id)), &[])?;
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(self.table())
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| StoreError::Other(e.to_string()))?,
            )
            .build())
    }

    pub async fn create_workspace(
        &self,
        ws: &str,
        name: &str,
        token_hash: &str,
        grant: &LedgerEntry,
    ) -> Result<(), StoreError> {
        let (pk, sk) = keys::workspace(ws);
        let ws_row: Row = [
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), s(sk)),
            ("id".to_string(), s(ws)),
            ("name".to_string(), s(name)),
            ("createdAt".to_string(), s(&grant.created_at)),
        ]
        .into();
        let mut actions = vec![self.put_new(ws_row), self.token_put(ws, token_hash, &grant.created_at)];
        if grant.amount > 0 {
            actions.extend(self.credit_spread(ws, grant.amount));
            actions.push(self.ledger_put(ws, grant)?);
        }
        self.transact(actions).await
    }

    fn token_put(&self, ws: &str, token_hash: &str, now: &str) -> TransactWriteItem {
        let (pk, sk) = keys::token(token_hash);
        let item: Row = [
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), s(sk)),
            ("workspaceId".to_string(), s(ws)),
            ("createdAt".to_string(), s(now)),
        ]
        .into();
        self.put_new(item)
    }

    /// Adds a token to an existing workspace (fails if it does not exist).
    pub async fn add_token(&self, ws: &str, token_hash: &str, now: &str) -> Result<(), StoreError> {
        let check = TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(self.table())
                    .set_key(Some(key_of(keys::workspace(ws))))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .expect("check"),
            )
            .build();
        self.transact(vec![check, self.token_put(ws, token_hash, now)]).await
    }

    pub async fn workspace_for_token(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get_row(keys::token(token_hash)).await?.and_then(|r| get_s(&r, "workspaceId")))
    }

    pub async fn ledger(&self, ws: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        self.query_all(&keys::ledger_pk(ws)).await?.into_iter().map(from_row).collect()
    }

    /// The HMAC key for cursors: created once per table, then read.
    pub async fn cursor_key(&self) -> Result<Vec<u8>, StoreError> {
        if let Some(r) = self.get_row(keys::cursor_key()).await? {
            if let Some(k) = get_s(&r, "secret") {
                return Ok(k.into_bytes());
            }
        }
        let secret = puffle_domain::ids::api_token();
        let (pk, sk) = keys::cursor_key();
        let put = self
            .client()
            .put_item()
            .table_name(self.table())
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("secret", s(&secret))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put.map_err(classify) {
            Ok(_) => Ok(secret.into_bytes()),
            // Another process created it first: use theirs.
            Err(StoreError::ConditionFailed) => Box::pin(self.cursor_key()).await,
            Err(e) => Err(e),
        }
    }
}
