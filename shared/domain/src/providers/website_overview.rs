//! `website_overview`: what a company's homepage says about it, read with a
//! real HTML parser (`scraper`, html5ever underneath), never with regexes.
//!
//! The pure part: from the page's HTML and where it was fetched from, the
//! result `{url, finalUrl, title, description, language, socials, summary}`.
//! The app layer fetches the page through the egress guard.

use serde_json::{json, Value};
use url::Url;

/// `summary` is at most this many characters (cut at a word, with `…`).
pub const MAX_SUMMARY_CHARS: usize = 300;
/// Text shorter than this is navigation, a button or a caption, not a summary.
const MIN_SUMMARY_CHARS: usize = 40;
const MAX_TITLE_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_SOCIALS: usize = 10;

/// Registrable hosts of the social networks reported in `socials`.
const SOCIAL_HOSTS: &[&str] = &[
    "linkedin.com",
    "twitter.com",
    "x.com",
    "facebook.com",
    "instagram.com",
    "youtube.com",
    "github.com",
    "tiktok.com",
];

/// Elements whose text is never the page's summary.
const CHROME: &[&str] = &["nav", "header", "footer", "aside", "script", "style", "noscript", "form", "template"];

fn sel(s: &str) -> scraper::Selector {
    // The selectors are literals of this file, checked by its tests.
    scraper::Selector::parse(s).expect("a valid CSS selector")
}

/// Whitespace collapsed and trimmed.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters, cut at a word boundary when there is one.
pub fn bounded(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    let at_word = cut.rfind(' ').filter(|i| *i > max / 2).map(|i| &cut[..i]).unwrap_or(&cut);
    format!("{}…", at_word.trim_end_matches([',', ';', ':', ' ']))
}

fn meta(doc: &scraper::Html, selector: &str) -> Option<String> {
    doc.select(&sel(selector)).find_map(|e| e.attr("content")).map(collapse).filter(|s| !s.is_empty())
}

fn social(href: &str, base: &Url) -> Option<String> {
    let u = base.join(href.trim()).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let host = u.host_str()?.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host).to_string();
    let network = SOCIAL_HOSTS.iter().find(|s| host == **s || host.ends_with(&format!(".{s}")))?;
    let path = u.path().trim_end_matches('/');
    // Share buttons and the network's own home page say nothing about the company.
    if path.is_empty() || ["/sharer", "/share", "/intent", "/home"].iter().any(|p| path.starts_with(p)) {
        return None;
    }
    Some(format!("https://{network}{path}"))
}

fn in_chrome(e: &scraper::ElementRef<'_>) -> bool {
    e.ancestors().filter_map(scraper::ElementRef::wrap).any(|a| CHROME.contains(&a.value().name()))
}

