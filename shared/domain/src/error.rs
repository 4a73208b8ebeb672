//! The domain's error: a rejection of the caller's input or plan, carrying the
//! contract's code. The app layer wraps it; the HTTP layer maps it once.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// Shape errors: `400 INVALID_REQUEST`.
    #[error("{message}")]
    InvalidRequest { message: String, details: Value },
    /// `input` does not satisfy the enrichment's inputSchema: `400 INVALID_INPUT`.
    #[error("{message}")]
    InvalidInput { message: String, details: Value },
    /// Planner rejections (`400` with their own code, e.g. EMPTY_LEAD_SCOPE).
    #[error("{message}")]
    Planner { code: &'static str, message: String, details: Value },
    /// A cursor that was not issued by us, or was altered.
    #[error("the cursor is invalid or was altered")]
    InvalidCursor,
}

impl DomainError {
    pub fn invalid(message: impl Into<String>) -> Self {
        DomainError::InvalidRequest { message: message.into(), details: Value::Null }
    }
    pub fn invalid_with(message: impl Into<String>, details: Value) -> Self {
        DomainError::InvalidRequest { message: message.into(), details }
    }
    /// Names the field a rejection is about (its message and `details.field`).
    pub fn in_field(self, field: &str) -> Self {
        match self {
            DomainError::InvalidRequest { message, details } => {
                let mut details = match details {
                    Value::Object(m) => m,
                    _ => Default::default(),
                };
                details.insert("field".into(), Value::String(field.into()));
                DomainError::InvalidRequest { message: format!("{field}: {message}"), details: Value::Object(details) }
            }
            other => other,
        }
    }
    pub fn planner(code: &'static str, message: impl Into<String>, details: Value) -> Self {
        DomainError::Planner { code, message: message.into(), details }
    }
}
