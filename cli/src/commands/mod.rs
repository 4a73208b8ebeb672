//! Command handlers: parse flags into a request, call the API, print.

pub mod account;
pub mod enrichment;
pub mod lead;
pub mod list;
pub mod webhook;

use std::time::Duration;

use serde_json::Value;

use crate::client::Client;
use crate::error::{CliError, Result};
use crate::output::{self, Format};

/// What every API command gets: the client and the output format.
pub struct Ctx {
    pub client: Client,
    pub format: Format,
}

/// `--poll-interval` in seconds → a Duration (0.05..=60 s).
pub fn poll_interval(secs: f64) -> Result<Duration> {
    if !(0.05..=60.0).contains(&secs) || !secs.is_finite() {
        return Err(CliError::usage(format!("--poll-interval must be between 0.05 and 60 seconds, got {secs}")));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A single-object answer: JSON as the API sent it, or a field/value table.
pub fn print_object(format: Format, body: &Value) {
    match format {
        Format::Table => output::out(&output::kv_table(body)),
        _ => output::print_json(body),
    }
}

/// Lead ids from `--lead-ids` values: comma/space separated, repeatable,
/// `@file` (one per line or comma separated).
pub fn lead_ids(values: &[String]) -> Result<Vec<String>> {
    let mut ids = vec![];
    for v in values {
        match v.strip_prefix('@') {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| CliError::usage(format!("--lead-ids: cannot read {path}: {e}")))?;
                ids.extend(crate::scope::split_ids(&text));
            }
            None => ids.extend(crate::scope::split_ids(v)),
        }
    }
    Ok(ids)
}
