//! Leads: the person or company records enrichments read and write.
//!
//! A Lead is identified for upserts by stable identifiers (see
//! [`crate::identity`]), so importing the same people twice updates rather
//! than duplicates them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::DomainError;
use crate::identity::{self, CompanyDomain, Email, Identity, IdentityParts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LeadType {
    #[default]
    Person,
    Company,
}

impl LeadType {
    pub fn as_str(self) -> &'static str {
        match self {
            LeadType::Person => "person",
            LeadType::Company => "company",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "person" => Some(LeadType::Person),
            "company" => Some(LeadType::Company),
            _ => None,
        }
    }
    /// The type that is not this one.
    pub fn other(self) -> Self {
        match self {
            LeadType::Person => LeadType::Company,
            LeadType::Company => LeadType::Person,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Name {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Company {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// `email`, `phone`, `website`, ... (free text, lowercased on write).
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Social {
    pub url: String,
}

/// The stored and returned Lead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lead {
    pub id: String,
    #[serde(rename = "type")]
    pub lead_type: LeadType,
    #[serde(default)]
    pub name: Name,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub company: Company,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub location: Location,
    #[serde(default)]
    pub socials: Vec<Social>,
    /// Open map enrichments write into. Stored as one item per key (so a run
    /// can write results with BatchWriteItem) and merged in on read.
    #[serde(default)]
    pub attributes: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
}

/// What a client sends to `POST /api/leads` for one Lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadInput {
    #[serde(rename = "type")]
    pub lead_type: Option<LeadType>,
    #[serde(default)]
    pub name: Option<Name>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub company: Option<Company>,
    #[serde(default)]
    pub contacts: Option<Vec<Contact>>,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub socials: Option<Vec<Social>>,
    #[serde(default)]
    pub attributes: Option<Map<String, Value>>,
}

pub const MAX_ATTRIBUTE_KEY_LEN: usize = 64;
/// One Lead's JSON may be at most this large (DynamoDB items stop at 400 KB;
/// Leads are small records, and their attributes live in items of their own).
pub const MAX_LEAD_JSON_BYTES: usize = 64 * 1024;
/// Nesting DynamoDB accepts is 32 levels; values are kept well inside it.
pub const MAX_VALUE_DEPTH: usize = 16;

impl Lead {
    /// Its identifiers as stored now (see [`identity`](crate::identity)).
    pub fn identity(&self) -> Identity {
        Identity::of(&IdentityParts {
            lead_type: self.lead_type,
            full_name: self.name.full.as_deref(),
            company_name: self.company.name.as_deref(),
            company_domain: self.company.domain.as_deref(),
            contacts: self.contacts.iter().map(|c| (c.kind.as_str(), c.value.as_str())).collect(),
            social_urls: self.socials.iter().map(|s| s.url.as_str()).collect(),
        })
    }

    pub fn first_contact(&self, kind: &str) -> Option<&str> {
        self.contacts.iter().find(|c| c.kind == kind).map(|c| c.value.as_str())
    }

    /// The value at a dotted path (`title`, `company.domain`, ...), for filters.
    pub fn field(&self, path: &str) -> Option<Value> {
        let s = |o: &Option<String>| o.clone().map(Value::String);
        match path {
            "type" => Some(Value::String(self.lead_type.as_str().into())),
            "title" => s(&self.title),
            "company.domain" => s(&self.company.domain),
            "company.name" => s(&self.company.name),
            "location.country" => s(&self.location.country),
            "location.city" => s(&self.location.city),
            "name.full" => s(&self.name.full),
            _ => None,
        }
    }
}

fn clean(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn expect_shape(v: &Value, field: &str, want_object: bool) -> Result<(), DomainError> {
    let ok = match v {
        Value::Null => true,
        Value::Object(_) => want_object,
        Value::Array(items) if !want_object => items.iter().all(Value::is_object),
        _ => false,
    };
    if ok {
        Ok(())
    } else if want_object {
        Err(DomainError::invalid(format!("`{field}` must be an object")))
    } else {
        Err(DomainError::invalid(format!("`{field}` must be an array of objects")))
    }
}

/// Checks that a JSON value can be stored as a DynamoDB attribute value:
/// numbers in DynamoDB's range, no empty map keys, bounded nesting.
pub fn check_storable(v: &Value, depth: usize) -> Result<(), DomainError> {
    if depth > MAX_VALUE_DEPTH {
        return Err(DomainError::invalid(format!("values nest at most {MAX_VALUE_DEPTH} levels deep")));
    }
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::INFINITY).abs();
            if f != 0.0 && !(1e-130..1e125).contains(&f) {
                return Err(DomainError::invalid(format!(
                    "the number {n} is outside the range the store keeps (1e-130..1e125)"
                )));
            }
        }
        Value::Array(items) => items.iter().try_for_each(|i| check_storable(i, depth + 1))?,
        Value::Object(m) => {
            for (k, i) in m {
                if k.is_empty() {
                    return Err(DomainError::invalid("object keys must not be empty"));
                }
                check_storable(i, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

impl LeadInput {
    /// Parses one Lead from JSON, insisting on objects where the contract
    /// has objects (serde would also accept arrays for structs) and on a
    /// size and values the store can hold.
    pub fn from_json(v: Value) -> Result<LeadInput, DomainError> {
        let obj = v.as_object().ok_or_else(|| DomainError::invalid("a Lead must be a JSON object"))?;
        for f in ["name", "company", "location", "attributes"] {
            expect_shape(obj.get(f).unwrap_or(&Value::Null), f, true)?;
        }
        for f in ["contacts", "socials"] {
            expect_shape(obj.get(f).unwrap_or(&Value::Null), f, false)?;
        }
        let size = serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(usize::MAX);
        if size > MAX_LEAD_JSON_BYTES {
            return Err(DomainError::invalid(format!(
                "a Lead is at most {MAX_LEAD_JSON_BYTES} bytes of JSON; this one is {size}"
            )));
        }
        check_storable(&v, 0)?;
        let input: LeadInput = serde_json::from_value(v).map_err(|e| DomainError::invalid(e.to_string()))?;
        input.normalise()
    }

    /// Validates and normalises the input; errors name the offending field.
    pub fn normalise(mut self) -> Result<LeadInput, DomainError> {
        let lead_type = self.lead_type.ok_or_else(|| DomainError::invalid("`type` is required (person or company)"))?;
        if let Some(n) = self.name.as_mut() {
            n.full = clean(n.full.take());
            n.first = clean(n.first.take());
            n.last = clean(n.last.take());
            if n.full.is_none() {
                let joined = [n.first.clone(), n.last.clone()].into_iter().flatten().collect::<Vec<_>>().join(" ");
                if !joined.is_empty() {
                    n.full = Some(joined);
                }
            }
        }
        self.title = clean(self.title.take());
        if let Some(c) = self.company.as_mut() {
            c.name = clean(c.name.take());
            if let Some(d) = clean(c.domain.take()) {
                c.domain =
                    Some(CompanyDomain::parse(&d).map_err(|e| e.in_field("company.domain"))?.as_str().to_string());
            }
        }
        if let Some(contacts) = self.contacts.as_mut() {
            for c in contacts.iter_mut() {
                c.kind = c.kind.trim().to_lowercase();
                c.value = c.value.trim().to_string();
                if c.kind.is_empty() || c.value.is_empty() {
                    return Err(DomainError::invalid("contacts need a non-empty type and value"));
                }
                if c.kind == "email" {
                    Email::parse(&c.value)?;
                    c.value = c.value.to_lowercase();
                }
            }
        }
        if let Some(loc) = self.location.as_mut() {
            loc.city = clean(loc.city.take());
            loc.state = clean(loc.state.take());
            loc.country = clean(loc.country.take());
            loc.raw = clean(loc.raw.take());
        }
        if let Some(socials) = self.socials.as_mut() {
            for s in socials.iter_mut() {
                s.url = s.url.trim().to_string();
                identity::linkedin_profile(&s.url)?;
            }
            socials.retain(|s| !s.url.is_empty());
        }
        let names =
            self.name.iter().flat_map(|n| [("name.full", &n.full), ("name.first", &n.first), ("name.last", &n.last)]);
        let company_name = self.company.iter().map(|c| ("company.name", &c.name));
        for (field, v) in names.chain(company_name) {
            if let Some(v) = v {
                identity::check_len(field, v)?;
            }
        }
        if let Some(attrs) = &self.attributes {
            for k in attrs.keys() {
                validate_attribute_key(k)?;
            }
        }
        let input = LeadInput { lead_type: Some(lead_type), ..self };
        // A Lead with no identifier is still worth keeping (an enrichment can
        // find the rest); one with nothing at all to find it by is not.
        let has_name = input.name.as_ref().is_some_and(|n| n.full.is_some());
        let has_contact = input.contacts.as_ref().is_some_and(|c| !c.is_empty());
        let has_company = input.company.as_ref().is_some_and(|c| c.name.is_some() || c.domain.is_some());
        if !has_name && !has_contact && !has_company && input.identity().is_empty() {
            return Err(DomainError::invalid(
                "a Lead needs something to find it by: a name, a contact, a company or a LinkedIn URL",
            ));
        }
        Ok(input)
    }

    /// Its identifiers (see [`identity`](crate::identity)).
    pub fn identity(&self) -> Identity {
        let contacts = self.contacts.as_deref().unwrap_or_default();
        let company = self.company.as_ref();
        Identity::of(&IdentityParts {
            lead_type: self.lead_type.unwrap_or_default(),
            full_name: self.name.as_ref().and_then(|n| n.full.as_deref()),
            company_name: company.and_then(|c| c.name.as_deref()),
            company_domain: company.and_then(|c| c.domain.as_deref()),
            contacts: contacts.iter().map(|c| (c.kind.as_str(), c.value.as_str())).collect(),
            social_urls: self.socials.as_deref().unwrap_or_default().iter().map(|s| s.url.as_str()).collect(),
        })
    }

    /// Builds the stored Lead. `existing` keeps id, createdAt and fields the
    /// input leaves out (an upsert changes only what it names).
    pub fn into_lead(self, id: String, now: &str, existing: Option<Lead>) -> Lead {
        let base = existing.unwrap_or_else(|| Lead {
            id: id.clone(),
            lead_type: self.lead_type.unwrap_or_default(),
            name: Name::default(),
            title: None,
            company: Company::default(),
            contacts: vec![],
            location: Location::default(),
            socials: vec![],
            attributes: Map::new(),
            created_at: now.to_string(),
            updated_at: now.to_string(),
        });
        Lead {
            id: base.id,
            lead_type: base.lead_type,
            name: self.name.unwrap_or(base.name),
            title: self.title.or(base.title),
            company: self.company.unwrap_or(base.company),
            contacts: self.contacts.unwrap_or(base.contacts),
            location: self.location.unwrap_or(base.location),
            socials: self.socials.unwrap_or(base.socials),
            attributes: base.attributes,
            created_at: base.created_at,
            updated_at: now.to_string(),
        }
    }
}

pub fn validate_attribute_key(k: &str) -> Result<(), DomainError> {
    let ok = !k.is_empty()
        && k.len() <= MAX_ATTRIBUTE_KEY_LEN
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(format!(
            "attribute key `{k}` must be 1..{MAX_ATTRIBUTE_KEY_LEN} characters of A-Z, a-z, 0-9, _ or -"
        )))
    }
}

/// A company domain from a domain or URL (`https://www.Acme.co.uk/x` →
/// `acme.co.uk`), or None: the rule of [`CompanyDomain::parse`].
pub fn normalise_domain(raw: &str) -> Option<String> {
    CompanyDomain::parse(raw).ok().map(|d| d.as_str().to_string())
}

/// A LinkedIn profile URL as its key (`linkedin.com/in/jane-doe`), or None.
pub fn normalise_linkedin(raw: &str) -> Option<String> {
    identity::linkedin_profile(raw).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(email: &str) -> LeadInput {
        serde_json::from_value(serde_json::json!({
            "type": "person",
            "contacts": [{"type": "Email", "value": email}]
        }))
        .unwrap()
    }

    fn keys(i: &LeadInput) -> Vec<String> {
        i.identity().keys().map(|k| k.as_str().to_string()).collect()
    }

    #[test]
    fn email_identity_is_case_insensitive() {
        let a = person("Jane@Acme.com").normalise().unwrap();
        let b = person("jane@acme.COM").normalise().unwrap();
        assert_eq!(keys(&a), keys(&b));
        assert_eq!(keys(&a), vec!["email#jane@acme.com".to_string()]);
    }

    fn input(v: Value) -> Result<LeadInput, DomainError> {
        LeadInput::from_json(v)
    }

    #[test]
    fn only_a_lead_with_nothing_to_find_it_by_is_rejected() {
        for ok in [
            serde_json::json!({"type":"person","name":{"full":"X"}}),
            serde_json::json!({"type":"person","name":{"last":"X"}}),
            serde_json::json!({"type":"person","contacts":[{"type":"phone","value":"+1 415 555 0100"}]}),
            serde_json::json!({"type":"person","company":{"name":"Acme"}}),
            serde_json::json!({"type":"person","socials":[{"url":"https://linkedin.com/in/x"}]}),
            serde_json::json!({"type":"company","company":{"name":"Acme"}}),
        ] {
            assert!(input(ok.clone()).is_ok(), "{ok}");
        }
        for bad in [
            serde_json::json!({"type":"person"}),
            serde_json::json!({"type":"person","title":"CEO","location":{"city":"Oslo"}}),
            serde_json::json!({"type":"person","name":{"full":" "},"company":{"name":""}}),
            serde_json::json!({"type":"person","socials":[{"url":"https://twitter.com/x"}]}),
        ] {
            assert!(input(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_person_without_email_is_its_name_at_its_company_domain() {
        let a = input(serde_json::json!({"type":"person","name":{"first":"Ada","last":"LOVELACE"},"company":{"domain":"https://www.acme.co.uk/"}})).unwrap();
        let b = input(
            serde_json::json!({"type":"person","name":{"full":" ada  lovelace"},"company":{"domain":"acme.co.uk"}}),
        )
        .unwrap();
        assert_eq!(keys(&a), vec!["person#acme.co.uk#ada lovelace".to_string()]);
        assert_eq!(keys(&a), keys(&b));
        assert_eq!(a.company.unwrap().domain.as_deref(), Some("acme.co.uk"), "the registrable domain is stored");
    }

    #[test]
    fn identifier_fields_over_512_bytes_are_rejected() {
        let long = "n".repeat(513);
        for bad in [
            serde_json::json!({"type":"person","name":{"full": long}}),
            serde_json::json!({"type":"company","company":{"name": long}}),
            serde_json::json!({"type":"person","contacts":[{"type":"email","value": format!("{long}@acme.com")}]}),
            serde_json::json!({"type":"person","socials":[{"url": format!("https://linkedin.com/in/{long}")}]}),
        ] {
            assert!(input(bad.clone()).is_err(), "{bad}");
        }
        assert!(input(serde_json::json!({"type":"person","name":{"full": "n".repeat(512)}})).is_ok());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let r: Result<LeadInput, _> = serde_json::from_value(serde_json::json!({"type":"person","nmae":{}}));
        assert!(r.is_err());
    }

    #[test]
    fn arrays_in_place_of_objects_are_rejected() {
        for bad in [
            serde_json::json!(["person"]),
            serde_json::json!({"type":"person","name":["Ada"],"contacts":[{"type":"email","value":"a@b.co"}]}),
            serde_json::json!({"type":"person","contacts":[["email","a@b.co"]]}),
        ] {
            assert!(LeadInput::from_json(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_the_store_cannot_hold_are_rejected() {
        let base = |attrs: Value| serde_json::json!({"type":"person","contacts":[{"type":"email","value":"a@b.co"}],"attributes":{"x": attrs}});
        assert!(LeadInput::from_json(base(serde_json::json!(1.5e300))).is_err());
        assert!(LeadInput::from_json(base(serde_json::json!({"": 1}))).is_err());
        let mut deep = serde_json::json!(1);
        for _ in 0..40 {
            deep = serde_json::json!([deep]);
        }
        assert!(LeadInput::from_json(base(deep)).is_err());
        let mut big = base(serde_json::json!(1));
        big["title"] = Value::String("x".repeat(MAX_LEAD_JSON_BYTES));
        assert!(LeadInput::from_json(big).is_err());
        assert!(LeadInput::from_json(base(serde_json::json!({"ok": [1, 2.5, "s"]}))).is_ok());
    }

    #[test]
    fn company_domain_from_url() {
        assert_eq!(normalise_domain("https://www.Acme.com/about?x=1").as_deref(), Some("acme.com"));
        assert_eq!(normalise_domain("acme").as_deref(), None);
        assert_eq!(normalise_domain("http://sub.acme.co.uk:8080/").as_deref(), Some("acme.co.uk"));
    }

    #[test]
    fn linkedin_urls_normalise() {
        assert_eq!(
            normalise_linkedin("https://www.linkedin.com/in/Jane-Doe/?trk=abc").as_deref(),
            Some("linkedin.com/in/jane-doe")
        );
        assert_eq!(normalise_linkedin("https://example.com/in/x"), None);
    }

    #[test]
    fn upsert_keeps_id_created_at_and_unnamed_fields() {
        let first = person("a@b.co").normalise().unwrap().into_lead("l1".into(), "t1", None);
        let mut again = person("a@b.co");
        again.title = Some("CTO".into());
        let merged = again.normalise().unwrap().into_lead("l2".into(), "t2", Some(first.clone()));
        assert_eq!(merged.id, "l1");
        assert_eq!(merged.created_at, "t1");
        assert_eq!(merged.updated_at, "t2");
        assert_eq!(merged.title.as_deref(), Some("CTO"));
        assert_eq!(merged.contacts, first.contacts);
    }

    #[test]
    fn full_name_is_derived_from_parts() {
        let mut i = person("a@b.co");
        i.name = Some(Name { full: None, first: Some("Ada".into()), last: Some("Lovelace".into()) });
        let n = i.normalise().unwrap();
        assert_eq!(n.name.unwrap().full.as_deref(), Some("Ada Lovelace"));
    }
}
