//! Leads, their attributes (one item per key) and identity index.

use std::collections::HashMap;

use puffle_domain::lead::{Lead, LeadType};
use puffle_domain::page::{PageFill, MAX_QUERY_REQUESTS};
use serde_json::Value;

use super::{from_row, get_s, row, s, Row, Store};
use crate::error::{classify, StoreError};
use crate::keys;

pub struct LeadPage {
    pub leads: Vec<Lead>,
    /// Last Lead id of the page when more may follow.
    pub last: Option<String>,
}

/// Splits a row of the Leads partition into (lead id, attribute key).
fn parse_sk(sk: &str) -> (&str, Option<&str>) {
    match sk.split_once(&keys::attr_suffix("")) {
        Some((lead, key)) => (lead, Some(key)),
        None => (sk, None),
    }
}

fn attr_value(r: &Row) -> Result<Value, StoreError> {
    match r.get("value") {
        Some(v) => Ok(serde_dynamo::from_attribute_value(v.clone())?),
        None => Ok(Value::Null),
    }
}

impl Store {
    /// A Lead's item, also under its type in `gsi1` (typed Leads pages read
    /// that index instead of filtering the workspace's partition).
    pub fn lead_row(&self, ws: &str, lead: &Lead) -> Result<Row, StoreError> {
        let t = lead.lead_type.as_str();
        let (gpk, gsk) = keys::lead_by_type(ws, t, &lead.id);
        let mut r = row(lead, keys::lead(ws, &lead.id), &[("leadType", s(t)), ("gsi1pk", s(gpk)), ("gsi1sk", s(gsk))])?;
        r.remove("attributes");
        Ok(r)
    }

    /// An attribute value as its own item, writable by BatchWriteItem.
    pub fn lead_attr_row(&self, ws: &str, lead_type: LeadType, a: &AttrWrite<'_>) -> Result<Row, StoreError> {
        let (pk, sk) = keys::lead_attr(ws, a.lead_id, a.key);
        attr_row(pk, sk, Some(lead_type), a)
    }

    pub fn identity_row(&self, ws: &str, identity: &str, lead_id: &str) -> Row {
        let (pk, sk) = keys::identity(ws, identity);
        [("pk".to_string(), s(pk)), ("sk".to_string(), s(sk)), ("leadId".to_string(), s(lead_id))].into()
    }

    /// Claims identity keys for Lead ids: each Put holds only if the key is
    /// new or already ours. Returns, per claim, whether it holds.
    pub async fn claim_identities(&self, ws: &str, claims: &[(String, String)]) -> Result<Vec<bool>, StoreError> {
        use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
        let mut won = Vec::with_capacity(claims.len());
        for chunk in claims.chunks(100) {
            let actions = chunk
                .iter()
                .map(|(k, id)| {
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(self.table())
                                .set_item(Some(self.identity_row(ws, k, id)))
                                .condition_expression("attribute_not_exists(pk) OR leadId = :id")
                                .expression_attribute_values(":id", s(id))
                                .build()
                                .expect("put"),
                        )
                        .build()
                })
                .collect();
            match self.transact(actions).await {
                Ok(()) => won.extend(std::iter::repeat_n(true, chunk.len())),
                Err(StoreError::TransactionCanceled(codes)) => {
                    // Nothing of a cancelled transaction was written: report
                    // the lost keys; the caller resolves again and retries.
                    won.extend(codes.iter().map(|c| c.as_deref() != Some("ConditionalCheckFailed")));
                    if codes.iter().all(|c| c.as_deref() != Some("ConditionalCheckFailed")) {
                        return Err(StoreError::Unavailable("identity claims conflicted; retry".into()));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(won)
    }

    /// identity key → lead id, for the keys that exist.
    pub async fn lookup_identities(
        &self,
        ws: &str,
        identities: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let rows = self.batch_get(identities.iter().map(|i| keys::identity(ws, i)).collect()).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let sk = get_s(&r, "sk")?;
                Some((sk, get_s(&r, "leadId")?))
            })
            .collect())
    }

