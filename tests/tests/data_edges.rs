//! Leads and Lists at the edges (issues 12 and 15), against the shared local
//! stack: who a Lead is (identifiers through the email, public-suffix and URL
//! rules), pages that must not stop at DynamoDB's 1 MB, and repeated Leads in
//! one upsert. Every test works in a fresh workspace.

use std::collections::HashSet;

use puffle_tests::{person, unique, Ctx, Resp};
use serde_json::{json, Value};

// ------------------------------------------------------------------ helpers

#[track_caller]
fn assert_400(r: &Resp) {
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["code"], "INVALID_REQUEST", "{r:?}");
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every page of `path` (which has a `?`): (entries of `key`, the page's `nextCursor`).
async fn pages(ctx: &Ctx, path: &str, key: &str, cursor_at: &str) -> Vec<(Vec<Value>, Value)> {
    let mut out = vec![];
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let p = match &cursor {
            Some(c) => format!("{path}&cursor={}", enc(c)),
            None => path.to_string(),
        };
        let r = ctx.get(&p).await;
        assert_eq!(r.status, 200, "{p}: {}", r.status);
        let next = r.body.pointer(cursor_at).cloned().unwrap_or(Value::Null);
        out.push((r.body[key].as_array().unwrap_or_else(|| panic!("no {key}: {r:?}")).clone(), next.clone()));
        match next {
            Value::String(c) => cursor = Some(c),
            _ => return out,
        }
    }
    panic!("paging {path} did not end");
}

