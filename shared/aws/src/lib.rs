//! AWS adapters: the DynamoDB store and the SQS queue, configured only through
//! the standard SDK environment (`AWS_ENDPOINT_URL_DYNAMODB`, ...), so the
//! local stack and AWS run the same code.

pub mod bus;
pub mod config;
pub mod definitions;
pub mod error;
pub mod faults;
pub mod keys;
pub mod metrics;
pub mod queue;
pub mod secrets;
pub mod store;
pub mod stream;

pub use bus::EventBus;
pub use config::{AwsContext, Settings};
pub use error::StoreError;
pub use queue::Queue;
pub use store::Store;
