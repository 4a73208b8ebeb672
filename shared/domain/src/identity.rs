//! Who a Lead is: the stable identifiers an upsert matches on, parsed by
//! well-kept crates rather than by hand: email syntax by `email_address`
//! (RFC 5322 / 6531), hosts by the WHATWG URL parser (`url`, which applies
//! IDNA, so a Unicode domain and its punycode are one name), registrable
//! domains by the public suffix list (`publicsuffix`, over the list in
//! `data/`), names by Unicode NFKC.
//!
//! A person is identified by its emails and LinkedIn URLs (strong), else by
//! (normalised full name, company domain) (weak); a company by its domain
//! (strong), else by its normalised name (weak). [`match_lead`] says how an
//! input meets the Leads that hold those identifiers.

use std::sync::OnceLock;

use publicsuffix::Psl;
use serde_json::json;

use crate::error::DomainError;
use crate::lead::LeadType;

/// Longer identifiers are refused: DynamoDB sort keys stop at 1,024 bytes,
/// and nothing real is this long.
pub const MAX_IDENTIFIER_BYTES: usize = 512;

/// A value for an error message: long inputs are cut, not echoed whole.
pub(crate) fn shown(raw: &str) -> String {
    match raw.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &raw[..i]),
        None => raw.to_string(),
    }
}

pub(crate) fn check_len(field: &str, raw: &str) -> Result<(), DomainError> {
    if raw.len() > MAX_IDENTIFIER_BYTES {
        return Err(DomainError::invalid_with(
            format!("`{field}` is {} bytes; identifiers are at most {MAX_IDENTIFIER_BYTES} bytes", raw.len()),
            json!({"field": field, "maxBytes": MAX_IDENTIFIER_BYTES}),
        ));
    }
    Ok(())
}

