//! The create flow (`POST /api/enrichment`), rules in the contract's order:
//! 1 shape → 2 enrichment and input → (existing idempotency key) → 3 planner
//! → 4 preview → 5 charge + run + key in one transaction → 6 dispatch.

use puffle_aws::faults::{self, Boundary};
use puffle_aws::store::CreateOutcome;
use puffle_domain::catalog::Enrichment;
use puffle_domain::create::{CreateRequest, Mode, OutputTarget};
use puffle_domain::credits::{self, LedgerEntry};
use puffle_domain::idempotency::{request_hash, KEY_TTL_SECONDS};
use puffle_domain::plan::WorkMessage;
use puffle_domain::run::{
    Counts, CreateResponse, EnrichmentRef, Preview, Run, RunCost, RunError, RunOutput, RunScope, RunStatus, RunTiming,
    RunTrigger, TriggerSource,
};
use puffle_domain::scope::{check_subject_counts, filtered_bound, partition_lead_ids, Scope};
use puffle_domain::{ids, time, DomainError};
use serde_json::{json, Value};

use crate::{App, AppError};
use puffle_aws::store::IdempotencyRecord;

/// What the planner resolved (rule 3).
struct Planned {
    lead_count: u64,
    requested: Scope,
}

pub struct Created {
    pub response: CreateResponse,
    /// true → 202 (a new run), false → 200 (reused or preview).
    pub new_run: bool,
}

/// How a run came to be started: by an API request, or by a List's rule.
#[derive(Debug, Clone, Default)]
pub struct Start {
    pub correlation_id: String,
    /// Set for rule runs: the rule, and the run id its stream batch fixed.
    pub rule: Option<RuleStart>,
    /// Set for retries of a run's items (`POST /api/enrichment/{id}/retry`).
    pub retry: Option<RetryStart>,
}

#[derive(Debug, Clone)]
pub struct RetryStart {
    /// The run retried.
    pub of: String,
    /// The idempotency hash: what was asked (run and status), not the Leads
    /// it resolved to, so a repeat matches however the request is replayed.
    pub request_hash: String,
}

#[derive(Debug, Clone)]
pub struct RuleStart {
    pub rule_id: String,
    pub run_id: String,
}

impl App {
    pub async fn create_run(
        &self,
        ws: &str,
        body: &Value,
        idempotency_header: Option<&str>,
        correlation_id: &str,
    ) -> Result<Created, AppError> {
        // Rule 1: shape.
        let req = CreateRequest::parse(body, idempotency_header)?;
        self.start_run(ws, &req, Start { correlation_id: correlation_id.to_string(), ..Default::default() }).await
    }

