//! Lists, memberships (one item each) and membership attributes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use puffle_domain::lead::LeadType;
use puffle_domain::list::{List, Membership};
use puffle_domain::page::{PageFill, MAX_QUERY_REQUESTS};
use serde_json::Value;

use super::{from_row, get_s, key_of, n, row, s, Row, Store};
use crate::error::{classify, StoreError};
use crate::keys;

pub struct MemberRow {
    pub lead_id: String,
    pub lead_type: LeadType,
    pub added_at: String,
}

pub struct MemberPage {
    pub members: Vec<Membership>,
    pub last: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AddOutcome {
    pub added: u64,
    pub already: u64,
}

impl Store {
    pub async fn put_list(&self, ws: &str, list: &List) -> Result<(), StoreError> {
        let item = row(list, keys::list(ws, &list.id), &[])?;
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub async fn get_list(&self, ws: &str, id: &str) -> Result<Option<List>, StoreError> {
        self.get_row(keys::list(ws, id)).await?.map(from_row).transpose()
    }

    /// A page of Lists in id order, following DynamoDB's pages (each ends at
    /// 1 MB) until the page is full or the Lists end.
    pub async fn query_lists(
        &self,
        ws: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<List>, Option<String>), StoreError> {
        let mut fill = PageFill::new(limit);
        let mut lists: Vec<List> = vec![];
        let mut start = None;
        let mut more = true;
        'pages: for _ in 0..MAX_QUERY_REQUESTS {
            let mut q = self
                .client()
                .query()
                .table_name(self.table())
                .expression_attribute_values(":pk", s(keys::lists_pk(ws)))
                .limit((limit + 1 - lists.len()) as i32)
                .set_exclusive_start_key(start.take())
                .consistent_read(true);
            q = match after {
                Some(a) => q.key_condition_expression("pk = :pk AND sk > :a").expression_attribute_values(":a", s(a)),
                None => q.key_condition_expression("pk = :pk"),
            };
            let out = q.send().await.map_err(classify)?;
            for r in out.items.unwrap_or_default() {
                let list: List = from_row(r)?;
                if !fill.admit_json(&list) {
                    break 'pages;
                }
                lists.push(list);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                more = false;
                break;
            }
        }
        let last = if more { lists.last().map(|l| l.id.clone()) } else { None };
        Ok((lists, last))
    }

