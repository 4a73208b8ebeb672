//! Scope shapes of a create request, and the planner's pure rules.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::DomainError;
use crate::filter::LeadFilter;
use crate::ids::is_valid_id;
use crate::lead::LeadType;

/// Explicit scopes name their Leads in the request; beyond this, use a List.
pub const MAX_EXPLICIT_LEADS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Scope {
    ExplicitLeads {
        #[serde(rename = "leadIds")]
        lead_ids: Vec<String>,
        #[serde(rename = "listId", default, skip_serializing_if = "Option::is_none")]
        list_id: Option<String>,
    },
    List {
        #[serde(rename = "listId")]
        list_id: String,
    },
    FilteredList {
        #[serde(rename = "listId")]
        list_id: String,
        filter: LeadFilter,
    },
}

fn allowed(obj: &Map<String, Value>, keys: &[&str], kind: &str) -> Result<(), DomainError> {
    for k in obj.keys() {
        if !keys.contains(&k.as_str()) {
            return Err(DomainError::invalid_with(
                format!("scope of type {kind} takes only {}; `{k}` is not allowed", keys.join(", ")),
                json!({"field": format!("scope.{k}")}),
            ));
        }
    }
    Ok(())
}

fn string_field(obj: &Map<String, Value>, key: &str) -> Result<String, DomainError> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(DomainError::invalid_with(
            format!("scope.{key} must be a non-empty string"),
            json!({"field": format!("scope.{key}")}),
        )),
    }
}

impl Scope {
    /// Parses exactly the contract's three shapes; anything else is a 400.
    pub fn parse(v: &Value) -> Result<Scope, DomainError> {
        let obj = v
            .as_object()
            .ok_or_else(|| DomainError::invalid_with("scope must be an object", json!({"field":"scope"})))?;
        let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "explicit_leads" => {
                allowed(obj, &["type", "leadIds", "listId"], kind)?;
                let ids = obj.get("leadIds").and_then(Value::as_array).ok_or_else(|| {
                    DomainError::invalid_with(
                        "scope.leadIds must be an array of lead ids",
                        json!({"field":"scope.leadIds"}),
                    )
                })?;
                let mut lead_ids = Vec::with_capacity(ids.len());
                for id in ids {
                    match id.as_str() {
                        Some(s) if !s.is_empty() => lead_ids.push(s.to_string()),
                        _ => {
                            return Err(DomainError::invalid_with(
                                "scope.leadIds must hold non-empty strings",
                                json!({"field":"scope.leadIds"}),
                            ))
                        }
                    }
                }
                if lead_ids.len() > MAX_EXPLICIT_LEADS {
                    return Err(DomainError::invalid_with(
                        format!("scope.leadIds holds {} ids; at most {MAX_EXPLICIT_LEADS} (put more Leads in a List and use a list scope)", lead_ids.len()),
                        json!({"field":"scope.leadIds","max":MAX_EXPLICIT_LEADS}),
                    ));
                }
                let list_id = match obj.get("listId") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(string_field(obj, "listId")?),
                };
                Ok(Scope::ExplicitLeads { lead_ids, list_id })
            }
            "list" => {
                allowed(obj, &["type", "listId"], kind)?;
                Ok(Scope::List { list_id: string_field(obj, "listId")? })
            }
            "filtered_list" => {
                allowed(obj, &["type", "listId", "filter"], kind)?;
                let list_id = string_field(obj, "listId")?;
                let filter = LeadFilter::parse(obj.get("filter").unwrap_or(&Value::Null))?;
                Ok(Scope::FilteredList { list_id, filter })
            }
            _ => Err(DomainError::invalid_with(
                "scope.type must be explicit_leads, list or filtered_list",
                json!({"field":"scope.type"}),
            )),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Scope::ExplicitLeads { .. } => "explicit_leads",
            Scope::List { .. } => "list",
            Scope::FilteredList { .. } => "filtered_list",
        }
    }

    pub fn list_id(&self) -> Option<&str> {
        match self {
            Scope::ExplicitLeads { list_id, .. } => list_id.as_deref(),
            Scope::List { list_id } | Scope::FilteredList { list_id, .. } => Some(list_id),
        }
    }

    /// Lead ids in request order, duplicates dropped (one item per Lead).
    pub fn unique_lead_ids(&self) -> Vec<String> {
        match self {
            Scope::ExplicitLeads { lead_ids, .. } => {
                let mut seen = std::collections::HashSet::new();
                lead_ids.iter().filter(|id| seen.insert(id.as_str())).cloned().collect()
            }
            _ => vec![],
        }
    }
}

/// Ids that cannot name a Lead (wrong form) are reported as not found rather
/// than reaching a key: composite keys use `#` as a separator.
pub fn partition_lead_ids(ids: &[String]) -> (Vec<String>, Vec<String>) {
    ids.iter().cloned().partition(|id| is_valid_id(id, "lead"))
}

