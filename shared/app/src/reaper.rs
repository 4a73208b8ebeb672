//! The reaper: drives forward every live run that made no progress for a
//! while, whatever died where. It reads the sparse index of live runs
//! (`gsi2`), never the table, and every action it takes is idempotent:
//!
//! | the run is… | the reaper… |
//! |---|---|
//! | terminal, nothing pending | takes it out of the live index |
//! | pending (create died before it dispatched) | sends plan step 0 |
//! | running or cancelled, planning not done (a step's message was lost) | re-sends step `planStep` |
//! | running or cancelled, planned, items pending | re-sends the chunks of the pending items |
//! | running, nothing pending | completes it |
//! | driven `max_reaps` times and still stuck | gives up: fails what is left |

use std::time::Duration;

use puffle_aws::store::{RunRecord, ACTIVE_SHARDS};
use puffle_domain::plan::WorkMessage;
use puffle_domain::run::RunStatus;
use puffle_domain::time;

use crate::{App, AppError};

#[derive(Debug, Clone, Copy)]
pub struct ReaperSettings {
    /// A live run untouched for this long is stale.
    pub stale_after: Duration,
    /// After this many drives without finishing, the reaper gives up on the run.
    pub max_reaps: u32,
}

impl ReaperSettings {
    pub fn from_env() -> ReaperSettings {
        let n = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
        ReaperSettings {
            stale_after: Duration::from_secs(n("PUFFLE_REAPER_STALE_SECONDS", 300)),
            max_reaps: n("PUFFLE_REAPER_MAX_REAPS", 5) as u32,
        }
    }
}

/// What one pass did (logged, and read by tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReapReport {
    pub live: usize,
    pub retired: usize,
    pub dispatched: usize,
    pub replanned: usize,
    pub chunks_resent: usize,
    pub completed: usize,
    pub given_up: usize,
}

fn age_ms(at: &str, now_ms: i64) -> i64 {
    chrono::DateTime::parse_from_rfc3339(at).map(|t| now_ms - t.timestamp_millis()).unwrap_or(i64::MAX)
}

impl App {
    /// One pass over the live runs.
    pub async fn reap(&self, settings: ReaperSettings) -> Result<ReapReport, AppError> {
        let mut report = ReapReport::default();
        for shard in 0..ACTIVE_SHARDS {
            let live = self.store().live_runs(shard).await?;
            report.live += live.len();
            // One BatchGetItem per 100 live runs: a pass reads every live
            // run, and most are fresh, so the reads are the pass's cost.
            for rec in self.store().get_runs(&live).await? {
                if let Err(e) = self.reap_one(&rec, settings, &mut report).await {
                    // One stuck run must not keep the others waiting.
                    tracing::warn!(run_id = %rec.run.id, error = %e, "reaper could not drive run");
                }
            }
        }
        if report != (ReapReport { live: report.live, ..Default::default() }) {
            tracing::info!(?report, "reaper pass");
        }
        Ok(report)
    }

    async fn reap_one(&self, rec: &RunRecord, s: ReaperSettings, report: &mut ReapReport) -> Result<(), AppError> {
        let (ws, run) = (rec.workspace_id.as_str(), &rec.run);
        let counts = run.scope.counts;
        let unsettled = counts.pending + counts.running;
        if run.status.is_terminal() && unsettled == 0 {
            if self.store().retire_run(ws, &run.id).await? {
                report.retired += 1;
            }
            return Ok(());
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        let last =
            rec.reaped_at.as_deref().filter(|r| r > &run.timing.updated_at.as_str()).unwrap_or(&run.timing.updated_at);
        if age_ms(last, now_ms) < s.stale_after.as_millis() as i64 {
            return Ok(());
        }
        let correlation = Some(run.trigger.correlation_id.as_str());
        self.store().mark_reaped(ws, &run.id, &time::now()).await?;
        if rec.reap_count >= s.max_reaps {
            tracing::warn!(run_id = %run.id, reaps = rec.reap_count, "reaper gives up on the run");
            self.give_up_run(rec).await?;
            report.given_up += 1;
            return Ok(());
        }
        match run.status {
            RunStatus::Pending => {
                tracing::info!(run_id = %run.id, "reaper: dispatching a run still pending");
                self.dispatch_backstop(ws, &run.id, correlation).await?;
                report.dispatched += 1;
            }
            // A cancelled run is still planned (as skipped items): that is
            // what counts and releases the Leads it never ran.
            RunStatus::Running | RunStatus::Cancelled if !rec.progress.plan_done => {
                tracing::info!(run_id = %run.id, step = rec.progress.plan_step, "reaper: re-sending plan step");
                self.send_step(ws, &run.id, rec.progress.plan_step, rec.plan_cursor.clone(), correlation).await?;
                report.replanned += 1;
            }
            RunStatus::Running | RunStatus::Cancelled if unsettled > 0 => {
                let pending = self.store().pending_chunks(&run.id).await?;
                tracing::info!(run_id = %run.id, chunks = pending.len(), "reaper: re-sending chunks with pending items");
                let msgs: Vec<WorkMessage> = pending
                    .into_iter()
                    .map(|(chunk, lead_ids)| WorkMessage::Chunk {
                        workspace_id: ws.to_string(),
                        run_id: run.id.clone(),
                        chunk,
                        lead_ids,
                        correlation_id: correlation.map(str::to_string),
                    })
                    .collect();
                report.chunks_resent += msgs.len();
                self.aws.queue.send_all(&msgs).await?;
            }
            RunStatus::Running => {
                let completed = self.store().complete_if_done(ws, &run.id, &time::now()).await?;
                report.completed += usize::from(completed);
            }
            _ => {}
        }
        Ok(())
    }

    /// Fails whatever of the run is left: its pending items (as the DLQ
    /// handler would, chunk by chunk) and its unplanned Leads.
    async fn give_up_run(&self, rec: &RunRecord) -> Result<(), AppError> {
        let (ws, run) = (rec.workspace_id.as_str(), &rec.run);
        if !rec.progress.plan_done {
            self.give_up_planning(ws, &run.id, rec.progress.plan_step).await?;
        }
        for (chunk, lead_ids) in self.store().pending_chunks(&run.id).await? {
            self.give_up_chunk(ws, &run.id, chunk, &lead_ids).await?;
        }
        if run.status == RunStatus::Pending || run.status == RunStatus::Running {
            self.store().complete_if_done(ws, &run.id, &time::now()).await?;
        }
        Ok(())
    }
}
