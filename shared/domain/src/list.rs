//! Lists: named sets of references to Leads, and their memberships.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::DomainError;
use crate::lead::LeadType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ListLeadType {
    Person,
    Company,
    #[default]
    Mixed,
}

impl ListLeadType {
    pub fn accepts(self, t: LeadType) -> bool {
        match self {
            ListLeadType::Mixed => true,
            ListLeadType::Person => t == LeadType::Person,
            ListLeadType::Company => t == LeadType::Company,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct List {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub lead_type: ListLeadType,
    pub lead_count: u64,
    pub person_count: u64,
    pub company_count: u64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateListRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub lead_type: Option<ListLeadType>,
    #[serde(default)]
    pub lead_ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddLeadsRequest {
    pub lead_ids: Vec<String>,
}

/// Lead ids one add request may carry.
pub const MAX_ADD_LEADS: usize = 1000;

pub fn check_name(name: Option<String>) -> Result<String, DomainError> {
    let n = name.map(|n| n.trim().to_string()).unwrap_or_default();
    let n = if n.is_empty() { "Untitled list".to_string() } else { n };
    if n.chars().count() > 200 {
        return Err(DomainError::invalid("name must be at most 200 characters"));
    }
    Ok(n)
}

pub fn check_lead_ids(ids: &[String]) -> Result<(), DomainError> {
    if ids.len() > MAX_ADD_LEADS {
        return Err(DomainError::invalid(format!("at most {MAX_ADD_LEADS} leadIds per request")));
    }
    Ok(())
}

/// A Lead in a List. Its own attributes hold membership-scoped output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub id: String,
    pub list_id: String,
    pub lead_id: String,
    pub lead_type: LeadType,
    pub added_at: String,
    #[serde(default)]
    pub attributes: serde_json::Map<String, Value>,
}
