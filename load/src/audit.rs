//! The audit after the queue drained: credits from the ledger, run counts,
//! no run left moving, one run per idempotency key, and the answers the
//! clients got. Every check is about correctness; none is about speed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use puffle_app::App;
use puffle_aws::store::RunRecord;
use puffle_domain::credits::{replay, LedgerEntry, LedgerKind, Totals};

use crate::client::CreateRec;

pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub summary: String,
    pub details: Vec<String>,
}

impl Check {
    fn new(name: &'static str, details: Vec<String>, summary: String) -> Check {
        Check { name, ok: details.is_empty(), summary, details }
    }
}

pub struct Inputs<'a> {
    pub workspace_id: &'a str,
    pub creates: &'a [CreateRec],
    pub violations: &'a [String],
    pub unexpected: &'a [String],
    /// Credits the load granted (initial grant + top-ups).
    pub granted: u64,
    /// Ok(time to drain) or why the queue was not seen empty.
    pub drained: &'a Result<Duration, String>,
}

pub struct RunSummary {
    pub runs: usize,
    pub by_status: BTreeMap<&'static str, usize>,
    pub leads: u64,
    pub completed: u64,
    pub skipped: u64,
    pub failed: u64,
    pub grants: u64,
    pub reserves: u64,
    pub charges: u64,
    pub releases: u64,
    pub balance: u64,
    pub keys: usize,
    pub keys_with_run: usize,
    pub max_requests_per_key: usize,
}

/// A run's ledger lines, summed.
#[derive(Debug, Default, Clone, Copy)]
struct PerRun {
    reserve_lines: usize,
    reserved: u64,
    charged: u64,
    released: u64,
}

fn show(r: &RunRecord) -> String {
    let c = r.run.scope.counts;
    format!(
        "{} {} {} scope={} resolvedCount={} counts={{pending:{},running:{},completed:{},skipped:{},failed:{}}} planStep={} plannedCount={} planDone={} doneChunks={}",
        r.run.id,
        r.run.status.as_str(),
        r.run.enrichment.slug,
        r.run.scope.requested.kind(),
        r.run.scope.resolved_count,
        c.pending,
        c.running,
        c.completed,
        c.skipped,
        c.failed,
        r.progress.plan_step,
        r.progress.planned_count,
        r.progress.plan_done,
        r.done_chunks.len()
    )
}

fn answered(r: &CreateRec) -> bool {
    r.status == 200 || r.status == 202
}

/// No answer, or a server error: the request may or may not have written.
fn unknown_outcome(r: &CreateRec) -> bool {
    r.status == 0 || r.status >= 500
}

/// The balance is what the ledger says, to the credit: grants − charges −
/// what is still held for unsettled items, the ledger's held amount equals
/// what the runs hold, and nothing is held once every run is terminal with
/// nothing pending. With `open`, the check is taken while runs are still
/// moving (the worker paused): it then also asks that some run is open and
/// holds credits, or it would prove nothing about reservations.
fn balance_check(runs: &[RunRecord], ledger: &[LedgerEntry], balance: u64, granted: u64, open: bool) -> Check {
    let totals = Totals::of(ledger);
    let Totals { grants, reserves, charges, releases } = totals;
    let held = totals.held();
    let replayed = replay(ledger);
    let mut d = vec![];
    if replayed != balance as i128 {
        d.push(format!(
            "replay(ledger) = {replayed} but the stored balance is {balance} (difference {})",
            balance as i128 - replayed
        ));
    }
    if totals.expected_balance() != balance as i128 {
        d.push(format!(
            "grants {grants} − charges {charges} − held {held} = {} but the stored balance is {balance}",
            totals.expected_balance()
        ));
    }
    if grants != granted {
        d.push(format!("the ledger holds {grants} credits of grants; the load granted {granted}"));
    }
    let runs_hold: u64 = runs.iter().map(|r| r.run.cost.held()).sum();
    if held != runs_hold as i128 {
        d.push(format!("the ledger holds {held} credits reserved and unsettled; the runs hold {runs_hold}"));
    }
    let unsettled = runs.iter().filter(|r| !r.run.status.is_terminal() || r.run.scope.counts.pending > 0).count();
    if unsettled == 0 && held != 0 {
        d.push(format!("every run is terminal with nothing pending, yet {held} credits are still reserved"));
    }
    if open && (unsettled == 0 || held <= 0) {
        d.push(format!(
            "taken with the worker paused, yet {unsettled} runs are unsettled and {held} credits held: nothing open to check"
        ));
    }
    Check::new(
        if open {
            "while runs are open (worker paused): balance = grants − charges − held, and the ledger's held = the runs' held > 0"
        } else {
            "balance = grants − charges − held (held = reserves − charges − releases; 0 once all runs are terminal)"
        },
        d,
        format!(
            "{grants} − {charges} − {held} = {}; stored balance {balance}; reserved {reserves}, released {releases}; {unsettled} runs unsettled; {} ledger lines",
            totals.expected_balance(),
            ledger.len()
        ),
    )
}