    /// Rules 2–7 for a parsed request, whoever made it.
    pub async fn start_run(&self, ws: &str, req: &CreateRequest, start: Start) -> Result<Created, AppError> {
        // Rule 2: the enrichment and its input.
        let enrichment = self.find_enrichment(ws, &req.enrichment_id).await?.ok_or_else(|| {
            AppError::not_found("ENRICHMENT_NOT_FOUND", format!("no enrichment `{}`", req.enrichment_id))
        })?;
        let enrichment: &Enrichment = &enrichment;
        check_input(enrichment, &req.input)?;

        let hash = start.retry.as_ref().map(|r| r.request_hash.clone()).unwrap_or_else(|| request_hash(req));
        // A repeat of a request we already accepted answers with its run,
        // even if the List or balance changed since (rule 7).
        if req.mode == Mode::Persisted {
            if let Some(key) = &req.idempotency_key {
                if let Some(found) = self.reuse(ws, key, &hash).await? {
                    return Ok(found);
                }
            }
        }

        // Rule 3: the planner.
        let planned = self.plan_scope(ws, req, enrichment).await?;
        let cost = credits::cost(planned.lead_count, enrichment.cost_model.credits_per_lead)
            .ok_or_else(|| DomainError::invalid("the run's cost overflows"))?;

        // Rule 4: preview.
        if req.mode == Mode::Preview {
            let balance = self.balance(ws).await?;
            return Ok(Created {
                response: CreateResponse {
                    enrichment_run_id: None,
                    run_id: None,
                    status: "preview".into(),
                    lead_count: planned.lead_count,
                    trigger_run_id: None,
                    reused_existing_run: false,
                    preview: Some(Preview { credits_required: cost, balance, affordable: balance >= cost }),
                },
                new_run: false,
            });
        }

        // Rule 5: charge, run and key, atomically.
        let now = time::now();
        let run = new_run(req, enrichment, planned, cost, &start, &now);
        let idem = req.idempotency_key.as_ref().map(|key| IdempotencyRecord {
            key: key.clone(),
            request_hash: hash.clone(),
            run_id: run.id.clone(),
            created_at: now.clone(),
            ttl: time::epoch_seconds() + KEY_TTL_SECONDS,
        });
        let reserve = LedgerEntry::reserve(
            cost,
            format!("enrichment {} over {} lead(s)", enrichment.slug, run.scope.resolved_count),
            &run.id,
            &now,
        );
        let mut extra = match &start.rule {
            Some(r) => vec![self.store().rule_run_entry(&r.rule_id, &run.id, &now)?],
            None => vec![],
        };
        if let Some(r) = &start.retry {
            extra.push(self.store().retry_link_entry(ws, &r.of, &run.id));
        }
        let price = enrichment.cost_model.credits_per_lead;
        match self.store().create_run(ws, &run, price, cost, idem.as_ref(), &reserve, extra).await? {
            CreateOutcome::Created => crate::emf::run_created(&enrichment.slug, run.scope.resolved_count, cost),
            CreateOutcome::KeyTaken | CreateOutcome::RunExists => {
                // A concurrent request with this key (or a replayed rule batch) won: answer with its run.
                if let Some(key) = &req.idempotency_key {
                    if let Some(found) = self.reuse(ws, key, &hash).await? {
                        return Ok(found);
                    }
                }
                return Err(AppError::Unavailable("a concurrent request is creating this run; retry".into()));
            }
            CreateOutcome::InsufficientCredits => {
                // A concurrent twin may have taken the key, and with it the
                // credits, after this request looked: a cancelled transaction
                // need not name every condition that failed (DynamoDB Local
                // names the first), so the key decides before any 402 (rule 7).
                if let Some(key) = &req.idempotency_key {
                    if let Some(found) = self.reuse(ws, key, &hash).await? {
                        return Ok(found);
                    }
                }
                let balance = self.balance(ws).await?;
                if let Some(rule) = &start.rule {
                    self.record_unaffordable(ws, &run, rule, cost, balance).await?;
                }
                return Err(AppError::InsufficientCredits { required: cost, balance });
            }
        }
        faults::at(Boundary::AfterCreateCommit)?;

        // Rule 6: dispatch. The stream dispatches too if this request dies
        // here; plan step 0 is idempotent, so both sending is harmless.
        match self.dispatch(ws, &run.id, Some(&start.correlation_id)).await {
            Ok(trigger_run_id) => {
                let mut response = CreateResponse::for_run(&run, false);
                response.trigger_run_id = Some(trigger_run_id);
                Ok(Created { response, new_run: true })
            }
            Err(e) => {
                tracing::error!(run_id = %run.id, error = %e, "dispatch failed; releasing the reservation");
                let error = RunError {
                    message: "the work queue rejected the dispatch".into(),
                    details: json!({"code": "DISPATCH_FAILED", "cause": e.to_string()}),
                };
                let release = LedgerEntry::release(cost, "dispatch failed", &run.id, &time::now());
                if self.store().fail_dispatch(ws, &run, &error, &release, &time::now()).await? {
                    crate::emf::credits_released(cost);
                    Err(AppError::DispatchFailed { run_id: run.id, trigger_run_id: None })
                } else {
                    // The stream dispatched it meanwhile: the run is under way.
                    let current = self.load_run(ws, &run.id).await?;
                    Ok(Created { response: CreateResponse::for_run(&current.run, false), new_run: true })
                }
            }
        }
    }

    /// Sends plan step 0 and notes the message id on the run.
    pub(crate) async fn dispatch(
        &self,
        ws: &str,
        run_id: &str,
        correlation_id: Option<&str>,
    ) -> Result<String, puffle_aws::StoreError> {
        let msg = WorkMessage::first_step(ws, run_id, correlation_id, false);
        let trigger_run_id = self.aws.queue.send(&msg).await?;
        if let Err(e) = self.store().set_trigger(ws, run_id, &trigger_run_id, &time::now()).await {
            // The run is dispatched; only the bookkeeping lagged.
            tracing::warn!(run_id = %run_id, error = %e, "could not record triggerRunId");
        }
        Ok(trigger_run_id)
    }