    /// Leads by id with only the named attribute keys (batch reads, no query).
    pub async fn get_leads(
        &self,
        ws: &str,
        ids: &[String],
        attr_keys: &[String],
    ) -> Result<HashMap<String, Lead>, StoreError> {
        let mut wanted: Vec<(String, String)> = ids.iter().map(|id| keys::lead(ws, id)).collect();
        for id in ids {
            for k in attr_keys {
                wanted.push(keys::lead_attr(ws, id, k));
            }
        }
        let rows = self.batch_get(wanted).await?;
        let mut leads = HashMap::new();
        let mut attrs = vec![];
        for r in rows {
            let sk = get_s(&r, "sk").unwrap_or_default();
            match parse_sk(&sk) {
                (_, None) => {
                    let lead: Lead = from_row(r)?;
                    leads.insert(lead.id.clone(), lead);
                }
                (lead, Some(key)) => attrs.push((lead.to_string(), key.to_string(), attr_value(&r)?)),
            }
        }
        for (lead, key, value) in attrs {
            if let Some(l) = leads.get_mut(&lead) {
                l.attributes.insert(key, value);
            }
        }
        Ok(leads)
    }

    /// The type of each of `ids` that exists: a projected read of the Lead
    /// rows alone (what a create checks of an explicit scope).
    pub async fn lead_types(&self, ws: &str, ids: &[String]) -> Result<HashMap<String, LeadType>, StoreError> {
        let rows =
            self.batch_get_projected(ids.iter().map(|id| keys::lead(ws, id)).collect(), Some("sk, leadType")).await?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((get_s(r, "sk")?, get_s(r, "leadType").and_then(|t| LeadType::parse(&t))?)))
            .collect())
    }

    /// One Lead with all its attributes: a Query over its key range (more
    /// than one when its attributes pass 1 MB).
    pub async fn get_lead(&self, ws: &str, id: &str) -> Result<Option<Lead>, StoreError> {
        let mut rows = vec![];
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk AND sk BETWEEN :a AND :b")
                .expression_attribute_values(":pk", s(keys::leads_pk(ws)))
                .expression_attribute_values(":a", s(id))
                .expression_attribute_values(":b", s(format!("{id}{}~", keys::attr_suffix(""))))
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(classify)?;
            rows.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(assemble(rows)?.pop());
            }
        }
    }

    /// A page of the workspace's Leads (with attributes) after `after`: all
    /// of them from the Leads partition, one type from its index.
    pub async fn query_leads(
        &self,
        ws: &str,
        lead_type: Option<LeadType>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<LeadPage, StoreError> {
        match lead_type {
            Some(t) => self.query_leads_of_type(ws, t, after, limit).await,
            None => self.query_all_leads(ws, after, limit).await,
        }
    }

    /// Leads and their attribute rows arrive interleaved in key order; a Lead
    /// is complete when the next Lead's row (or the end) is read. DynamoDB's
    /// pages are followed until the page is full; once the requests of one
    /// page are spent, no further Lead is started.
    async fn query_all_leads(&self, ws: &str, after: Option<&str>, limit: usize) -> Result<LeadPage, StoreError> {
        let mut fill = PageFill::new(limit);
        let mut leads: Vec<Lead> = vec![];
        let mut open: Vec<Row> = vec![];
        let mut start = None;
        let mut requests = 0;
        let after_bound = after.map(|a| format!("{a}{}~", keys::attr_suffix("")));
        let more = 'read: loop {
            let mut q = self
                .client()
                .query()
                .table_name(self.table())
                .expression_attribute_values(":pk", s(keys::leads_pk(ws)))
                // A first guess of a Lead and one attribute each, then whole pages.
                .limit(if requests == 0 { ((limit + 1) * 2).min(1000) } else { 1000 } as i32)
                .set_exclusive_start_key(start.take())
                .consistent_read(true);
            q = match &after_bound {
                Some(b) => {
                    q.key_condition_expression("pk = :pk AND sk > :after").expression_attribute_values(":after", s(b))
                }
                None => q.key_condition_expression("pk = :pk"),
            };
            let out = q.send().await.map_err(classify)?;
            requests += 1;
            for r in out.items.unwrap_or_default() {
                let starts_a_lead = parse_sk(&get_s(&r, "sk").unwrap_or_default()).1.is_none();
                if starts_a_lead && !open.is_empty() {
                    if let Some(lead) = assemble(std::mem::take(&mut open))?.pop() {
                        if !fill.admit_json(&lead) {
                            break 'read true;
                        }
                        leads.push(lead);
                    }
                    if fill.is_full() || (requests >= MAX_QUERY_REQUESTS && !leads.is_empty()) {
                        break 'read true; // this row is the next page's first
                    }
                }
                open.push(r);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                match assemble(std::mem::take(&mut open))?.pop() {
                    Some(lead) if !fill.admit_json(&lead) => break 'read true,
                    Some(lead) => leads.push(lead),
                    None => {}
                }
                break 'read false;
            }
        };
        let last = if more { leads.last().map(|l| l.id.clone()) } else { None };
        Ok(LeadPage { leads, last })
    }

    /// Ids from the type index (`gsi1`: only this type's Leads are read),
    /// then each Lead with its attributes, 16 at a time.
    async fn query_leads_of_type(
        &self,
        ws: &str,
        lead_type: LeadType,
        after: Option<&str>,
        limit: usize,
    ) -> Result<LeadPage, StoreError> {
        use futures::stream::{self, StreamExt};
        let (pk, _) = keys::lead_by_type(ws, lead_type.as_str(), "");
        let mut ids: Vec<String> = vec![];
        let mut start = None;
        let mut more = true;
        for _ in 0..MAX_QUERY_REQUESTS {
            let q = self
                .client()
                .query()
                .table_name(self.table())
                .index_name("gsi1")
                .expression_attribute_values(":pk", s(&pk))
                .projection_expression("sk")
                .limit((limit + 1 - ids.len()) as i32)
                .set_exclusive_start_key(start.take());
            let q = match after {
                Some(a) => {
                    q.key_condition_expression("gsi1pk = :pk AND gsi1sk > :a").expression_attribute_values(":a", s(a))
                }
                None => q.key_condition_expression("gsi1pk = :pk"),
            };
            let out = q.send().await.map_err(classify)?;
            ids.extend(out.items.unwrap_or_default().iter().filter_map(|r| get_s(r, "sk")));
            start = out.last_evaluated_key;
            if ids.len() > limit || start.is_none() {
                more = ids.len() > limit;
                break;
            }
        }
        ids.truncate(limit);
        let reads: Vec<_> = ids.iter().map(|id| self.get_lead(ws, id)).collect();
        let mut reads = stream::iter(reads).buffered(16);
        let mut fill = PageFill::new(limit);
        let mut leads = vec![];
        while let Some(lead) = reads.next().await {
            // The index is eventually consistent; the Lead itself is read strongly.
            let Some(lead) = lead? else { continue };
            if !fill.admit_json(&lead) {
                more = true;
                break;
            }
            leads.push(lead);
        }
        let last = if more { leads.last().map(|l| l.id.clone()) } else { None };
        Ok(LeadPage { leads, last })
    }
}

