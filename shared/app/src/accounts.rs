//! Workspaces, API tokens and credits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use puffle_domain::credits::LedgerEntry;
use puffle_domain::{ids, time};

use crate::{App, AppError};

/// Token hash → workspace, remembered briefly so a warm function does not
/// read the token on every request (tokens are never reassigned).
#[derive(Clone, Default)]
pub struct TokenCache(Arc<Mutex<HashMap<String, (String, Instant)>>>);

/// How long a warm function trusts a token it has read: a revoked token
/// fails within this long (one GetItem per token per warm function per TTL).
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, AppError> {
    authorization
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or(AppError::Unauthenticated)
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewWorkspace {
    pub workspace_id: String,
    pub token: String,
}

impl App {
    /// `Authorization: Bearer <token>` → workspace id.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<String, AppError> {
        let token = bearer_token(authorization)?;
        let hash = ids::token_hash(token);
        if let Ok(cache) = self.tokens.0.lock() {
            if let Some((ws, at)) = cache.get(&hash) {
                if at.elapsed() < TOKEN_CACHE_TTL {
                    return Ok(ws.clone());
                }
            }
        }
        let ws = self.store().workspace_for_token(&hash).await?.ok_or(AppError::Unauthenticated)?;
        if let Ok(mut cache) = self.tokens.0.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(hash, (ws.clone(), Instant::now()));
        }
        Ok(ws)
    }

    pub async fn create_workspace(&self, name: &str, credits: u64) -> Result<NewWorkspace, AppError> {
        let ws = ids::workspace_id();
        let token = ids::api_token();
        let grant = LedgerEntry::grant(credits, "initial grant", &time::now());
        self.store().create_workspace(&ws, name, &ids::token_hash(&token), &grant).await?;
        Ok(NewWorkspace { workspace_id: ws, token })
    }

    pub async fn create_token(&self, ws: &str) -> Result<String, AppError> {
        let token = ids::api_token();
        match self.store().add_token(ws, &ids::token_hash(&token), &time::now()).await {
            Ok(()) => Ok(token),
            Err(puffle_aws::StoreError::TransactionCanceled(_)) => {
                Err(AppError::not_found("WORKSPACE_NOT_FOUND", format!("no workspace {ws}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn grant_credits(&self, ws: &str, credits: u64, reason: &str) -> Result<u64, AppError> {
        let entry = LedgerEntry::grant(credits, reason, &time::now());
        match self.store().grant(ws, &entry).await {
            Ok(()) => self.balance(ws).await,
            Err(puffle_aws::StoreError::TransactionCanceled(_)) => {
                Err(AppError::not_found("WORKSPACE_NOT_FOUND", format!("no workspace {ws}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn balance(&self, ws: &str) -> Result<u64, AppError> {
        self.store()
            .balance(ws)
            .await?
            .ok_or_else(|| AppError::not_found("WORKSPACE_NOT_FOUND", format!("no workspace {ws}")))
    }

    pub async fn ledger(&self, ws: &str) -> Result<Vec<LedgerEntry>, AppError> {
        Ok(self.store().ledger(ws).await?)
    }
}
