//! `toolBinding.type = "llm"`: one chat-completions call per Lead through
//! the same guarded path as HTTP providers (circuit, rate limit, egress
//! guard, backon retries on timeouts, 429 and 5xx). An answer that is not
//! JSON or fails the outputSchema is asked again once; a second bad answer
//! fails the Lead with `INVALID_PROVIDER_RESPONSE`. Token usage, summed
//! over its calls, goes into the item's `metadata.usage`. A valid answer
//! gets its `evidence` here (when the outputSchema has one) and passes the
//! `input.minConfidence` gate like an HTTP provider's hit.

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use puffle_domain::binding::llm::{answer_schema, evidence, parse_answer, usage_of, wants_evidence, Answer, Usage};
use puffle_domain::binding::template::{lead_context, render_text, values_used};
use puffle_domain::binding::{LlmBinding, Missing, Rendered, Values};
use puffle_domain::catalog::Enrichment;
use puffle_domain::lead::Lead;
use puffle_domain::providers::{Outcome, MISSING_INPUT};
use puffle_domain::time;
use puffle_egress::StatusCode;
use serde_json::{json, Value};

use super::http::{circuit_open, codes, enriched, min_confidence, outbound, send, Ctx};
use super::Enriched;
use crate::{App, AppError};

/// Calls per Lead for a well-formed answer: the first, and one retry.
const ANSWER_TRIES: u32 = 2;

impl App {
    pub(crate) async fn enrich_llm(
        &self,
        ws: &str,
        e: &Enrichment,
        l: &LlmBinding,
        input: &Value,
        leads: &[&Lead],
    ) -> Result<Vec<Enriched>, AppError> {
        let provider = l.provider_name();
        let catalog = super::secrets::is_catalog(e);
        let (secrets, own_key) = self.secrets_and_source(ws, e).await?;
        let scope = if catalog && !own_key { "catalog".to_string() } else { format!("ws:{ws}") };
        let endpoint = l.endpoint();
        let ctx = Ctx {
            egress: self.egress(3_000.min(l.timeout_ms()))?,
            limiter: self.resilience.limiter(&format!("{scope}/{provider}"), l.rate_per_second()),
            circuit: self.resilience.circuit(
                &format!("{scope}/{}", e.slug),
                l.failure_threshold(),
                Duration::from_secs(l.open_seconds()),
            ),
            // The model's answer is checked against the whole outputSchema,
            // constraints included (the request states some only in words,
            // see `asked_schema`), less `evidence`, which is added after.
            validator: jsonschema::validator_for(&answer_schema(&e.output_schema))
                .map_err(|err| AppError::Internal(format!("outputSchema is not a valid JSON Schema: {err}")))?,
            timeout: Duration::from_millis(l.timeout_ms()),
            max_attempts: l.max_attempts(),
            charge_cache_hits: true,
            status_codes: Default::default(),
            provider,
        };
        let key = secrets.get(&l.api_key_secret).cloned();
        // Futures built first, then run `concurrency` at a time (a stream of
        // closures over borrowed Leads trips the Send check of the worker).
        let futures: Vec<_> =
            leads.iter().map(|lead| one_lead(&ctx, e, l, &endpoint, key.as_deref(), input, lead)).collect();
        Ok(stream::iter(futures).buffered(l.concurrency() as usize).collect().await)
    }
}

async fn one_lead(
    ctx: &Ctx,
    e: &Enrichment,
    l: &LlmBinding,
    endpoint: &str,
    key: Option<&str>,
    input: &Value,
    lead: &Lead,
) -> Enriched {
    // Rendered in a block: the values hold a non-Sync closure that must not
    // live across the call's await.
    let (rendered, used) = {
        let lead_ctx = lead_context(lead);
        let no_secret = |_: &str| None;
        let values = Values { lead: &lead_ctx, input, secret: &no_secret };
        let rendered = render_text(&l.prompt, &values).and_then(|p| {
            let s = l.system.as_deref().map(|s| render_text(s, &values)).transpose()?;
            Ok((s, p))
        });
        let used = wants_evidence(&e.output_schema).then(|| values_used(&l.templates(), &values));
        (rendered, used)
    };
    match (rendered, key) {
        (Err(Missing::Lead(_) | Missing::Input(_)), _) => {
            enriched(ctx, Outcome::Skipped { reason: MISSING_INPUT }, 0, None, false, None)
        }
        (Err(m), _) => enriched(
            ctx,
            Outcome::Failed { message: m.to_string(), code: codes::DISABLED.into() },
            0,
            None,
            false,
            None,
        ),
        (Ok(_), None) => {
            let message = format!("the secret `{}` is not configured", l.api_key_secret);
            enriched(ctx, Outcome::Failed { message, code: codes::DISABLED.into() }, 0, None, false, None)
        }
        (Ok((system, prompt)), Some(key)) => {
            let body = l.request_body(system.as_deref(), &prompt, &e.slug, &e.output_schema);
            let mut r = ask(ctx, endpoint, key, body).await;
            // Evidence is the app's, not the model's: added to the checked answer.
            if let (Outcome::Completed(Value::Object(result)), Some(used)) = (&mut r.outcome, used) {
                result.insert("evidence".into(), evidence(&ctx.provider, &l.model, &time::now(), used));
            }
            Enriched { outcome: min_confidence(r.outcome, input), ..r }
        }
    }
}

/// One Lead: the call (with the transport retries) and, for a malformed
/// answer, one more.
async fn ask(ctx: &Ctx, endpoint: &str, key: &str, body: Value) -> Enriched {
    let started = Instant::now();
    let rendered = Rendered {
        method: "POST".into(),
        url: endpoint.to_string(),
        headers: vec![("Authorization".into(), format!("Bearer {key}"))],
        body: Some(body),
    };
    let req = match outbound(&rendered, ctx.timeout) {
        Ok(r) => r,
        Err(message) => {
            return enriched(ctx, Outcome::Failed { message, code: codes::INVALID_INPUT.into() }, 0, None, false, None)
        }
    };
    let mut usage = Usage::default();
    let mut calls = 0;
    let mut last_problem = String::new();
    let mut status = None;
    let mut outcome = None;
    for _ in 0..ANSWER_TRIES {
        let Some(sent) = send(ctx, req.clone()).await else {
            outcome = Some(circuit_open(&ctx.provider));
            break;
        };
        calls += sent.calls;
        match sent.result {
            Err(err) => {
                status = err.status();
                outcome = Some(err.outcome(&ctx.provider));
                break;
            }
            Ok(f) => {
                status = Some(f.status.as_u16());
                if f.status == StatusCode::NOT_FOUND {
                    let message = format!("{} answered 404: check the model and base URL", ctx.provider);
                    outcome = Some(Outcome::Failed { message, code: codes::ERROR.into() });
                    break;
                }
                usage.add(usage_of(&f.body));
                match parse_answer(&f.body, &ctx.validator) {
                    Answer::Valid(v) => {
                        outcome = Some(Outcome::Completed(v));
                        break;
                    }
                    Answer::Invalid(why) => last_problem = why,
                }
            }
        }
    }
    let outcome = outcome.unwrap_or_else(|| Outcome::Failed {
        message: format!("{} gave no valid answer in {ANSWER_TRIES} tries: {last_problem}", ctx.provider),
        code: codes::INVALID_RESPONSE.into(),
    });
    let mut e = enriched(ctx, outcome, calls, None, false, status);
    e.duration_ms = started.elapsed().as_millis() as u64;
    if usage.calls > 0 {
        e.usage = Some(json!(usage));
    }
    e
}
