//! Tool arguments, named as the API names them (`enrichmentId`, `scope`,
//! `runId`, `leadIds`, …). Values the API validates (scope, input, output,
//! enums, limits) are passed through as given, so a bad value is answered by
//! the API with its own code; unknown argument names are refused here, so a
//! misspelt one is never silently dropped.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListEnrichments {
    /// Text to look for in the enrichments' names, slugs and descriptions; omit to list all.
    pub q: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetEnrichment {
    /// The enrichment's id or slug, e.g. `email_domain`.
    pub enrichment_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = crate::schemas::no_null_defaults)]
pub struct Preview {
    /// The enrichment's id or slug, from list_enrichments.
    pub enrichment_id: String,
    #[schemars(schema_with = "crate::schemas::scope")]
    pub scope: Value,
    #[serde(default)]
    #[schemars(schema_with = "crate::schemas::input")]
    pub input: Option<Value>,
    #[serde(default)]
    #[schemars(schema_with = "crate::schemas::output")]
    pub output: Option<Value>,
    /// `overwrite` (default) or `skip_existing` (Leads that already have the attribute are skipped, not charged).
    #[schemars(extend("enum" = ["overwrite", "skip_existing"]))]
    pub write_policy: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = crate::schemas::no_null_defaults)]
pub struct Start {
    /// The enrichment's id or slug, from list_enrichments.
    pub enrichment_id: String,
    #[schemars(schema_with = "crate::schemas::scope")]
    pub scope: Value,
    #[serde(default)]
    #[schemars(schema_with = "crate::schemas::input")]
    pub input: Option<Value>,
    #[serde(default)]
    #[schemars(schema_with = "crate::schemas::output")]
    pub output: Option<Value>,
    /// `overwrite` (default) or `skip_existing` (Leads that already have the attribute are skipped, not charged).
    #[schemars(extend("enum" = ["overwrite", "skip_existing"]))]
    pub write_policy: Option<String>,
    /// `persisted` (default: runs and charges). `preview` is what preview_enrichment does.
    #[schemars(extend("enum" = ["persisted", "preview"]))]
    pub mode: Option<String>,
    /// Kept with the run and shown in its trigger.dispatchMetadata, e.g. {"fieldId": "…"}.
    pub display_request: Option<Value>,
    /// Makes the call safe to repeat: the same key and body return the same run, charged once.
    /// Generated when absent and returned in the result; send it again when you retry.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunId {
    /// The run's id (`runId` from start_enrichment).
    pub run_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Wait {
    /// The run's id (`runId` from start_enrichment).
    pub run_id: String,
    /// How long to wait for the run to end, in seconds: default 30, at most 60.
    #[schemars(range(min = 0, max = 60))]
    pub timeout_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListResults {
    /// The run's id (`runId` from start_enrichment).
    pub run_id: String,
    /// Only items in this status; `failed` is the one to triage.
    #[schemars(extend("enum" = ["pending", "running", "completed", "skipped", "failed"]))]
    pub status: Option<String>,
    /// Only the item of this Lead.
    pub lead_id: Option<String>,
    /// Items per page: 1..100, default 50.
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u64>,
    /// `page.nextCursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryFailed {
    /// The run's id (`runId` from start_enrichment).
    pub run_id: String,
    /// Which items to retry: "failed" (default) or "skipped".
    pub status: Option<String>,
    /// Makes the retry safe to repeat; generated when absent and returned.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchLeads {
    /// One Lead by id (with all its attributes); the other arguments are then ignored.
    pub lead_id: Option<String>,
    /// Only people or only companies.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["person", "company"]))]
    pub lead_type: Option<String>,
    /// Leads per page: 1..500, default 100.
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateLeads {
    #[schemars(schema_with = "crate::schemas::leads")]
    pub leads: Value,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateList {
    /// The List's name.
    pub name: Option<String>,
    pub description: Option<String>,
    /// `person`, `company` or `mixed` (default). A person enrichment needs a person List or a filtered_list scope.
    #[schemars(extend("enum" = ["person", "company", "mixed"]))]
    pub lead_type: Option<String>,
    /// Leads to put in the List right away.
    pub lead_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddToList {
    /// The List's id (`list.id` from create_list).
    pub list_id: String,
    /// Leads to add; a Lead already in the List is left as it is.
    pub lead_ids: Vec<String>,
}
