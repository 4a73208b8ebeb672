//! The adapter layer's one error type.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The service could not be reached or throttled us past the SDK's
    /// retries: the caller should retry later (HTTP 503).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A conditional write's condition did not hold.
    #[error("condition failed")]
    ConditionFailed,
    /// A transaction was cancelled; one reason code per action (None = ok).
    #[error("transaction cancelled: {0:?}")]
    TransactionCanceled(Vec<Option<String>>),
    /// The queue refused a message.
    #[error("queue error: {0}")]
    Queue(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("storage error: {0}")]
    Other(String),
}

const TRANSIENT: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    // An UpdateItem that met an item inside another transaction: retry it.
    "TransactionConflictException",
];

/// Classifies any SDK error once, so every adapter method maps errors alike.
pub fn classify<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&e)))
        }
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("");
            if code == "ConditionalCheckFailedException" {
                StoreError::ConditionFailed
            } else if TRANSIENT.contains(&code) {
                StoreError::Unavailable(format!("{code}: {}", se.err().message().unwrap_or("")))
            } else {
                StoreError::Other(format!("{code}: {}", se.err().message().unwrap_or("")))
            }
        }
        _ => StoreError::Other(format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&e))),
    }
}

impl From<serde_dynamo::Error> for StoreError {
    fn from(e: serde_dynamo::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
