//! Plan steps: one page of the scope per step.
//!
//! Step k: read the page (in Lead id order) → write its planned chunks (or,
//! when the run was cancelled, its items skipped) only where absent → send
//! its chunk messages → record the
//! step (conditional on `planStep = k`, with the next step's cursor) → send
//! step k+1. A replay of step k redoes harmless work; a replay after it was
//! recorded re-sends the next step when that one was not recorded either, and
//! the reaper re-sends a step whose message was lost (from `planCursor`).

use puffle_aws::faults::{self, Boundary};
use puffle_aws::store::{PlannedChunk, RunRecord};
use puffle_domain::credits::LedgerEntry;
use puffle_domain::item::Item;
use puffle_domain::plan::{cap, chunks, WorkMessage, PLAN_PAGE};
use puffle_domain::run::RunStatus;
use puffle_domain::scope::Scope;
use puffle_domain::time;

use crate::{App, AppError};

struct Page {
    lead_ids: Vec<String>,
    cursor: Option<String>,
}

impl App {
    /// A backstop plan step 0 (see `WorkMessage::Plan::backstop`): plans the
    /// run only when no create request dispatched it and this message is the
    /// one that starts it. Otherwise the run's own message drives it, and a
    /// second planner beside it would send every chunk twice (and call a
    /// provider twice for each Lead).
    pub async fn plan_backstop(&self, ws: &str, run_id: &str, correlation_id: Option<&str>) -> Result<(), AppError> {
        let Some(rec) = self.store().get_run(ws, run_id).await? else {
            tracing::warn!("backstop plan message for an unknown run; dropped");
            return Ok(());
        };
        if let Some(trigger) = &rec.run.trigger.trigger_run_id {
            tracing::info!(trigger_run_id = %trigger, "backstop dropped: the create request dispatched the run");
            return Ok(());
        }
        let ours = match rec.run.status {
            RunStatus::Pending => self.store().mark_running(ws, run_id, &time::now()).await?,
            // Cancelled before anything planned it: planning writes its items skipped and ends it.
            RunStatus::Cancelled => rec.progress.plan_step == 0 && !rec.progress.plan_done,
            _ => false,
        };
        if !ours {
            tracing::info!(status = rec.run.status.as_str(), "backstop dropped: the run is already under way");
            return Ok(());
        }
        tracing::info!("backstop plans the run its create request did not dispatch");
        self.plan_step(ws, run_id, 0, None, correlation_id).await
    }

