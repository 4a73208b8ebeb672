//! Leads: batched upsert by stable identifier, get, and paging.

use std::collections::{BTreeMap, HashMap, HashSet};

use puffle_domain::identity::match_lead;
use puffle_domain::lead::{Lead, LeadInput, LeadType};
use puffle_domain::{ids, time, DomainError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{App, AppError};

pub const MAX_LEADS_PER_UPSERT: usize = 1000;

#[derive(Debug, Serialize)]
pub struct Upserted {
    /// In input order; an input repeated in one batch maps to the same Lead.
    pub leads: Vec<Lead>,
    pub created: Vec<bool>,
}

/// Inputs matched to Lead ids (in memory; nothing written yet).
struct Resolution {
    order: Vec<String>,
    created: Vec<bool>,
    leads: HashMap<String, Lead>,
    /// (lead id, key) → value: a key set twice for one Lead keeps the later
    /// value, so one BatchWriteItem never holds the same item twice.
    attrs: BTreeMap<(String, String), (LeadType, Value)>,
    /// Identifiers not yet in the store: (identity key, lead id).
    claims: Vec<(String, String)>,
}

/// Matches every input to a Lead (see [`match_lead`]); an input that meets
/// a Lead met earlier in the batch is applied on top of it, so the later
/// one wins field by field and attribute by attribute.
fn resolve(
    parsed: &[LeadInput],
    mut holders: HashMap<String, String>,
    mut current: HashMap<String, Lead>,
    ours: &HashSet<String>,
    now: &str,
) -> Resolution {
    let stored: HashSet<String> = holders.keys().cloned().collect();
    let mut r =
        Resolution { order: vec![], created: vec![], leads: HashMap::new(), attrs: BTreeMap::new(), claims: vec![] };
    for input in parsed {
        let identity = input.identity();
        let known = match_lead(
            &identity,
            |k| holders.get(k.as_str()).cloned(),
            |id| current.get(id).or_else(|| r.leads.get(id)).map(|l| !l.identity().strong.is_empty()),
        );
        // A known id whose Lead we cannot read is being written: by an
        // earlier round of this request (still a creation), or by another
        // request, which reports the creation (this one an update).
        let (id, is_new) = match known {
            Some(id) => {
                let new = !current.contains_key(&id) && !r.leads.contains_key(&id) && ours.contains(&id);
                (id, new)
            }
            None => (ids::lead_id(), true),
        };
        let lead = input.clone().into_lead(id.clone(), now, current.remove(&id).or_else(|| r.leads.remove(&id)));
        for k in identity.keys() {
            if !holders.contains_key(k.as_str()) {
                holders.insert(k.as_str().to_string(), id.clone());
                if !stored.contains(k.as_str()) {
                    r.claims.push((k.as_str().to_string(), id.clone()));
                }
            }
        }
        for (k, v) in input.attributes.clone().unwrap_or_default() {
            r.attrs.insert((id.clone(), k), (lead.lead_type, v));
        }
        r.created.push(is_new);
        r.order.push(id.clone());
        r.leads.insert(id, lead);
    }
    r
}

#[derive(Debug, Serialize, Deserialize)]
struct LeadsCursor {
    after: String,
    #[serde(rename = "type")]
    lead_type: Option<LeadType>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadsPage {
    pub leads: Vec<Lead>,
    pub next_cursor: Option<String>,
}

impl App {
    /// Creates or updates Leads matched by their stable identifiers. Every
    /// input is validated first (one bad Lead rejects the request with its
    /// index, nothing written). Inputs that are one Lead are merged, the
    /// later winning, so what is written holds each item once and the store
    /// has nothing left to refuse. New identifiers are claimed with
    /// conditional transactions before any Lead is written, so two
    /// concurrent imports of one new email make one Lead, and a retry after
    /// a failure finds the ids the first attempt chose.
    pub async fn upsert_leads(&self, ws: &str, inputs: Vec<Value>) -> Result<Upserted, AppError> {
        if inputs.is_empty() || inputs.len() > MAX_LEADS_PER_UPSERT {
            return Err(DomainError::invalid(format!("send 1..{MAX_LEADS_PER_UPSERT} leads per request")).into());
        }
        let mut parsed = Vec::with_capacity(inputs.len());
        let mut problems = vec![];
        for (i, v) in inputs.into_iter().enumerate() {
            match LeadInput::from_json(v) {
                Ok(l) => parsed.push(l),
                Err(e) => problems.push(json!({"index": i, "message": e.to_string()})),
            }
        }
        if !problems.is_empty() {
            let msg = format!("{} lead(s) are invalid; nothing was written", problems.len());
            return Err(DomainError::invalid_with(msg, json!({"errors": problems})).into());
        }
        let all_keys: Vec<String> = parsed
            .iter()
            .flat_map(|p| p.identity().keys().map(|k| k.as_str().to_string()).collect::<Vec<_>>())
            .collect();
        let now = time::now();
        // A lost claim means another request created that Lead a moment ago:
        // resolve again, now as an update of theirs.
        let mut ours = HashSet::new();
        for _ in 0..5 {
            let identity = self.store().lookup_identities(ws, &all_keys).await?;
            let mut existing_ids: Vec<String> = identity.values().cloned().collect();
            existing_ids.sort();
            existing_ids.dedup();
            let current = self.store().get_leads(ws, &existing_ids, &[]).await?;
            let plan = resolve(&parsed, identity, current, &ours, &now);
            let won = self.store().claim_identities(ws, &plan.claims).await?;
            if won.iter().all(|w| *w) {
                return self.write_resolved(ws, plan, &now).await;
            }
            // Leads whose claims committed are still ours to create (ids of a
            // cancelled transaction were written nowhere and never come back).
            ours.extend(plan.claims.iter().zip(&won).filter(|(_, w)| **w).map(|((_, id), _)| id.clone()));
        }
        Err(AppError::Unavailable("these leads are being written by another request; retry".into()))
    }

    async fn write_resolved(&self, ws: &str, plan: Resolution, now: &str) -> Result<Upserted, AppError> {
        let Resolution { order, created, mut leads, attrs, .. } = plan;
        let mut rows = vec![];
        let mut written = std::collections::HashSet::new();
        for id in &order {
            if written.insert(id.clone()) {
                rows.push(self.store().lead_row(ws, &leads[id])?);
            }
        }
        for ((id, k), (t, v)) in &attrs {
            let a = puffle_aws::store::AttrWrite { lead_id: id, key: k, value: v, run_id: None, now };
            rows.push(self.store().lead_attr_row(ws, *t, &a)?);
            if let Some(l) = leads.get_mut(id) {
                l.attributes.insert(k.clone(), v.clone());
            }
        }
        self.store().batch_put(rows).await?;
        Ok(Upserted { leads: order.iter().map(|id| leads[id].clone()).collect(), created })
    }
    pub async fn get_lead(&self, ws: &str, id: &str) -> Result<Lead, AppError> {
        let not_found = || AppError::not_found("LEAD_NOT_FOUND", format!("no lead {id} in this workspace"));
        if !ids::is_valid_id(id, "lead") {
            return Err(not_found());
        }
        self.store().get_lead(ws, id).await?.ok_or_else(not_found)
    }

    pub async fn list_leads(
        &self,
        ws: &str,
        lead_type: Option<LeadType>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<LeadsPage, AppError> {
        let key = self.cursor_key().await?;
        let after = match cursor {
            Some(c) => {
                let c: LeadsCursor = key.decode("leads", c)?;
                if c.lead_type != lead_type {
                    return Err(DomainError::invalid("the cursor belongs to a listing with another `type`").into());
                }
                Some(c.after)
            }
            None => None,
        };
        let page = self.store().query_leads(ws, lead_type, after.as_deref(), limit).await?;
        let next_cursor = page.last.map(|after| key.encode("leads", &LeadsCursor { after, lead_type }));
        Ok(LeadsPage { leads: page.leads, next_cursor })
    }
}

/// A `POST /api/leads` body: one Lead object, or `{"leads": [...]}`.
#[derive(Debug)]
pub enum UpsertBody {
    One(Value),
    Batch(Vec<Value>),
}

impl UpsertBody {
    /// The batch rules: a batch body holds only `leads`, an array of
    /// 1..=MAX_LEADS_PER_UPSERT Leads; anything else that is an object is one Lead.
    pub fn parse(body: Value) -> Result<UpsertBody, DomainError> {
        match body {
            Value::Object(mut m) if m.contains_key("leads") => {
                if m.len() != 1 {
                    return Err(DomainError::invalid("a batch body holds only `leads`"));
                }
                let list = match m.remove("leads") {
                    Some(Value::Array(a)) => a,
                    _ => return Err(DomainError::invalid("`leads` must be an array")),
                };
                if list.is_empty() || list.len() > MAX_LEADS_PER_UPSERT {
                    return Err(DomainError::invalid_with(
                        format!("`leads` holds {} leads; send 1..{MAX_LEADS_PER_UPSERT}", list.len()),
                        json!({"field": "leads", "max": MAX_LEADS_PER_UPSERT}),
                    ));
                }
                Ok(UpsertBody::Batch(list))
            }
            one @ Value::Object(_) => Ok(UpsertBody::One(one)),
            _ => Err(DomainError::invalid("send one Lead object or {\"leads\": [...]}")),
        }
    }
}

#[cfg(test)]
mod upsert_body_tests {
    use super::*;

    #[test]
    fn batch_rules() {
        assert!(matches!(UpsertBody::parse(json!({"leads": [{}]})), Ok(UpsertBody::Batch(v)) if v.len() == 1));
        assert!(matches!(UpsertBody::parse(json!({"type": "person"})), Ok(UpsertBody::One(_))));
        assert!(UpsertBody::parse(json!({"leads": []})).is_err());
        assert!(UpsertBody::parse(json!({"leads": {}})).is_err());
        assert!(UpsertBody::parse(json!({"leads": [{}], "x": 1})).is_err());
        assert!(UpsertBody::parse(json!([{}])).is_err());
        let too_many = Value::Array(vec![json!({}); MAX_LEADS_PER_UPSERT + 1]);
        assert!(UpsertBody::parse(json!({ "leads": too_many })).is_err());
    }
}