/// An email address as a key: lowercase, its domain in ASCII (punycode).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, DomainError> {
        let raw = raw.trim();
        check_len("email", raw)?;
        let bad = |why: String| DomainError::invalid(format!("`{}` is not an email address: {why}", shown(raw)));
        // A bare address with a dotted host name: no display names or IP literals.
        let options =
            email_address::Options::default().with_required_tld().without_domain_literal().without_display_text();
        let parsed = email_address::EmailAddress::parse_with_options(raw, options).map_err(|e| bad(e.to_string()))?;
        let domain = ascii_host(parsed.domain()).ok_or_else(|| bad("its domain is not a host name".into()))?;
        Ok(Email(format!("{}@{domain}", parsed.local_part().to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A host name in ASCII (IDNA applied, lowercase, no trailing dot), or None
/// for IP addresses and names that are not DNS host names.
fn ascii_host(raw: &str) -> Option<String> {
    match url::Host::parse(raw).ok()? {
        url::Host::Domain(d) => dns_name(d.trim_end_matches('.')),
        _ => None,
    }
}

/// The WHATWG parser allows characters DNS names never hold (`!`, `*`, ...).
fn dns_name(host: &str) -> Option<String> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    ok.then(|| host.to_ascii_lowercase())
}

/// Parses a URL the way people write them: a missing scheme means http.
fn parse_url(raw: &str) -> Option<url::Url> {
    let with_scheme =
        if raw.contains("://") { raw.to_string() } else { format!("http://{}", raw.trim_start_matches("//")) };
    url::Url::parse(&with_scheme).ok()
}

/// A company's registrable domain (`https://www.Acme.co.uk/x` →
/// `acme.co.uk`): one label under a public suffix, in ASCII.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CompanyDomain(String);

impl CompanyDomain {
    /// Takes a bare domain or a URL. A public suffix alone (`co.uk`), an IP
    /// address or a single label (`localhost`) is not a company's domain.
    pub fn parse(raw: &str) -> Result<CompanyDomain, DomainError> {
        let raw = raw.trim();
        check_len("domain", raw)?;
        let bad = |why: &str| DomainError::invalid(format!("`{}` is not a company domain: {why}", shown(raw)));
        let url = parse_url(raw).ok_or_else(|| bad("not a domain or URL"))?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) => dns_name(d.trim_end_matches('.')).ok_or_else(|| bad("not a host name"))?,
            Some(_) => return Err(bad("an IP address")),
            None => return Err(bad("not a domain or URL")),
        };
        // Unknown top-level names fall under the list's default rule `*`
        // (the PSL algorithm), so `acme.example` is registrable.
        let registrable = public_suffixes()
            .domain(host.as_bytes())
            .and_then(|d| std::str::from_utf8(d.as_bytes()).ok().map(str::to_string))
            .ok_or_else(|| bad("a public suffix, not a registrable domain"))?;
        Ok(CompanyDomain(registrable))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Mozilla's public suffix list (ICANN and private sections), as published
/// at publicsuffix.org; `scripts/update-public-suffixes.sh` refreshes it.
/// Kept as data and parsed on first use (a few ms, once per process): the
/// `psl` crate compiles the same list into ~630 KB of code in every zip.
const PUBLIC_SUFFIX_LIST: &str = include_str!("../data/public_suffix_list.dat");

fn public_suffixes() -> &'static publicsuffix::List {
    static LIST: OnceLock<publicsuffix::List> = OnceLock::new();
    // The list is compiled in and a unit test parses it, so this cannot fail
    // in a build that passed its tests.
    LIST.get_or_init(|| PUBLIC_SUFFIX_LIST.parse().expect("the bundled public suffix list parses"))
}

/// A LinkedIn profile as a key (`linkedin.com/in/jürgen`): any LinkedIn host
/// (`uk.`, `www.`, `m.`), percent-decoded, lowercase, without query or
/// sub-pages. None when the URL is not a LinkedIn profile.
pub fn linkedin_profile(raw: &str) -> Result<Option<String>, DomainError> {
    let raw = raw.trim();
    let Some(url) = parse_url(raw) else { return Ok(None) };
    let linkedin = match url.host() {
        Some(url::Host::Domain(h)) => {
            let h = h.trim_end_matches('.');
            h == "linkedin.com" || h.ends_with(".linkedin.com")
        }
        _ => false,
    };
    if !linkedin {
        return Ok(None);
    }
    check_len("socials.url", raw)?;
    let segments: Vec<String> = url
        .path_segments()
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().to_lowercase())
        .collect();
    let profile = match segments.as_slice() {
        [kind, handle, ..] if kind == "in" => format!("in/{handle}"),
        // Old public profiles name the person with every segment.
        [kind, rest @ ..] if kind == "pub" && !rest.is_empty() => format!("pub/{}", rest.join("/")),
        _ => return Ok(None),
    };
    let key = format!("linkedin.com/{profile}");
    check_len("socials.url", &key)?;
    Ok(Some(key))
}

/// NFKC, lowercase, whitespace collapsed and trimmed: `" ＡＤＡ  Lovelace"` →
/// `"ada lovelace"`. None when nothing is left.
pub fn normalise_name(raw: &str) -> Option<String> {
    let nfkc = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc().normalize(raw);
    let name = nfkc.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    (!name.is_empty()).then_some(name)
}

/// One identifier as stored: `email#a@b.com`, `linkedin#linkedin.com/in/x`,
/// `person#{domain}#{name}`, `domain#acme.com`, `company#{name}`. A domain
/// never holds `#`, so the person key splits unambiguously.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityKey(String);

