//! Lead filters for `filtered_list` scopes.
//!
//! `{"all":[{"field","op","value"?}]}`: every condition must hold. Fields:
//! `type`, `title`, `company.domain`, `company.name`, `location.country`,
//! `attributes.<key>[.<path>]`. Ops: `eq`, `neq` (strings compare
//! case-insensitively, other JSON values exactly), `contains` (strings,
//! case-insensitive), `exists`, `not_exists`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::DomainError;
use crate::lead::{validate_attribute_key, Lead, LeadType};

pub const MAX_CONDITIONS: usize = 20;
/// A filter is stored on its run and rewritten with it: its JSON is capped,
/// so no filter can push the run item toward DynamoDB's 400 KB.
pub const MAX_FILTER_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadFilter {
    pub all: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Neq,
    Contains,
    Exists,
    NotExists,
}

const PLAIN_FIELDS: &[&str] = &["type", "title", "company.domain", "company.name", "location.country"];

impl LeadFilter {
    /// Parses and checks a filter; every problem is a 400 INVALID_REQUEST.
    pub fn parse(v: &Value) -> Result<LeadFilter, DomainError> {
        let size = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
        if size > MAX_FILTER_BYTES {
            return Err(DomainError::invalid_with(
                format!("scope.filter is {size} bytes of JSON; at most {MAX_FILTER_BYTES}"),
                json!({"field": "scope.filter", "maxBytes": MAX_FILTER_BYTES}),
            ));
        }
        let f: LeadFilter = serde_json::from_value(v.clone()).map_err(|e| {
            DomainError::invalid_with(format!("scope.filter is malformed: {e}"), json!({"field": "scope.filter"}))
        })?;
        if f.all.is_empty() || f.all.len() > MAX_CONDITIONS {
            return Err(DomainError::invalid(format!("scope.filter.all needs 1..{MAX_CONDITIONS} conditions")));
        }
        for (i, c) in f.all.iter().enumerate() {
            let bad = |m: String| DomainError::invalid_with(m, json!({"field": format!("scope.filter.all[{i}]")}));
            if !PLAIN_FIELDS.contains(&c.field.as_str()) {
                match c.field.strip_prefix("attributes.") {
                    Some(rest) => {
                        let key = rest.split('.').next().unwrap_or("");
                        validate_attribute_key(key).map_err(|e| bad(e.to_string()))?;
                    }
                    None => {
                        return Err(bad(format!(
                            "unknown filter field `{}`; use one of {} or attributes.<key>",
                            c.field,
                            PLAIN_FIELDS.join(", ")
                        )))
                    }
                }
            }
            match (c.op, &c.value) {
                (Op::Exists | Op::NotExists, Some(_)) => {
                    return Err(bad(format!("op `{:?}` takes no value", c.op).to_lowercase()))
                }
                (Op::Eq | Op::Neq, None) => return Err(bad("eq and neq need a value".into())),
                (Op::Contains, v) if !matches!(v, Some(Value::String(_))) => {
                    return Err(bad("contains needs a string value".into()))
                }
                _ => {}
            }
            if c.field == "type" {
                if let Some(v) = &c.value {
                    if v.as_str().and_then(LeadType::parse).is_none() {
                        return Err(bad("type compares with \"person\" or \"company\"".into()));
                    }
                }
            }
        }
        Ok(f)
    }

    /// Attribute keys the filter reads (the planner fetches only these).
    pub fn attribute_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .all
            .iter()
            .filter_map(|c| c.field.strip_prefix("attributes."))
            .map(|r| r.split('.').next().unwrap_or("").to_string())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Whether a Lead of type `t` can pass the filter's `type` conditions
    /// (the others are unknown until the Lead is read). Lets a create bound
    /// a filtered scope by the List's counters without reading the List.
    pub fn admits_type(&self, t: LeadType) -> bool {
        let bare = Lead { lead_type: t, ..Default::default() };
        self.all.iter().filter(|c| c.field == "type").all(|c| c.matches(&bare))
    }

    pub fn matches(&self, lead: &Lead) -> bool {
        self.all.iter().all(|c| c.matches(lead))
    }
}

impl Condition {
    fn lookup(&self, lead: &Lead) -> Option<Value> {
        if let Some(rest) = self.field.strip_prefix("attributes.") {
            let mut parts = rest.split('.');
            let mut v = lead.attributes.get(parts.next()?)?.clone();
            for p in parts {
                v = v.get(p)?.clone();
            }
            return (!v.is_null()).then_some(v);
        }
        lead.field(&self.field)
    }

