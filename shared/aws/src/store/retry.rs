//! The store's one retry policy, for what the SDK does not retry itself:
//! keys and items DynamoDB left unprocessed in a batch, transactions (or
//! updates) refused only because they conflicted with concurrent writes, and
//! a transaction whose token's earlier attempt is still in progress.
//! Throttling, 5xx and dropped connections are the SDK's own retries
//! (`config::sdk_retries`) and are never retried again here: one policy per
//! layer, so a failing call costs a bounded number of attempts.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Exponential from 25 ms to 2 s with jitter, at most 9 waits: about 6 s in
/// all, well inside a function's timeout, before the caller sees `Unavailable`.
pub(crate) fn policy() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(25))
        .with_max_delay(Duration::from_secs(2))
        .with_max_times(9)
        .with_jitter()
        .build()
}

/// Waits the policy's next delay; false once it has none left.
pub(crate) async fn wait(retries: &mut ExponentialBackoff) -> bool {
    match retries.next() {
        Some(d) => {
            tokio::time::sleep(d).await;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_grows_is_capped_and_ends() {
        let delays: Vec<_> = super::policy().collect();
        assert_eq!(delays.len(), 9);
        // Jitter adds up to one more delay: never above twice the cap.
        assert!(delays.iter().all(|d| d.as_millis() >= 25 && d.as_millis() <= 4_000), "{delays:?}");
        assert!(delays.last() > delays.first(), "{delays:?}");
    }
}
