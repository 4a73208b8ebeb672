//! Leads: batched upsert by stable identifier, get, and paging.

use std::collections::HashMap;

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
    /// index); then identities and existing Leads are read in batches and
    /// everything is written with BatchWriteItem.
    pub async fn upsert_leads(&self, ws: &str, inputs: Vec<Value>) -> Result<Upserted, AppError> {
        if inputs.is_empty() || inputs.len() > MAX_LEADS_PER_UPSERT {
            return Err(DomainError::invalid(format!("send 1..{MAX_LEADS_PER_UPSERT} leads per request")).into());
        }
        let mut parsed = Vec::with_capacity(inputs.len());
        let mut problems = vec![];
        for (i, v) in inputs.into_iter().enumerate() {
            let r = serde_json::from_value::<LeadInput>(v)
                .map_err(|e| DomainError::invalid(e.to_string()))
                .and_then(LeadInput::normalise);
            match r {
                Ok(l) => parsed.push(l),
                Err(e) => problems.push(json!({"index": i, "message": e.to_string()})),
            }
        }
        if !problems.is_empty() {
            let msg = format!("{} lead(s) are invalid; nothing was written", problems.len());
            return Err(DomainError::invalid_with(msg, json!({"errors": problems})).into());
        }

        let all_keys: Vec<String> = parsed.iter().flat_map(|p| p.identity_keys()).collect();
        let mut identity = self.store().lookup_identities(ws, &all_keys).await?;
        let existing_ids: Vec<String> = {
            let mut v: Vec<String> = identity.values().cloned().collect();
            v.sort();
            v.dedup();
            v
        };
        let mut current: HashMap<String, Lead> = self.store().get_leads(ws, &existing_ids, &[]).await?;
        let now = time::now();
        let mut order = Vec::with_capacity(parsed.len());
        let mut created = Vec::with_capacity(parsed.len());
        let mut attr_rows = vec![];
        for input in parsed {
            let keys = input.identity_keys();
            let known = keys.iter().find_map(|k| identity.get(k).cloned());
            let (id, is_new) = match known {
                Some(id) if current.contains_key(&id) => (id, false),
                // An identity whose Lead vanished (or was just made in this
                // batch and not yet in `current`) is reused as the id.
                Some(id) => (id, true),
                None => (ids::lead_id(), true),
            };
            let attrs = input.attributes.clone().unwrap_or_default();
            let lead = input.into_lead(id.clone(), &now, current.remove(&id));
            for k in &keys {
                identity.insert(k.clone(), id.clone());
            }
            for (k, v) in attrs {
                attr_rows.push((id.clone(), lead.lead_type, k, v));
            }
            created.push(is_new && !order.contains(&id));
            order.push(id.clone());
            current.insert(id, lead);
        }
        let mut rows = vec![];
        let mut written = std::collections::HashSet::new();
        for id in &order {
            if written.insert(id.clone()) {
                rows.push(self.store().lead_row(ws, &current[id])?);
            }
        }
        for (k, id) in &identity {
            if written.contains(id) {
                rows.push(self.store().identity_row(ws, k, id));
            }
        }
        for (id, t, k, v) in &attr_rows {
            rows.push(self.store().lead_attr_row(ws, id, *t, k, v, None, &now)?);
            if let Some(l) = current.get_mut(id) {
                l.attributes.insert(k.clone(), v.clone());
            }
        }
        self.store().batch_put(rows).await?;
        Ok(Upserted { leads: order.iter().map(|id| current[id].clone()).collect(), created })
    }

    pub async fn get_lead(&self, ws: &str, id: &str) -> Result<Lead, AppError> {
        let not_found = || AppError::not_found("LEAD_NOT_FOUND", format!("no lead {id} in this workspace"));
        if !ids::is_valid_id(id, "lead") {
            return Err(not_found());
        }
        self.store().get_lead(ws, id).await?.ok_or_else(not_found)
    }

    pub async fn list_leads(&self, ws: &str, lead_type: Option<LeadType>, limit: usize, cursor: Option<&str>) -> Result<LeadsPage, AppError> {
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
