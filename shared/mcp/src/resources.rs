//! Resources: a run and its results, addressed by `puffle://` URIs.
//!
//! - `puffle://runs/{runId}` → `GET /api/enrichment/{runId}`
//! - `puffle://runs/{runId}/results` → `GET /api/enrichment/{runId}/items`,
//!   taking the same query (`?status=failed&limit=100&cursor=…`)

use rmcp::model::ResourceTemplate;
use url::Url;

use crate::api::ApiRequest;

pub const SCHEME: &str = "puffle";
/// The query parameters the results resource passes on.
const RESULTS_QUERY: &[&str] = &["status", "leadId", "limit", "cursor"];

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("puffle://runs/{runId}", "run")
            .with_title("Enrichment run")
            .with_description("The run's status record: status, counts, cost, timing (GET /api/enrichment/{runId}).")
            .with_mime_type("application/json"),
        ResourceTemplate::new("puffle://runs/{runId}/results", "run results")
            .with_title("Enrichment run results")
            .with_description(
                "One page of the run's per-Lead items (GET /api/enrichment/{runId}/items); add \
                 ?status=failed, leadId, limit or cursor as query parameters.",
            )
            .with_mime_type("application/json"),
    ]
}

/// The API request a resource URI stands for, or why it names no resource.
pub fn request_for(uri: &str) -> Result<ApiRequest, String> {
    let url = Url::parse(uri).map_err(|e| format!("`{uri}` is not a URI: {e}"))?;
    if url.scheme() != SCHEME || url.host_str() != Some("runs") {
        return Err(format!("`{uri}` is not a Puffle resource; use puffle://runs/{{runId}}[/results]"));
    }
    let segments: Vec<String> = url
        .path_segments()
        .map(|s| s.map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().to_string()).collect())
        .unwrap_or_default();
    let query: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    match segments.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [run] if !run.is_empty() && query.is_empty() => Ok(ApiRequest::get(&["api", "enrichment", run])),
        [run, "results"] if !run.is_empty() => {
            if let Some((k, _)) = query.iter().find(|(k, _)| !RESULTS_QUERY.contains(&k.as_str())) {
                return Err(format!("`{k}` is not a results parameter; use {}", RESULTS_QUERY.join(", ")));
            }
            let mut r = ApiRequest::get(&["api", "enrichment", run, "items"]);
            r.query = query;
            Ok(r)
        }
        _ => Err(format!("`{uri}` names no resource; use puffle://runs/{{runId}} or puffle://runs/{{runId}}/results")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_and_results_uris_become_api_requests() {
        let r = request_for("puffle://runs/run_1").unwrap();
        assert_eq!(r.display(), "GET /api/enrichment/run_1");
        let r = request_for("puffle://runs/run_1/results?status=failed&limit=10").unwrap();
        assert_eq!(r.display(), "GET /api/enrichment/run_1/items?status=failed&limit=10");
        // Encoded ids are decoded once; the adapters encode them again.
        let r = request_for("puffle://runs/a%2Fb/results").unwrap();
        assert_eq!(r.segments, vec!["api", "enrichment", "a/b", "items"]);
    }

    #[test]
    fn other_uris_are_refused_with_the_shapes_to_use() {
        for bad in [
            "puffle://runs/",
            "puffle://runs",
            "puffle://lists/l1",
            "https://runs/run_1",
            "puffle://runs/run_1/items",
            "puffle://runs/run_1/results/x",
            "puffle://runs/run_1?status=failed",
            "puffle://runs/run_1/results?sort=asc",
            "not a uri",
        ] {
            assert!(request_for(bad).is_err(), "{bad}");
        }
    }
}