/// One attribute value to write (a Lead's or a membership's).
pub struct AttrWrite<'a> {
    pub lead_id: &'a str,
    pub key: &'a str,
    pub value: &'a Value,
    /// The run that wrote it (`skip_existing` tells a run's own values apart).
    pub run_id: Option<&'a str>,
    pub now: &'a str,
}

pub(crate) fn attr_row(
    pk: String,
    sk: String,
    lead_type: Option<LeadType>,
    a: &AttrWrite<'_>,
) -> Result<Row, StoreError> {
    let mut r: Row = [
        ("pk".to_string(), s(pk)),
        ("sk".to_string(), s(sk)),
        ("leadId".to_string(), s(a.lead_id)),
        ("key".to_string(), s(a.key)),
        ("value".to_string(), serde_dynamo::to_attribute_value(a.value)?),
        ("updatedAt".to_string(), s(a.now)),
    ]
    .into();
    if let Some(t) = lead_type {
        r.insert("leadType".into(), s(t.as_str()));
    }
    if let Some(run) = a.run_id {
        r.insert("runId".into(), s(run));
    }
    Ok(r)
}

/// Rows of the Leads partition in key order → Leads with their attributes.
fn assemble(rows: Vec<Row>) -> Result<Vec<Lead>, StoreError> {
    let mut leads: Vec<Lead> = vec![];
    for r in rows {
        let sk = get_s(&r, "sk").unwrap_or_default();
        match parse_sk(&sk) {
            (_, None) => leads.push(from_row(r)?),
            (lead, Some(key)) => {
                if let Some(l) = leads.last_mut().filter(|l| l.id == lead) {
                    l.attributes.insert(key.to_string(), attr_value(&r)?);
                }
            }
        }
    }
    Ok(leads)
}