fn ids(entries: &[Value]) -> Vec<String> {
    entries.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

async fn all_lead_ids(ctx: &Ctx) -> Vec<String> {
    pages(ctx, "/api/leads?limit=500", "leads", "/nextCursor").await.iter().flat_map(|(e, _)| ids(e)).collect()
}

/// Posts one Lead; returns (status, lead id or "").
async fn upsert(ctx: &Ctx, lead: Value) -> (u16, String) {
    let r = ctx.post("/api/leads", lead).await;
    (r.status, r.body["lead"]["id"].as_str().unwrap_or_default().to_string())
}

/// A person of about `bytes` bytes of JSON (the bulk in `location.raw`).
fn big_person(tag: &str, bytes: usize) -> Value {
    let mut p = person(tag);
    p["location"] = json!({"raw": "x".repeat(bytes)});
    p
}

// -------------------------------------------------------------- identities

#[tokio::test]
async fn a_person_with_a_name_and_a_company_domain_needs_no_email() {
    let ctx = Ctx::new(0).await;
    let d = format!("acme-{}.com", unique());
    let (s1, id1) =
        upsert(&ctx, json!({"type": "person", "name": {"full": "Ada Lovelace"}, "company": {"domain": d}})).await;
    assert_eq!(s1, 201, "a name and a company domain are enough");
    // The same person: name case, spacing and compatibility forms, and the domain as a URL.
    let again = json!({"type": "person", "name": {"full": "  ＡＤＡ   lovelace "}, "company": {"domain": format!("https://www.{d}/team")}});
    let (s2, id2) = upsert(&ctx, again).await;
    assert_eq!((s2, &id2), (200, &id1), "normalised name + registrable domain is one person");
    // Someone else of the same company is another Lead.
    let (s3, id3) =
        upsert(&ctx, json!({"type": "person", "name": {"full": "Charles Babbage"}, "company": {"domain": d}})).await;
    assert_eq!(s3, 201);
    assert_ne!(id3, id1);
    // First and last name make the full name the identifier uses.
    let parts = json!({"type": "person", "name": {"first": "Charles", "last": "BABBAGE"}, "company": {"domain": d}});
    assert_eq!(upsert(&ctx, parts).await, (200, id3));
    assert_eq!(all_lead_ids(&ctx).await.len(), 2);
}

#[tokio::test]
async fn a_name_and_domain_lead_found_again_with_its_email_stays_one_lead() {
    let ctx = Ctx::new(0).await;
    let d = format!("found-{}.com", unique());
    let (_, id) =
        upsert(&ctx, json!({"type": "person", "name": {"full": "Grace Hopper"}, "company": {"domain": d}})).await;
    let with_email = json!({"type": "person", "name": {"full": "Grace Hopper"}, "company": {"domain": d},
        "contacts": [{"type": "email", "value": format!("grace@{d}")}]});
    assert_eq!(upsert(&ctx, with_email).await, (200, id.clone()), "the email found for her joins her Lead");
    // From now on the email finds her on its own.
    let by_email =
        json!({"type": "person", "contacts": [{"type": "email", "value": format!("GRACE@{d}")}], "title": "RADM"});
    assert_eq!(upsert(&ctx, by_email).await, (200, id.clone()));
    // A namesake with another email at the same company is another person.
    let namesake = json!({"type": "person", "name": {"full": "Grace Hopper"}, "company": {"domain": d},
        "contacts": [{"type": "email", "value": format!("g.hopper2@{d}")}]});
    let (s, other) = upsert(&ctx, namesake).await;
    assert_eq!(s, 201, "two emails are two people, whatever their names");
    assert_ne!(other, id);
}

#[tokio::test]
async fn a_person_with_no_identifier_is_stored_without_dedupe() {
    let ctx = Ctx::new(0).await;
    let p = json!({"type": "person", "name": {"full": "Phone Only"}, "contacts": [{"type": "phone", "value": "+1 415 555 0100"}]});
    let (s1, a) = upsert(&ctx, p.clone()).await;
    let (s2, b) = upsert(&ctx, p).await;
    assert_eq!((s1, s2), (201, 201), "each upsert creates one");
    assert_ne!(a, b);
    let (s3, _) = upsert(&ctx, json!({"type": "person", "name": {"full": "Name Only"}})).await;
    assert_eq!(s3, 201);
    let (s4, _) = upsert(&ctx, json!({"type": "person", "company": {"name": "Company Only"}})).await;
    assert_eq!(s4, 201);
    assert_eq!(all_lead_ids(&ctx).await.len(), 4);
}

#[tokio::test]
async fn only_a_lead_with_no_name_contact_or_company_is_rejected() {
    let ctx = Ctx::new(0).await;
    for bad in [
        json!({"type": "person"}),
        json!({"type": "person", "title": "CEO", "location": {"city": "Oslo"}}),
        json!({"type": "person", "socials": [{"url": "https://twitter.com/someone"}]}),
        json!({"type": "company", "location": {"country": "GB"}}),
        json!({"type": "person", "name": {"full": "   "}, "company": {"name": ""}}),
    ] {
        assert_400(&ctx.post("/api/leads", bad).await);
    }
    assert!(all_lead_ids(&ctx).await.is_empty());
}

#[tokio::test]
async fn a_company_without_a_domain_is_identified_by_its_normalised_name() {
    let ctx = Ctx::new(0).await;
    let n = format!("Ächme {} Holdings", unique());
    let (s1, a) = upsert(&ctx, json!({"type": "company", "company": {"name": n}})).await;
    assert_eq!(s1, 201);
    let spaced = format!("  {}  ", n.to_uppercase().replace(' ', "\t "));
    assert_eq!(upsert(&ctx, json!({"type": "company", "company": {"name": spaced}})).await, (200, a));
}

#[tokio::test]
async fn emails_are_parsed_by_the_rfc_rules() {
    let ctx = Ctx::new(0).await;
    for bad in ["a@b@c.co", "a b@c.co", "@c.co", "a@", "a@c", "a@[10.0.0.1]", "a@-c.co", "a@c..co", "a@.c.co"] {
        let r = ctx.post("/api/leads", json!({"type": "person", "contacts": [{"type": "email", "value": bad}]})).await;
        assert_400(&r);
        assert!(
            r.body["details"]["errors"][0]["message"].as_str().unwrap().contains("not an email address"),
            "{bad}: {r:?}"
        );
    }
    let u = unique();
    let (s, a) = upsert(
        &ctx,
        json!({"type": "person", "contacts": [{"type": "email", "value": format!("first.last+tag-{u}@bücher.de")}]}),
    )
    .await;
    assert_eq!(s, 201, "an internationalised domain is an email domain");
    let puny = json!({"type": "person", "contacts": [{"type": "email", "value": format!("First.Last+tag-{u}@XN--BCHER-KVA.de")}]});
    assert_eq!(upsert(&ctx, puny).await, (200, a), "its punycode form is the same address");
    assert!(all_lead_ids(&ctx).await.len() == 1);
}

#[tokio::test]
async fn company_domains_are_registrable_domains() {
    let ctx = Ctx::new(0).await;
    let slug = format!("acme-{}", unique());
    let (s, a) = upsert(&ctx, json!({"type": "company", "company": {"domain": format!("www.{slug}.co.uk")}})).await;
    assert_eq!(s, 201);
    let got = ctx.get(&format!("/api/leads?id={a}")).await;
    assert_eq!(got.body["lead"]["company"]["domain"], format!("{slug}.co.uk"), "{got:?}");
    for same in
        [format!("{slug}.co.uk"), format!("https://shop.{slug}.CO.UK/x?y=1"), format!("http://{slug}.co.uk.:8080")]
    {
        assert_eq!(
            upsert(&ctx, json!({"type": "company", "company": {"domain": same}})).await,
            (200, a.clone()),
            "{same}"
        );
    }
    // A website contact is the same identifier.
    let site =
        json!({"type": "company", "contacts": [{"type": "website", "value": format!("https://about.{slug}.co.uk/")}]});
    assert_eq!(upsert(&ctx, site).await, (200, a.clone()));
    for not_a_company in ["co.uk", "com", "localhost", "192.168.1.10", "http://[::1]/", "not a domain", "acme..com"] {
        let r = ctx.post("/api/leads", json!({"type": "company", "company": {"domain": not_a_company}})).await;
        assert_400(&r);
    }
}

#[tokio::test]
async fn a_unicode_domain_and_its_punycode_are_the_same_company() {
    let ctx = Ctx::new(0).await;
    let u = unique();
    let (s, a) = upsert(&ctx, json!({"type": "company", "company": {"domain": format!("bücher-{u}.de")}})).await;
    assert_eq!(s, 201);
    let ascii = url_host(&format!("bücher-{u}.de"));
    assert!(ascii.starts_with("xn--"), "{ascii}");
    let r = upsert(
        &ctx,
        json!({"type": "company", "company": {"domain": format!("https://www.{}/", ascii.to_uppercase())}}),
    )
    .await;
    assert_eq!(r, (200, a));
}

/// The punycode of a host, computed the way a browser does (not by our code).
fn url_host(host: &str) -> String {
    let r = reqwest::Url::parse(&format!("http://{host}/")).unwrap();
    r.host_str().unwrap().to_string()
}

#[tokio::test]
async fn linkedin_urls_of_any_country_and_encoding_are_the_same_person() {
    let ctx = Ctx::new(0).await;
    let h = format!("jürgen-{}", unique());
    let p = |url: String| json!({"type": "person", "socials": [{"url": url}]});
    let (s, a) = upsert(&ctx, p(format!("https://www.linkedin.com/in/{h}/"))).await;
    assert_eq!(s, 201);
    let encoded = format!("https://uk.linkedin.com/in/{}?trk=x#top", enc(&h.to_uppercase()));
    for same in [encoded, format!("linkedin.com/in/{h}"), format!("http://de.linkedin.com/in/{h}/details/")] {
        assert_eq!(upsert(&ctx, p(same.clone())).await, (200, a.clone()), "{same}");
    }
    // Not LinkedIn profiles: not identifiers (a person with only these has nothing to find it by).
    for other in
        ["https://linkedin.com.evil.example/in/x", "https://example.com/in/x", "https://www.linkedin.com/feed/"]
    {
        assert_400(&ctx.post("/api/leads", p(other.to_string())).await);
    }
}

#[tokio::test]
async fn an_identifier_over_512_bytes_is_400_never_500() {
    let ctx = Ctx::new(0).await;
    let long = "a".repeat(2000);
    let cases = [
        json!({"type": "person", "contacts": [{"type": "email", "value": format!("{long}@acme.com")}]}),
        json!({"type": "person", "contacts": [{"type": "email", "value": format!("ab@{}.com", "b".repeat(60) + &".c".repeat(300))}]}),
        json!({"type": "person", "socials": [{"url": format!("https://linkedin.com/in/{long}")}]}),
        json!({"type": "company", "company": {"domain": format!("{}.com", "d".repeat(600))}}),
        json!({"type": "company", "company": {"name": long}}),
        json!({"type": "person", "name": {"full": long}, "company": {"domain": "acme.com"}}),
    ];
    for c in cases {
        let r = ctx.post("/api/leads", c.clone()).await;
        assert_400(&r);
        let r = ctx.post("/api/leads", json!({"leads": [person("ok"), c]})).await;
        assert_400(&r);
        assert_eq!(r.body["details"]["errors"][0]["index"], 1, "{r:?}");
    }
    assert!(all_lead_ids(&ctx).await.is_empty());
}

// ----------------------------------------------------- repeated Leads in a batch

#[tokio::test]
async fn repeated_leads_in_one_upsert_merge_and_the_later_wins() {
    let ctx = Ctx::new(0).await;
    let email = format!("twice-{}@example.com", unique());
    let l = |k: i64, title: &str| json!({"type": "person", "title": title, "contacts": [{"type": "email", "value": email}], "attributes": {"k": k, "only1": k}});
    let mut second = l(2, "CTO");
    second["attributes"] = json!({"k": 2});
    let r = ctx.post("/api/leads", json!({"leads": [l(1, "CEO"), second]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!((r.body["created"].as_u64(), r.body["updated"].as_u64()), (Some(1), Some(1)), "{r:?}");
    let got = ids(r.body["leads"].as_array().unwrap());
    assert_eq!(got[0], got[1]);
    let lead = ctx.get(&format!("/api/leads?id={}", got[0])).await.body["lead"].clone();
    assert_eq!(lead["attributes"], json!({"k": 2, "only1": 1}), "per attribute, the later Lead wins");
    assert_eq!(lead["title"], "CTO");
    assert_eq!(r.body["leads"][0], lead, "both entries answer with the merged Lead");
}

#[tokio::test]
async fn a_repeated_lead_late_in_a_large_batch_writes_everything_once() {
    let ctx = Ctx::new(0).await;
    let tag = unique();
    let mut batch: Vec<Value> = (0..40)
        .map(|i| json!({"type": "person", "contacts": [{"type": "email", "value": format!("b{i}-{tag}@example.com")}], "attributes": {"k": i}}))
        .collect();
    let dup = |v: i64| json!({"type": "person", "contacts": [{"type": "email", "value": format!("dup-{tag}@example.com")}], "attributes": {"k": v}});
    batch.push(dup(1));
    batch.push(dup(2));
    let r = ctx.post("/api/leads", json!({"leads": batch})).await;
    let listed = all_lead_ids(&ctx).await.len();
    assert_eq!(r.status, 200, "Leads written before the answer: {listed}; {r:?}");
    assert_eq!(r.body["created"], 41);
    assert_eq!(listed, 41);
}

// ------------------------------------------------ pages past DynamoDB's 1 MB

#[tokio::test]
async fn lists_with_long_descriptions_come_in_full_pages() {
    let ctx = Ctx::new(0).await;
    // 520 writes: more than one token's per-minute limit (tests/admission.rs),
    // so they go out under four tokens of the workspace.
    let app = puffle_tests::app().await;
    let mut senders = vec![ctx.clone()];
    for _ in 0..3 {
        let mut c = ctx.clone();
        c.token = app.create_token(&ctx.workspace_id).await.unwrap();
        senders.push(c);
    }
    let description = "d".repeat(2000);
    let creates: Vec<_> = (0..520)
        .map(|i| {
            let c = senders[i % senders.len()].clone();
            let body = json!({"name": format!("L{i}"), "description": description});
            async move { c.post("/api/lists", body).await.status }
        })
        .collect();
    let statuses: Vec<u16> = futures::stream::iter(creates).buffer_unordered(8).collect().await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let pages = pages(&ctx, "/api/lists?limit=500", "lists", "/nextCursor").await;
    let sizes: Vec<usize> = pages.iter().map(|(e, _)| e.len()).collect();
    assert_eq!(sizes, vec![500, 20], "a full page, then the rest");
    let all: HashSet<String> = pages.iter().flat_map(|(e, _)| ids(e)).collect();
    assert_eq!(all.len(), 520);
}

use futures::StreamExt;

/// A finished `email_domain` run over `leads`; returns its id.
async fn finished_run(ctx: &Ctx, leads: Vec<Value>) -> String {
    let ids = ctx.leads(leads).await;
    let list = ctx.list(&ids).await;
    let run = ctx
        .start(json!({"enrichmentId": "email_domain", "scope": {"type": "list", "listId": list}, "input": {}}))
        .await;
    puffle_tests::settle(ctx, &run).await;
    run
}

#[tokio::test]
async fn items_of_large_leads_come_in_full_pages() {
    let ctx = Ctx::new(1000).await;
    let leads: Vec<Value> = (0..60).map(|i| big_person(&format!("it{i}"), 56_000)).collect();
    let run = finished_run(&ctx, leads).await;
    for query in ["", "&status=completed"] {
        let pages =
            pages(&ctx, &format!("/api/enrichment/{run}/items?limit=100{query}"), "items", "/page/nextCursor").await;
        let sizes: Vec<usize> = pages.iter().map(|(e, _)| e.len()).collect();
        assert_eq!(sizes, vec![60], "{query}: one page holds the 60 items (≈3.4 MB)");
        assert!(pages[0]
            .0
            .iter()
            .all(|i| i["metadata"]["leadSnapshot"]["location"]["raw"].as_str().unwrap().len() == 56_000));
    }
}

#[tokio::test]
async fn pages_of_large_leads_reach_every_lead() {
    let ctx = Ctx::new(0).await;
    let leads: Vec<Value> = (0..90).map(|i| big_person(&format!("bl{i}"), 56_000)).collect();
    let mut created = ctx.leads(leads).await;
    created.sort();
    let list = ctx.list(&created).await;
    for (path, key) in [
        ("/api/leads?limit=500".to_string(), "leads"),
        ("/api/leads?limit=500&type=person".to_string(), "leads"),
        (format!("/api/lists/{list}/leads?limit=500"), "leads"),
        (format!("/api/lists/{list}/leads?limit=500&type=person"), "leads"),
    ] {
        let pages = pages(&ctx, &path, key, "/nextCursor").await;
        let seen: Vec<String> = pages.iter().flat_map(|(e, _)| ids(e)).collect();
        assert_eq!(seen, created, "{path}: every Lead once, in id order");
        // ≈5 MB of Leads: a page stays small enough for a Lambda response (6 MB).
        for (entries, _) in &pages {
            let bytes = serde_json::to_vec(entries).unwrap().len();
            assert!(bytes < 5_000_000, "{path}: a page of {bytes} bytes");
        }
    }
}

/// The run item stays the same size however many chunks the run has: each
/// counted chunk is its own marker item, none is added to the run.
#[tokio::test]
async fn a_run_item_does_not_grow_with_its_chunks() {
    let ctx = Ctx::new(2000).await;
    let tag = unique();
    let leads: Vec<Value> = (0..1050).map(|i| person(&format!("grow{i}-{tag}"))).collect();
    let run = finished_run(&ctx, leads).await;
    let app = puffle_tests::app().await;
    let row =
        app.store().get_row(puffle_aws::keys::run(&ctx.workspace_id, &run)).await.unwrap().expect("the run's row");
    assert!(!row.contains_key("doneChunks"), "the run item carries its chunks: {:?}", row.get("doneChunks"));
    let markers = app.store().query_all(&format!("CHUNKDONE#{run}")).await.unwrap();
    let mut numbers: Vec<String> = markers.iter().map(|m| m["sk"].as_s().unwrap().clone()).collect();
    numbers.sort();
    let want: Vec<String> = (0..11).map(|c| format!("{c:06}")).collect();
    assert_eq!(numbers, want, "one marker per chunk (1,050 Leads: 11 chunks)");
}
