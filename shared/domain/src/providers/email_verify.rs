//! `email_verify`: whether mail to an address can be delivered, judged
//! without an account and without SMTP (Lambda blocks outbound port 25).
//!
//! The pure part: syntax (the `email_address` crate, through
//! [`crate::identity::Email`]), role addresses (npm
//! `role-based-email-addresses`, `data/role_addresses.json`), disposable
//! domains (the `mailchecker` crate's list) and free mail (npm
//! `free-email-domains`, `data/free_email_domains.json`), and the verdict
//! from what DNS said ([`MailHosts`]). The app layer asks DNS.
//!
//! Result: `{email, status, reason, mx, disposable, role, freeMail}` with
//! `status` one of:
//! - `deliverable`: the domain publishes MX hosts and nothing marks the
//!   address as risky. It does **not** prove the mailbox exists: that needs
//!   an SMTP conversation, which this check never has.
//! - `risky`: mail can be delivered, but the address is disposable, a role
//!   address (`info@`, `sales@`), or its domain has no MX and relies on its
//!   A/AAAA record (RFC 5321's implicit MX).
//! - `undeliverable`: the syntax is wrong, the domain does not exist, it
//!   publishes no mail host at all, or it says it takes no mail (null MX).
//! - `unknown`: DNS did not answer in time or failed (SERVFAIL, no server
//!   reachable): nothing is known either way; a later run may tell.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::identity::Email;

/// An address split for the checks: its local part and ASCII domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub email: String,
    pub local: String,
    pub domain: String,
}

/// Parses an address (`email_address` rules, IDNA domain to ASCII).
pub fn parse(raw: &str) -> Result<Address, String> {
    let e = Email::parse(raw).map_err(|e| e.to_string())?;
    let (local, domain) = e.as_str().rsplit_once('@').ok_or("no @")?;
    Ok(Address { email: e.as_str().to_string(), local: local.to_string(), domain: domain.to_string() })
}

fn roles() -> &'static HashSet<String> {
    static R: OnceLock<HashSet<String>> = OnceLock::new();
    R.get_or_init(|| {
        serde_json::from_str::<Vec<String>>(include_str!("../../data/role_addresses.json"))
            .expect("data/role_addresses.json is a JSON array of strings")
            .into_iter()
            .collect()
    })
}

fn free_domains() -> &'static HashSet<String> {
    static F: OnceLock<HashSet<String>> = OnceLock::new();
    F.get_or_init(|| {
        serde_json::from_str::<Vec<String>>(include_str!("../../data/free_email_domains.json"))
            .expect("data/free_email_domains.json is a JSON array of strings")
            .into_iter()
            .collect()
    })
}

fn disposable_domains() -> &'static HashSet<&'static str> {
    static D: OnceLock<HashSet<&'static str>> = OnceLock::new();
    D.get_or_init(|| mailchecker::blacklist().into_iter().collect())
}

/// A role address: its local part (before any `+tag`, dots and dashes
/// kept) is on the role list.
pub fn is_role(local: &str) -> bool {
    let base = local.split('+').next().unwrap_or(local).to_lowercase();
    roles().contains(&base)
}

/// The domain or one of its parents is a known disposable provider.
pub fn is_disposable(domain: &str) -> bool {
    let d = domain.to_lowercase();
    let set = disposable_domains();
    let mut rest = d.as_str();
    loop {
        if set.contains(rest) {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) if parent.contains('.') => rest = parent,
            _ => return false,
        }
    }
}

/// A consumer mailbox provider (gmail.com, …) that is not disposable.
pub fn is_free_mail(domain: &str) -> bool {
    let d = domain.to_lowercase();
    free_domains().contains(&d) && !is_disposable(&d)
}

/// What DNS said about a domain's mail hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailHosts {
    /// MX hosts, most preferred first.
    Mx(Vec<String>),
    /// No MX, but the domain has an address (A/AAAA): RFC 5321 implicit MX.
    Implicit(String),
    /// `MX 0 .` (RFC 7505): the domain takes no mail.
    NullMx,
    /// NXDOMAIN.
    NoDomain,
    /// The domain exists but has neither MX nor A/AAAA.
    NoHost,
    /// Timeout, SERVFAIL, no server reachable: the reason.
    Unknown(String),
}

/// The result for an address that failed to parse.
pub fn invalid_syntax(raw: &str, why: &str) -> Value {
    json!({"email": raw, "status": "undeliverable", "reason": format!("invalid_syntax: {why}"), "mx": [],
           "disposable": false, "role": false, "freeMail": false})
}