impl IdentityKey {
    pub fn email(e: &Email) -> Self {
        IdentityKey(format!("email#{}", e.as_str()))
    }
    pub fn linkedin(profile: &str) -> Self {
        IdentityKey(format!("linkedin#{profile}"))
    }
    pub fn person(domain: &CompanyDomain, name: &str) -> Self {
        IdentityKey(format!("person#{}#{name}", domain.as_str()))
    }
    pub fn domain(d: &CompanyDomain) -> Self {
        IdentityKey(format!("domain#{}", d.as_str()))
    }
    pub fn company(name: &str) -> Self {
        IdentityKey(format!("company#{name}"))
    }
    /// A key read back from the store.
    pub fn stored(s: String) -> Self {
        IdentityKey(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Lead's identifiers, strongest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// A person's emails and LinkedIn URLs; a company's domain.
    pub strong: Vec<IdentityKey>,
    /// A person's (name, company domain); a company's name.
    pub weak: Option<IdentityKey>,
}

/// The parts of a Lead that identify it (from an input or a stored Lead).
pub struct IdentityParts<'a> {
    pub lead_type: LeadType,
    pub full_name: Option<&'a str>,
    pub company_name: Option<&'a str>,
    pub company_domain: Option<&'a str>,
    /// (type, value) of every contact.
    pub contacts: Vec<(&'a str, &'a str)>,
    pub social_urls: Vec<&'a str>,
}

impl Identity {
    /// Identifiers of already-validated parts; values that do not parse
    /// (from Leads stored under older rules) are left out, never an error.
    pub fn of(p: &IdentityParts<'_>) -> Identity {
        let domain = |raw: &str| CompanyDomain::parse(raw).ok();
        let mut id = Identity::default();
        match p.lead_type {
            LeadType::Person => {
                for (_, v) in p.contacts.iter().filter(|(k, _)| *k == "email") {
                    if let Ok(e) = Email::parse(v) {
                        id.strong.push(IdentityKey::email(&e));
                    }
                }
                for u in &p.social_urls {
                    if let Ok(Some(l)) = linkedin_profile(u) {
                        id.strong.push(IdentityKey::linkedin(&l));
                    }
                }
                if let (Some(name), Some(d)) = (p.full_name.and_then(normalise_name), p.company_domain.and_then(domain))
                {
                    id.weak = Some(IdentityKey::person(&d, &name));
                }
            }
            LeadType::Company => {
                let d = p
                    .company_domain
                    .and_then(domain)
                    .or_else(|| p.contacts.iter().filter(|(k, _)| *k == "website").find_map(|(_, v)| domain(v)));
                id.strong.extend(d.map(|d| IdentityKey::domain(&d)));
                id.weak = p.company_name.or(p.full_name).and_then(normalise_name).map(|n| IdentityKey::company(&n));
            }
        }
        let mut seen = std::collections::HashSet::new();
        id.strong.retain(|k| seen.insert(k.clone()));
        id
    }

    pub fn is_empty(&self) -> bool {
        self.strong.is_empty() && self.weak.is_none()
    }

