//! `internal_echo`: an internal (unlisted) diagnostic enrichment. Returns
//! `{"echo": true}` for any lead; it reads nothing, so it never skips.

use serde_json::json;

use super::Outcome;
use crate::lead::Lead;

pub(super) fn run(_lead: &Lead) -> Outcome {
    Outcome::Completed(json!({ "echo": true }))
}
