//! `company_domain`: the company's bare domain (`{"domain": "acme.com"}`),
//! from `company.domain`, else the first `website` contact, normalised with
//! [`normalise_domain`] (scheme, `www.`, port and path stripped; lowercase).
//!
//! When `company.domain` is present but not a domain, the website contact is
//! tried next. Neither usable → `Skipped(missing_input)`.

use serde_json::json;

use super::{first_contact, skipped_missing, Outcome};
use crate::lead::{normalise_domain, Lead};

pub(super) fn run(lead: &Lead) -> Outcome {
    let from_company = lead.company.domain.as_deref().and_then(normalise_domain);
    let domain = from_company.or_else(|| first_contact(lead, "website").and_then(normalise_domain));
    match domain {
        Some(domain) => Outcome::Completed(json!({ "domain": domain })),
        None => skipped_missing(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{contacts, lead};
    use super::*;
    use serde_json::{json, Value};

    fn company(partial: Value) -> Lead {
        let mut l = lead(partial);
        l.lead_type = crate::lead::LeadType::Company;
        l
    }

    fn done(domain: &str) -> Outcome {
        Outcome::Completed(json!({ "domain": domain }))
    }

    #[test]
    fn from_company_domain() {
        assert_eq!(run(&company(json!({"company": {"domain": "acme.com"}}))), done("acme.com"));
        assert_eq!(run(&company(json!({"company": {"domain": "https://www.Acme.com/about?x=1"}}))), done("acme.com"));
    }

    #[test]
    fn company_domain_wins_over_website() {
        let l = company(json!({
            "company": {"domain": "acme.com"},
            "contacts": contacts(&[("website", "https://other.io")]),
        }));
        assert_eq!(run(&l), done("acme.com"));
    }

    #[test]
    fn from_website_contact() {
        let l = company(json!({"contacts": contacts(&[
            ("email", "a@mail.example.org"),
            ("website", "http://WWW.Example.co.uk:8080/en/home"),
            ("website", "second.com"),
        ])}));
        assert_eq!(run(&l), done("example.co.uk"));
    }

    #[test]
    fn invalid_company_domain_falls_back_to_website() {
        let l = company(json!({
            "company": {"domain": "not a domain"},
            "contacts": contacts(&[("website", "www.acme.io")]),
        }));
        assert_eq!(run(&l), done("acme.io"));
    }

    #[test]
    fn missing_or_invalid_is_skipped() {
        let skipped = Outcome::Skipped { reason: "missing_input" };
        assert_eq!(run(&company(json!({}))), skipped);
        assert_eq!(run(&company(json!({"company": {"name": "Acme"}}))), skipped);
        assert_eq!(run(&company(json!({"company": {"domain": "acme"}}))), skipped);
        assert_eq!(
            run(&company(json!({"contacts": contacts(&[("website", "localhost"), ("email", "a@acme.com")])}))),
            skipped
        );
        assert_eq!(run(&company(json!({"contacts": contacts(&[("website", "https://")])}))), skipped);
        assert_eq!(run(&company(json!({"company": {"domain": ""}}))), skipped);
    }
}
