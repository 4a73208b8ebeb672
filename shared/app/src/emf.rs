//! Business metrics in CloudWatch Embedded Metric Format: one JSON line on
//! stdout per data point, which CloudWatch Logs turns into a metric in the
//! `Puffle` namespace (no API call, no latency on the request). Each line
//! also has `timestamp` and `level`, like every other line (see
//! puffle_http::logging), so Lambda's log-level filter keeps it.
//!
//! Call sites are one line each: `crate::emf::run_created(..)`.

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "Puffle";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// A run was accepted (and its credits reserved: they are charged or
/// released as its items settle).
pub fn run_created(enrichment: &str, leads: u64, reserved: u64) {
    emit(&[("Enrichment", enrichment)], &[("RunsCreated", Unit::Count, 1.0), ("RunLeads", Unit::Count, leads as f64)]);
    if reserved > 0 {
        emit(&[], &[("CreditsReserved", Unit::Count, reserved as f64)]);
    }
}

/// Leads that reached a terminal item status, by outcome.
pub fn leads_enriched(enrichment: &str, completed: u64, skipped: u64, failed: u64) {
    for (outcome, n) in [("completed", completed), ("skipped", skipped), ("failed", failed)] {
        if n > 0 {
            emit(&[("Enrichment", enrichment), ("Outcome", outcome)], &[("LeadsEnriched", Unit::Count, n as f64)]);
        }
    }
}

/// Reserved credits charged for found Leads.
pub fn credits_charged(credits: u64) {
    if credits > 0 {
        emit(&[], &[("CreditsCharged", Unit::Count, credits as f64)]);
    }
}

/// Reserved credits given back (Leads skipped, failed or never planned).
pub fn credits_released(credits: u64) {
    if credits > 0 {
        emit(&[], &[("CreditsReleased", Unit::Count, credits as f64)]);
    }
}

/// One provider call (or one batch of built-in evaluations): how long it
/// took and how many of its Leads failed.
pub fn provider_call(provider: &str, latency_ms: f64, leads: u64, errors: u64) {
    if leads == 0 {
        return;
    }
    emit(
        &[("Provider", provider)],
        &[
            ("ProviderLatency", Unit::Milliseconds, latency_ms),
            ("ProviderLeads", Unit::Count, leads as f64),
            ("ProviderErrors", Unit::Count, errors as f64),
        ],
    );
}

/// A message reached the dead-letter queue's handler.
pub fn dead_letter_arrived() {
    emit(&[], &[("DeadLetters", Unit::Count, 1.0)]);
}

fn emit(dimensions: &[(&str, &str)], metrics: &[(&str, Unit, f64)]) {
    let line = metric_line(chrono::Utc::now(), &stage(), dimensions, metrics);
    println!("{line}");
}

fn stage() -> String {
    std::env::var("PUFFLE_STAGE").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "local".into())
}

/// One EMF document: every metric with the dimension set `Stage` + `dimensions`.
pub fn metric_line(
    at: chrono::DateTime<chrono::Utc>,
    stage: &str,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, Unit, f64)],
) -> Value {
    let mut names: Vec<&str> = vec!["Stage"];
    names.extend(dimensions.iter().map(|(k, _)| *k));
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": metrics.iter().map(|(n, u, _)| json!({"Name": n, "Unit": u.as_str()})).collect::<Vec<_>>(),
            }],
        }),
    );
    doc.insert("Stage".into(), stage.into());
    for (k, v) in dimensions {
        doc.insert((*k).into(), (*v).into());
    }
    for (n, _, v) in metrics {
        doc.insert((*n).into(), json!(v));
    }
    doc.insert("timestamp".into(), at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true).into());
    doc.insert("level".into(), "INFO".into());
    doc.insert("message".into(), "metrics".into());
    if let Ok(f) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
        doc.insert("function_name".into(), f.into());
    }
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_line_is_valid_emf() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
        let v = metric_line(at, "prod", &[("Outcome", "failed")], &[("LeadsEnriched", Unit::Count, 3.0)]);
        let spec = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_796_083_200_000i64);
        assert_eq!(spec["Namespace"], "Puffle");
        // Every dimension and metric named in the spec is a member of the document.
        for d in spec["Dimensions"][0].as_array().unwrap() {
            assert!(v[d.as_str().unwrap()].is_string(), "{d}");
        }
        for m in spec["Metrics"].as_array().unwrap() {
            assert!(v[m["Name"].as_str().unwrap()].is_number(), "{m}");
        }
        assert_eq!(v["LeadsEnriched"], 3.0);
        assert_eq!(v["Outcome"], "failed");
        assert_eq!(v["Stage"], "prod");
        assert_eq!(v["level"], "INFO");
        assert!(v["timestamp"].as_str().unwrap().starts_with("2026-12-01T00:00:00"));
    }
}
