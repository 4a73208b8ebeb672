//! The event flow: the table's change stream is the outbox.
//!
//! ```text
//! create / worker / cancel / reaper ──write──▶ table ──stream──▶ handle_stream
//!     run INSERT (pending, not yet dispatched) ─▶ dispatch plan step 0 (backstop)
//!     run status change ───────────────────────▶ lifecycle event on EventBridge
//!                                               and a delivery per matching webhook
//!     membership INSERT ───────────────────────▶ the List's rules start runs
//! ```
//!
//! Every handler is idempotent: a redelivered or re-split batch dispatches
//! nothing twice that matters (plan step 0 is idempotent), publishes the same
//! event ids, and claims each membership for a rule once.

use std::collections::BTreeMap;

use tracing::Instrument;

use puffle_aws::store::RunRecord;
use puffle_aws::stream::{ChangeKind, StreamRecord};
use puffle_domain::events::{events_of, RunEvent};
use puffle_domain::run::{Run, RunStatus};

use crate::{App, AppError};

/// The span a record's work logs under: the correlation id of the request
/// (or rule batch) that caused the change, so one id follows a run from its
/// create request through the stream to the worker. Same name and field as
/// the functions' own request span.
fn correlation(correlation_id: &str) -> tracing::Span {
    tracing::error_span!("correlation", correlation_id = %correlation_id)
}

/// A membership that joined a List, from its stream record.
#[derive(Debug, Clone)]
pub struct Joined {
    pub lead_id: String,
    pub event_id: String,
    pub created_at_ms: u64,
    pub sequence_number: String,
}

enum Change {
    Run { old: Option<Box<RunRecord>>, new: Box<RunRecord>, inserted: bool },
    Joined { workspace_id: String, list_id: String, joined: Joined },
    Other,
}

fn decode(r: &StreamRecord) -> Result<Change, AppError> {
    let pk = r.key("pk").unwrap_or_default();
    let sk = r.key("sk").unwrap_or_default();
    if pk.starts_with("RUNS#") {
        let Some(new) = r.new_image.clone() else { return Ok(Change::Other) };
        let decode = |row| RunRecord::from_row(row).map_err(AppError::from);
        let old = r.old_image.clone().map(decode).transpose()?.map(Box::new);
        return Ok(Change::Run { old, new: Box::new(decode(new)?), inserted: r.kind == ChangeKind::Insert });
    }
    if r.kind == ChangeKind::Insert {
        if let (Some(rest), Some(lead_id)) = (pk.strip_prefix("LIST#"), sk.strip_prefix("M#")) {
            if let Some((ws, list)) = rest.split_once('#') {
                return Ok(Change::Joined {
                    workspace_id: ws.to_string(),
                    list_id: list.to_string(),
                    joined: Joined {
                        lead_id: lead_id.to_string(),
                        event_id: r.event_id.clone(),
                        created_at_ms: r.created_at_ms,
                        sequence_number: r.sequence_number.clone(),
                    },
                });
            }
        }
    }
    Ok(Change::Other)
}

impl App {
    /// Handles one batch of stream records (in shard order). Returns the
    /// sequence number of the first record that failed, if any: the stream
    /// delivers it and everything after it again (ReportBatchItemFailures).
    pub async fn handle_stream(&self, records: &[StreamRecord]) -> Option<String> {
        let mut failed: Vec<String> = vec![];
        let mut events: Vec<(usize, RunEvent, Run)> = vec![];
        let mut joins: BTreeMap<(String, String), Vec<Joined>> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            let change = match decode(r) {
                Ok(c) => c,
                Err(e) => {
                    // An image we cannot read will not read better next time.
                    tracing::error!(error = %e, sequence_number = %r.sequence_number, "unreadable stream record skipped");
                    continue;
                }
            };
            match change {
                Change::Run { old, new, inserted } => {
                    let ws = new.workspace_id.clone();
                    events.extend(
                        events_of(&ws, old.as_ref().map(|o| &o.run), &new.run)
                            .into_iter()
                            .map(|e| (i, e, new.run.clone())),
                    );
                    if inserted && new.run.status == RunStatus::Pending && new.run.trigger.trigger_run_id.is_none() {
                        let span = correlation(&new.run.trigger.correlation_id);
                        if let Err(e) = self.dispatch_if_waiting(&ws, &new.run.id).instrument(span.clone()).await {
                            span.in_scope(
                                || tracing::warn!(run_id = %new.run.id, error = %e, "stream dispatch failed; retried"),
                            );
                            failed.push(r.sequence_number.clone());
                        }
                    }
                }
                Change::Joined { workspace_id, list_id, joined } => {
                    joins.entry((workspace_id, list_id)).or_default().push(joined)
                }
                Change::Other => {}
            }
        }
        if !events.is_empty() {
            let batch: Vec<RunEvent> = events.iter().map(|(_, e, _)| e.clone()).collect();
            match self.aws.bus.publish(&batch).await {
                Ok(()) => {
                    for (_, e, run) in &events {
                        correlation(&run.trigger.correlation_id).in_scope(|| {
                            tracing::info!(event = e.event_type.as_str(), event_id = %e.event_id, run_id = %e.run_id, "event published")
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, events = batch.len(), "publishing events failed; retried");
                    failed.push(records[events[0].0].sequence_number.clone());
                }
            }
            let with_runs: Vec<(RunEvent, Run)> = events.iter().map(|(_, e, r)| (e.clone(), r.clone())).collect();
            if let Err(e) = self.fan_out_webhooks(&with_runs).await {
                tracing::warn!(error = %e, events = with_runs.len(), "webhook deliveries failed; retried");
                failed.push(records[events[0].0].sequence_number.clone());
            }
        }
        for ((ws, list_id), joined) in joins {
            // A rule run's correlation id is the first join's stream event id.
            let span = correlation(joined.first().map_or("", |j| j.event_id.as_str()));
            if let Err(e) = self.on_members_joined(&ws, &list_id, &joined).instrument(span).await {
                tracing::warn!(error = %e, list_id = %list_id, "rules for new members failed; retried");
                failed.extend(joined.first().map(|j| j.sequence_number.clone()));
            }
        }
        // The earliest failure in shard order.
        records.iter().find(|r| failed.contains(&r.sequence_number)).map(|r| r.sequence_number.clone())
    }

    /// The backstop for a create request that committed but died before it
    /// sent plan step 0: the run is still pending and carries no trigger.
    async fn dispatch_if_waiting(&self, ws: &str, run_id: &str) -> Result<(), AppError> {
        let Some(rec) = self.store().get_run(ws, run_id).await? else { return Ok(()) };
        if rec.run.status == RunStatus::Pending && rec.run.trigger.trigger_run_id.is_none() {
            tracing::info!(run_id = %run_id, "dispatching a run its create request did not");
            self.dispatch_backstop(ws, run_id, Some(&rec.run.trigger.correlation_id)).await?;
        }
        Ok(())
    }
}