    pub async fn plan_step(
        &self,
        ws: &str,
        run_id: &str,
        step: u32,
        cursor: Option<String>,
        correlation_id: Option<&str>,
    ) -> Result<(), AppError> {
        let Some(rec) = self.store().get_run(ws, run_id).await? else {
            tracing::warn!("plan message for an unknown run; dropped");
            return Ok(());
        };
        let progress = &rec.progress;
        if progress.plan_step > step || progress.plan_done {
            // Already recorded: drive the run on rather than assume it moved.
            if progress.plan_done {
                self.store().complete_if_done(ws, run_id, &time::now()).await?;
            } else if progress.plan_step == step + 1 {
                // We may have died before sending the next step.
                self.send_step(ws, run_id, step + 1, rec.plan_cursor.clone(), correlation_id).await?;
            }
            return Ok(());
        }
        if progress.plan_step < step {
            return Err(AppError::Internal(format!("plan step {step} arrived before step {}", progress.plan_step)));
        }
        if matches!(rec.run.status, RunStatus::Failed | RunStatus::Completed) {
            return Ok(());
        }
        if step == 0 && !self.store().mark_running(ws, run_id, &time::now()).await? {
            // Something moved the run since we read it. A create whose send
            // errored (though SQS took the message) fails it only while it is
            // still pending; if that won, the run is failed and released and
            // must not be planned. A start or a cancel goes on as before.
            let now = self.store().get_run(ws, run_id).await?.map(|r| r.run.status);
            if !matches!(now, Some(RunStatus::Running | RunStatus::Cancelled)) {
                tracing::info!(status = ?now, "plan step 0 dropped: the run ended before it started");
                return Ok(());
            }
        }

        let page = self.read_page(ws, &rec, step, cursor.as_deref()).await?;
        let lead_ids = cap(page.lead_ids, progress.planned_count, rec.run.scope.resolved_count);
        let planned_after = progress.planned_count + lead_ids.len() as u64;
        let last = page.cursor.is_none() || planned_after >= rec.run.scope.resolved_count;
        let now = time::now();
        let list_id = rec.run.scope.list_id().map(str::to_string);
        let cancelled = rec.run.status == RunStatus::Cancelled;

        let numbered = chunks(step, &lead_ids);
        // One row per chunk, not one pending item per Lead: the chunk
        // writes each item once, terminal (see `store/chunks.rs`). A
        // cancelled run's step writes them too: if this step never gets
        // recorded, giving up on it reads which Leads it took from them.
        let planned: Vec<PlannedChunk> = numbered
            .iter()
            .map(|(chunk, ids)| PlannedChunk { chunk: *chunk, lead_ids: ids.clone(), planned_at: now.clone() })
            .collect();
        self.store().put_planned_chunks(run_id, &planned).await?;
        if cancelled {
            // A crashed earlier attempt of this step may have sent these
            // chunks: items already finished stay as they are.
            let items: Vec<(Item, u32)> = numbered
                .iter()
                .flat_map(|(n, ids)| ids.iter().map(move |l| (l, *n)))
                .map(|(l, n)| {
                    let item = Item::pending(run_id, l, list_id.as_deref(), &now).reserving(rec.credits_per_lead);
                    (item.skipped("run_cancelled", &now), n)
                })
                .collect();
            self.store().put_items_unless_terminal(&items).await?;
            for (n, c) in &numbered {
                // Counted (and released) from the items as they are: one an
                // earlier attempt's chunk finished keeps its outcome.
                self.count_settled_chunk(ws, &rec, *n, c, None).await?;
            }
        } else {
            let msgs: Vec<WorkMessage> = numbered
                .into_iter()
                .map(|(chunk, lead_ids)| WorkMessage::Chunk {
                    workspace_id: ws.into(),
                    run_id: run_id.into(),
                    chunk,
                    lead_ids,
                    correlation_id: correlation_id.map(str::to_string),
                })
                .collect();
            self.aws.queue.send_all(&msgs).await?;
        }

        let shrink = if last && planned_after < rec.run.scope.resolved_count {
            let diff = rec.run.scope.resolved_count - planned_after;
            // The price fixed at create; never more than is still held.
            let release = (diff * rec.credits_per_lead).min(rec.run.cost.held());
            let entry =
                LedgerEntry::release(release, format!("{diff} lead(s) left the scope before planning"), run_id, &now);
            Some((diff, release, entry))
        } else {
            None
        };
        let next_cursor = if last { None } else { page.cursor.clone() };
        let recorded = self
            .store()
            .finish_plan_step(
                ws,
                run_id,
                step,
                lead_ids.len() as u64,
                last,
                shrink.as_ref().map(|(d, r, e)| (*d, *r, e)),
                next_cursor.as_deref(),
                &now,
            )
            .await?;
        tracing::info!(step, planned = lead_ids.len(), last, recorded, "plan step");
        faults::at(Boundary::AfterPlanRecord)?;
        if !recorded {
            return Ok(()); // a concurrent delivery of this step did it
        }
        crate::emf::credits_released(shrink.as_ref().map_or(0, |(_, refund, _)| *refund));
        if last {
            // Everything may already be counted (tiny runs, cancelled runs).
            self.store().complete_if_done(ws, run_id, &time::now()).await?;
        } else {
            self.send_step(ws, run_id, step + 1, next_cursor, correlation_id).await?;
        }
        Ok(())
    }

    pub(crate) async fn send_step(
        &self,
        ws: &str,
        run_id: &str,
        step: u32,
        cursor: Option<String>,
        correlation_id: Option<&str>,
    ) -> Result<(), AppError> {
        let msg = WorkMessage::Plan {
            workspace_id: ws.into(),
            run_id: run_id.into(),
            step,
            cursor,
            correlation_id: correlation_id.map(str::to_string),
            backstop: false,
        };
        self.aws.queue.send(&msg).await?;
        Ok(())
    }

    /// One page of the run's scope. Memberships added after the run was
    /// created are not part of it.
    async fn read_page(&self, ws: &str, rec: &RunRecord, step: u32, cursor: Option<&str>) -> Result<Page, AppError> {
        let run = &rec.run;
        let (list_id, filter) = match &run.scope.requested {
            Scope::ExplicitLeads { lead_ids, .. } => {
                // In id order, like a List's members: a run's chunks then
                // hold disjoint, ordered ranges, which its pending items page by.
                let mut lead_ids = lead_ids.clone();
                lead_ids.sort();
                let start = (step as usize * PLAN_PAGE).min(lead_ids.len());
                let end = (start + PLAN_PAGE).min(lead_ids.len());
                return Ok(Page {
                    lead_ids: lead_ids[start..end].to_vec(),
                    cursor: (end < lead_ids.len()).then(|| end.to_string()),
                });
            }
            Scope::List { list_id } => (list_id, None),
            Scope::FilteredList { list_id, filter } => (list_id, Some(filter)),
        };
        let (rows, last) = self.store().member_page(ws, list_id, cursor, PLAN_PAGE).await?;
        let cutoff = &run.timing.created_at;
        let mut ids: Vec<String> = rows.iter().filter(|r| &r.added_at <= cutoff).map(|r| r.lead_id.clone()).collect();
        if let Some(filter) = filter {
            let subject = self.find_enrichment_to_run(ws, &run.enrichment.slug).await?.map(|e| e.subject);
            let leads = self.store().get_leads(ws, &ids, &filter.attribute_keys()).await?;
            ids.retain(|id| leads.get(id).is_some_and(|l| filter.matches(l) && Some(l.lead_type) == subject));
        }
        Ok(Page { lead_ids: ids, cursor: last })
    }
}
