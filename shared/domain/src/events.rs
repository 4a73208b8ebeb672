//! Run lifecycle events: what a change of a run's record means to the
//! outside world (EventBridge, webhooks).
//!
//! An event is derived from the run's record before and after a change (the
//! DynamoDB stream's old and new images), never from the code path that made
//! the change, so every way a run can move (create, worker, cancel, reaper,
//! DLQ handler) publishes the same events. Its id depends only on the run and
//! the event type: a redelivered stream record, or the same transition seen
//! twice, yields the same `eventId`, so consumers can dedupe.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::run::{Counts, Run, RunCost, RunStatus, RunTiming};

/// EventBridge `Source` of every event.
pub const SOURCE: &str = "puffle";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunEventType {
    #[serde(rename = "enrichment.run.created")]
    Created,
    #[serde(rename = "enrichment.run.started")]
    Started,
    #[serde(rename = "enrichment.run.completed")]
    Completed,
    #[serde(rename = "enrichment.run.failed")]
    Failed,
    #[serde(rename = "enrichment.run.cancelled")]
    Cancelled,
}

impl RunEventType {
    pub const ALL: [RunEventType; 5] = [
        RunEventType::Created,
        RunEventType::Started,
        RunEventType::Completed,
        RunEventType::Failed,
        RunEventType::Cancelled,
    ];

    /// The event name (EventBridge `DetailType`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunEventType::Created => "enrichment.run.created",
            RunEventType::Started => "enrichment.run.started",
            RunEventType::Completed => "enrichment.run.completed",
            RunEventType::Failed => "enrichment.run.failed",
            RunEventType::Cancelled => "enrichment.run.cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunEventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The event a run entering `status` announces.
    fn entering(status: RunStatus) -> Option<RunEventType> {
        match status {
            RunStatus::Pending => None,
            RunStatus::Running => Some(RunEventType::Started),
            RunStatus::Completed => Some(RunEventType::Completed),
            RunStatus::Failed => Some(RunEventType::Failed),
            RunStatus::Cancelled => Some(RunEventType::Cancelled),
        }
    }
}

/// The `detail` of a lifecycle event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    #[serde(rename = "type")]
    pub event_type: RunEventType,
    pub event_id: String,
    pub occurred_at: String,
    pub run_id: String,
    pub workspace_id: String,
    pub enrichment_id: String,
    pub status: RunStatus,
    pub counts: Counts,
    pub cost: RunCost,
    pub timing: RunTiming,
    /// The correlation id of the request the run came from.
    #[serde(default)]
    pub correlation_id: String,
}

/// Stable id of the `event_type` event of run `run_id`.
pub fn event_id(run_id: &str, event_type: RunEventType) -> String {
    let digest = Sha256::digest(format!("{run_id}\n{}", event_type.as_str()).as_bytes());
    format!("evt_{}", &hex::encode(digest)[..32])
}

/// The events a change of a run's record from `old` (None: the run was
/// just inserted) to `new` announces, in lifecycle order.
pub fn transitions(old: Option<&Run>, new: &Run) -> Vec<RunEventType> {
    let mut out = vec![];
    let before = match old {
        None => {
            out.push(RunEventType::Created);
            RunStatus::Pending
        }
        Some(o) => o.status,
    };
    if before != new.status && !before.is_terminal() {
        out.extend(RunEventType::entering(new.status));
    }
    out
}

/// When the event happened: the run's own timestamp for that moment.
fn occurred_at(run: &Run, t: RunEventType) -> String {
    let at = match t {
        RunEventType::Created => Some(&run.timing.created_at),
        RunEventType::Started => run.timing.started_at.as_ref(),
        RunEventType::Completed | RunEventType::Failed => run.timing.completed_at.as_ref(),
        RunEventType::Cancelled => run.timing.cancelled_at.as_ref(),
    };
    at.unwrap_or(&run.timing.updated_at).clone()
}

/// The events of a change, ready to publish.
pub fn events_of(workspace_id: &str, old: Option<&Run>, new: &Run) -> Vec<RunEvent> {
    transitions(old, new).into_iter().map(|t| event(workspace_id, new, t)).collect()
}

pub fn event(workspace_id: &str, run: &Run, t: RunEventType) -> RunEvent {
    RunEvent {
        event_type: t,
        event_id: event_id(&run.id, t),
        occurred_at: occurred_at(run, t),
        run_id: run.id.clone(),
        workspace_id: workspace_id.to_string(),
        enrichment_id: run.enrichment.slug.clone(),
        status: run.status,
        counts: run.scope.counts,
        cost: run.cost.clone(),
        timing: run.timing.clone(),
        correlation_id: run.trigger.correlation_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::test_run;

    #[test]
    fn insert_is_created_and_each_status_change_one_event() {
        let pending = test_run(RunStatus::Pending);
        assert_eq!(transitions(None, &pending), vec![RunEventType::Created]);
        let running = test_run(RunStatus::Running);
        assert_eq!(transitions(Some(&pending), &running), vec![RunEventType::Started]);
        assert_eq!(transitions(Some(&running), &running), vec![]);
        let done = test_run(RunStatus::Completed);
        assert_eq!(transitions(Some(&running), &done), vec![RunEventType::Completed]);
        let cancelled = test_run(RunStatus::Cancelled);
        assert_eq!(transitions(Some(&pending), &cancelled), vec![RunEventType::Cancelled]);
        // A run inserted already failed (a rule run the workspace could not afford).
        assert_eq!(transitions(None, &test_run(RunStatus::Failed)), vec![RunEventType::Created, RunEventType::Failed]);
        // Terminal is terminal: nothing after it is announced.
        assert_eq!(transitions(Some(&cancelled), &done), vec![]);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(event_id("run_1", RunEventType::Created), event_id("run_1", RunEventType::Created));
        assert_ne!(event_id("run_1", RunEventType::Created), event_id("run_1", RunEventType::Started));
        assert_ne!(event_id("run_1", RunEventType::Created), event_id("run_2", RunEventType::Created));
    }

    #[test]
    fn names_round_trip() {
        for t in RunEventType::ALL {
            assert_eq!(RunEventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }
}
