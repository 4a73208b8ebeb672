//! `email_domain`: the domain of the lead's first email contact, and whether it
//! is a consumer free-mail provider.
//!
//! Output: `{"domain": "acme.com", "freeMail": false}`. No email contact →
//! `Skipped(missing_input)`; an email without a usable domain →
//! `Failed(INVALID_EMAIL)`.

use serde_json::json;

use super::{first_contact, skipped_missing, Outcome};
use crate::lead::Lead;

/// Consumer mailbox providers (exact domain match, lowercase).
const FREE_MAIL: &[&str] = &[
    // Google
    "gmail.com",
    "googlemail.com",
    // Microsoft
    "outlook.com",
    "outlook.fr",
    "outlook.de",
    "outlook.es",
    "outlook.it",
    "hotmail.com",
    "hotmail.co.uk",
    "hotmail.fr",
    "hotmail.de",
    "hotmail.es",
    "hotmail.it",
    "live.com",
    "live.co.uk",
    "live.fr",
    "live.de",
    "msn.com",
    // Yahoo / AOL
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.fr",
    "yahoo.de",
    "yahoo.es",
    "yahoo.it",
    "yahoo.ca",
    "yahoo.com.au",
    "yahoo.co.in",
    "yahoo.co.jp",
    "ymail.com",
    "rocketmail.com",
    "aol.com",
    "aim.com",
    // Apple
    "icloud.com",
    "me.com",
    "mac.com",
    // Privacy-focused
    "proton.me",
    "protonmail.com",
    "protonmail.ch",
    "pm.me",
    "tutanota.com",
    "tuta.io",
    "hey.com",
    // Others
    "gmx.com",
    "gmx.net",
    "gmx.de",
    "web.de",
    "mail.com",
    "zoho.com",
    "zohomail.com",
    "fastmail.com",
    "yandex.ru",
    "yandex.com",
    "ya.ru",
    "mail.ru",
    "bk.ru",
    "list.ru",
    "inbox.ru",
    "rambler.ru",
    "qq.com",
    "163.com",
    "126.com",
    "sina.com",
    "naver.com",
    "daum.net",
    "hanmail.net",
    "rediffmail.com",
    "libero.it",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "t-online.de",
    "comcast.net",
    "verizon.net",
    "att.net",
    "sbcglobal.net",
    "btinternet.com",
    "seznam.cz",
    "wp.pl",
    "o2.pl",
    "interia.pl",
];

/// Whether `domain` (lowercase, no trailing dot) is a free-mail provider.
pub(super) fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL.contains(&domain)
}

/// `Jane@Mail.Acme.com.` → `mail.acme.com`; None when the part after the last
/// `@` is not a plausible host name.
fn domain_of(email: &str) -> Option<String> {
    let (_, domain) = email.rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.').to_lowercase();
    let valid = domain.contains('.')
        && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && domain.split('.').all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    valid.then_some(domain)
}

pub(super) fn run(lead: &Lead) -> Outcome {
    let Some(email) = first_contact(lead, "email") else {
        return skipped_missing();
    };
    match domain_of(email) {
        Some(domain) => {
            let free = is_free_mail(&domain);
            Outcome::Completed(json!({"domain": domain, "freeMail": free}))
        }
        None => Outcome::Failed {
            message: format!("`{email}` has no valid email domain"),
            code: "INVALID_EMAIL".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{contacts, lead};
    use super::*;
    use serde_json::{json, Value};

    fn out(pairs: &[(&str, &str)]) -> Outcome {
        run(&lead(json!({"contacts": contacts(pairs)})))
    }

    fn done(domain: &str, free: bool) -> Outcome {
        Outcome::Completed(json!({"domain": domain, "freeMail": free}))
    }

    #[test]
    fn business_domain() {
        assert_eq!(out(&[("email", "jane@acme.com")]), done("acme.com", false));
    }

    #[test]
    fn lowercased_and_first_email_wins() {
        assert_eq!(
            out(&[("phone", "+14155550123"), ("email", "Jane.Doe@ACME.Com"), ("email", "jane@gmail.com"),]),
            done("acme.com", false)
        );
    }

    #[test]
    fn free_mail_detection() {
        for d in [
            "gmail.com",
            "googlemail.com",
            "outlook.com",
            "hotmail.com",
            "live.com",
            "yahoo.com",
            "icloud.com",
            "me.com",
            "aol.com",
            "proton.me",
            "protonmail.com",
            "gmx.com",
            "mail.com",
            "yandex.ru",
        ] {
            assert_eq!(out(&[("email", &format!("x@{d}"))]), done(d, true), "{d}");
        }
        assert_eq!(out(&[("email", "x@GMail.COM")]), done("gmail.com", true));
        // Subdomains and look-alikes of free-mail providers are not free mail.
        assert_eq!(out(&[("email", "x@mail.gmail.com.evil.io")]), done("mail.gmail.com.evil.io", false));
        assert_eq!(out(&[("email", "x@notgmail.com")]), done("notgmail.com", false));
        assert!(!is_free_mail("acme.com"));
    }

    #[test]
    fn subdomain_and_trailing_dot() {
        assert_eq!(out(&[("email", "a@Eu.Acme.co.uk.")]), done("eu.acme.co.uk", false));
    }

    #[test]
    fn missing_email_is_skipped() {
        assert_eq!(out(&[]), Outcome::Skipped { reason: "missing_input" });
        assert_eq!(
            out(&[("phone", "+14155550123"), ("website", "acme.com")]),
            Outcome::Skipped { reason: "missing_input" }
        );
        assert_eq!(out(&[("email", "   ")]), Outcome::Skipped { reason: "missing_input" });
    }

    #[test]
    fn invalid_email_fails() {
        for bad in ["no-at-sign", "a@", "a@acme", "a@ac me.com", "a@.com", "a@acme..com", "@", "a@-acme.com"] {
            match out(&[("email", bad)]) {
                Outcome::Failed { code, .. } => assert_eq!(code, "INVALID_EMAIL", "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn output_shape() {
        let Outcome::Completed(v) = out(&[("email", "a@b.io")]) else { panic!() };
        assert_eq!(v["domain"], Value::from("b.io"));
        assert_eq!(v["freeMail"], Value::Bool(false));
    }
}
