//! An enrichment run: its record (the contract's status shape), its state
//! machine and its counts.
//!
//! ```text
//! pending ──worker plans──▶ running ──every item terminal──▶ completed
//!    │                        │
//!    ├──dispatch fails / worker gives up──▶ failed
//!    └──cancel──▶ cancelled ◀──cancel──┘
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::create::{Mode, OutputTarget, WritePolicy};
use crate::scope::Scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled)
    }
    pub fn can_cancel(self) -> bool {
        matches!(self, RunStatus::Pending | RunStatus::Running)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Counts {
    #[serde(default, deserialize_with = "lenient_count")]
    pub pending: u64,
    #[serde(default, deserialize_with = "lenient_count")]
    pub running: u64,
    #[serde(default, deserialize_with = "lenient_count")]
    pub completed: u64,
    #[serde(default, deserialize_with = "lenient_count")]
    pub skipped: u64,
    #[serde(default, deserialize_with = "lenient_count")]
    pub failed: u64,
}

/// Stored counters are read leniently: a value a bug or a hand edit made
/// negative or fractional reads as the nearest count instead of making the
/// run unreadable (which would turn its status into a permanent 500).
fn lenient_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    fn from_f64(v: f64) -> u64 {
        if v.is_finite() && v > 0.0 {
            v.round() as u64
        } else {
            0
        }
    }
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a count")
        }
        fn visit_u64<E>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E>(self, v: i64) -> Result<u64, E> {
            Ok(v.max(0) as u64)
        }
        fn visit_f64<E>(self, v: f64) -> Result<u64, E> {
            Ok(from_f64(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<u64, E> {
            Ok(v.trim().parse::<f64>().map(from_f64).unwrap_or(0))
        }
        fn visit_unit<E>(self) -> Result<u64, E> {
            Ok(0)
        }
    }
    d.deserialize_any(V)
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.pending + self.running + self.completed + self.skipped + self.failed
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichmentRef {
    pub id: String,
    pub slug: String,
    pub version: u32,
}

/// A run's scope: what was requested (typed; explicit lead ids
/// deduplicated), what it resolved to, and how far its items got. Serialised
/// as the contract's `{type, listId, requested, resolvedCount, counts}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RunScopeShape", into = "RunScopeShape")]
pub struct RunScope {
    pub requested: Scope,
    pub resolved_count: u64,
    pub counts: Counts,
}

impl RunScope {
    pub fn list_id(&self) -> Option<&str> {
        self.requested.list_id()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunScopeShape {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    list_id: Option<String>,
    requested: Scope,
    #[serde(deserialize_with = "lenient_count")]
    resolved_count: u64,
    counts: Counts,
}

impl From<RunScopeShape> for RunScope {
    fn from(s: RunScopeShape) -> Self {
        RunScope { requested: s.requested, resolved_count: s.resolved_count, counts: s.counts }
    }
}

impl From<RunScope> for RunScopeShape {
    fn from(s: RunScope) -> Self {
        RunScopeShape {
            kind: s.requested.kind().to_string(),
            list_id: s.requested.list_id().map(str::to_string),
            requested: s.requested,
            resolved_count: s.resolved_count,
            counts: s.counts,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOutput {
    pub target: OutputTarget,
    pub attribute_key: String,
    pub write_policy: WritePolicy,
    pub persist_results: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCost {
    /// Credits the plan priced (`leadCount × creditsPerLead`).
    #[serde(default, deserialize_with = "lenient_count")]
    pub preview: u64,
    /// Credits set aside at create (the same, or 0 for a run never funded).
    #[serde(default, deserialize_with = "lenient_count")]
    pub reserved: u64,
    /// Credits settled as charges: the items that found something.
    #[serde(default, deserialize_with = "lenient_count")]
    pub charged: u64,
    /// Credits settled back to the balance: misses, failures, cancelled or
    /// never-planned Leads, a failed dispatch.
    #[serde(default, deserialize_with = "lenient_count")]
    pub released: u64,
    /// What the run cost in the end: `charged` (so far, while it runs).
    #[serde(default, deserialize_with = "lenient_count")]
    pub actual: u64,
}

impl RunCost {
    /// A new run's cost: all of it reserved, nothing settled yet.
    pub fn reserved(amount: u64) -> RunCost {
        RunCost { preview: amount, reserved: amount, charged: 0, released: 0, actual: 0 }
    }

    /// Credits still held for items not settled yet.
    pub fn held(&self) -> u64 {
        self.reserved.saturating_sub(self.charged + self.released)
    }
}

/// What started a run: an API call, or a List's auto-enrich rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TriggerSource {
    #[default]
    Api,
    Rule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTrigger {
    #[serde(default)]
    pub source: TriggerSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    pub correlation_id: String,
    pub trigger_run_id: Option<String>,
    pub dispatch_metadata: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunError {
    pub message: String,
    pub details: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RunTiming {
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub cancelled_at: Option<String>,
}

/// The run exactly as `GET /api/enrichment/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: String,
    pub status: RunStatus,
    pub mode: Mode,
    pub enrichment: EnrichmentRef,
    pub scope: RunScope,
    pub output: RunOutput,
    pub cost: RunCost,
    pub trigger: RunTrigger,
    pub error: Option<RunError>,
    pub timing: RunTiming,
    /// Input given to the enrichment (validated against its inputSchema).
    #[serde(default)]
    pub input: Value,
    /// The run whose items this one retries (`POST …/retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    /// Runs that retry this one's items, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<String>,
}

/// What the worker keeps beside the public record to plan exactly once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanProgress {
    /// The next plan step to run; steps below it are done.
    pub plan_step: u32,
    /// Items planned so far (never above `resolvedCount`).
    pub planned_count: u64,
    pub plan_done: bool,
}

/// The create response (`202` new, `200` reused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateResponse {
    pub enrichment_run_id: Option<String>,
    pub run_id: Option<String>,
    pub status: String,
    pub lead_count: u64,
    pub trigger_run_id: Option<String>,
    pub reused_existing_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Preview>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub credits_required: u64,
    pub balance: u64,
    pub affordable: bool,
}

impl CreateResponse {
    pub fn for_run(run: &Run, reused: bool) -> Self {
        CreateResponse {
            enrichment_run_id: Some(run.id.clone()),
            run_id: Some(run.id.clone()),
            status: run.status.as_str().to_string(),
            lead_count: run.scope.resolved_count,
            trigger_run_id: run.trigger.trigger_run_id.clone(),
            reused_existing_run: reused,
            preview: None,
        }
    }
}

/// A run in `status`, for unit tests of what reads runs.
#[cfg(test)]
pub(crate) fn test_run(status: RunStatus) -> Run {
    Run {
        id: "run_1".into(),
        status,
        mode: Mode::Persisted,
        enrichment: EnrichmentRef { id: "enr_email_domain".into(), slug: "email_domain".into(), version: 1 },
        scope: RunScope {
            requested: Scope::List { list_id: "list_1".into() },
            resolved_count: 2,
            counts: Counts { pending: 2, ..Default::default() },
        },
        output: RunOutput {
            target: OutputTarget::Lead,
            attribute_key: "email_domain".into(),
            write_policy: WritePolicy::Overwrite,
            persist_results: true,
        },
        cost: RunCost::reserved(2),
        trigger: RunTrigger {
            source: TriggerSource::Api,
            rule_id: None,
            correlation_id: "req_1".into(),
            trigger_run_id: None,
            dispatch_metadata: Value::Null,
        },
        error: None,
        timing: RunTiming {
            created_at: "2026-12-01T00:00:00.000Z".into(),
            updated_at: "2026-12-01T00:00:01.000Z".into(),
            started_at: matches!(status, RunStatus::Running | RunStatus::Completed)
                .then(|| "2026-12-01T00:00:00.500Z".into()),
            completed_at: matches!(status, RunStatus::Completed | RunStatus::Failed)
                .then(|| "2026-12-01T00:00:01.000Z".into()),
            cancelled_at: (status == RunStatus::Cancelled).then(|| "2026-12-01T00:00:00.700Z".into()),
        },
        input: Value::Null,
        retry_of: None,
        retries: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_runs_cancel() {
        assert!(RunStatus::Pending.can_cancel());
        assert!(RunStatus::Running.can_cancel());
        for s in [RunStatus::Completed, RunStatus::Failed, RunStatus::Cancelled] {
            assert!(!s.can_cancel());
            assert!(s.is_terminal());
        }
    }

    #[test]
    fn bad_stored_counts_read_as_counts() {
        let c: Counts = serde_json::from_value(
            serde_json::json!({"pending":-3,"running":1.6,"completed":"7","skipped":null,"failed":2}),
        )
        .unwrap();
        assert_eq!(c, Counts { pending: 0, running: 2, completed: 7, skipped: 0, failed: 2 });
    }

    #[test]
    fn bad_stored_costs_read_as_credits() {
        let c: RunCost =
            serde_json::from_value(serde_json::json!({"preview":"12","reserved":-1,"charged":2.4,"released":null}))
                .unwrap();
        assert_eq!(c, RunCost { preview: 12, reserved: 0, charged: 2, released: 0, actual: 0 });
        // A missing counter is zero, not an unreadable run.
        let empty: Counts = serde_json::from_value(serde_json::json!({"completed": 4})).unwrap();
        assert_eq!(empty, Counts { completed: 4, ..Default::default() });
    }

    #[test]
    fn scope_keeps_the_contract_shape() {
        let s = RunScope {
            requested: Scope::List { list_id: "list_1".into() },
            resolved_count: 3,
            counts: Counts { pending: 3, ..Default::default() },
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["type"], "list");
        assert_eq!(v["listId"], "list_1");
        assert_eq!(v["requested"], serde_json::json!({"type":"list","listId":"list_1"}));
        assert_eq!(serde_json::from_value::<RunScope>(v).unwrap(), s);
    }

    #[test]
    fn counts_total() {
        let c = Counts { pending: 1, running: 2, completed: 3, skipped: 4, failed: 5 };
        assert_eq!(c.total(), 15);
    }
}
