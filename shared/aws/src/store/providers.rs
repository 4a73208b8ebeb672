//! Workspace-defined enrichments, workspace secrets (sealed) and the
//! provider result cache.

use std::collections::HashMap;

use puffle_domain::catalog::Enrichment;
use puffle_domain::secrets::Sealed;

use super::{from_row, get_n, get_s, key_of, n, row, s, Row, Store};
use crate::error::{classify, StoreError};
use crate::keys;

/// A stored workspace secret (its value stays sealed here).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRow {
    pub name: String,
    pub sealed: Sealed,
    pub updated_at: String,
}

/// A provider's found result kept for reuse.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedResult {
    pub result: serde_json::Value,
    pub submission_id: Option<String>,
    pub created_at: String,
}

impl Store {
    /// Adds a workspace enrichment; `ConditionFailed` when the slug is taken.
    pub async fn put_workspace_enrichment(&self, ws: &str, e: &Enrichment, now: &str) -> Result<(), StoreError> {
        let (pk, sk) = keys::ws_enrichment(ws, &e.slug);
        let doc = serde_json::to_string(e).map_err(|err| StoreError::Other(err.to_string()))?;
        self.client()
            .put_item()
            .table_name(self.table())
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("doc", s(doc))
            .item("createdAt", s(now))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub async fn get_workspace_enrichment(&self, ws: &str, slug: &str) -> Result<Option<Enrichment>, StoreError> {
        self.get_row(keys::ws_enrichment(ws, slug)).await?.map(enrichment_of).transpose()
    }

    /// A workspace's enrichments, by slug (a workspace has a handful).
    pub async fn list_workspace_enrichments(&self, ws: &str) -> Result<Vec<Enrichment>, StoreError> {
        self.query_all(&keys::ws_enrichments_pk(ws)).await?.into_iter().map(enrichment_of).collect()
    }

    /// Deletes a workspace enrichment; false when there was none.
    pub async fn delete_workspace_enrichment(&self, ws: &str, slug: &str) -> Result<bool, StoreError> {
        let out = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key_of(keys::ws_enrichment(ws, slug))))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// Creates or replaces a workspace secret.
    pub async fn put_secret(&self, ws: &str, secret: &SecretRow) -> Result<(), StoreError> {
        let item = row(secret, keys::secret(ws, &secret.name), &[])?;
        self.client().put_item().table_name(self.table()).set_item(Some(item)).send().await.map_err(classify)?;
        Ok(())
    }

    /// A workspace's secrets, sealed, by name.
    pub async fn list_secrets(&self, ws: &str) -> Result<Vec<SecretRow>, StoreError> {
        self.query_all(&keys::secrets_pk(ws)).await?.into_iter().map(from_row).collect()
    }

    /// Cached results by hash, unexpired at `now_epoch` (TTL deletes lag,
    /// so the expiry is checked here too). One BatchGetItem per 100 hashes.
    pub async fn get_cached(
        &self,
        ws: &str,
        slug: &str,
        hashes: &[String],
        now_epoch: i64,
    ) -> Result<HashMap<String, CachedResult>, StoreError> {
        let keys = hashes.iter().map(|h| keys::provider_cache(ws, slug, h)).collect();
        let mut found = HashMap::new();
        for r in self.batch_get(keys).await? {
            if get_n(&r, "expiresAt").is_none_or(|t| t <= now_epoch) {
                continue;
            }
            let (Some(hash), Some(result)) = (get_s(&r, "hash"), get_s(&r, "result")) else { continue };
            let Ok(result) = serde_json::from_str(&result) else { continue };
            found.insert(
                hash,
                CachedResult {
                    result,
                    submission_id: get_s(&r, "submissionId"),
                    created_at: get_s(&r, "createdAt").unwrap_or_default(),
                },
            );
        }
        Ok(found)
    }

    /// A cache row for [`Store::batch_put`].
    pub fn cache_row(
        &self,
        ws: &str,
        slug: &str,
        hash: &str,
        cached: &CachedResult,
        expires_at: i64,
    ) -> Result<Row, StoreError> {
        let (pk, sk) = keys::provider_cache(ws, slug, hash);
        let mut r: Row = [
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), s(sk)),
            ("hash".to_string(), s(hash)),
            ("result".to_string(), s(cached.result.to_string())),
            ("createdAt".to_string(), s(&cached.created_at)),
            ("expiresAt".to_string(), n(expires_at)),
            ("ttl".to_string(), n(expires_at)),
        ]
        .into();
        if let Some(id) = &cached.submission_id {
            r.insert("submissionId".into(), s(id));
        }
        Ok(r)
    }
}

fn enrichment_of(r: Row) -> Result<Enrichment, StoreError> {
    let doc = get_s(&r, "doc").ok_or_else(|| StoreError::Corrupt("workspace enrichment without doc".into()))?;
    serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(format!("workspace enrichment: {e}")))
}
