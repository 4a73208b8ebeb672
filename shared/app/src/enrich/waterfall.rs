//! `toolBinding.type = "waterfall"`: a chunk's Leads go through the steps
//! in order, each step run once for all the Leads still open (so a
//! provider's batching, rate limit and circuit apply as for a run of it),
//! each hit checked (`check`), and a Lead leaves at the first result that
//! satisfies `stopWhen`. The rules (filters, the conclusion, the result's
//! shape) are `puffle_domain::binding::waterfall`'s.

use puffle_domain::binding::waterfall::{conclude, view, Attempt, Conclusion};
use puffle_domain::binding::WaterfallBinding;
use puffle_domain::catalog::Enrichment;
use puffle_domain::lead::{Contact, Lead};
use puffle_domain::providers::Outcome;
use serde_json::{json, Value};

use super::http::codes;
use super::Enriched;
use crate::{App, AppError};

/// What the winning step left for the Lead's item.
struct Won {
    step: usize,
    enriched: Enriched,
    price: u64,
}

fn attempt(step: &str, e: Option<&Enriched>, outcome: &str, reason: Option<String>, cost: u64) -> Attempt {
    Attempt {
        enrichment_id: step.to_string(),
        provider: e.map(|e| e.provider.clone()),
        outcome: outcome.to_string(),
        reason,
        cost,
        duration_ms: e.map_or(0, |e| e.duration_ms),
        calls: e.map_or(0, |e| e.calls),
    }
}

