//! Request admission: per-token rate-limit windows and token revocation.

use aws_sdk_dynamodb::types::ReturnValue;

use super::{get_n, key_of, n, Store};
use crate::error::{classify, StoreError};
use crate::keys;

impl Store {
    /// Counts one request in a rate-limit window (an atomic ADD, shared by
    /// every function instance) and returns the window's count including it.
    /// The window's item expires by TTL soon after the window ends.
    pub async fn count_request(
        &self,
        token_hash: &str,
        class: &str,
        window_start: u64,
        expires_at: u64,
    ) -> Result<u64, StoreError> {
        let out = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key_of(keys::rate_window(token_hash, class, window_start))))
            .update_expression("ADD hits :one SET #ttl = if_not_exists(#ttl, :ttl)")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.attributes.as_ref().and_then(|a| get_n(a, "hits")).unwrap_or(1).max(1) as u64)
    }

    /// Deletes a token; returns whether it existed. Functions stop accepting
    /// it once their short token cache expires.
    pub async fn revoke_token(&self, token_hash: &str) -> Result<bool, StoreError> {
        let out = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key_of(keys::token(token_hash))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}