    /// Sends plan step 0 for a run whose create request may have died before
    /// it dispatched (the stream and the reaper do this). The message waits
    /// out [`dispatch_grace`] so that a live create request records its own
    /// dispatch first; the planner then drops it (see `WorkMessage::Plan`).
    /// It records no `triggerRunId`: that is how the planner tells the two apart.
    pub(crate) async fn dispatch_backstop(
        &self,
        ws: &str,
        run_id: &str,
        correlation_id: Option<&str>,
    ) -> Result<(), puffle_aws::StoreError> {
        let msg = WorkMessage::first_step(ws, run_id, correlation_id, true);
        self.aws.queue.send_after(&msg, dispatch_grace()).await?;
        Ok(())
    }

    /// A rule run the workspace cannot afford is kept as a failed run under
    /// the rule, never silently dropped.
    async fn record_unaffordable(
        &self,
        ws: &str,
        run: &Run,
        rule: &RuleStart,
        cost: u64,
        balance: u64,
    ) -> Result<(), AppError> {
        let now = time::now();
        let mut failed = run.clone();
        failed.status = RunStatus::Failed;
        failed.cost = RunCost { preview: cost, ..RunCost::reserved(0) };
        failed.scope.counts = Counts { failed: run.scope.resolved_count, ..Default::default() };
        failed.error = Some(RunError {
            message: format!("the workspace has {balance} credits; this run needs {cost}"),
            details: json!({"code": "INSUFFICIENT_CREDITS", "required": cost, "balance": balance}),
        });
        failed.timing.completed_at = Some(now.clone());
        let entry = self.store().rule_run_entry(&rule.rule_id, &run.id, &now)?;
        self.store().put_unfunded_run(ws, &failed, vec![entry]).await?;
        Ok(())
    }

    /// The run an idempotency key already stands for, or a 422 when the body differs.
    pub(crate) async fn reuse(&self, ws: &str, key: &str, hash: &str) -> Result<Option<Created>, AppError> {
        let Some(rec) = self.store().get_idempotency(ws, key).await? else { return Ok(None) };
        if rec.request_hash != hash {
            return Err(AppError::IdempotencyKeyReused);
        }
        let run = self.load_run(ws, &rec.run_id).await?;
        Ok(Some(Created { response: CreateResponse::for_run(&run.run, true), new_run: false }))
    }

    /// Rule 3. List and filtered List scopes are counted from the List's
    /// counters (a filtered one is an upper bound the planner settles).
    /// Explicit scopes read their (at most 1000) Leads.
    async fn plan_scope(&self, ws: &str, req: &CreateRequest, e: &Enrichment) -> Result<Planned, AppError> {
        if req.target() == OutputTarget::Membership && req.scope.list_id().is_none() {
            return Err(DomainError::planner(
                "OUTPUT_TARGET_UNSUPPORTED",
                "membership output needs a List: use a list scope or give scope.listId",
                json!({"target": "membership"}),
            )
            .into());
        }
        let list = match req.scope.list_id() {
            Some(id) => Some(self.get_list(ws, id).await.map_err(|err| {
                match err {
                    AppError::NotFound { .. } => DomainError::planner(
                        "LIST_NOT_FOUND",
                        format!("no list {id} in this workspace"),
                        json!({"listId": id}),
                    )
                    .into(),
                    other => other,
                }
            })?),
            None => None,
        };
        match &req.scope {
            Scope::ExplicitLeads { list_id, .. } => {
                let unique = req.scope.unique_lead_ids();
                let (valid, invalid) = partition_lead_ids(&unique);
                let found = self.store().lead_types(ws, &valid).await?;
                let missing: Vec<&String> =
                    invalid.iter().chain(valid.iter().filter(|i| !found.contains_key(*i))).collect();
                if !missing.is_empty() {
                    return Err(DomainError::planner(
                        "LEADS_NOT_FOUND",
                        format!("{} lead id(s) do not exist in this workspace", missing.len()),
                        json!({"leadIds": missing}),
                    )
                    .into());
                }
                if unique.is_empty() {
                    return Err(DomainError::planner("EMPTY_LEAD_SCOPE", "scope.leadIds is empty", json!({})).into());
                }
                let mismatched: Vec<&String> = valid.iter().filter(|i| found[*i] != e.subject).collect();
                if !mismatched.is_empty() {
                    return Err(DomainError::planner(
                        "SUBJECT_MISMATCH",
                        format!(
                            "{} works on {} leads; {} of the scope's leads are not",
                            e.slug,
                            e.subject.as_str(),
                            mismatched.len()
                        ),
                        json!({"subject": e.subject.as_str(), "leadIds": mismatched}),
                    )
                    .into());
                }
                if req.target() == OutputTarget::Membership {
                    let lid = list_id.as_deref().unwrap_or_default();
                    let members = self.store().members_of(ws, lid, &valid).await?;
                    let outside: Vec<&String> = valid.iter().filter(|i| !members.contains_key(*i)).collect();
                    if !outside.is_empty() {
                        return Err(DomainError::planner(
                            "OUTPUT_TARGET_UNSUPPORTED",
                            format!("membership output needs every lead in list {lid}; {} are not", outside.len()),
                            json!({"target": "membership", "leadIds": outside}),
                        )
                        .into());
                    }
                }
                Ok(Planned {
                    lead_count: unique.len() as u64,
                    requested: Scope::ExplicitLeads { lead_ids: unique, list_id: list_id.clone() },
                })
            }
            Scope::List { list_id } => {
                let list = list.expect("list scopes have a list");
                if list.lead_count == 0 {
                    return Err(DomainError::planner(
                        "EMPTY_LEAD_SCOPE",
                        format!("list {list_id} has no leads"),
                        json!({"listId": list_id}),
                    )
                    .into());
                }
                check_subject_counts(e.subject, list.person_count, list.company_count)?;
                Ok(Planned { lead_count: list.lead_count, requested: req.scope.clone() })
            }
            Scope::FilteredList { list_id, filter } => {
                // Bounded by the List's counters; the planner applies the
                // filter and releases what it drops (proportional to nothing here).
                let list = list.expect("filtered scopes have a list");
                let bound = filtered_bound(filter, e.subject, list.person_count, list.company_count)?;
                if bound == 0 {
                    return Err(DomainError::planner(
                        "EMPTY_LEAD_SCOPE",
                        format!("no lead of list {list_id} can match the filter"),
                        json!({"listId": list_id}),
                    )
                    .into());
                }
                Ok(Planned { lead_count: bound, requested: req.scope.clone() })
            }
        }
    }
}