impl App {
    pub(crate) async fn enrich_waterfall(
        &self,
        ws: &str,
        e: &Enrichment,
        w: &WaterfallBinding,
        input: &Value,
        leads: &[&Lead],
    ) -> Result<Vec<Enriched>, AppError> {
        let n = leads.len();
        let mut attempts: Vec<Vec<Attempt>> = vec![vec![]; n];
        let mut so_far: Vec<Vec<(String, Value)>> = vec![vec![]; n];
        let mut won: Vec<Option<Won>> = (0..n).map(|_| None).collect();
        let check = match &w.check {
            Some(c) => self.find_enrichment_to_run(ws, &c.enrichment_id).await?,
            None => None,
        };
        for (si, step) in w.steps.iter().enumerate() {
            let open: Vec<usize> = (0..n).filter(|i| won[*i].is_none()).collect();
            if open.is_empty() {
                break;
            }
            let id = step.enrichment_id.as_str();
            let Some(se) = self.find_enrichment_to_run(ws, id).await? else {
                for i in open {
                    attempts[i].push(attempt(id, None, "skipped", Some("unknown_enrichment".into()), 0));
                }
                continue;
            };
            let missing = self.missing_secrets(ws, &se).await?;
            if !missing.is_empty() {
                let why = format!("disabled: needs the secret(s) {}", missing.join(", "));
                for i in open {
                    attempts[i].push(attempt(id, None, "skipped", Some(why.clone()), 0));
                }
                continue;
            }
            let mut run = vec![];
            for i in open {
                if step.applies(&view(leads[i], &so_far[i], None)) {
                    run.push(i);
                } else {
                    attempts[i].push(attempt(id, None, "skipped", Some("run_if_false".into()), 0));
                }
            }
            if run.is_empty() {
                continue;
            }
            let subset: Vec<&Lead> = run.iter().map(|i| leads[*i]).collect();
            let results = Box::pin(self.enrich_leads(ws, &se, input, &subset)).await?;
            let checked = match (&check, &w.check) {
                (Some(ce), Some(c)) => Some(self.check_hits(ws, ce, &c.field, &subset, &results, input).await?),
                _ => None,
            };
            for (k, (i, mut r)) in run.into_iter().zip(results).enumerate() {
                match std::mem::replace(&mut r.outcome, Outcome::Skipped { reason: "" }) {
                    Outcome::Completed(mut v) => {
                        if let Some(checks) = &checked {
                            v["verification"] = checks[k].clone();
                        }
                        if w.satisfied(&view(leads[i], &so_far[i], Some(&v))) {
                            let price = se.cost_model.credits_per_lead;
                            attempts[i].push(attempt(id, Some(&r), "hit", None, price));
                            r.outcome = Outcome::Completed(v);
                            won[i] = Some(Won { step: si, enriched: r, price });
                        } else {
                            let status = v["verification"]["status"].as_str().map(|s| format!(" (verification: {s})"));
                            let why = format!("stopWhen not met{}", status.unwrap_or_default());
                            attempts[i].push(attempt(id, Some(&r), "rejected", Some(why), 0));
                            so_far[i].push((id.to_string(), v));
                        }
                    }
                    Outcome::Skipped { reason } if reason == puffle_domain::providers::MISSING_INPUT => {
                        attempts[i].push(attempt(id, Some(&r), "skipped", Some(reason.into()), 0));
                    }
                    Outcome::Skipped { reason } => {
                        attempts[i].push(attempt(id, Some(&r), "miss", Some(reason.into()), 0))
                    }
                    Outcome::Failed { message, code } => {
                        attempts[i].push(attempt(id, Some(&r), "failed", Some(format!("{code}: {message}")), 0))
                    }
                }
            }
        }
        let validator = e.compile_output().map_err(AppError::Internal)?;
        let mut out = Vec::with_capacity(n);
        for (i, won) in won.into_iter().enumerate() {
            let log = json!(attempts[i]);
            let calls: u32 = attempts[i].iter().map(|a| a.calls).sum();
            let duration: u64 = attempts[i].iter().map(|a| a.duration_ms).sum();
            let mut r = match won {
                Some(Won { step, enriched, price }) => {
                    let Outcome::Completed(v) = &enriched.outcome else { unreachable!("a winner completed") };
                    let result = w.project(v, &w.steps[step].enrichment_id);
                    let mut r = enriched.clone();
                    r.outcome = match validator.validate(&result) {
                        Ok(()) => Outcome::Completed(result),
                        Err(err) => Outcome::Failed {
                            message: format!("the waterfall's result does not match its outputSchema: {err}"),
                            code: codes::INVALID_RESPONSE.into(),
                        },
                    };
                    r.credits = Some(price);
                    r
                }
                None => {
                    let outcome = match conclude(&attempts[i], None) {
                        Conclusion::Skipped(reason) => Outcome::Skipped { reason },
                        Conclusion::Failed { code, message } => Outcome::Failed { code, message },
                        Conclusion::Won { .. } => unreachable!("no winner was given"),
                    };
                    Enriched::new(outcome, format!("waterfall:{}", e.slug))
                }
            };
            r.calls = calls;
            r.duration_ms = duration;
            r.attempts_log = Some(log);
            out.push(r);
        }
        Ok(out)
    }

    /// Runs the check enrichment on each hit's `field` (as the Lead's
    /// email): its result, or null for a miss or a Lead that has no such
    /// field.
    async fn check_hits(
        &self,
        ws: &str,
        check: &Enrichment,
        field: &str,
        leads: &[&Lead],
        results: &[Enriched],
        input: &Value,
    ) -> Result<Vec<Value>, AppError> {
        let mut probes: Vec<Lead> = vec![];
        let mut at: Vec<Option<usize>> = vec![];
        for (lead, r) in leads.iter().zip(results) {
            match &r.outcome {
                Outcome::Completed(v) => match v.get(field).and_then(Value::as_str) {
                    Some(email) => {
                        let mut probe = (*lead).clone();
                        probe.contacts = vec![Contact { kind: "email".into(), value: email.to_string() }];
                        at.push(Some(probes.len()));
                        probes.push(probe);
                    }
                    None => at.push(None),
                },
                _ => at.push(None),
            }
        }
        let refs: Vec<&Lead> = probes.iter().collect();
        let checked =
            if refs.is_empty() { vec![] } else { Box::pin(self.enrich_leads(ws, check, input, &refs)).await? };
        Ok(at
            .into_iter()
            .map(|p| match p.and_then(|k| checked.get(k)).map(|c| &c.outcome) {
                Some(Outcome::Completed(v)) => v.clone(),
                _ => Value::Null,
            })
            .collect())
    }
}
