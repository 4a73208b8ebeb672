//! Idempotency keys: a canonical hash of the request, and how long keys live.
//!
//! As in Stripe and the IETF Idempotency-Key draft: the same key with the
//! same body returns the first result; with a different body it is a 422.

use sha2::{Digest, Sha256};

use crate::create::CreateRequest;

/// Keys are kept 24 hours; DynamoDB's TTL deletes them later, so readers also
/// compare the expiry themselves.
pub const KEY_TTL_SECONDS: i64 = 24 * 60 * 60;

/// Hash of the parsed request (defaults filled in, key order canonical), so
/// `{"mode":"persisted"}` and an omitted mode count as the same body.
pub fn request_hash(req: &CreateRequest) -> String {
    // serde_json's Map is a BTreeMap here: keys serialise sorted.
    let canonical = serde_json::to_value(req).expect("requests serialise");
    let bytes = serde_json::to_vec(&canonical).expect("values serialise");
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: serde_json::Value) -> CreateRequest {
        CreateRequest::parse(&v, None).unwrap()
    }

    #[test]
    fn same_meaning_same_hash() {
        let a = req(
            json!({"enrichmentId":"x","scope":{"type":"list","listId":"l"},"input":{"b":1,"a":2},"idempotencyKey":"k"}),
        );
        let b = req(
            json!({"input":{"a":2,"b":1},"mode":"persisted","scope":{"listId":"l","type":"list"},"enrichmentId":"x","idempotencyKey":"k"}),
        );
        assert_eq!(request_hash(&a), request_hash(&b));
    }

    #[test]
    fn different_body_different_hash() {
        let a = req(json!({"enrichmentId":"x","scope":{"type":"list","listId":"l"},"input":{}}));
        let b = req(json!({"enrichmentId":"x","scope":{"type":"list","listId":"l2"},"input":{}}));
        assert_ne!(request_hash(&a), request_hash(&b));
    }
}
