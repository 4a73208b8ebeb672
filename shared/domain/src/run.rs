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
    pub pending: u64,
    pub running: u64,
    pub completed: u64,
    pub skipped: u64,
    pub failed: u64,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunScope {
    #[serde(rename = "type")]
    pub kind: String,
    pub list_id: Option<String>,
    /// The scope as requested (explicit lead ids included, deduplicated).
    pub requested: Value,
    pub resolved_count: u64,
    pub counts: Counts,
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
    /// Credits the plan priced.
    pub preview: u64,
    /// Credits charged, net of refunds.
    pub actual: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTrigger {
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
    fn counts_total() {
        let c = Counts { pending: 1, running: 2, completed: 3, skipped: 4, failed: 5 };
        assert_eq!(c.total(), 15);
    }
}
