//! Secrets: the platform's provider keys and the keys workspaces bring.
//!
//! - Platform secrets: `PUFFLE_SECRET_<NAME>` from the environment, then
//!   (on AWS) the Secrets Manager secret named by
//!   `PUFFLE_PROVIDER_SECRETS_NAME` (a JSON object of names to values), read
//!   once per process (cold start) and kept in memory.
//! - Workspace secrets: `PUT /api/secrets/{name}`, sealed with envelope
//!   encryption under the key-encryption key `PUFFLE_SECRETS_KEY` (base64 of
//!   32 bytes: the environment locally, the Secrets Manager secret on AWS).
//!   Write-only: no route returns a value.
//!
//! A catalog enrichment's `{{secrets.X}}` is the workspace's X when it set
//! one (bring your own key), else the platform's. A workspace-defined
//! enrichment sees only its workspace's secrets: its URL is the
//! workspace's choice, so platform keys must never reach it.
//!
//! Values are never logged, stored in items or snapshots, or echoed.

use std::collections::HashMap;
use std::sync::Arc;

use puffle_domain::catalog::{self, Enrichment};
use puffle_domain::secrets::{self as sealed, Kek, MAX_SECRET_BYTES};
use puffle_domain::{time, DomainError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::{App, AppError};
use puffle_aws::store::SecretRow;

/// The environment prefix of platform secrets.
pub const ENV_PREFIX: &str = "PUFFLE_SECRET_";
/// The key-encryption key's name (environment or platform secret). It is
/// never a placeholder's value.
pub const KEK_NAME: &str = "PUFFLE_SECRETS_KEY";

#[derive(Default)]
pub struct SecretState {
    platform: OnceCell<Arc<HashMap<String, String>>>,
    kek: OnceCell<Option<Kek>>,
}

/// What `GET /api/secrets` shows of a secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    pub name: String,
    pub updated_at: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    value: String,
}

impl App {
    /// The platform's secrets (environment first, then Secrets Manager).
    pub(crate) async fn platform_secrets(&self) -> Result<Arc<HashMap<String, String>>, AppError> {
        self.secrets
            .platform
            .get_or_try_init(|| async {
                let mut map = HashMap::new();
                if let Some(id) = std::env::var("PUFFLE_PROVIDER_SECRETS_NAME").ok().filter(|v| !v.is_empty()) {
                    map = puffle_aws::secrets::provider_secrets(&self.aws.sdk, &id).await?;
                }
                for (k, v) in std::env::vars() {
                    if let Some(name) = k.strip_prefix(ENV_PREFIX) {
                        if sealed::valid_name(name) && !v.is_empty() {
                            map.insert(name.to_string(), v);
                        }
                    }
                }
                let kek = map.remove(KEK_NAME);
                // Keep the KEK for `kek()` without a second read.
                if let Some(k) = kek {
                    let _ = self.secrets.kek.set(Kek::from_base64(&k).ok());
                }
                Ok::<_, AppError>(Arc::new(map))
            })
            .await
            .cloned()
    }

    pub(crate) async fn kek(&self) -> Result<Option<Kek>, AppError> {
        if let Ok(k) = std::env::var(KEK_NAME) {
            if !k.is_empty() {
                return Kek::from_base64(&k)
                    .map(Some)
                    .map_err(|e| AppError::Internal(format!("{KEK_NAME} is invalid: {e}")));
            }
        }
        self.platform_secrets().await?;
        Ok(self.secrets.kek.get_or_init(|| async { None }).await.clone())
    }