/// The overview of a page fetched from `url` that ended at `final_url`.
pub fn overview(html: &str, url: &str, final_url: &Url) -> Value {
    let doc = scraper::Html::parse_document(html);
    let title = doc
        .select(&sel("head title, title"))
        .map(|t| collapse(&t.text().collect::<String>()))
        .find(|t| !t.is_empty())
        .or_else(|| meta(&doc, r#"meta[property="og:title"]"#))
        .map(|t| bounded(&t, MAX_TITLE_CHARS));
    let description = meta(&doc, r#"meta[name="description"], meta[name="Description"]"#)
        .or_else(|| meta(&doc, r#"meta[property="og:description"]"#))
        .map(|d| bounded(&d, MAX_DESCRIPTION_CHARS));
    let language = doc
        .select(&sel("html"))
        .find_map(|h| h.attr("lang"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.len() <= 35)
        .map(str::to_lowercase)
        .or_else(|| meta(&doc, r#"meta[http-equiv="content-language"]"#).map(|l| l.to_lowercase()));
    let mut socials: Vec<String> = vec![];
    for a in doc.select(&sel("a[href]")) {
        if let Some(s) = a.attr("href").and_then(|h| social(h, final_url)) {
            if !socials.contains(&s) && socials.len() < MAX_SOCIALS {
                socials.push(s);
            }
        }
    }
    let summary = doc
        .select(&sel("body p, body li, body h1, body h2"))
        .filter(|e| !in_chrome(e))
        .map(|e| collapse(&e.text().collect::<String>()))
        .find(|t| t.chars().count() >= MIN_SUMMARY_CHARS)
        .or_else(|| description.clone())
        .map(|s| bounded(&s, MAX_SUMMARY_CHARS));
    json!({
        "url": url,
        "finalUrl": final_url.as_str(),
        "title": title,
        "description": description,
        "language": language,
        "socials": socials,
        "summary": summary,
    })
}

/// Whether a response's content type is HTML (absent counts as HTML:
/// many servers omit it for their home page).
pub fn is_html(content_type: Option<&str>) -> bool {
    match content_type {
        None => true,
        Some(ct) => {
            let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            essence == "text/html" || essence == "application/xhtml+xml"
        }
    }
}

/// The homepage to fetch for a company: its website contact, else
/// `https://<company domain>/`.
pub fn homepage(website: Option<&str>, domain: Option<&str>) -> Option<String> {
    let from = |raw: &str| {
        let raw = raw.trim();
        let with_scheme = if raw.contains("://") { raw.to_string() } else { format!("https://{raw}") };
        Url::parse(&with_scheme).ok().filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
    };
    website.and_then(from).or_else(|| domain.and_then(from)).map(|u| u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://www.acme.test/home").unwrap()
    }

    #[test]
    fn a_full_page() {
        let html = r#"<!doctype html><html lang="en-GB"><head><title>  Acme —
            Rockets </title><meta name="description" content="We build   rockets."></head>
            <body><nav><p>Home Products Pricing About Careers Contact Blog Login</p></nav>
            <p>Short.</p>
            <p>Acme builds reusable rockets for small satellites, launching weekly from three sites.</p>
            <a href="https://www.linkedin.com/company/acme/">in</a><a href="https://twitter.com/acme">tw</a>
            <a href="https://twitter.com/intent/tweet?text=x">share</a><a href="/about">about</a>
            <a href="https://linkedin.com/company/acme">dup</a></body></html>"#;
        let v = overview(html, "https://acme.test", &base());
        assert_eq!(v["title"], "Acme — Rockets");
        assert_eq!(v["description"], "We build rockets.");
        assert_eq!(v["language"], "en-gb");
        assert_eq!(v["finalUrl"], "https://www.acme.test/home");
        assert_eq!(v["socials"], json!(["https://linkedin.com/company/acme", "https://twitter.com/acme"]));
        assert_eq!(
            v["summary"],
            "Acme builds reusable rockets for small satellites, launching weekly from three sites."
        );
    }

    #[test]
    fn a_bare_page_gives_nulls_not_errors() {
        let v = overview("<p>hi</p>", "https://acme.test", &base());
        assert_eq!(
            (v["title"].clone(), v["description"].clone(), v["summary"].clone()),
            (Value::Null, Value::Null, Value::Null)
        );
        assert_eq!(v["socials"], json!([]));
    }

    #[test]
    fn summaries_are_bounded() {
        let long = "word ".repeat(200);
        let v = overview(&format!("<p>{long}</p>"), "u", &base());
        let s = v["summary"].as_str().unwrap();
        assert!(s.chars().count() <= MAX_SUMMARY_CHARS && s.ends_with('…'), "{s}");
        assert_eq!(bounded("short", 10), "short");
    }

    #[test]
    fn content_types_and_homepages() {
        assert!(is_html(Some("text/html; charset=utf-8")) && is_html(None) && is_html(Some("application/xhtml+xml")));
        assert!(!is_html(Some("application/pdf")) && !is_html(Some("application/json")));
        assert_eq!(homepage(None, Some("acme.test")).as_deref(), Some("https://acme.test/"));
        assert_eq!(homepage(Some("http://127.0.0.1:9/x"), Some("acme.test")).as_deref(), Some("http://127.0.0.1:9/x"));
        assert_eq!(homepage(None, None), None);
    }
}
