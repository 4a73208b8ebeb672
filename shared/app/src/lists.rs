//! Lists and memberships.

use futures::stream::{self, StreamExt};
use puffle_domain::lead::{Lead, LeadType};
use puffle_domain::list::{
    check_lead_ids, check_name, AddLeadsRequest, CreateListRequest, List, ListLeadType, Membership,
};
use puffle_domain::page::PageFill;
use puffle_domain::{ids, time, DomainError};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{App, AppError};

#[derive(Debug, Serialize, Deserialize)]
struct ListsCursor {
    after: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct MembersCursor {
    after: String,
    #[serde(rename = "type")]
    lead_type: Option<LeadType>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListsPage {
    pub lists: Vec<List>,
    pub next_cursor: Option<String>,
}

/// A Lead as seen through a List: the Lead plus its membership.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberLead {
    #[serde(flatten)]
    pub lead: Lead,
    pub membership: MembershipView,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipView {
    pub id: String,
    pub added_at: String,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembersPage {
    pub leads: Vec<MemberLead>,
    pub total: u64,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

fn list_not_found(id: &str) -> AppError {
    AppError::not_found("LIST_NOT_FOUND", format!("no list {id} in this workspace"))
}

impl App {
    pub async fn create_list(&self, ws: &str, req: CreateListRequest) -> Result<List, AppError> {
        let name = check_name(req.name)?;
        if let Some(d) = &req.description {
            if d.chars().count() > 2000 {
                return Err(DomainError::invalid("description must be at most 2000 characters").into());
            }
        }
        let now = time::now();
        let list = List {
            id: ids::list_id(),
            name,
            description: req.description,
            lead_type: req.lead_type.unwrap_or_default(),
            lead_count: 0,
            person_count: 0,
            company_count: 0,
            created_at: now.clone(),
            updated_at: now,
        };
        // Validate the Leads before the List exists, so a bad id leaves nothing behind.
        let to_add = match &req.lead_ids {
            Some(ids) => Some(self.resolve_leads_for(ws, &list, ids).await?),
            None => None,
        };
        self.store().put_list(ws, &list).await?;
        if let Some(leads) = to_add {
            self.store().add_members(ws, &list.id, &leads, &time::now()).await?;
            return self.get_list(ws, &list.id).await;
        }
        Ok(list)
    }

    pub async fn get_list(&self, ws: &str, id: &str) -> Result<List, AppError> {
        if !ids::is_valid_id(id, "list") {
            return Err(list_not_found(id));
        }
        self.store().get_list(ws, id).await?.ok_or_else(|| list_not_found(id))
    }

    pub async fn list_lists(&self, ws: &str, limit: usize, cursor: Option<&str>) -> Result<ListsPage, AppError> {
        let key = self.cursor_key().await?;
        let after = cursor.map(|c| key.decode::<ListsCursor>("lists", c)).transpose()?.map(|c| c.after);
        let (lists, last) = self.store().query_lists(ws, after.as_deref(), limit).await?;
        Ok(ListsPage { lists, next_cursor: last.map(|after| key.encode("lists", &ListsCursor { after })) })
    }

    /// Checks that every id names a Lead of this workspace that the List
    /// accepts; returns (id, type) pairs, duplicates dropped.
    async fn resolve_leads_for(
        &self,
        ws: &str,
        list: &List,
        lead_ids: &[String],
    ) -> Result<Vec<(String, LeadType)>, AppError> {
        check_lead_ids(lead_ids)?;
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<String> = lead_ids.iter().filter(|i| seen.insert(i.as_str())).cloned().collect();
        let (valid, invalid) = puffle_domain::scope::partition_lead_ids(&unique);
        let found = self.store().get_leads(ws, &valid, &[]).await?;
        let missing: Vec<&String> = invalid.iter().chain(valid.iter().filter(|i| !found.contains_key(*i))).collect();
        if !missing.is_empty() {
            return Err(DomainError::planner(
                "LEADS_NOT_FOUND",
                format!("{} lead id(s) do not exist in this workspace", missing.len()),
                json!({"leadIds": missing}),
            )
            .into());
        }
        let wrong: Vec<&String> = valid.iter().filter(|i| !list.lead_type.accepts(found[*i].lead_type)).collect();
        if !wrong.is_empty() {
            let t = match list.lead_type {
                ListLeadType::Person => "person",
                ListLeadType::Company => "company",
                ListLeadType::Mixed => "mixed",
            };
            return Err(DomainError::invalid_with(
                format!("this list holds only {t} leads"),
                json!({"leadIds": wrong}),
            )
            .into());
        }
        Ok(valid.iter().map(|i| (i.clone(), found[i].lead_type)).collect())
    }

    pub async fn add_list_leads(&self, ws: &str, list_id: &str, req: AddLeadsRequest) -> Result<List, AppError> {
        let list = self.get_list(ws, list_id).await?;
        if req.lead_ids.is_empty() {
            return Ok(list);
        }
        let leads = self.resolve_leads_for(ws, &list, &req.lead_ids).await?;
        match self.store().add_members(ws, list_id, &leads, &time::now()).await {
            Err(puffle_aws::StoreError::ConditionFailed) => return Err(list_not_found(list_id)),
            other => other?,
        };
        self.get_list(ws, list_id).await
    }

    pub async fn list_members(
        &self,
        ws: &str,
        list_id: &str,
        lead_type: Option<LeadType>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<MembersPage, AppError> {
        let list = self.get_list(ws, list_id).await?;
        let key = self.cursor_key().await?;
        let scope = format!("members:{list_id}");
        let after = match cursor {
            Some(c) => {
                let c: MembersCursor = key.decode(&scope, c)?;
                if c.lead_type != lead_type {
                    return Err(DomainError::invalid("the cursor belongs to a listing with another `type`").into());
                }
                Some(c.after)
            }
            None => None,
        };
        let page = self.store().query_members(ws, list_id, lead_type, after.as_deref(), limit).await?;
        let mut last = page.last;
        // Each Lead with all its attributes: one query per Lead, 16 at a time,
        // until the page is full (a page of large Leads ends early, with a cursor).
        let mut reads = stream::iter(page.members.into_iter().map(|m: Membership| async move {
            let lead = self.store().get_lead(ws, &m.lead_id).await?;
            Ok::<_, AppError>((
                m.lead_id.clone(),
                lead.map(|lead| MemberLead {
                    lead,
                    membership: MembershipView { id: m.id, added_at: m.added_at, attributes: m.attributes },
                }),
            ))
        }))
        .buffered(16);
        let mut fill = PageFill::new(limit);
        let mut leads: Vec<MemberLead> = vec![];
        let mut through: Option<String> = None;
        while let Some(read) = reads.next().await {
            let (lead_id, member) = read?;
            if let Some(member) = member {
                if !fill.admit_json(&member) {
                    last = through;
                    break;
                }
                leads.push(member);
            }
            through = Some(lead_id);
        }
        let total = match lead_type {
            None => list.lead_count,
            Some(LeadType::Person) => list.person_count,
            Some(LeadType::Company) => list.company_count,
        };
        let next_cursor = last.map(|after| key.encode(&scope, &MembersCursor { after, lead_type }));
        Ok(MembersPage { leads, total, has_more: next_cursor.is_some(), next_cursor })
    }
}