/// The balance check with runs still open; the caller pauses the worker first.
pub async fn open_runs(app: &App, workspace_id: &str, granted: u64) -> anyhow::Result<Check> {
    let runs = app.store().all_runs(workspace_id).await?;
    let ledger = app.ledger(workspace_id).await?;
    let balance = app.balance(workspace_id).await?;
    Ok(balance_check(&runs, &ledger, balance, granted, true))
}

pub async fn audit(app: &App, inp: &Inputs<'_>) -> anyhow::Result<(Vec<Check>, RunSummary)> {
    let ws = inp.workspace_id;
    let runs = app.store().all_runs(ws).await?;
    let ledger = app.ledger(ws).await?;
    let balance = app.balance(ws).await?;
    let mut checks = vec![];

    checks.push(balance_check(&runs, &ledger, balance, inp.granted, false));
    let Totals { grants, reserves, charges, releases } = Totals::of(&ledger);

    // 2. Each run's ledger lines match its cost, and its cost its items.
    let by_id: HashMap<&str, &RunRecord> = runs.iter().map(|r| (r.run.id.as_str(), r)).collect();
    let mut per_run: HashMap<&str, PerRun> = HashMap::new();
    let mut d = vec![];
    for e in &ledger {
        match (&e.kind, e.run_id.as_deref()) {
            (LedgerKind::Grant, _) => {}
            (kind, Some(id)) => {
                if !by_id.contains_key(id) {
                    d.push(format!(
                        "ledger {kind:?} {} of {} credits names run {id}, which does not exist",
                        e.id, e.amount
                    ));
                }
                let slot = per_run.entry(id).or_default();
                match kind {
                    LedgerKind::Reserve => {
                        slot.reserve_lines += 1;
                        slot.reserved += e.amount;
                    }
                    LedgerKind::Charge => slot.charged += e.amount,
                    LedgerKind::Release => slot.released += e.amount,
                    LedgerKind::Grant => {}
                }
            }
            (kind, None) => d.push(format!("ledger {kind:?} {} of {} credits names no run", e.id, e.amount)),
        }
    }
    for r in &runs {
        let l = per_run.get(r.run.id.as_str()).copied().unwrap_or_default();
        let (cost, counts, price) = (&r.run.cost, r.run.scope.counts, r.credits_per_lead);
        let settled = r.run.status.is_terminal() && counts.pending == 0;
        let mut wrong = vec![];
        if l.reserve_lines != usize::from(cost.reserved > 0) || l.reserved != cost.reserved {
            wrong.push(format!("{} reserve line(s) of {}", l.reserve_lines, l.reserved));
        }
        if l.charged != cost.charged || cost.actual != cost.charged {
            wrong.push(format!("charge lines {}", l.charged));
        }
        if l.released != cost.released {
            wrong.push(format!("release lines {}", l.released));
        }
        // Built-ins charge every found Lead and nothing else.
        if cost.reserved > 0 && cost.charged != counts.completed * price {
            wrong.push(format!("{} completed at {price} each", counts.completed));
        }
        if settled && cost.charged + cost.released != cost.reserved {
            wrong.push("terminal, yet charged + released ≠ reserved".into());
        }
        if !wrong.is_empty() {
            d.push(format!(
                "run {} ({}): {}; cost {{reserved {}, charged {}, released {}, actual {}}}",
                r.run.id,
                r.run.status.as_str(),
                wrong.join(", "),
                cost.reserved,
                cost.charged,
                cost.released,
                cost.actual
            ));
        }
    }
    let released_runs = per_run.values().filter(|v| v.released > 0).count();
    checks.push(Check::new(
        "per run: reserve = cost.reserved, charges = cost.charged = completed × price, releases = cost.released, settled = reserved",
        d,
        format!(
            "{} runs, {} reserve lines, {released_runs} runs with releases",
            runs.len(),
            per_run.values().map(|v| v.reserve_lines).sum::<usize>()
        ),
    ));

    // 3. Counts add up, in the store and in every answer the clients read.
    let mut d: Vec<String> =
        runs.iter().filter(|r| r.run.scope.counts.total() != r.run.scope.resolved_count).map(show).collect();
    d.extend(inp.violations.iter().cloned());
    checks.push(Check::new(
        "every run's counts add up to resolvedCount (stored + answers)",
        d,
        format!("{} runs checked in the store; status/items/cancel answers checked during the load", runs.len()),
    ));

    // 4. Nothing left moving once the queue is empty.
    let mut d = vec![];
    if let Err(e) = inp.drained {
        d.push(format!("the queue was not seen empty: {e} (checked anyway below)"));
    }
    for r in &runs {
        let c = r.run.scope.counts;
        if !r.run.status.is_terminal() {
            d.push(format!("still {}: {}", r.run.status.as_str(), show(r)));
        } else if c.pending != 0 || c.running != 0 {
            d.push(format!("terminal with items still pending/running: {}", show(r)));
        }
    }
    checks.push(Check::new(
        "no run pending/running after the queue drained (terminal runs have pending = running = 0)",
        d,
        match inp.drained {
            Ok(t) => format!("queue and DLQ empty {:.1} s after the clients stopped", t.as_secs_f64()),
            Err(e) => e.clone(),
        },
    ));

    // 5. One run per idempotency key.
    let mut by_key: BTreeMap<&str, Vec<&CreateRec>> = BTreeMap::new();
    for r in inp.creates {
        if let Some(k) = &r.key {
            by_key.entry(k.as_str()).or_default().push(r);
        }
    }
    let stored_keys: HashMap<String, Option<String>> = futures::stream::iter(by_key.keys().map(|k| k.to_string()))
        .map(|k| async move {
            let rec = app.store().get_idempotency(ws, &k).await;
            (k, rec)
        })
        .buffer_unordered(16)
        .map(|(k, rec)| rec.map(|r| (k, r.map(|r| r.run_id))))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let mut d = vec![];
    let mut keys_with_run = 0;
    for (key, recs) in &by_key {
        let ok: Vec<&&CreateRec> = recs.iter().filter(|r| answered(r)).collect();
        let run_ids: BTreeSet<&str> = ok.iter().filter_map(|r| r.run_id.as_deref()).collect();
        let bodies: BTreeSet<&str> = ok.iter().map(|r| r.body_sig.as_str()).collect();
        let news = ok.iter().filter(|r| r.status == 202).count();
        if run_ids.len() > 1 {
            d.push(format!("key {key}: {} different runs {run_ids:?}", run_ids.len()));
        }
        if bodies.len() > 1 {
            d.push(format!("key {key}: accepted for {} different bodies", bodies.len()));
        }
        if news > 1 {
            d.push(format!("key {key}: {news} answers were 202 (new run)"));
        }
        for r in ok.iter().filter(|r| r.status == 200 && r.reused != Some(true)) {
            d.push(format!("key {key}: 200 without reusedExistingRun=true at {:.3}s", r.started.as_secs_f64()));
        }
        let stored = stored_keys.get(*key).cloned().flatten();
        match ok.iter().min_by_key(|r| r.ended) {
            Some(winner) => {
                keys_with_run += 1;
                let win_run = winner.run_id.as_deref().unwrap_or("");
                for r in recs.iter().filter(|r| r.started > winner.ended && !unknown_outcome(r)) {
                    let same = r.body_sig == winner.body_sig;
                    let fine = if same {
                        r.status == 200 && r.run_id.as_deref() == Some(win_run) && r.reused == Some(true)
                    } else {
                        r.status == 422
                    };
                    if !fine {
                        d.push(format!(
                            "key {key}: {} body sent at {:.3}s, after run {win_run} was answered at {:.3}s, got {} {} (run {:?}); expected {}",
                            if same { "the same" } else { "another" },
                            r.started.as_secs_f64(),
                            winner.ended.as_secs_f64(),
                            r.status,
                            r.code,
                            r.run_id,
                            if same { "200 reusedExistingRun with the same run" } else { "422 IDEMPOTENCY_KEY_REUSED" }
                        ));
                    }
                }
                if stored.as_deref() != Some(win_run) {
                    d.push(format!(
                        "key {key}: the stored key record points to {stored:?}, the clients got run {win_run}"
                    ));
                }
            }
            None => {
                if let Some(run) = stored {
                    if !recs.iter().any(|r| unknown_outcome(r)) {
                        d.push(format!(
                            "key {key}: a key record points to run {run}, but no request with this key was accepted"
                        ));
                    }
                }
            }
        }
    }
    let max_requests_per_key = by_key.values().map(Vec::len).max().unwrap_or(0);
    checks.push(Check::new(
        "one run per idempotency key (same key+body → same run; other body → 422)",
        d,
        format!(
            "{} keys, {keys_with_run} with a run, {} keyed requests (up to {max_requests_per_key} per key)",
            by_key.len(),
            by_key.values().map(Vec::len).sum::<usize>()
        ),
    ));

    // 6. The runs the clients were given are the runs that exist.
    let mut d = vec![];
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in inp.creates.iter().filter(|r| r.status == 202) {
        match r.run_id.as_deref() {
            Some(id) => *seen.entry(id).or_default() += 1,
            None => d.push(format!("a 202 without runId at {:.3}s", r.started.as_secs_f64())),
        }
    }
    for (id, n) in &seen {
        if *n > 1 {
            d.push(format!("run {id} was answered 202 (new) {n} times"));
        }
        if !by_id.contains_key(id) {
            d.push(format!("run {id} (answered 202) is not in the store"));
        }
    }
    for r in inp.creates.iter().filter(|r| r.status == 200) {
        if let Some(id) = r.run_id.as_deref() {
            if !by_id.contains_key(id) {
                d.push(format!("run {id} (answered 200 reused) is not in the store"));
            }
        }
    }
    let known: HashSet<&str> = inp.creates.iter().filter(|r| answered(r)).filter_map(|r| r.run_id.as_deref()).collect();
    let orphans: Vec<&RunRecord> = runs.iter().filter(|r| !known.contains(r.run.id.as_str())).collect();
    let unknown = inp.creates.iter().filter(|r| unknown_outcome(r)).count();
    if orphans.len() > unknown {
        for r in &orphans {
            d.push(format!("run no client was told about: {}", show(r)));
        }
        d.push(format!(
            "{} such runs, but only {unknown} creates ended without an answer or with a 5xx",
            orphans.len()
        ));
    }
    checks.push(Check::new(
        "runs the clients were given = runs in the store",
        d,
        format!("{} runs answered 202, {} in the store, {} not reported to a client ({unknown} creates had no answer or a 5xx)", seen.len(), runs.len(), orphans.len()),
    ));

    // 7. Sizes and prices the clients can predict.
    let mut d = vec![];
    for r in inp.creates {
        let Some(want) = r.expected else { continue };
        if answered(r) && r.status == 202 && r.lead_count != Some(want) {
            d.push(format!(
                "create at {:.3}s (run {:?}): leadCount {:?}, the scope holds {want}",
                r.started.as_secs_f64(),
                r.run_id,
                r.lead_count
            ));
        }
        if r.status == 202 {
            if let Some(run) = r.run_id.as_deref().and_then(|id| by_id.get(id)) {
                // A filtered List is reserved by its bound; the planner keeps what matches.
                let filtered = matches!(run.run.scope.requested, puffle_domain::scope::Scope::FilteredList { .. });
                let resolved_ok = if filtered {
                    run.run.scope.resolved_count <= want && run.run.cost.reserved == want
                } else {
                    run.run.scope.resolved_count == want
                };
                if !resolved_ok || run.run.cost.reserved != run.run.cost.preview {
                    d.push(format!(
                        "run {}: stored resolvedCount {} cost {:?}, the scope holds {want}",
                        run.run.id, run.run.scope.resolved_count, run.run.cost
                    ));
                }
            }
        }
        if r.status == 402 && r.required != Some(want) {
            d.push(format!(
                "402 at {:.3}s: required {:?}, the scope holds {want} (1 credit per lead)",
                r.started.as_secs_f64(),
                r.required
            ));
        }
    }
    checks.push(Check::new(
        "leadCount / required / cost match the scope the client sent",
        d,
        "every create whose scope size is known in advance".into(),
    ));

    // 8. Only answers the contract allows.
    checks.push(Check::new(
        "no unexpected answers (500s, 404s of known runs, 400s of valid bodies, ...)",
        inp.unexpected.to_vec(),
        format!("{} unexpected", inp.unexpected.len()),
    ));

    let mut by_status = BTreeMap::new();
    let (mut leads, mut completed, mut skipped, mut failed) = (0, 0, 0, 0);
    for r in &runs {
        *by_status.entry(r.run.status.as_str()).or_insert(0) += 1;
        let c = r.run.scope.counts;
        leads += r.run.scope.resolved_count;
        completed += c.completed;
        skipped += c.skipped;
        failed += c.failed;
    }
    let summary = RunSummary {
        runs: runs.len(),
        by_status,
        leads,
        completed,
        skipped,
        failed,
        grants,
        reserves,
        charges,
        releases,
        balance,
        keys: by_key.len(),
        keys_with_run,
        max_requests_per_key,
    };
    Ok((checks, summary))
}