/// The verdict on `a` given its domain's mail hosts.
pub fn verdict(a: &Address, hosts: &MailHosts) -> Value {
    let disposable = is_disposable(&a.domain);
    let role = is_role(&a.local);
    let free = is_free_mail(&a.domain);
    let (status, reason, mx): (&str, &str, Vec<String>) = match hosts {
        MailHosts::NoDomain => ("undeliverable", "domain_not_found", vec![]),
        MailHosts::NoHost => ("undeliverable", "no_mail_host", vec![]),
        MailHosts::NullMx => ("undeliverable", "null_mx", vec![]),
        MailHosts::Unknown(_) => ("unknown", "dns_unavailable", vec![]),
        MailHosts::Mx(hosts) if disposable => ("risky", "disposable", mx_of(hosts, a)),
        MailHosts::Implicit(host) if disposable => ("risky", "disposable", vec![host.clone()]),
        MailHosts::Mx(hosts) if role => ("risky", "role_address", hosts.clone()),
        MailHosts::Mx(hosts) => ("deliverable", "mx_found", hosts.clone()),
        MailHosts::Implicit(host) => ("risky", "no_mx_implicit_address", vec![host.clone()]),
    };
    json!({"email": a.email, "status": status, "reason": reason, "mx": mx,
           "disposable": disposable, "role": role, "freeMail": free})
}

fn mx_of(hosts: &[String], a: &Address) -> Vec<String> {
    if hosts.is_empty() {
        vec![a.domain.clone()]
    } else {
        hosts.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Address {
        parse(s).unwrap()
    }

    #[test]
    fn datasets_load_and_answer() {
        assert!(is_role("info") && is_role("sales") && is_role("Support+x"));
        assert!(!is_role("ada.lovelace"));
        assert!(is_disposable("mailinator.com") && is_disposable("x.mailinator.com"));
        assert!(!is_disposable("acme.com"));
        assert!(is_free_mail("gmail.com") && is_free_mail("yahoo.co.uk"));
        assert!(!is_free_mail("mailinator.com"), "disposable is not free mail");
        assert!(!is_free_mail("acme.com"));
        assert!(roles().len() > 500 && free_domains().len() > 1000 && disposable_domains().len() > 1000);
    }

    #[test]
    fn syntax_goes_through_the_identity_rules() {
        assert_eq!(addr(" Ada@Acme.COM ").email, "ada@acme.com");
        assert_eq!(addr("ada@bücher.example").domain, "xn--bcher-kva.example");
        for bad in ["a@b@c.co", "no-at.example", "ada@localhost", "ada@[127.0.0.1]"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(invalid_syntax("x", "no @")["status"], "undeliverable");
    }

    #[test]
    fn verdicts() {
        let mx = MailHosts::Mx(vec!["mx1.acme.com".into()]);
        let v = verdict(&addr("ada@acme.com"), &mx);
        assert_eq!(
            v,
            json!({"email": "ada@acme.com", "status": "deliverable", "reason": "mx_found", "mx": ["mx1.acme.com"],
                   "disposable": false, "role": false, "freeMail": false})
        );
        assert_eq!(verdict(&addr("info@acme.com"), &mx)["status"], "risky");
        assert_eq!(verdict(&addr("x@mailinator.com"), &mx)["reason"], "disposable");
        assert_eq!(verdict(&addr("x@gmail.com"), &mx)["freeMail"], true);
        assert_eq!(verdict(&addr("x@gmail.com"), &mx)["status"], "deliverable");
        let implicit = verdict(&addr("ada@acme.com"), &MailHosts::Implicit("acme.com".into()));
        assert_eq!((implicit["status"].as_str(), implicit["mx"][0].as_str()), (Some("risky"), Some("acme.com")));
        for (hosts, reason) in [
            (MailHosts::NoDomain, "domain_not_found"),
            (MailHosts::NoHost, "no_mail_host"),
            (MailHosts::NullMx, "null_mx"),
        ] {
            let v = verdict(&addr("ada@acme.com"), &hosts);
            assert_eq!((v["status"].as_str(), v["reason"].as_str()), (Some("undeliverable"), Some(reason)));
        }
        assert_eq!(verdict(&addr("ada@acme.com"), &MailHosts::Unknown("timeout".into()))["status"], "unknown");
    }
}
