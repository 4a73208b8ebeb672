//! Runs: the atomic create (charge + run + idempotency key), dispatch
//! bookkeeping, cancel, plan progress and exactly-once chunk counting.

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use puffle_domain::credits::LedgerEntry;
use puffle_domain::run::{PlanProgress, Run, RunError, RunStatus};
use serde::{Deserialize, Serialize};

use super::{from_row, get_n, key_of, n, row, s, Row, Store};
use crate::error::{classify, StoreError};
use crate::keys;

/// A run as stored: the public record plus the planner's progress and the
/// reaper's bookkeeping.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub workspace_id: String,
    pub run: Run,
    pub progress: PlanProgress,
    pub done_chunks: Vec<u32>,
    /// The cursor of the next plan step (so a lost step can be re-sent).
    pub plan_cursor: Option<String>,
    /// Still in the sparse index of runs with work left (`gsi2`).
    pub active: bool,
    /// How often the reaper had to drive this run, and when it last did.
    pub reap_count: u32,
    pub reaped_at: Option<String>,
    /// The price of one item, fixed at create (the enrichment may change or
    /// go away while the run is under way): what each item reserves.
    pub credits_per_lead: u64,
}

/// What the create transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// The balance does not cover the cost; nothing was written.
    InsufficientCredits,
    /// The idempotency key is held by another run; nothing was written.
    KeyTaken,
    /// A run with this id exists already (a replayed rule batch); nothing was written.
    RunExists,
}

/// Shards of the sparse index of live runs: spreads its writes.
pub const ACTIVE_SHARDS: u32 = 8;

pub fn active_shard_pk(shard: u32) -> String {
    format!("ACTIVE#{shard}")
}