/// Rule 2's input check, with messages kept readable (enum mismatches
/// quote the whole enum).
pub(crate) fn check_input(enrichment: &Enrichment, input: &Value) -> Result<(), AppError> {
    enrichment.validate_input(input).map_err(|errors| {
        let errors: Vec<String> = errors
            .into_iter()
            .map(|e| if e.chars().count() > 160 { format!("{}…", e.chars().take(160).collect::<String>()) } else { e })
            .collect();
        DomainError::InvalidInput {
            message: format!("input does not match {}'s inputSchema: {}", enrichment.slug, errors.join("; ")),
            details: json!({"errors": errors}),
        }
        .into()
    })
}

fn new_run(req: &CreateRequest, e: &Enrichment, planned: Planned, cost: u64, start: &Start, now: &str) -> Run {
    Run {
        id: start.rule.as_ref().map(|r| r.run_id.clone()).unwrap_or_else(ids::run_id),
        status: RunStatus::Pending,
        mode: Mode::Persisted,
        enrichment: EnrichmentRef { id: e.id.clone(), slug: e.slug.clone(), version: e.version },
        scope: RunScope {
            requested: planned.requested,
            resolved_count: planned.lead_count,
            counts: Counts { pending: planned.lead_count, ..Default::default() },
        },
        output: RunOutput {
            target: req.target(),
            attribute_key: req.output.attribute_key.clone().unwrap_or_else(|| e.default_output_attribute_key.clone()),
            write_policy: req.write_policy,
            persist_results: true,
        },
        cost: RunCost::reserved(cost),
        trigger: RunTrigger {
            source: if start.rule.is_some() { TriggerSource::Rule } else { TriggerSource::Api },
            rule_id: start.rule.as_ref().map(|r| r.rule_id.clone()),
            correlation_id: start.correlation_id.clone(),
            trigger_run_id: None,
            dispatch_metadata: json!({"displayRequest": req.display_request, "queue": "work"}),
        },
        error: None,
        timing: RunTiming { created_at: now.to_string(), updated_at: now.to_string(), ..Default::default() },
        input: req.input.clone(),
        retry_of: start.retry.as_ref().map(|r| r.of.clone()),
        retries: vec![],
    }
}

/// How long a backstop dispatch waits before the planner looks at the run:
/// far longer than a live create request takes between its commit and
/// recording its dispatch (milliseconds). `PUFFLE_DISPATCH_GRACE_SECONDS`,
/// default 30, at most SQS's 900.
pub(crate) fn dispatch_grace() -> std::time::Duration {
    let secs = std::env::var("PUFFLE_DISPATCH_GRACE_SECONDS").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(30);
    std::time::Duration::from_secs(secs.min(900))
}
