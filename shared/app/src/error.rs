//! The application's one error type. puffle-http maps it to the contract's
//! `{code, message, ...}` bodies in exactly one place.

use puffle_aws::StoreError;
use puffle_domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("missing or unknown API token")]
    Unauthenticated,
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("the workspace has {balance} credits; this run needs {required}")]
    InsufficientCredits { required: u64, balance: u64 },
    #[error("this idempotency key was used with a different request body")]
    IdempotencyKeyReused,
    #[error("the run was created but could not be dispatched to the worker")]
    DispatchFailed { run_id: String, trigger_run_id: Option<String> },
    #[error("the run cannot be cancelled ({reason})")]
    NotCancellable { reason: &'static str, status: String },
    /// The enrichment needs secrets that are not configured (`400`).
    #[error("enrichment {slug} is disabled: the secret(s) {} are not configured", missing.join(", "))]
    EnrichmentDisabled { slug: String, missing: Vec<String> },
    /// The request clashes with what exists (`409`).
    #[error("{message}")]
    Conflict { code: &'static str, message: String, details: serde_json::Value },
    /// A request body over the limit (`413`), met after routing.
    #[error("bodies are limited to {0} bytes")]
    PayloadTooLarge(usize),
    #[error("this token's limit of {} requests is used up; retry in {} s", .0.limit, .0.reset_seconds)]
    RateLimited(puffle_domain::rate::Verdict),
    #[error("a backend is unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => AppError::Unavailable(m),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl AppError {
    /// The contract's error code (also logged with each request).
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Domain(DomainError::InvalidRequest { .. } | DomainError::InvalidCursor) => "INVALID_REQUEST",
            AppError::Domain(DomainError::InvalidInput { .. }) => "INVALID_INPUT",
            AppError::Domain(DomainError::Planner { code, .. }) => code,
            AppError::Unauthenticated => "UNAUTHENTICATED",
            AppError::NotFound { code, .. } => code,
            AppError::InsufficientCredits { .. } => "INSUFFICIENT_CREDITS",
            AppError::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            AppError::DispatchFailed { .. } => "DISPATCH_FAILED",
            AppError::NotCancellable { .. } => "RUN_NOT_CANCELLABLE",
            AppError::EnrichmentDisabled { .. } => "ENRICHMENT_DISABLED",
            AppError::Conflict { code, .. } => code,
            AppError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            AppError::RateLimited(_) => "RATE_LIMITED",
            AppError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            AppError::Internal(_) => "INTERNAL",
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        AppError::NotFound { code, message: message.into() }
    }
}
