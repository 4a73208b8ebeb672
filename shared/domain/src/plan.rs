//! Worker messages and how a run is cut into them.
//!
//! Create sends one `plan` message. Each plan step reads one page of the
//! scope, writes those items as pending (conditionally, so a replay never
//! resets a finished item), sends one `chunk` message per [`CHUNK_SIZE`]
//! Leads and then the next `plan` step. A chunk is counted exactly once: the
//! run remembers done chunk numbers and the counter update is conditional on
//! its number being new.

use serde::{Deserialize, Serialize};

/// Leads per chunk message: one BatchGetItem (≤ 100 keys) reads them all.
pub const CHUNK_SIZE: usize = 100;
/// Scope entries a plan step reads.
pub const PLAN_PAGE: usize = 1000;
/// Chunk numbers of step `s` are `s * CHUNKS_PER_STEP + i`.
pub const CHUNKS_PER_STEP: u32 = (PLAN_PAGE / CHUNK_SIZE) as u32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkMessage {
    Plan {
        #[serde(rename = "workspaceId")]
        workspace_id: String,
        #[serde(rename = "runId")]
        run_id: String,
        step: u32,
        /// Where the previous step stopped (opaque to everyone but the planner).
        #[serde(default)]
        cursor: Option<String>,
        /// The request (or stream event) the run came from; follows it into logs.
        #[serde(rename = "correlationId", default, skip_serializing_if = "Option::is_none")]
        correlation_id: Option<String>,
        /// Sent by the stream or the reaper for a run whose create request may
        /// have died before dispatching: it plans only a run nobody dispatched
        /// (no `triggerRunId`) and only if it is the one that starts it, so it
        /// never runs step 0 beside the create request's own message.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        backstop: bool,
    },
    Chunk {
        #[serde(rename = "workspaceId")]
        workspace_id: String,
        #[serde(rename = "runId")]
        run_id: String,
        chunk: u32,
        #[serde(rename = "leadIds")]
        lead_ids: Vec<String>,
        #[serde(rename = "correlationId", default, skip_serializing_if = "Option::is_none")]
        correlation_id: Option<String>,
    },
}

impl WorkMessage {
    /// Plan step 0 of a run: what create sends, or a backstop (see `backstop`).
    pub fn first_step(ws: &str, run_id: &str, correlation_id: Option<&str>, backstop: bool) -> WorkMessage {
        WorkMessage::Plan {
            workspace_id: ws.to_string(),
            run_id: run_id.to_string(),
            step: 0,
            cursor: None,
            correlation_id: correlation_id.map(str::to_string),
            backstop,
        }
    }

    pub fn run_id(&self) -> &str {
        match self {
            WorkMessage::Plan { run_id, .. } | WorkMessage::Chunk { run_id, .. } => run_id,
        }
    }
    pub fn correlation_id(&self) -> Option<&str> {
        match self {
            WorkMessage::Plan { correlation_id, .. } | WorkMessage::Chunk { correlation_id, .. } => {
                correlation_id.as_deref()
            }
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            WorkMessage::Plan { .. } => "plan",
            WorkMessage::Chunk { .. } => "chunk",
        }
    }
    pub fn workspace_id(&self) -> &str {
        match self {
            WorkMessage::Plan { workspace_id, .. } | WorkMessage::Chunk { workspace_id, .. } => workspace_id,
        }
    }
}

/// Cuts one plan page into numbered chunks.
pub fn chunks(step: u32, lead_ids: &[String]) -> Vec<(u32, Vec<String>)> {
    lead_ids.chunks(CHUNK_SIZE).enumerate().map(|(i, c)| (step * CHUNKS_PER_STEP + i as u32, c.to_vec())).collect()
}

/// Of a page, the Leads this run may still plan without exceeding what it
/// charged for (Leads added to a List after create are not in the run).
pub fn cap(page: Vec<String>, planned: u64, resolved: u64) -> Vec<String> {
    let room = resolved.saturating_sub(planned) as usize;
    page.into_iter().take(room).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_numbers_are_unique_per_step() {
        let ids: Vec<String> = (0..PLAN_PAGE).map(|i| format!("lead_{i:04}")).collect();
        let a = chunks(0, &ids);
        let b = chunks(1, &ids);
        assert_eq!(a.len(), CHUNKS_PER_STEP as usize);
        assert_eq!(a.last().unwrap().0 + 1, b[0].0);
        assert!(a.iter().all(|(_, c)| c.len() == CHUNK_SIZE));
    }

    #[test]
    fn cap_never_plans_beyond_the_charge() {
        let page: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(cap(page.clone(), 95, 100).len(), 5);
        assert_eq!(cap(page, 100, 100).len(), 0);
    }

    #[test]
    fn messages_round_trip() {
        let m = WorkMessage::Chunk {
            workspace_id: "ws".into(),
            run_id: "r".into(),
            chunk: 3,
            lead_ids: vec!["a".into()],
            correlation_id: Some("req-1".into()),
        };
        let s = serde_json::to_string(&m).unwrap();
        assert!(s.contains("\"type\":\"chunk\""));
        assert_eq!(serde_json::from_str::<WorkMessage>(&s).unwrap(), m);
    }
}