    /// Every key, strongest first.
    pub fn keys(&self) -> impl Iterator<Item = &IdentityKey> {
        self.strong.iter().chain(self.weak.iter())
    }
}

/// The Lead an input is, given who holds which identifier: the holder of
/// its first known strong identifier; else the holder of its weak one,
/// unless both have strong identifiers (two emails are two people, whatever
/// their names). `holder_has_strong` answers None for a Lead it cannot see
/// (claimed by a request still writing it), which is not matched by its weak key.
pub fn match_lead(
    identity: &Identity,
    holder: impl Fn(&IdentityKey) -> Option<String>,
    holder_has_strong: impl Fn(&str) -> Option<bool>,
) -> Option<String> {
    if let Some(id) = identity.strong.iter().find_map(&holder) {
        return Some(id);
    }
    let id = identity.weak.as_ref().and_then(&holder)?;
    if identity.strong.is_empty() {
        return Some(id);
    }
    match holder_has_strong(&id) {
        Some(false) => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn emails_follow_the_rfc_rules() {
        for bad in
            ["a@b@c.co", "a b@c.co", "@c.co", "a@", "a@c", "a@[10.0.0.1]", "a@-c.co", "a@c..co", "Ada <a@c.co>", "a"]
        {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Email::parse(" First.Last+tag@Sub.Example.COM ").unwrap().as_str(),
            "first.last+tag@sub.example.com"
        );
        assert_eq!(Email::parse("Ü@Bücher.de").unwrap(), Email::parse("ü@xn--bcher-kva.DE").unwrap());
        assert_eq!(Email::parse("ü@bücher.de").unwrap().as_str(), "ü@xn--bcher-kva.de");
    }

    #[test]
    fn identifiers_over_512_bytes_are_refused_with_the_field() {
        let long = format!("{}@acme.com", "a".repeat(2000));
        match Email::parse(&long) {
            Err(DomainError::InvalidRequest { message, details }) => {
                assert!(message.contains("512"), "{message}");
                assert!(message.len() < 200, "the value is not echoed whole: {message}");
                assert_eq!(details["field"], "email");
            }
            other => panic!("{other:?}"),
        }
        assert!(CompanyDomain::parse(&format!("{}.com", "d".repeat(600))).is_err());
        assert!(linkedin_profile(&format!("https://linkedin.com/in/{}", "x".repeat(600))).is_err());
        // A long URL elsewhere is not an identifier.
        assert_eq!(linkedin_profile(&format!("https://example.com/{}", "x".repeat(600))).unwrap(), None);
    }

    #[test]
    fn the_bundled_public_suffix_list_parses_whole() {
        let list = public_suffixes();
        let rules = PUBLIC_SUFFIX_LIST.lines().filter(|l| !l.is_empty() && !l.starts_with("//")).count();
        assert!(rules > 9_000, "{rules} rules: a truncated list?");
        assert!(PUBLIC_SUFFIX_LIST.contains("===END PRIVATE DOMAINS==="), "the private section is whole");
        assert_eq!(list.suffix(b"x.y.co.uk").map(|s| s.as_bytes().to_vec()), Some(b"co.uk".to_vec()));
    }

    #[test]
    fn company_domains_are_registrable_domains() {
        let d = |s: &str| CompanyDomain::parse(s).map(|d| d.0);
        assert_eq!(d("www.acme.co.uk").unwrap(), "acme.co.uk");
        assert_eq!(d("https://shop.Acme.CO.UK:8080/x?y#z").unwrap(), "acme.co.uk");
        assert_eq!(d("acme.com.").unwrap(), "acme.com");
        assert_eq!(d("user@acme.com").unwrap(), "acme.com");
        assert_eq!(d("a.b.acme.github.io").unwrap(), "acme.github.io", "private suffixes count");
        assert_eq!(d("nimbus.example").unwrap(), "nimbus.example", "the default rule for unknown names");
        assert_eq!(d("quartzloom-labs.test").unwrap(), "quartzloom-labs.test");
        assert_eq!(d("bücher.de").unwrap(), "xn--bcher-kva.de");
        assert_eq!(d("https://www.XN--BCHER-KVA.de/").unwrap(), "xn--bcher-kva.de");
        // Wildcard and exception rules (`*.ck`, `!www.ck`), and a suffix the
        // list writes in Unicode (`中国`) met in its punycode form.
        assert_eq!(d("shop.acme.ck").unwrap(), "shop.acme.ck");
        assert_eq!(d("a.www.ck").unwrap(), "www.ck");
        assert_eq!(d("www.例え.中国").unwrap(), "xn--r8jz45g.xn--fiqs8s");
        for bad in [
            "acme.ck",
            "xn--fiqs8s",
            "co.uk",
            "com",
            "localhost",
            "192.168.1.10",
            "http://[::1]/",
            "not a domain",
            "acme..com",
            "",
            "a!b.com",
        ] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn linkedin_profiles_of_any_country_and_encoding_are_one() {
        let l = |s: &str| linkedin_profile(s).unwrap();
        let want = Some("linkedin.com/in/jürgen-x".to_string());
        for same in [
            "https://www.linkedin.com/in/J%C3%BCrgen-X/?trk=abc",
            "uk.linkedin.com/in/jürgen-x",
            "http://m.linkedin.com/in/jürgen-x/details/experience/",
            "https://DE.LinkedIn.com./in/JÜRGEN-X#top",
        ] {
            assert_eq!(l(same), want, "{same}");
        }
        assert_eq!(
            l("https://www.linkedin.com/pub/jane-doe/1/2/3").as_deref(),
            Some("linkedin.com/pub/jane-doe/1/2/3")
        );
        for not in [
            "https://linkedin.com.evil.example/in/x",
            "https://notlinkedin.com/in/x",
            "https://www.linkedin.com/feed/",
            "https://www.linkedin.com/in/",
            "https://twitter.com/x",
        ] {
            assert_eq!(l(not), None, "{not}");
        }
    }

    #[test]
    fn names_normalise_by_nfkc_case_and_spacing() {
        assert_eq!(normalise_name("  ＡＤＡ \t  Lovelace\n").as_deref(), Some("ada lovelace"));
        assert_eq!(normalise_name("ﬁona"), normalise_name("FIONA"), "ligatures decompose");
        assert_eq!(normalise_name("Ä"), normalise_name("A\u{0308}"), "composed and decomposed are one");
        assert_eq!(normalise_name(" \u{3000} "), None);
    }

    fn parts<'a>(
        t: LeadType,
        name: Option<&'a str>,
        domain: Option<&'a str>,
        contacts: Vec<(&'a str, &'a str)>,
    ) -> IdentityParts<'a> {
        IdentityParts {
            lead_type: t,
            full_name: name,
            company_name: None,
            company_domain: domain,
            contacts,
            social_urls: vec![],
        }
    }

    #[test]
    fn a_person_is_its_emails_and_linkedin_else_its_name_at_a_domain() {
        let mut p =
            parts(LeadType::Person, Some("Ada  Lovelace"), Some("www.acme.co.uk"), vec![("email", "Ada@Acme.co.uk")]);
        p.social_urls = vec!["https://uk.linkedin.com/in/ada"];
        let id = Identity::of(&p);
        let keys: Vec<&str> = id.keys().map(IdentityKey::as_str).collect();
        assert_eq!(keys, ["email#ada@acme.co.uk", "linkedin#linkedin.com/in/ada", "person#acme.co.uk#ada lovelace"]);
        // A name without a company domain, or a phone, identifies nobody.
        let none = Identity::of(&parts(LeadType::Person, Some("Ada"), None, vec![("phone", "+1 415 555 0100")]));
        assert!(none.is_empty());
    }

    #[test]
    fn a_company_is_its_domain_else_its_name() {
        let mut p = parts(LeadType::Company, None, None, vec![("website", "https://www.acme.com/about")]);
        p.company_name = Some("ACME  Inc");
        let id = Identity::of(&p);
        assert_eq!(id.strong, vec![IdentityKey::stored("domain#acme.com".into())]);
        assert_eq!(id.weak, Some(IdentityKey::stored("company#acme inc".into())));
    }

    #[test]
    fn matching_prefers_strong_keys_and_keeps_namesakes_apart() {
        let email = IdentityKey::stored("email#a@x.com".into());
        let other_email = IdentityKey::stored("email#b@x.com".into());
        let name = IdentityKey::stored("person#x.com#ada".into());
        let holders: HashMap<IdentityKey, String> = [(email.clone(), "L1".into()), (name.clone(), "L2".into())].into();
        let holder = |k: &IdentityKey| holders.get(k).cloned();
        let strong = |has: bool| move |_: &str| Some(has);
        let both = Identity { strong: vec![email.clone()], weak: Some(name.clone()) };
        assert_eq!(match_lead(&both, holder, strong(true)).as_deref(), Some("L1"), "strong first");
        let weak_only = Identity { strong: vec![], weak: Some(name.clone()) };
        assert_eq!(match_lead(&weak_only, holder, strong(true)).as_deref(), Some("L2"));
        let new_email = Identity { strong: vec![other_email.clone()], weak: Some(name.clone()) };
        assert_eq!(match_lead(&new_email, holder, strong(false)).as_deref(), Some("L2"), "found email joins its Lead");
        assert_eq!(match_lead(&new_email, holder, strong(true)), None, "two emails are two people");
        assert_eq!(match_lead(&new_email, holder, |_| None), None, "an unseen holder is not assumed");
        assert_eq!(match_lead(&Identity::default(), holder, strong(false)), None);
    }
}