    pub fn matches(&self, lead: &Lead) -> bool {
        let actual = self.lookup(lead);
        match self.op {
            Op::Exists => actual.is_some(),
            Op::NotExists => actual.is_none(),
            Op::Eq => actual.is_some_and(|a| loosely_equal(&a, self.value.as_ref())),
            Op::Neq => !actual.is_some_and(|a| loosely_equal(&a, self.value.as_ref())),
            Op::Contains => match (actual, &self.value) {
                (Some(Value::String(a)), Some(Value::String(needle))) => {
                    a.to_lowercase().contains(&needle.to_lowercase())
                }
                _ => false,
            },
        }
    }
}

fn loosely_equal(a: &Value, b: Option<&Value>) -> bool {
    match (a, b) {
        (Value::String(x), Some(Value::String(y))) => x.to_lowercase() == y.to_lowercase(),
        (x, Some(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_over_the_size_cap_is_a_400() {
        let ok = json!({"all": [{"field": "title", "op": "eq", "value": "x".repeat(MAX_FILTER_BYTES - 100)}]});
        assert!(LeadFilter::parse(&ok).is_ok());
        let big = json!({"all": [{"field": "title", "op": "eq", "value": "x".repeat(MAX_FILTER_BYTES)}]});
        let e = LeadFilter::parse(&big).unwrap_err();
        assert!(e.to_string().contains("at most 4096"), "{e}");
    }

    fn lead() -> Lead {
        serde_json::from_value(json!({
            "id":"lead_1","type":"person","title":"VP Sales",
            "company":{"name":"Acme","domain":"acme.com"},
            "location":{"country":"US"},
            "attributes":{"email_domain":{"domain":"acme.com","freeMail":false}},
            "createdAt":"t","updatedAt":"t"
        }))
        .unwrap()
    }

    fn f(v: Value) -> Result<LeadFilter, DomainError> {
        LeadFilter::parse(&v)
    }

    #[test]
    fn ops_match_as_documented() {
        let l = lead();
        let yes = [
            json!({"all":[{"field":"title","op":"contains","value":"vp"}]}),
            json!({"all":[{"field":"location.country","op":"eq","value":"us"}]}),
            json!({"all":[{"field":"company.name","op":"neq","value":"Other"}]}),
            json!({"all":[{"field":"attributes.email_domain","op":"exists"}]}),
            json!({"all":[{"field":"attributes.email_domain.freeMail","op":"eq","value":false}]}),
            json!({"all":[{"field":"attributes.seniority","op":"not_exists"},{"field":"type","op":"eq","value":"person"}]}),
        ];
        for y in yes {
            assert!(f(y.clone()).unwrap().matches(&l), "{y}");
        }
        let no = [
            json!({"all":[{"field":"title","op":"contains","value":"director"}]}),
            json!({"all":[{"field":"type","op":"eq","value":"company"}]}),
            json!({"all":[{"field":"company.domain","op":"not_exists"}]}),
        ];
        for n in no {
            assert!(!f(n.clone()).unwrap().matches(&l), "{n}");
        }
    }

    #[test]
    fn malformed_filters_are_rejected() {
        for bad in [
            json!({}),
            json!({"all":[]}),
            json!({"any":[]}),
            json!({"all":[{"field":"salary","op":"eq","value":1}]}),
            json!({"all":[{"field":"title","op":"like","value":"x"}]}),
            json!({"all":[{"field":"title","op":"exists","value":"x"}]}),
            json!({"all":[{"field":"title","op":"eq"}]}),
            json!({"all":[{"field":"title","op":"contains","value":3}]}),
            json!({"all":[{"field":"type","op":"eq","value":"robot"}]}),
            json!({"all":[{"field":"attributes.a#b","op":"exists"}]}),
            json!({"all":[{"field":"title","op":"eq","value":"x","extra":1}]}),
        ] {
            assert!(matches!(f(bad.clone()), Err(DomainError::InvalidRequest { .. })), "{bad}");
        }
    }

    #[test]
    fn type_conditions_decide_which_types_a_filter_admits() {
        let admits = |v: Value| {
            let f = f(v).unwrap();
            (f.admits_type(LeadType::Person), f.admits_type(LeadType::Company))
        };
        assert_eq!(admits(json!({"all":[{"field":"type","op":"eq","value":"company"}]})), (false, true));
        assert_eq!(admits(json!({"all":[{"field":"type","op":"eq","value":"person"}]})), (true, false));
        assert_eq!(admits(json!({"all":[{"field":"type","op":"neq","value":"person"}]})), (false, true));
        assert_eq!(admits(json!({"all":[{"field":"title","op":"exists"}]})), (true, true));
        assert_eq!(admits(json!({"all":[{"field":"type","op":"not_exists"}]})), (false, false));
        assert_eq!(
            admits(
                json!({"all":[{"field":"type","op":"eq","value":"person"},{"field":"type","op":"eq","value":"company"}]})
            ),
            (false, false)
        );
        assert_eq!(
            admits(
                json!({"all":[{"field":"type","op":"eq","value":"person"},{"field":"title","op":"contains","value":"vp"}]})
            ),
            (true, false)
        );
    }
}
