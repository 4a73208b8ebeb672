//! Admitting a request: the token names a workspace, then the token's rate
//! limit for the route's class is counted in the store, so the limit holds
//! across every concurrent function instance.

use std::sync::OnceLock;

use puffle_domain::rate::{self, RateLimit, Verdict};
use puffle_domain::{ids, time};

use crate::accounts::bearer_token;
use crate::{App, AppError};

/// An admitted request: its workspace, and where it stands against its limit
/// (`None` when the class has no limit).
#[derive(Debug, Clone)]
pub struct Admitted {
    pub workspace: String,
    pub rate: Option<Verdict>,
}

/// The limits in force: `PUFFLE_RATE_LIMITS` over the documented defaults.
/// A malformed setting keeps the defaults (and says so) rather than lift them.
pub fn limits() -> &'static [RateLimit] {
    static LIMITS: OnceLock<Vec<RateLimit>> = OnceLock::new();
    LIMITS.get_or_init(|| match std::env::var("PUFFLE_RATE_LIMITS") {
        Err(_) => rate::DEFAULT_LIMITS.to_vec(),
        Ok(spec) => rate::parse_limits(&spec).unwrap_or_else(|e| {
            tracing::error!(error = %e, "PUFFLE_RATE_LIMITS is malformed; using the default limits");
            rate::DEFAULT_LIMITS.to_vec()
        }),
    })
}

impl App {
    /// Authenticates, then counts the request against the token's `class` limit.
    pub async fn admit(&self, authorization: Option<&str>, class: &str) -> Result<Admitted, AppError> {
        let workspace = self.authenticate(authorization).await?;
        let Some(limit) = limits().iter().find(|l| l.class == class) else {
            return Ok(Admitted { workspace, rate: None });
        };
        let hash = ids::token_hash(bearer_token(authorization)?);
        let now = time::epoch_seconds().max(0) as u64;
        let window = limit.window(now);
        // Kept a window past its end: TTL deletes late, and reads never look back.
        let expires = window.start + 2 * limit.window_seconds;
        let hits = self.store().count_request(&hash, limit.class, window.start, expires).await?;
        let verdict = limit.verdict(hits, window);
        if !verdict.allowed {
            return Err(AppError::RateLimited(verdict));
        }
        Ok(Admitted { workspace, rate: Some(verdict) })
    }

    /// Revokes an API token. Warm functions drop it from their cache within
    /// [`crate::accounts::TOKEN_CACHE_TTL`]; returns whether it existed.
    pub async fn revoke_token(&self, token: &str) -> Result<bool, AppError> {
        Ok(self.store().revoke_token(&ids::token_hash(token.trim())).await?)
    }
}
