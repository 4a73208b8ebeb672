//! Application flows. Each public method is one use case: it takes parsed
//! input, applies the domain's rules, talks to the store and the queue, and
//! returns a value or an [`AppError`]. Handlers (puffle-http) only map.
//!
//! - create flow: [`runs::create`]; status/items/cancel: [`runs`]
//! - worker flow: [`worker::plan`] (scope → items + chunk messages),
//!   [`worker::chunk`] (enrich, write, count), [`worker::dead_letter`]
//! - running an enrichment on Leads (the provider seam): [`enrich`]
//! - Leads and Lists: [`leads`], [`lists`]; tokens and credits: [`accounts`]
//! - webhooks (signed, retried, logged deliveries of run events): [`webhooks`]

pub mod accounts;
pub mod admission;
pub mod emf;
pub mod enrich;
pub mod error;
pub mod events;
pub mod fixtures;
pub mod leads;
pub mod lists;
pub mod reaper;
pub mod rules;
pub mod runs;
pub mod webhooks;
pub mod worker;

use puffle_aws::AwsContext;
use puffle_domain::cursor::CursorKey;
use tokio::sync::OnceCell;

pub use error::AppError;

/// Everything a use case needs, built once per process.
#[derive(Clone)]
pub struct App {
    pub aws: AwsContext,
    cursor: std::sync::Arc<OnceCell<CursorKey>>,
    tokens: accounts::TokenCache,
    /// The provider layer's per-process state: secrets read once, guarded
    /// HTTP clients, rate limiters and circuits.
    secrets: std::sync::Arc<enrich::secrets::SecretState>,
    resilience: std::sync::Arc<enrich::resilience::Registry>,
    egress: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u64, puffle_egress::Egress>>>,
    webhooks: std::sync::Arc<webhooks::WebhookState>,
    /// The DNS resolver and per-domain answers of `email_verify`.
    dns: std::sync::Arc<enrich::network::DnsState>,
}

impl App {
    pub fn new(aws: AwsContext) -> App {
        App {
            aws,
            cursor: Default::default(),
            tokens: Default::default(),
            secrets: Default::default(),
            resilience: Default::default(),
            egress: Default::default(),
            webhooks: Default::default(),
            dns: Default::default(),
        }
    }

    pub async fn from_env() -> App {
        App::new(AwsContext::from_env().await)
    }

    /// The app of a Lambda function (see [`AwsContext::for_lambda`]).
    pub async fn for_lambda() -> App {
        App::new(AwsContext::for_lambda().await)
    }

    pub fn store(&self) -> &puffle_aws::Store {
        &self.aws.store
    }

    /// The cursor key is read lazily: requests that do not page never pay for it.
    pub async fn cursor_key(&self) -> Result<&CursorKey, AppError> {
        self.cursor
            .get_or_try_init(|| async {
                let secret = match std::env::var("PUFFLE_CURSOR_SECRET") {
                    Ok(s) if !s.is_empty() => s.into_bytes(),
                    _ => self.store().cursor_key().await?,
                };
                Ok::<_, AppError>(CursorKey::new(secret))
            })
            .await
    }

    /// `/api/health`: both backends answer.
    pub async fn health(&self) -> Result<(), AppError> {
        let (db, q) = tokio::join!(self.store().ping(), self.aws.queue.depth());
        db?;
        q?;
        Ok(())
    }
}