/// SUBJECT_MISMATCH from a List's counters: any Lead of the other type.
pub fn check_subject_counts(subject: LeadType, person_count: u64, company_count: u64) -> Result<(), DomainError> {
    let other = match subject {
        LeadType::Person => company_count,
        LeadType::Company => person_count,
    };
    if other > 0 {
        return Err(DomainError::planner(
            "SUBJECT_MISMATCH",
            format!(
                "the enrichment's subject is {}, but the scope holds {other} Lead(s) of the other type; narrow it with a filtered_list scope on type",
                subject.as_str()
            ),
            json!({"subject": subject.as_str(), "mismatched": other}),
        ));
    }
    Ok(())
}

/// The most Leads a `filtered_list` scope can resolve to, from the List's
/// counters alone: a create reserves this and never reads the List; the
/// planner applies the filter and releases what it drops. The filter's
/// `type` conditions decide which counter bounds it; a List holding Leads of
/// the other type needs a `type` condition, as a plain List scope does.
pub fn filtered_bound(
    filter: &LeadFilter,
    subject: LeadType,
    person_count: u64,
    company_count: u64,
) -> Result<u64, DomainError> {
    let count = |t: LeadType| if t == LeadType::Person { person_count } else { company_count };
    let other = subject.other();
    match (filter.admits_type(subject), filter.admits_type(other)) {
        (true, true) => check_subject_counts(subject, person_count, company_count).map(|()| count(subject)),
        (true, false) => Ok(count(subject)),
        (false, true) if count(other) > 0 => Err(DomainError::planner(
            "SUBJECT_MISMATCH",
            format!(
                "the enrichment's subject is {}, but the filter admits only {} Leads ({} in the List)",
                subject.as_str(),
                other.as_str(),
                count(other)
            ),
            json!({"subject": subject.as_str(), "mismatched": count(other)}),
        )),
        _ => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_shapes() {
        let s = Scope::parse(&json!({"type":"explicit_leads","leadIds":["a","a","b"]})).unwrap();
        assert_eq!(s.unique_lead_ids(), vec!["a", "b"]);
        assert_eq!(Scope::parse(&json!({"type":"list","listId":"l"})).unwrap().list_id(), Some("l"));
        let f = json!({"type":"filtered_list","listId":"l","filter":{"all":[{"field":"title","op":"exists"}]}});
        assert_eq!(Scope::parse(&f).unwrap().kind(), "filtered_list");
    }

    #[test]
    fn rejects_extra_fields_and_bad_types() {
        for bad in [
            json!({"type":"list","listId":"l","subject":"person"}),
            json!({"type":"list"}),
            json!({"type":"explicit_leads","leadIds":"a"}),
            json!({"type":"explicit_leads","leadIds":[1]}),
            json!({"type":"everything"}),
            json!([]),
            json!({"type":"filtered_list","listId":"l"}),
        ] {
            assert!(matches!(Scope::parse(&bad), Err(DomainError::InvalidRequest { .. })), "{bad}");
        }
    }

    #[test]
    fn too_many_explicit_ids_is_a_shape_error() {
        let ids: Vec<String> = (0..=MAX_EXPLICIT_LEADS).map(|i| format!("lead_{i}")).collect();
        assert!(Scope::parse(&json!({"type":"explicit_leads","leadIds":ids})).is_err());
    }

    #[test]
    fn subject_mismatch_by_counts() {
        assert!(check_subject_counts(LeadType::Person, 5, 0).is_ok());
        assert!(matches!(
            check_subject_counts(LeadType::Person, 5, 1),
            Err(DomainError::Planner { code: "SUBJECT_MISMATCH", .. })
        ));
    }

    #[test]
    fn a_filtered_scope_is_bounded_by_the_list_counters() {
        let filter = |v: Value| LeadFilter::parse(&v).unwrap();
        let title = filter(json!({"all":[{"field":"title","op":"contains","value":"vp"}]}));
        let people =
            filter(json!({"all":[{"field":"type","op":"eq","value":"person"},{"field":"title","op":"exists"}]}));
        let companies = filter(json!({"all":[{"field":"type","op":"eq","value":"company"}]}));
        let nothing = filter(json!({"all":[{"field":"type","op":"not_exists"}]}));
        // A people-only List: the person counter, whatever the filter reads.
        assert_eq!(filtered_bound(&title, LeadType::Person, 7, 0).unwrap(), 7);
        // A mixed List: a type condition picks the counter ...
        assert_eq!(filtered_bound(&people, LeadType::Person, 7, 3).unwrap(), 7);
        assert_eq!(filtered_bound(&companies, LeadType::Company, 7, 3).unwrap(), 3);
        // ... and without one, the other type is a mismatch, as for a List scope.
        let code = |r: Result<u64, DomainError>| match r {
            Err(DomainError::Planner { code, .. }) => code,
            other => panic!("expected a planner rejection, got {other:?}"),
        };
        assert_eq!(code(filtered_bound(&title, LeadType::Person, 7, 3)), "SUBJECT_MISMATCH");
        assert_eq!(code(filtered_bound(&companies, LeadType::Person, 7, 3)), "SUBJECT_MISMATCH");
        // Nothing can match: zero (the create answers EMPTY_LEAD_SCOPE).
        assert_eq!(filtered_bound(&companies, LeadType::Person, 7, 0).unwrap(), 0);
        assert_eq!(filtered_bound(&nothing, LeadType::Person, 7, 3).unwrap(), 0);
    }
}