    /// `PUT /api/secrets/{name}`.
    pub async fn put_secret(&self, ws: &str, name: &str, body: &Value) -> Result<(), AppError> {
        if !sealed::valid_name(name) {
            return Err(DomainError::invalid_with(
                "secret names match ^[A-Z][A-Z0-9_]{0,63}$",
                json!({"field": "name"}),
            )
            .into());
        }
        if !body.is_object() {
            return Err(DomainError::invalid("the body must be a JSON object {\"value\": \"...\"}").into());
        }
        let PutBody { value } = serde_json::from_value(body.clone())
            .map_err(|e| DomainError::invalid(format!("invalid secret body: {e}")))?;
        if value.is_empty() || value.len() > MAX_SECRET_BYTES {
            return Err(DomainError::invalid_with(
                format!("value must be 1 to {MAX_SECRET_BYTES} bytes"),
                json!({"field": "value"}),
            )
            .into());
        }
        if value.chars().any(char::is_control) {
            return Err(DomainError::invalid_with(
                "value must not contain control characters",
                json!({"field": "value"}),
            )
            .into());
        }
        let kek = self.kek().await?.ok_or_else(|| {
            AppError::Internal(format!("workspace secrets need {KEK_NAME} (base64 of 32 bytes) to be configured"))
        })?;
        let row =
            SecretRow { name: name.to_string(), sealed: sealed::seal(&kek, ws, name, &value), updated_at: time::now() };
        self.store().put_secret(ws, &row).await?;
        Ok(())
    }

    /// `GET /api/secrets`: names and dates, never values.
    pub async fn list_secrets(&self, ws: &str) -> Result<Vec<SecretInfo>, AppError> {
        let mut rows = self.store().list_secrets(ws).await?;
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows.into_iter().map(|r| SecretInfo { name: r.name, updated_at: r.updated_at }).collect())
    }

    async fn workspace_secret_values(&self, ws: &str) -> Result<HashMap<String, String>, AppError> {
        let rows = self.store().list_secrets(ws).await?;
        if rows.is_empty() {
            return Ok(HashMap::new());
        }
        let Some(kek) = self.kek().await? else {
            tracing::error!(workspace_id = ws, "workspace secrets exist but {KEK_NAME} is not configured");
            return Ok(HashMap::new());
        };
        let mut out = HashMap::new();
        for r in rows {
            match sealed::open(&kek, ws, &r.name, &r.sealed) {
                Ok(v) => {
                    out.insert(r.name, v);
                }
                // The name only: the reason is about keys, never the value.
                Err(e) => {
                    tracing::error!(workspace_id = ws, secret = %r.name, error = %e, "a workspace secret does not open")
                }
            }
        }
        Ok(out)
    }

    /// The secret values `e`'s calls may use, by the resolution rule above
    /// (only the names its binding references).
    /// The secret values `e`'s calls may use, by the resolution rule above
    /// (only the names its binding references), and whether any of them is the workspace's own
    /// (then the provider account is the workspace's: its circuit and rate
    /// limit are too, so one workspace's revoked key never stops another's
    /// calls).
    pub(crate) async fn secrets_and_source(
        &self,
        ws: &str,
        e: &Enrichment,
    ) -> Result<(HashMap<String, String>, bool), AppError> {
        let names = e.secret_names();
        if names.is_empty() {
            return Ok((HashMap::new(), false));
        }
        let mut found = self.workspace_secret_values(ws).await?;
        found.retain(|k, _| names.contains(k));
        let own = !found.is_empty();
        if is_catalog(e) {
            let platform = self.platform_secrets().await?;
            for n in &names {
                if !found.contains_key(n) {
                    if let Some(v) = platform.get(n) {
                        found.insert(n.clone(), v.clone());
                    }
                }
            }
        }
        Ok((found, own))
    }

    /// The secrets `e` needs that are configured neither for the workspace
    /// nor (for catalog enrichments) for the platform, sorted.
    pub async fn missing_secrets(&self, ws: &str, e: &Enrichment) -> Result<Vec<String>, AppError> {
        let names = e.secret_names();
        if names.is_empty() {
            return Ok(vec![]);
        }
        let ws_names: Vec<String> = self.store().list_secrets(ws).await?.into_iter().map(|r| r.name).collect();
        let platform = if is_catalog(e) { Some(self.platform_secrets().await?) } else { None };
        Ok(names
            .into_iter()
            .filter(|n| !ws_names.contains(n) && !platform.as_ref().is_some_and(|p| p.contains_key(n)))
            .collect())
    }
}

/// A catalog entry (not a workspace's own): slugs of the two never clash.
pub(crate) fn is_catalog(e: &Enrichment) -> bool {
    catalog::all().iter().any(|c| c.slug == e.slug && c.tool_binding == e.tool_binding)
}