fn active_pk_for(run_id: &str) -> String {
    let h = run_id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    active_shard_pk(h % ACTIVE_SHARDS)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyRecord {
    pub key: String,
    pub request_hash: String,
    pub run_id: String,
    pub created_at: String,
    /// Epoch seconds; DynamoDB's TTL attribute.
    pub ttl: i64,
}

pub use puffle_domain::chunk::ChunkDelta;

impl RunRecord {
    /// A run record from its stored row (a read, or a stream image).
    pub fn from_row(r: Row) -> Result<RunRecord, StoreError> {
        record_from(r)
    }
}

fn record_from(r: Row) -> Result<RunRecord, StoreError> {
    let done_chunks = match r.get("doneChunks") {
        Some(AttributeValue::Ns(v)) => v.iter().filter_map(|x| x.parse().ok()).collect(),
        _ => vec![],
    };
    let progress = PlanProgress {
        plan_step: get_n(&r, "planStep").unwrap_or(0) as u32,
        planned_count: get_n(&r, "plannedCount").unwrap_or(0) as u64,
        plan_done: matches!(r.get("planDone"), Some(AttributeValue::Bool(true))),
    };
    let workspace_id = super::get_s(&r, "workspaceId").unwrap_or_default();
    let plan_cursor = super::get_s(&r, "planCursor");
    let active = r.contains_key("gsi2pk");
    let reap_count = get_n(&r, "reapCount").unwrap_or(0).max(0) as u32;
    let reaped_at = super::get_s(&r, "reapedAt");
    let stored_price = get_n(&r, "creditsPerLead").map(|v| v.max(0) as u64);
    let run: Run = from_row(r)?;
    // Runs created before the price was stored: what create priced per Lead.
    let credits_per_lead = stored_price.unwrap_or(run.cost.preview / run.scope.resolved_count.max(1));
    Ok(RunRecord {
        workspace_id,
        run,
        progress,
        done_chunks,
        plan_cursor,
        active,
        reap_count,
        reaped_at,
        credits_per_lead,
    })
}

// Update and condition expressions of the run item.
const FAIL_DISPATCH: &str = concat!(
    "SET #status = :failed, #error = :err, #scope.#counts.#pending = :zero, ",
    "#scope.#counts.#failed = :resolved, #cost.actual = :zero, #cost.charged = :zero, ",
    "#cost.released = :reserved, #timing.updatedAt = :now, ",
    "#timing.completedAt = :now REMOVE gsi2pk, gsi2sk"
);
const CANCEL: &str = "SET #status = :cancelled, #timing.cancelledAt = :now, #timing.updatedAt = :now";
const MARK_RUNNING: &str = "SET #status = :running, #timing.startedAt = :now, #timing.updatedAt = :now";
const PLAN_STEP: &str = concat!(
    "SET planStep = :next, plannedCount = plannedCount + :planned, planDone = :last, ",
    "planCursor = :cursor, #timing.updatedAt = :now"
);
const SHRINK: &str = concat!(
    ", #scope.resolvedCount = #scope.resolvedCount - :diff, ",
    "#scope.#counts.#pending = #scope.#counts.#pending - :diff, ",
    "#cost.released = if_not_exists(#cost.released, :zero) + :release"
);
const COUNT_CHUNK: &str = concat!(
    "SET #scope.#counts.#pending = #scope.#counts.#pending - :size, ",
    "#scope.#counts.#completed = #scope.#counts.#completed + :c, ",
    "#scope.#counts.#skipped = #scope.#counts.#skipped + :s, ",
    "#scope.#counts.#failed = #scope.#counts.#failed + :f, ",
    "#cost.charged = if_not_exists(#cost.charged, :zero) + :ch, ",
    "#cost.actual = #cost.actual + :ch, ",
    "#cost.released = if_not_exists(#cost.released, :zero) + :rel, ",
    "#timing.updatedAt = :now"
);
/// Rounds of a create's reservation before it gives up with a 503 (each
/// after the buckets it drew from were found short: a concurrent create
/// took them first).
const CREATE_ROUNDS: u32 = 12;
const COMPLETE: &str =
    "SET #status = :completed, #timing.completedAt = :now, #timing.updatedAt = :now REMOVE gsi2pk, gsi2sk";
/// A terminal run with nothing pending leaves the index of live runs.
const RETIRE: &str = "REMOVE gsi2pk, gsi2sk";
const RETIRE_CONDITION: &str =
    "#status IN (:completed, :failed, :cancelled) AND #scope.#counts.#pending = :zero AND #scope.#counts.#running = :zero";
const REAPED: &str = "SET reapedAt = :now ADD reapCount :one";
const DONE_CONDITION: &str =
    "#status = :running AND #scope.#counts.#pending = :zero AND #scope.#counts.#running = :zero";
const FAIL_PLANNING: &str = concat!(
    "SET #status = :failed, #error = :err, ",
    "#scope.#counts.#pending = #scope.#counts.#pending - :u, ",
    "#scope.#counts.#failed = #scope.#counts.#failed + :u, planDone = :t, ",
    "#cost.released = if_not_exists(#cost.released, :zero) + :release, ",
    "#timing.updatedAt = :now, #timing.completedAt = :now"
);
/// A cancelled run whose planning is given up on keeps its status: its
/// unplanned Leads are skipped, as a cancelled plan step would have skipped them.
const CANCELLED_PLANNING_GIVEN_UP: &str = concat!(
    "SET #scope.#counts.#pending = #scope.#counts.#pending - :u, ",
    "#scope.#counts.#skipped = #scope.#counts.#skipped + :u, planDone = :t, ",
    "#cost.released = if_not_exists(#cost.released, :zero) + :release, ",
    "#timing.updatedAt = :now"
);
const PLANNING_CONDITION: &str =
    "#status IN (:pendingS, :running) AND (attribute_not_exists(planDone) OR planDone = :f)";
const CANCELLED_PLANNING_CONDITION: &str =
    "#status = :cancelledS AND (attribute_not_exists(planDone) OR planDone = :f)";

const RUN_NAMES: &[(&str, &str)] = &[
    ("#scope", "scope"),
    ("#counts", "counts"),
    ("#timing", "timing"),
    ("#status", "status"),
    ("#pending", "pending"),
    ("#completed", "completed"),
    ("#skipped", "skipped"),
    ("#failed", "failed"),
    ("#running", "running"),
];

fn with_names(
    mut u: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    expr: &str,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    for (k, v) in RUN_NAMES {
        if expr.contains(k) {
            u = u.expression_attribute_names(*k, *v);
        }
    }
    u
}

impl Store {
    /// An update of the run item; `#name` placeholders used in either
    /// expression are declared (DynamoDB rejects undeclared and unused ones).
    fn run_update(
        &self,
        ws: &str,
        run_id: &str,
        expr: &str,
        condition: Option<&str>,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        let u = Update::builder()
            .table_name(self.table())
            .set_key(Some(key_of(keys::run(ws, run_id))))
            .update_expression(expr)
            .set_condition_expression(condition.map(str::to_string));
        with_names(u, &format!("{expr} {}", condition.unwrap_or("")))
    }

    /// Reservation, run record, idempotency key and ledger line in one
    /// transaction: the balance must cover the cost and the key must be new.
    /// `extra` actions (a rule's run index entry) commit with them. The
    /// reservation takes from one random credit bucket; when that one is
    /// short, the buckets are read and drawn from the fullest (again while
    /// concurrent creates move them, up to `CREATE_ROUNDS`), and only a sum
    /// short of the cost is `InsufficientCredits`.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_run(
        &self,
        ws: &str,
        run: &Run,
        credits_per_lead: u64,
        cost: u64,
        idem: Option<&IdempotencyRecord>,
        reserve: &LedgerEntry,
        extra: Vec<TransactWriteItem>,
    ) -> Result<CreateOutcome, StoreError> {
        let mut rest = vec![self.put_new(self.new_run_row(ws, run, credits_per_lead)?)];
        let key_at = idem.map(|_| rest.len());
        if let Some(rec) = idem {
            let item = row(rec, keys::idempotency(ws, &rec.key), &[])?;
            rest.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(self.table())
                            .set_item(Some(item))
                            // An expired key (TTL not yet swept) may be reused.
                            .condition_expression("attribute_not_exists(pk) OR #ttl < :now")
                            .expression_attribute_names("#ttl", "ttl")
                            .expression_attribute_values(":now", n(puffle_domain::time::epoch_seconds()))
                            .build()
                            .expect("put"),
                    )
                    .build(),
            );
        }
        if cost > 0 {
            rest.push(self.ledger_put(ws, reserve)?);
        }
        rest.extend(extra);

        let mut draws = vec![(super::credits::random_bucket(), cost)];
        for round in 0..CREATE_ROUNDS {
            // A free run takes nothing but still needs its workspace.
            let mut actions: Vec<TransactWriteItem> = if cost == 0 {
                vec![self.workspace_exists(ws)]
            } else {
                draws.iter().map(|(b, a)| self.credit_take(ws, *b, *a)).collect()
            };
            let first_rest = actions.len();
            actions.extend(rest.iter().cloned());
            // Each round is a different request: its own idempotency token.
            let token = if round == 0 { run.id.clone() } else { format!("{}.{round}", run.id) };
            match self.transact_with_token(actions, Some(&token)).await {
                Ok(()) => return Ok(CreateOutcome::Created),
                Err(StoreError::TransactionCanceled(codes)) => {
                    let failed =
                        |i: usize| codes.get(i).is_some_and(|c| c.as_deref() == Some("ConditionalCheckFailed"));
                    // The key first: a concurrent twin that won also took the credits.
                    if key_at.is_some_and(|k| failed(first_rest + k)) {
                        return Ok(CreateOutcome::KeyTaken);
                    }
                    if failed(first_rest) {
                        return Ok(CreateOutcome::RunExists);
                    }
                    if !(0..first_rest).any(failed) {
                        return Err(StoreError::Unavailable(format!("create transaction cancelled: {codes:?}")));
                    }
                    if cost == 0 {
                        return Ok(CreateOutcome::InsufficientCredits);
                    }
                    // The bucket(s) tried were short: draw from what there is,
                    // starting the ties at a random bucket, after a short
                    // random pause when a concurrent create just moved them.
                    if round > 0 {
                        tokio::time::sleep(super::credits::jitter(round)).await;
                    }
                    let Some(mut balances) = self.balances(ws).await? else {
                        return Ok(CreateOutcome::InsufficientCredits);
                    };
                    let turn = super::credits::random_index(balances.len());
                    balances.rotate_left(turn);
                    match puffle_domain::credits::draws(&balances, cost) {
                        Some(d) => draws = d,
                        None => return Ok(CreateOutcome::InsufficientCredits),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable("the balance kept moving under concurrent creates; retry".into()))
    }

    /// A run that was never charged nor dispatched, stored already terminal
    /// (a rule run the workspace could not afford), with its `extra` actions.
    pub async fn put_unfunded_run(
        &self,
        ws: &str,
        run: &Run,
        extra: Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        let mut r = self.new_run_row(ws, run, 0)?;
        r.remove("gsi2pk");
        r.remove("gsi2sk");
        let mut actions = vec![self.put_new(r)];
        actions.extend(extra);
        match self.transact_with_token(actions, Some(&run.id)).await {
            Ok(()) => Ok(true),
            Err(StoreError::TransactionCanceled(codes))
                if codes.first().is_some_and(|c| c.as_deref() == Some("ConditionalCheckFailed")) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// The run's row as first written: a live run joins the sparse index
    /// the reaper reads (`gsi2`, keys only).
    fn new_run_row(&self, ws: &str, run: &Run, credits_per_lead: u64) -> Result<Row, StoreError> {
        row(
            run,
            keys::run(ws, &run.id),
            &[
                ("workspaceId", s(ws)),
                ("creditsPerLead", n(credits_per_lead)),
                ("planStep", n(0)),
                ("plannedCount", n(0)),
                ("gsi2pk", s(active_pk_for(&run.id))),
                ("gsi2sk", s(&run.id)),
            ],
        )
    }

    /// A create-transaction action that links a retry to the run it retries
    /// (`retries` on the original), so the link lands with the new run or not at all.
    pub fn retry_link_entry(&self, ws: &str, original: &str, retry: &str) -> TransactWriteItem {
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key_of(keys::run(ws, original))))
            .update_expression("SET #r = list_append(if_not_exists(#r, :empty), :new)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#r", "retries")
            .expression_attribute_values(":empty", AttributeValue::L(vec![]))
            .expression_attribute_values(":new", AttributeValue::L(vec![s(retry)]))
            .build()
            .expect("update");
        TransactWriteItem::builder().update(update).build()
    }

    pub async fn get_idempotency(&self, ws: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let rec: Option<IdempotencyRecord> =
            self.get_row(keys::idempotency(ws, key)).await?.map(from_row).transpose()?;
        Ok(rec.filter(|r| r.ttl >= puffle_domain::time::epoch_seconds()))
    }

    pub async fn get_run(&self, ws: &str, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.get_row(keys::run(ws, run_id)).await?.map(record_from).transpose()
    }

    /// Runs by (workspace, run id), read in batches of 100 (consistent
    /// reads); runs that no longer exist are left out.
    pub async fn get_runs(&self, runs: &[(String, String)]) -> Result<Vec<RunRecord>, StoreError> {
        let keys = runs.iter().map(|(ws, id)| keys::run(ws, id)).collect();
        self.batch_get(keys).await?.into_iter().map(record_from).collect()
    }

    pub async fn set_trigger(&self, ws: &str, run_id: &str, trigger_run_id: &str, now: &str) -> Result<(), StoreError> {
        let u = self
            .run_update(ws, run_id, "SET #trigger.triggerRunId = :t, #timing.updatedAt = :now", None)
            .expression_attribute_names("#trigger", "trigger")
            .expression_attribute_values(":t", s(trigger_run_id))
            .expression_attribute_values(":now", s(now))
            .build()
            .expect("update");
        self.exec_update(u).await
    }

    async fn exec_update(&self, u: Update) -> Result<(), StoreError> {
        self.exec_update_with(u, ReturnValue::None).await.map(|_| ())
    }

    async fn exec_update_returning(&self, u: Update) -> Result<Row, StoreError> {
        self.exec_update_with(u, ReturnValue::AllNew).await
    }

    /// Runs a transaction-shaped Update as a plain UpdateItem. A conflict
    /// with a transaction in flight on the run item is transient: retried
    /// here (the SDK does not), never surfaced as a 500.
    async fn exec_update_with(&self, u: Update, returning: ReturnValue) -> Result<Row, StoreError> {
        let mut retries = super::retry::policy();
        loop {
            let out = self
                .client()
                .update_item()
                .table_name(u.table_name.clone())
                .set_key(Some(u.key.clone()))
                .update_expression(u.update_expression.clone())
                .set_condition_expression(u.condition_expression.clone())
                .set_expression_attribute_names(u.expression_attribute_names.clone())
                .set_expression_attribute_values(u.expression_attribute_values.clone())
                .return_values(returning.clone())
                .send()
                .await
                .map_err(classify);
            match out {
                Ok(o) => return Ok(o.attributes.unwrap_or_default()),
                Err(StoreError::Unavailable(m)) if m.starts_with("TransactionConflict") => {
                    if !super::retry::wait(&mut retries).await {
                        return Err(StoreError::Unavailable(m));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Dispatch failed: the run fails and its whole reservation is released,
    /// once (the status condition makes a second release impossible; no item
    /// settled yet, since the worker moves the run to running before it
    /// plans). False when the run is no longer pending: the stream
    /// dispatched it meanwhile and the worker started it, so it must not
    /// also fail.
    pub async fn fail_dispatch(
        &self,
        ws: &str,
        run: &Run,
        error: &RunError,
        release: &LedgerEntry,
        now: &str,
    ) -> Result<bool, StoreError> {
        let (run_id, resolved, cost) = (run.id.as_str(), run.scope.resolved_count, run.cost.reserved);
        let err = serde_dynamo::to_attribute_value(error)?;
        let u = self
            .run_update(ws, run_id, FAIL_DISPATCH, Some("#status = :pendingS"))
            .expression_attribute_names("#error", "error")
            .expression_attribute_names("#cost", "cost")
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":pendingS", s("pending"))
            .expression_attribute_values(":err", err)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":resolved", n(resolved))
            .expression_attribute_values(":reserved", n(cost))
            .expression_attribute_values(":now", s(now))
            .build()
            .expect("update");
        let mut actions = vec![TransactWriteItem::builder().update(u).build()];
        if cost > 0 {
            actions.push(self.credit_add(ws, cost));
            actions.push(self.ledger_put(ws, release)?);
        }
        match self.transact(actions).await {
            Ok(()) => Ok(true),
            Err(StoreError::TransactionCanceled(codes))
                if codes.first().is_some_and(|c| c.as_deref() == Some("ConditionalCheckFailed")) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Cancels if the status is still `expected` (read just before).
    /// `ConditionFailed` means it moved in between.
    pub async fn cancel_run(&self, ws: &str, run_id: &str, expected: RunStatus, now: &str) -> Result<Run, StoreError> {
        let u = self
            .run_update(ws, run_id, CANCEL, Some("#status = :expected"))
            .expression_attribute_values(":cancelled", s("cancelled"))
            .expression_attribute_values(":expected", s(expected.as_str()))
            .expression_attribute_values(":now", s(now))
            .build()
            .expect("update");
        let r = self.exec_update_returning(u).await?;
        Ok(record_from(r)?.run)
    }

    /// pending → running (no-op if it already moved).
    /// pending → running. Returns whether this call made the move (false:
    /// the run had already started, or was cancelled or ended meanwhile).
    pub async fn mark_running(&self, ws: &str, run_id: &str, now: &str) -> Result<bool, StoreError> {
        let u = self
            .run_update(ws, run_id, MARK_RUNNING, Some("#status = :pendingS"))
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":pendingS", s("pending"))
            .expression_attribute_values(":now", s(now))
            .build()
            .expect("update");
        match self.exec_update(u).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Records a finished plan step exactly once (`planStep` must still be
    /// `step`). On the last step, Leads reserved for but not found (the scope
    /// shrank) leave the counts and are released in the same transaction.
    /// Returns false when another delivery already recorded this step.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_plan_step(
        &self,
        ws: &str,
        run_id: &str,
        step: u32,
        planned: u64,
        last: bool,
        shrink: Option<(u64, u64, &LedgerEntry)>,
        next_cursor: Option<&str>,
        now: &str,
    ) -> Result<bool, StoreError> {
        let mut expr = PLAN_STEP.to_string();
        if shrink.is_some() {
            expr.push_str(SHRINK);
        }
        let mut u = self
            .run_update(ws, run_id, &expr, Some("planStep = :step"))
            .expression_attribute_values(":next", n(step + 1))
            .expression_attribute_values(":step", n(step))
            .expression_attribute_values(":planned", n(planned))
            .expression_attribute_values(":last", AttributeValue::Bool(last))
            .expression_attribute_values(":cursor", next_cursor.map(s).unwrap_or(AttributeValue::Null(true)))
            .expression_attribute_values(":now", s(now));
        let mut actions = vec![];
        if let Some((diff, release, entry)) = shrink {
            u = u
                .expression_attribute_names("#cost", "cost")
                .expression_attribute_values(":diff", n(diff))
                .expression_attribute_values(":release", n(release))
                .expression_attribute_values(":zero", n(0));
            if release > 0 {
                actions.push(self.credit_add(ws, release));
                actions.push(self.ledger_put(ws, entry)?);
            }
        }
        actions.insert(0, TransactWriteItem::builder().update(u.build().expect("update")).build());
        match self.transact(actions).await {
            Ok(()) => Ok(true),
            Err(StoreError::TransactionCanceled(codes))
                if codes.first().is_some_and(|c| c.as_deref() == Some("ConditionalCheckFailed")) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Counts and settles a chunk exactly once: the chunk's marker
    /// (`CHUNKDONE#{runId}`/`{chunk}`, put only where absent), the counts,
    /// the run's `cost.charged`/`released`, the balance (+ released) and the
    /// ledger's charge and release lines move in one transaction — so a
    /// duplicate delivery, a retry after a lost answer or the DLQ handler
    /// racing the worker finds it counted and settles nothing twice. The
    /// marker is its own item, so the run item stays the same size however
    /// many chunks a run has (runs written before markers kept a
    /// `doneChunks` set on the run: the condition still honours it).
    /// Returns the run's pending count after the update (a projected read:
    /// the run item itself may hold up to a thousand explicit Lead ids), or
    /// None when the chunk had already been counted.
    pub async fn count_chunk(
        &self,
        ws: &str,
        run_id: &str,
        chunk: u32,
        d: ChunkDelta,
        settle: [Option<&LedgerEntry>; 2],
        now: &str,
    ) -> Result<Option<u64>, StoreError> {
        let u = self
            .run_update(ws, run_id, COUNT_CHUNK, Some("attribute_exists(pk) AND NOT contains(doneChunks, :chunk)"))
            .expression_attribute_names("#cost", "cost")
            .expression_attribute_values(":size", n(d.size))
            .expression_attribute_values(":c", n(d.completed))
            .expression_attribute_values(":s", n(d.skipped))
            .expression_attribute_values(":f", n(d.failed))
            .expression_attribute_values(":ch", n(d.charged))
            .expression_attribute_values(":rel", n(d.released))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":chunk", n(chunk))
            .build()
            .expect("update");
        let mut marker = key_of(keys::chunk_counted(run_id, chunk));
        marker.insert("countedAt".into(), s(now));
        let mut actions = vec![
            self.put_new(marker),
            TransactWriteItem::builder().update(u).build(),
            self.uncount_action(run_id, chunk, now),
        ];
        if d.released > 0 {
            actions.push(self.credit_add(ws, d.released));
        }
        for e in settle.into_iter().flatten().filter(|e| e.amount > 0) {
            actions.push(self.ledger_put(ws, e)?);
        }
        match self.transact(actions).await {
            // A transaction returns nothing: read what it moved.
            Ok(()) => self.pending_count(ws, run_id).await,
            Err(StoreError::TransactionCanceled(codes))
                if codes.iter().take(2).any(|c| c.as_deref() == Some("ConditionalCheckFailed")) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The run's `scope.counts.pending` alone (None: no such run).
    pub async fn pending_count(&self, ws: &str, run_id: &str) -> Result<Option<u64>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key_of(keys::run(ws, run_id))))
            .consistent_read(true)
            .projection_expression("#scope.#counts.#pending")
            .expression_attribute_names("#scope", "scope")
            .expression_attribute_names("#counts", "counts")
            .expression_attribute_names("#pending", "pending")
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item.map(|r| {
            r.get("scope")
                .and_then(|v| v.as_m().ok())
                .and_then(|m| m.get("counts"))
                .and_then(|v| v.as_m().ok())
                .and_then(|m| m.get("pending"))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        }))
    }

    /// Whether `chunk` of a run has been counted (its marker, or, on runs
    /// written before markers, the run's `doneChunks`).
    pub async fn chunk_counted(&self, rec: &RunRecord, chunk: u32) -> Result<bool, StoreError> {
        if rec.done_chunks.contains(&chunk) {
            return Ok(true);
        }
        Ok(self.get_row(keys::chunk_counted(&rec.run.id, chunk)).await?.is_some())
    }

    /// running → completed once nothing is pending or running.
    pub async fn complete_if_done(&self, ws: &str, run_id: &str, now: &str) -> Result<bool, StoreError> {
        let u = self
            .run_update(ws, run_id, COMPLETE, Some(DONE_CONDITION))
            .expression_attribute_values(":completed", s("completed"))
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", s(now))
            .build()
            .expect("update");
        match self.exec_update(u).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The worker gave up planning: the run fails; Leads never planned are
    /// counted failed so the counts still add up, and their reservation is
    /// released with them (once: planning can be given up only while not
    /// done, and this write marks it done). A run cancelled meanwhile stays
    /// cancelled, its unplanned Leads skipped, and is released all the same.
    #[allow(clippy::too_many_arguments)]
    pub async fn fail_planning(
        &self,
        ws: &str,
        run_id: &str,
        cancelled: bool,
        unplanned: u64,
        release: &LedgerEntry,
        error: &RunError,
        now: &str,
    ) -> Result<bool, StoreError> {
        let b = if cancelled {
            self.run_update(ws, run_id, CANCELLED_PLANNING_GIVEN_UP, Some(CANCELLED_PLANNING_CONDITION))
                .expression_attribute_values(":cancelledS", s("cancelled"))
        } else {
            self.run_update(ws, run_id, FAIL_PLANNING, Some(PLANNING_CONDITION))
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":failed", s("failed"))
                .expression_attribute_values(":pendingS", s("pending"))
                .expression_attribute_values(":running", s("running"))
                .expression_attribute_values(":err", serde_dynamo::to_attribute_value(error)?)
        };
        let u = b
            .expression_attribute_names("#cost", "cost")
            .expression_attribute_values(":release", n(release.amount))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(":u", n(unplanned))
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":now", s(now))
            .build()
            .expect("update");
        let mut actions = vec![TransactWriteItem::builder().update(u).build()];
        if release.amount > 0 {
            actions.push(self.credit_add(ws, release.amount));
            actions.push(self.ledger_put(ws, release)?);
        }
        match self.transact(actions).await {
            Err(StoreError::TransactionCanceled(codes))
                if codes.first().is_some_and(|c| c.as_deref() == Some("ConditionalCheckFailed")) =>
            {
                Ok(false)
            }
            other => other.map(|()| true),
        }
    }

    /// Takes a finished run (terminal, nothing pending) out of the live index.
    pub async fn retire_run(&self, ws: &str, run_id: &str) -> Result<bool, StoreError> {
        let u = self
            .run_update(ws, run_id, RETIRE, Some(RETIRE_CONDITION))
            .expression_attribute_values(":completed", s("completed"))
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":cancelled", s("cancelled"))
            .expression_attribute_values(":zero", n(0))
            .build()
            .expect("update");
        match self.exec_update(u).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Notes that the reaper drove the run (it is judged stale again only
    /// after another quiet period).
    pub async fn mark_reaped(&self, ws: &str, run_id: &str, now: &str) -> Result<(), StoreError> {
        let u = self
            .run_update(ws, run_id, REAPED, Some("attribute_exists(pk)"))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":one", n(1))
            .build()
            .expect("update");
        self.exec_update(u).await
    }

    /// Keys of the live runs of one shard of the sparse index (`gsi2`):
    /// (workspace, run id) pairs, never a scan of the table.
    pub async fn live_runs(&self, shard: u32) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self.query_index_all("gsi2", "gsi2pk", &active_shard_pk(shard)).await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let ws = super::get_s(r, "pk")?.strip_prefix("RUNS#")?.to_string();
                Some((ws, super::get_s(r, "sk")?))
            })
            .collect())
    }

    /// Every run of a workspace (audits and tests; not an API path).
    pub async fn all_runs(&self, ws: &str) -> Result<Vec<RunRecord>, StoreError> {
        self.query_all(&keys::runs_pk(ws)).await?.into_iter().map(record_from).collect()
    }
}