    /// Adds memberships; counters move in the same transaction as the
    /// membership items, so concurrent overlapping adds stay exact. A Lead
    /// already in the List is dropped from the batch and the rest retried.
    pub async fn add_members(
        &self,
        ws: &str,
        list_id: &str,
        leads: &[(String, LeadType)],
        now: &str,
    ) -> Result<AddOutcome, StoreError> {
        let mut outcome = AddOutcome::default();
        for chunk in leads.chunks(99) {
            let mut batch: Vec<(String, LeadType)> = chunk.to_vec();
            let mut rounds = 0;
            while !batch.is_empty() {
                rounds += 1;
                if rounds > 120 {
                    return Err(StoreError::Unavailable("list is too contended; retry".into()));
                }
                let persons = batch.iter().filter(|(_, t)| *t == LeadType::Person).count();
                let companies = batch.len() - persons;
                let mut actions = vec![TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(self.table())
                            .set_key(Some(key_of(keys::list(ws, list_id))))
                            .update_expression("SET leadCount = leadCount + :n, personCount = personCount + :p, companyCount = companyCount + :c, updatedAt = :now")
                            .condition_expression("attribute_exists(pk)")
                            .expression_attribute_values(":n", n(batch.len()))
                            .expression_attribute_values(":p", n(persons))
                            .expression_attribute_values(":c", n(companies))
                            .expression_attribute_values(":now", s(now))
                            .build()
                            .expect("update"),
                    )
                    .build()];
                for (lead, t) in &batch {
                    let m = Membership {
                        id: puffle_domain::item::membership_id(list_id, lead),
                        list_id: list_id.to_string(),
                        lead_id: lead.clone(),
                        lead_type: *t,
                        added_at: now.to_string(),
                        attributes: Default::default(),
                    };
                    actions.push(self.put_new(self.member_row(ws, &m)?));
                }
                match self.transact(actions).await {
                    Ok(()) => {
                        outcome.added += batch.len() as u64;
                        batch.clear();
                    }
                    Err(StoreError::TransactionCanceled(codes)) => {
                        if codes.first().is_some_and(|c| c.as_deref() == Some("ConditionalCheckFailed")) {
                            return Err(StoreError::ConditionFailed); // the List is gone
                        }
                        let exists: Vec<bool> =
                            codes.iter().skip(1).map(|c| c.as_deref() == Some("ConditionalCheckFailed")).collect();
                        if !exists.iter().any(|e| *e) {
                            // Conflicts with other writers only: try again after a pause.
                            tokio::time::sleep(std::time::Duration::from_millis(5 + rand::random::<u64>() % 40)).await;
                            continue;
                        }
                        let before = batch.len();
                        batch = batch.into_iter().zip(exists).filter(|(_, e)| !e).map(|(b, _)| b).collect();
                        outcome.already += (before - batch.len()) as u64;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(outcome)
    }

    /// A membership item: `LIST#{ws}#{list}` / `M#{lead}`, and in `gsi1`
    /// under its List and type, so a typed List page reads only that type.
    pub fn member_row(&self, ws: &str, m: &Membership) -> Result<Row, StoreError> {
        let (gpk, gsk) = keys::member_by_type(ws, &m.list_id, m.lead_type.as_str(), &m.lead_id);
        let mut item = row(m, keys::member(ws, &m.list_id, &m.lead_id), &[("gsi1pk", s(gpk)), ("gsi1sk", s(gsk))])?;
        item.remove("attributes");
        Ok(item)
    }

    /// Lead ids already in the List (for reporting; adds rely on conditions).
    pub async fn members_of(
        &self,
        ws: &str,
        list_id: &str,
        lead_ids: &[String],
    ) -> Result<HashMap<String, Membership>, StoreError> {
        let rows = self.batch_get(lead_ids.iter().map(|l| keys::member(ws, list_id, l)).collect()).await?;
        rows.into_iter().map(|r| from_row::<Membership>(r).map(|m| (m.lead_id.clone(), m))).collect()
    }

    /// One page of memberships in Lead id order, for the planner: exactly
    /// `limit` rows are read, so a replayed step reads the same page.
    pub async fn member_page(
        &self,
        ws: &str,
        list_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<MemberRow>, Option<String>), StoreError> {
        let mut q = self
            .client()
            .query()
            .table_name(self.table())
            .expression_attribute_values(":pk", s(keys::members_pk(ws, list_id)))
            .limit(limit as i32)
            .consistent_read(true);
        q = match after {
            Some(a) => q
                .key_condition_expression("pk = :pk AND sk > :a")
                .expression_attribute_values(":a", s(format!("M#{a}"))),
            None => q.key_condition_expression("pk = :pk"),
        };
        let out = q.send().await.map_err(classify)?;
        let rows: Vec<MemberRow> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| {
                Some(MemberRow {
                    lead_id: get_s(&r, "leadId")?,
                    lead_type: LeadType::parse(&get_s(&r, "leadType")?)?,
                    added_at: get_s(&r, "addedAt").unwrap_or_default(),
                })
            })
            .collect();
        let last = out.last_evaluated_key.and(rows.last().map(|r| r.lead_id.clone()));
        Ok((rows, last))
    }

    /// A page of memberships with their own attributes (for the API), in
    /// Lead id order: `limit` of them, or fewer with `last` set when the
    /// requests of one page ran out. A `type` reads the List's type index,
    /// never the members of other types.
    pub async fn query_members(
        &self,
        ws: &str,
        list_id: &str,
        lead_type: Option<LeadType>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<MemberPage, StoreError> {
        let mut members: Vec<Membership> = vec![];
        let mut start = None;
        let mut more = true;
        for _ in 0..MAX_QUERY_REQUESTS {
            let mut q = self.client().query().table_name(self.table()).limit((limit + 1 - members.len()) as i32);
            q = match lead_type {
                Some(t) => {
                    let (pk, _) = keys::member_by_type(ws, list_id, t.as_str(), "");
                    let q = q.index_name("gsi1").expression_attribute_values(":pk", s(pk));
                    match after {
                        Some(a) => q
                            .key_condition_expression("gsi1pk = :pk AND gsi1sk > :a")
                            .expression_attribute_values(":a", s(a)),
                        None => q.key_condition_expression("gsi1pk = :pk"),
                    }
                }
                None => q
                    .key_condition_expression("pk = :pk AND sk > :a")
                    .expression_attribute_values(":pk", s(keys::members_pk(ws, list_id)))
                    .expression_attribute_values(":a", s(format!("M#{}", after.unwrap_or(""))))
                    .consistent_read(true),
            };
            let out = q.set_exclusive_start_key(start.take()).send().await.map_err(classify)?;
            members.extend(out.items.unwrap_or_default().into_iter().filter_map(|r| {
                let lead_id = get_s(&r, "leadId")?;
                Some(Membership {
                    id: puffle_domain::item::membership_id(list_id, &lead_id),
                    list_id: list_id.to_string(),
                    lead_type: LeadType::parse(&get_s(&r, "leadType")?)?,
                    added_at: get_s(&r, "addedAt").unwrap_or_default(),
                    lead_id,
                    attributes: Default::default(),
                })
            }));
            start = out.last_evaluated_key;
            if members.len() > limit || start.is_none() {
                more = members.len() > limit;
                break;
            }
        }
        members.truncate(limit);
        let attrs = match (lead_type, members.first(), members.last()) {
            // The page's membership attributes: one range query, when the
            // page is a run of the List's members.
            (None, Some(first), Some(last)) => {
                self.member_attrs_range(ws, list_id, &first.lead_id, &last.lead_id).await?
            }
            // A typed page is spread over the List: one query per member.
            (Some(_), _, _) => {
                use futures::stream::{self, StreamExt, TryStreamExt};
                let each: Vec<_> =
                    members.iter().map(|m| self.member_attrs_range(ws, list_id, &m.lead_id, &m.lead_id)).collect();
                stream::iter(each)
                    .buffered(16)
                    .try_fold(HashMap::new(), |mut all, one| async move {
                        all.extend(one);
                        Ok(all)
                    })
                    .await?
            }
            _ => HashMap::new(),
        };
        for m in members.iter_mut() {
            if let Some(a) = attrs.get(&m.lead_id) {
                m.attributes = a.clone();
            }
        }
        let last = if more { members.last().map(|m| m.lead_id.clone()) } else { None };
        Ok(MemberPage { members, last })
    }

    async fn member_attrs_range(
        &self,
        ws: &str,
        list_id: &str,
        first: &str,
        last: &str,
    ) -> Result<HashMap<String, serde_json::Map<String, Value>>, StoreError> {
        let mut out_map: HashMap<String, serde_json::Map<String, Value>> = HashMap::new();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk AND sk BETWEEN :a AND :b")
                .expression_attribute_values(":pk", s(keys::member_attrs_pk(ws, list_id)))
                .expression_attribute_values(":a", s(first))
                .expression_attribute_values(":b", s(format!("{last}{}~", keys::attr_suffix(""))))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(classify)?;
            for r in out.items.unwrap_or_default() {
                if let (Some(lead), Some(key), Some(v)) = (get_s(&r, "leadId"), get_s(&r, "key"), r.get("value")) {
                    let v: Value = serde_dynamo::from_attribute_value(v.clone())?;
                    out_map.entry(lead).or_default().insert(key, v);
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(out_map);
            }
        }
    }

    pub fn member_attr_row(&self, ws: &str, list_id: &str, a: &super::AttrWrite<'_>) -> Result<Row, StoreError> {
        let (pk, sk) = keys::member_attr(ws, list_id, a.lead_id, a.key);
        super::leads::attr_row(pk, sk, None, a)
    }

    /// Membership attributes of the named keys, for skip_existing checks.
    pub async fn get_member_attrs(
        &self,
        ws: &str,
        list_id: &str,
        lead_ids: &[String],
        key: &str,
    ) -> Result<HashMap<String, Row>, StoreError> {
        let rows = self.batch_get(lead_ids.iter().map(|l| keys::member_attr(ws, list_id, l, key)).collect()).await?;
        Ok(rows.into_iter().filter_map(|r| Some((get_s(&r, "leadId")?, r))).collect())
    }

    /// Lead attribute rows of one key, for skip_existing checks.
    pub async fn get_lead_attrs(
        &self,
        ws: &str,
        lead_ids: &[String],
        key: &str,
    ) -> Result<HashMap<String, Row>, StoreError> {
        let rows = self.batch_get(lead_ids.iter().map(|l| keys::lead_attr(ws, l, key)).collect()).await?;
        Ok(rows.into_iter().filter_map(|r| Some((get_s(&r, "leadId")?, r))).collect())
    }
}
