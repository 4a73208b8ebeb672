//! Foundation (issue 3) against the shared local stack: auth and credits,
//! workspace isolation, Lead upserts and dedupe, Lead paging, Lists and
//! memberships, concurrent adds, and tamper-evident cursors.
//!
//! Every test works in fresh workspaces with unique identifiers, so the tests
//! run in parallel with each other and with other suites on the same stack.

use std::collections::{BTreeSet, HashSet};

use puffle_tests::{assert_error, company, person, unique, Ctx, Resp};
use serde_json::{json, Value};

// ------------------------------------------------------------------ helpers

/// Sends a request with an exact `Authorization` header value (or none).
async fn raw(ctx: &Ctx, method: &str, path: &str, authorization: Option<&str>, body: Option<Value>) -> Resp {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = ctx.http.request(m, format!("{}{}", ctx.base, path));
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    Resp::read(req.send().await.expect("request")).await
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ids_of(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no `{key}` array in {v}"))
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect()
}

/// Follows `nextCursor` through `path` (which already has a `?`), returning
/// every page's body.
async fn pages(ctx: &Ctx, path: &str, cursor_field: &str) -> Vec<Value> {
    let mut out = vec![];
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let p = match &cursor {
            Some(c) => format!("{path}&cursor={}", enc(c)),
            None => path.to_string(),
        };
        let r = ctx.get(&p).await;
        assert_eq!(r.status, 200, "{p}: {r:?}");
        let next = r.body[cursor_field].clone();
        out.push(r.body);
        match next {
            Value::String(c) => cursor = Some(c),
            Value::Null => return out,
            other => panic!("{cursor_field} must be a string or null, got {other}"),
        }
    }
    panic!("paging {path} did not end");
}

/// Every Lead id of the workspace (type filter optional), in listing order.
async fn all_lead_ids(ctx: &Ctx, query: &str) -> Vec<String> {
    pages(ctx, &format!("/api/leads?limit=500{query}"), "nextCursor")
        .await
        .iter()
        .flat_map(|p| ids_of(p, "leads"))
        .collect()
}

fn person_with_linkedin(url: &str) -> Value {
    json!({"type": "person", "name": {"full": "Linked In"}, "socials": [{"url": url}]})
}

fn email_person(email: &str) -> Value {
    json!({"type": "person", "name": {"first": "Ada", "last": "Lovelace"}, "contacts": [{"type": "email", "value": email}]})
}

/// Small deterministic PRNG (splitmix64) for reproducible random choices.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// `k` distinct indices out of `0..n`.
    fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + (self.next() as usize) % (n - i);
            v.swap(i, j);
        }
        v.truncate(k);
        v
    }
}

fn is_rfc3339_utc(s: &str) -> bool {
    // 2024-01-02T03:04:05(.fff)Z
    let b = s.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':' && s.ends_with('Z')
}

// --------------------------------------------------------------------- auth

#[tokio::test]
async fn missing_authorization_header_is_401() {
    let ctx = Ctx::new(0).await;
    for (method, path) in
        [("GET", "/api/credits"), ("GET", "/api/leads"), ("GET", "/api/lists"), ("GET", "/api/enrichments")]
    {
        let r = raw(&ctx, method, path, None, None).await;
        assert_error(&r, 401, "UNAUTHENTICATED");
    }
    let r = raw(&ctx, "POST", "/api/leads", None, Some(person("noauth"))).await;
    assert_error(&r, 401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn unknown_token_is_401() {
    let ctx = Ctx::new(0).await;
    let fake = format!("pk_{}", unique());
    let r = ctx.send("GET", "/api/credits", None, Some(&fake)).await;
    assert_error(&r, 401, "UNAUTHENTICATED");
    // A real token with one character changed is just as unknown.
    let mut t: Vec<char> = ctx.token.chars().collect();
    let i = t.len() / 2;
    t[i] = if t[i] == 'a' { 'b' } else { 'a' };
    let altered: String = t.into_iter().collect();
    let r = ctx.send("GET", "/api/credits", None, Some(&altered)).await;
    assert_error(&r, 401, "UNAUTHENTICATED");
    // Nothing the unknown token sent was written.
    let r = ctx.send("POST", "/api/leads", Some(person("unknowntok")), Some(&fake)).await;
    assert_error(&r, 401, "UNAUTHENTICATED");
    assert!(all_lead_ids(&ctx, "").await.is_empty());
}

#[tokio::test]
async fn malformed_authorization_header_is_401() {
    let ctx = Ctx::new(0).await;
    let t = ctx.token.clone();
    let headers = [
        t.clone(),                              // no scheme
        format!("Basic {t}"),                   // wrong scheme
        format!("Token {t}"),                   // wrong scheme
        "Bearer".to_string(),                   // no token
        "Bearer    ".to_string(),               // blank token
        format!("Bearer{t}"),                   // no separator
        format!("Bearer {}", "x".repeat(5000)), // absurdly long
        String::new(),                          // empty header
    ];
    for h in headers {
        let r = raw(&ctx, "GET", "/api/credits", Some(&h), None).await;
        assert_error(&r, 401, "UNAUTHENTICATED");
    }
    // The same token, well formed, works.
    let r = raw(&ctx, "GET", "/api/credits", Some(&format!("Bearer {t}")), None).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn every_authenticated_route_without_token_is_401() {
    let ctx = Ctx::new(0).await;
    for route in puffle_http::routes::ROUTES {
        // /mcp answers MCP without a token and refuses each tool call (tests/mcp.rs).
        if route.path == "/api/health" || !route.path.starts_with("/api/") {
            continue;
        }
        let path = route.path.replace("{id}", "x_1");
        let body = (route.method == "POST").then(|| json!({}));
        let r = raw(&ctx, route.method, &path, None, body).await;
        assert_error(&r, 401, "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn health_without_auth_is_200_ok() {
    let ctx = Ctx::new(0).await;
    let r = raw(&ctx, "GET", "/api/health", None, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({"status": "ok"}));
    // An unknown token does not break it either.
    let r = raw(&ctx, "GET", "/api/health", Some("Bearer nope"), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "ok");
}

#[tokio::test]
async fn credits_return_the_workspace_balance() {
    let a = Ctx::new(1234).await;
    let b = Ctx::new(7).await;
    let zero = Ctx::new(0).await;
    let r = a.get("/api/credits").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({"balance": 1234}));
    assert_eq!(b.get("/api/credits").await.body, json!({"balance": 7}));
    assert_eq!(zero.get("/api/credits").await.body, json!({"balance": 0}));
    // A grant shows up in the balance.
    let app = puffle_tests::app().await;
    app.grant_credits(&b.workspace_id, 10, "test grant").await.unwrap();
    assert_eq!(b.get("/api/credits").await.body, json!({"balance": 17}));
    assert_eq!(a.get("/api/credits").await.body, json!({"balance": 1234}));
}

// ---------------------------------------------------------------- isolation

#[tokio::test]
async fn another_workspaces_lead_is_404_like_a_missing_one() {
    let a = Ctx::new(0).await;
    let b = Ctx::new(0).await;
    let id = a.leads(vec![person("isoA")]).await.remove(0);
    assert_eq!(a.get(&format!("/api/leads?id={id}")).await.status, 200);

    let foreign = b.get(&format!("/api/leads?id={id}")).await;
    let missing = b.get(&format!("/api/leads?id=lead_{}", unique())).await;
    let garbage = b.get("/api/leads?id=nope").await;
    assert_error(&foreign, 404, "LEAD_NOT_FOUND");
    assert_error(&missing, 404, "LEAD_NOT_FOUND");
    assert_error(&garbage, 404, "LEAD_NOT_FOUND");
    let keys = |r: &Resp| r.body.as_object().unwrap().keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(keys(&foreign), keys(&missing));
    assert!(!foreign.body.to_string().contains(&a.workspace_id));
    // And B's listing does not show it.
    assert!(all_lead_ids(&b, "").await.is_empty());
}

#[tokio::test]
async fn another_workspaces_list_is_404_like_a_missing_one() {
    let a = Ctx::new(0).await;
    let b = Ctx::new(0).await;
    let a_leads = a.people("isoL", 2).await;
    let list = a.list(&a_leads).await;
    let before = a.get(&format!("/api/lists/{list}")).await;
    assert_eq!(before.status, 200, "{before:?}");
    let b_lead = b.people("isoLb", 1).await;
    let missing = format!("list_{}", unique());

    for id in [list.as_str(), missing.as_str()] {
        assert_error(&b.get(&format!("/api/lists/{id}")).await, 404, "LIST_NOT_FOUND");
        assert_error(&b.get(&format!("/api/lists/{id}/leads")).await, 404, "LIST_NOT_FOUND");
        assert_error(&b.get(&format!("/api/lists/{id}/leads?limit=5&type=person")).await, 404, "LIST_NOT_FOUND");
        // With B's own (valid) Leads and with A's Leads.
        assert_error(
            &b.post(&format!("/api/lists/{id}/leads"), json!({"leadIds": b_lead})).await,
            404,
            "LIST_NOT_FOUND",
        );
        assert_error(
            &b.post(&format!("/api/lists/{id}/leads"), json!({"leadIds": a_leads})).await,
            404,
            "LIST_NOT_FOUND",
        );
    }
    // Foreign and missing answer the same shape.
    let f = b.get(&format!("/api/lists/{list}")).await;
    let m = b.get(&format!("/api/lists/{missing}")).await;
    assert_eq!(
        f.body.as_object().unwrap().keys().collect::<Vec<_>>(),
        m.body.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    // A's List is untouched and B's listing does not show it.
    let after = a.get(&format!("/api/lists/{list}")).await;
    assert_eq!(after.body, before.body);
    let r = b.get("/api/lists").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["lists"], json!([]));
}

#[tokio::test]
async fn another_workspaces_leads_are_leads_not_found() {
    let a = Ctx::new(0).await;
    let b = Ctx::new(0).await;
    let a_lead = a.people("isoX", 1).await.remove(0);
    let b_leads = b.people("isoY", 2).await;
    let b_list = b.list(&b_leads).await;
    let r =
        b.post(&format!("/api/lists/{b_list}/leads"), json!({"leadIds": [b_leads[0].clone(), a_lead.clone()]})).await;
    assert_error(&r, 400, "LEADS_NOT_FOUND");
    assert_eq!(r.body["details"]["leadIds"], json!([a_lead]));
    let r = b.post("/api/lists", json!({"name": "x", "leadIds": [a_lead]})).await;
    assert_error(&r, 400, "LEADS_NOT_FOUND");
    let l = b.get(&format!("/api/lists/{b_list}")).await;
    assert_eq!(l.body["list"]["leadCount"], 2);
}

#[tokio::test]
async fn same_email_in_two_workspaces_makes_two_leads() {
    let a = Ctx::new(0).await;
    let b = Ctx::new(0).await;
    let email = format!("shared-{}@example.com", unique());
    let ra = a.post("/api/leads", email_person(&email)).await;
    let rb = b.post("/api/leads", email_person(&email)).await;
    assert_eq!(ra.status, 201, "{ra:?}");
    assert_eq!(rb.status, 201, "{rb:?}");
    assert_eq!(rb.body["created"], true);
    assert_ne!(ra.body["lead"]["id"], rb.body["lead"]["id"]);
}

// ------------------------------------------------------------------ upserts

#[tokio::test]
async fn upsert_one_lead_is_201_created_then_200_updated() {
    let ctx = Ctx::new(0).await;
    let email = format!("one-{}@example.com", unique());
    let r = ctx.post("/api/leads", email_person(&email)).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["created"], true);
    assert_eq!(r.body.as_object().unwrap().len(), 2, "only lead and created: {r:?}");
    let lead = &r.body["lead"];
    let id = lead["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("lead_"), "{id}");
    assert_eq!(lead["type"], "person");
    assert_eq!(lead["name"]["full"], "Ada Lovelace");
    assert_eq!(lead["name"]["first"], "Ada");
    assert_eq!(lead["contacts"], json!([{"type": "email", "value": email}]));
    assert_eq!(lead["attributes"], json!({}));
    let created_at = lead["createdAt"].as_str().unwrap().to_string();
    assert!(is_rfc3339_utc(&created_at), "{created_at}");
    assert_eq!(lead["updatedAt"], lead["createdAt"]);

    let mut again = email_person(&email);
    again["title"] = json!("CTO");
    let r = ctx.post("/api/leads", again).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["created"], false);
    assert_eq!(r.body["lead"]["id"], id.as_str());
    assert_eq!(r.body["lead"]["title"], "CTO");
    assert_eq!(r.body["lead"]["createdAt"], created_at.as_str());
    assert!(r.body["lead"]["updatedAt"].as_str().unwrap() >= created_at.as_str());
    // An upsert changes only what it names.
    assert_eq!(r.body["lead"]["name"]["full"], "Ada Lovelace");
    assert_eq!(all_lead_ids(&ctx, "").await, vec![id]);
}

#[tokio::test]
async fn upsert_batch_returns_leads_in_input_order_with_counts() {
    let ctx = Ctx::new(0).await;
    let existing = person("pre");
    let existing_id = ctx.leads(vec![existing.clone()]).await.remove(0);
    let batch = vec![person("b0"), company("b1"), existing.clone(), person("b3"), company("b4")];
    let r = ctx.post("/api/leads", json!({"leads": batch})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["created"], 4);
    assert_eq!(r.body["updated"], 1);
    let leads = r.body["leads"].as_array().unwrap();
    assert_eq!(leads.len(), 5);
    for (i, (got, sent)) in leads.iter().zip(&batch).enumerate() {
        assert_eq!(got["type"], sent["type"], "index {i}");
        match sent["type"].as_str().unwrap() {
            "person" => assert_eq!(got["contacts"][0]["value"], sent["contacts"][0]["value"], "index {i}"),
            _ => assert_eq!(got["company"]["domain"], sent["company"]["domain"], "index {i}"),
        }
    }
    assert_eq!(leads[2]["id"], existing_id.as_str());
    let ids: HashSet<String> = ids_of(&r.body, "leads").into_iter().collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(all_lead_ids(&ctx, "").await.len(), 5);
}

#[tokio::test]
async fn upsert_batch_of_1000_is_accepted() {
    let ctx = Ctx::new(0).await;
    let tag = unique();
    let batch: Vec<Value> = (0..1000).map(|i| email_person(&format!("k{i}-{tag}@example.com"))).collect();
    let r = ctx.post("/api/leads", json!({"leads": batch})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["created"], 1000);
    assert_eq!(r.body["updated"], 0);
    let leads = r.body["leads"].as_array().unwrap();
    assert_eq!(leads.len(), 1000);
    for (i, l) in leads.iter().enumerate() {
        assert_eq!(l["contacts"][0]["value"], format!("k{i}-{tag}@example.com"), "index {i}");
    }
    let listed = all_lead_ids(&ctx, "").await;
    assert_eq!(listed.len(), 1000);
    assert_eq!(listed.iter().collect::<HashSet<_>>(), ids_of(&r.body, "leads").iter().collect::<HashSet<_>>());
}

#[tokio::test]
async fn upsert_batch_of_1001_is_400_and_writes_nothing() {
    let ctx = Ctx::new(0).await;
    let tag = unique();
    let batch: Vec<Value> = (0..1001).map(|i| email_person(&format!("o{i}-{tag}@example.com"))).collect();
    let r = ctx.post("/api/leads", json!({"leads": batch})).await;
    assert_error(&r, 400, "INVALID_REQUEST");
    assert!(all_lead_ids(&ctx, "").await.is_empty());
}

#[tokio::test]
async fn upsert_empty_batch_is_400() {
    let ctx = Ctx::new(0).await;
    assert_error(&ctx.post("/api/leads", json!({"leads": []})).await, 400, "INVALID_REQUEST");
    assert_error(&ctx.post("/api/leads", json!({"leads": null})).await, 400, "INVALID_REQUEST");
    assert_error(&ctx.post("/api/leads", json!([])).await, 400, "INVALID_REQUEST");
}

#[tokio::test]
async fn person_email_is_matched_case_insensitively() {
    let ctx = Ctx::new(0).await;
    let u = unique();
    let upper = format!("Jane.{}@Example-{}.COM", u.to_uppercase(), u);
    let r1 = ctx.post("/api/leads", email_person(&upper)).await;
    assert_eq!(r1.status, 201, "{r1:?}");
    assert_eq!(r1.body["lead"]["contacts"][0]["value"], upper.to_lowercase());
    let r2 = ctx.post("/api/leads", email_person(&upper.to_lowercase())).await;
    assert_eq!(r2.status, 200, "{r2:?}");
    assert_eq!(r2.body["created"], false);
    assert_eq!(r2.body["lead"]["id"], r1.body["lead"]["id"]);
    let r3 = ctx.post("/api/leads", email_person(&format!("  {}  ", upper.to_uppercase()))).await;
    assert_eq!(r3.body["created"], false, "{r3:?}");
    assert_eq!(r3.body["lead"]["id"], r1.body["lead"]["id"]);
    assert_eq!(all_lead_ids(&ctx, "").await.len(), 1);
}

#[tokio::test]
async fn linkedin_url_variants_are_the_same_lead() {
    let ctx = Ctx::new(0).await;
    let handle = format!("Jane-{}", unique().to_uppercase());
    let r1 = ctx.post("/api/leads", person_with_linkedin(&format!("https://www.linkedin.com/in/{handle}/"))).await;
    assert_eq!(r1.status, 201, "{r1:?}");
    let id = r1.body["lead"]["id"].clone();
    for variant in [
        format!("linkedin.com/in/{}?trk=1", handle.to_lowercase()),
        format!("http://m.linkedin.com/in/{}#about", handle.to_lowercase()),
        format!("HTTPS://LINKEDIN.COM/in/{handle}"),
    ] {
        let r = ctx.post("/api/leads", person_with_linkedin(&variant)).await;
        assert_eq!(r.status, 200, "{variant}: {r:?}");
        assert_eq!(r.body["created"], false, "{variant}");
        assert_eq!(r.body["lead"]["id"], id, "{variant}");
    }
    // A different handle is a different person.
    let other = ctx.post("/api/leads", person_with_linkedin(&format!("https://www.linkedin.com/in/{handle}-2/"))).await;
    assert_eq!(other.status, 201, "{other:?}");
    assert_ne!(other.body["lead"]["id"], id);
    assert_eq!(all_lead_ids(&ctx, "").await.len(), 2);
}

#[tokio::test]
async fn company_domain_url_and_bare_domain_are_the_same_lead() {
    let ctx = Ctx::new(0).await;
    let u = unique();
    let r1 = ctx.post("/api/leads", json!({"type": "company", "company": {"name": "Acme", "domain": format!("https://www.Acme-{u}.com/about")}})).await;
    assert_eq!(r1.status, 201, "{r1:?}");
    assert_eq!(r1.body["lead"]["company"]["domain"], format!("acme-{u}.com"));
    let id = r1.body["lead"]["id"].clone();
    let r2 = ctx
        .post(
            "/api/leads",
            json!({"type": "company", "company": {"name": "Acme Inc", "domain": format!("acme-{u}.com")}}),
        )
        .await;
    assert_eq!(r2.status, 200, "{r2:?}");
    assert_eq!(r2.body["created"], false);
    assert_eq!(r2.body["lead"]["id"], id);
    assert_eq!(r2.body["lead"]["company"]["name"], "Acme Inc");
    // A website contact names the same company.
    let r3 = ctx
        .post(
            "/api/leads",
            json!({"type": "company", "contacts": [{"type": "website", "value": format!("http://ACME-{u}.com:443/")}]}),
        )
        .await;
    assert_eq!(r3.body["created"], false, "{r3:?}");
    assert_eq!(r3.body["lead"]["id"], id);
    assert_eq!(all_lead_ids(&ctx, "").await, vec![id.as_str().unwrap().to_string()]);
}

#[tokio::test]
async fn reimport_of_a_batch_creates_no_duplicates() {
    let ctx = Ctx::new(0).await;
    let batch: Vec<Value> =
        (0..6).map(|i| if i % 3 == 2 { company(&format!("re{i}")) } else { person(&format!("re{i}")) }).collect();
    let r1 = ctx.post("/api/leads", json!({"leads": batch})).await;
    assert_eq!(r1.status, 200, "{r1:?}");
    assert_eq!((r1.body["created"].as_u64(), r1.body["updated"].as_u64()), (Some(6), Some(0)));
    let r2 = ctx.post("/api/leads", json!({"leads": batch})).await;
    assert_eq!(r2.status, 200, "{r2:?}");
    assert_eq!((r2.body["created"].as_u64(), r2.body["updated"].as_u64()), (Some(0), Some(6)));
    assert_eq!(ids_of(&r1.body, "leads"), ids_of(&r2.body, "leads"));
    let mut listed = all_lead_ids(&ctx, "").await;
    listed.sort();
    let mut sent = ids_of(&r1.body, "leads");
    sent.sort();
    assert_eq!(listed, sent);
}

#[tokio::test]
async fn the_same_identifier_twice_in_one_batch_is_one_lead() {
    let ctx = Ctx::new(0).await;
    let email = format!("twice-{}@example.com", unique());
    let r = ctx.post("/api/leads", json!({"leads": [email_person(&email), email_person(&email.to_uppercase())]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let ids = ids_of(&r.body, "leads");
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    assert_eq!(r.body["created"], 1);
    assert_eq!(all_lead_ids(&ctx, "").await, vec![ids[0].clone()]);
}

#[tokio::test]
async fn lead_with_nothing_to_find_it_by_or_a_bad_identifier_is_400() {
    let ctx = Ctx::new(0).await;
    // A name, a phone or a company name alone are Leads (data_edges.rs).
    let bad = [
        json!({"type": "person", "title": "No name, contact or company"}),
        json!({"type": "person", "socials": [{"url": "https://twitter.com/someone"}]}),
        json!({"type": "person", "contacts": [{"type": "email", "value": "not-an-email"}]}),
        json!({"type": "company", "company": {"domain": "localhost"}}),
        json!({"name": {"full": "No type"}, "contacts": [{"type": "email", "value": format!("nt-{}@example.com", unique())}]}),
    ];
    for b in bad {
        let r = ctx.post("/api/leads", b.clone()).await;
        assert_error(&r, 400, "INVALID_REQUEST");
    }
    assert!(all_lead_ids(&ctx, "").await.is_empty());
}

#[tokio::test]
async fn one_invalid_lead_rejects_the_whole_batch() {
    let ctx = Ctx::new(0).await;
    let batch = json!({"leads": [person("ok0"), {"type": "person", "title": "x"}, person("ok2")]});
    let r = ctx.post("/api/leads", batch).await;
    assert_error(&r, 400, "INVALID_REQUEST");
    let errors = r.body["details"]["errors"].as_array().expect("details.errors");
    assert_eq!(errors.len(), 1, "{r:?}");
    assert_eq!(errors[0]["index"], 1);
    assert!(all_lead_ids(&ctx, "").await.is_empty());
}

#[tokio::test]

async fn concurrent_upserts_of_the_same_email_make_one_lead() {
    let ctx = Ctx::new(0).await;
    let email = format!("race-{}@example.com", unique());
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let c = ctx.clone();
            let e = email.clone();
            tokio::spawn(async move { c.post("/api/leads", email_person(&e)).await })
        })
        .collect();
    let results: Vec<Resp> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    let ids: HashSet<String> =
        results.iter().map(|r| r.body["lead"]["id"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(ids.len(), 1, "one email, one Lead: {results:?}");
    assert_eq!(results.iter().filter(|r| r.status == 201).count(), 1, "{results:?}");
    assert_eq!(all_lead_ids(&ctx, "").await.len(), 1);
}

#[tokio::test]

async fn a_batch_rejected_by_the_store_writes_nothing_and_a_retry_makes_no_duplicates() {
    let ctx = Ctx::new(0).await;
    let tag = unique();
    let good: Vec<Value> = (0..30).map(|i| email_person(&format!("pw{i}-{tag}@example.com"))).collect();
    let mut bad = email_person(&format!("pwbad-{tag}@example.com"));
    bad["attributes"] = json!({"x": 1e-200}); // below DynamoDB's smallest number
    let mut batch = good.clone();
    batch.push(bad);
    let rejected = ctx.post("/api/leads", json!({"leads": batch})).await;
    let written = all_lead_ids(&ctx, "").await.len();
    let retry = ctx.post("/api/leads", json!({"leads": good})).await;
    let total = all_lead_ids(&ctx, "").await.len();
    let report = format!(
        "rejected batch: {} {}; Leads it left behind: {written}; retry of the 30 good ones: {} created={}; Leads now: {total}",
        rejected.status, rejected.body, retry.status, retry.body["created"]
    );
    assert!((400..500).contains(&rejected.status), "a Lead the store cannot hold is the client's error: {report}");
    assert_eq!(written, 0, "a rejected batch wrote Leads: {report}");
    assert_eq!(retry.status, 200, "{report}");
    assert_eq!(retry.body["created"], 30, "{report}");
    assert_eq!(total, 30, "{report}");
}

// ---------------------------------------------------------- reading Leads

#[tokio::test]
async fn get_lead_by_id_returns_it_with_attributes() {
    let ctx = Ctx::new(0).await;
    let mut p = person("attrs");
    p["attributes"] = json!({"score": 42, "tier": "gold", "nested": {"a": [1, 2]}});
    p["location"] = json!({"city": "Lisbon", "country": "PT"});
    let r = ctx.post("/api/leads", p).await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["lead"]["id"].as_str().unwrap().to_string();
    let g = ctx.get(&format!("/api/leads?id={id}")).await;
    assert_eq!(g.status, 200, "{g:?}");
    assert_eq!(g.body.as_object().unwrap().len(), 1, "only `lead`: {g:?}");
    let lead = &g.body["lead"];
    assert_eq!(lead["id"], id.as_str());
    assert_eq!(lead["attributes"], json!({"score": 42, "tier": "gold", "nested": {"a": [1, 2]}}));
    assert_eq!(lead["location"]["city"], "Lisbon");
    assert_eq!(*lead, r.body["lead"], "GET returns what the upsert returned");
    // The listing carries the attributes too.
    let l = ctx.get("/api/leads").await;
    assert_eq!(l.body["leads"][0]["attributes"]["score"], 42);
    // A later upsert keeps earlier attributes and adds new ones.
    let mut p2 = json!({"type": "person", "contacts": lead["contacts"].clone()});
    p2["attributes"] = json!({"extra": true});
    let r2 = ctx.post("/api/leads", p2).await;
    assert_eq!(r2.status, 200, "{r2:?}");
    let g2 = ctx.get(&format!("/api/leads?id={id}")).await;
    assert_eq!(
        g2.body["lead"]["attributes"],
        json!({"score": 42, "tier": "gold", "nested": {"a": [1, 2]}, "extra": true})
    );
}

#[tokio::test]
async fn lead_limit_outside_1_to_500_is_400() {
    let ctx = Ctx::new(0).await;
    ctx.people("lim", 2).await;
    for bad in ["0", "501", "abc", "-1", "", "1.5", "99999999999999999999999"] {
        let r = ctx.get(&format!("/api/leads?limit={}", enc(bad))).await;
        assert_error(&r, 400, "INVALID_REQUEST");
        assert_eq!(r.body["details"]["field"], "limit", "{r:?}");
    }
    for good in ["1", "500"] {
        let r = ctx.get(&format!("/api/leads?limit={good}")).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = ctx.get("/api/leads?limit=1").await;
    assert_eq!(r.body["leads"].as_array().unwrap().len(), 1);
    assert!(r.body["nextCursor"].is_string());
}

#[tokio::test]
async fn lead_paging_sees_every_lead_once_in_id_order() {
    let ctx = Ctx::new(0).await;
    let mut batch: Vec<Value> = (0..7).map(|i| person(&format!("pg{i}"))).collect();
    batch.push(company("pgc0"));
    batch[3]["attributes"] = json!({"a": 1, "b": 2, "c": 3}); // extra rows in the partition
    let created = ctx.leads(batch).await;
    let pages = pages(&ctx, "/api/leads?limit=3", "nextCursor").await;
    assert_eq!(pages.len(), 3, "8 leads, limit 3: {pages:?}");
    for (i, p) in pages.iter().enumerate() {
        let n = p["leads"].as_array().unwrap().len();
        assert!(n <= 3 && n > 0, "page {i} has {n} leads");
        assert_eq!(p["nextCursor"].is_null(), i == pages.len() - 1, "page {i}: {p}");
    }
    let seen: Vec<String> = pages.iter().flat_map(|p| ids_of(p, "leads")).collect();
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "ascending id order, each once");
    let mut expected = created.clone();
    expected.sort();
    assert_eq!(seen, expected);
    // Exactly a multiple of the page size: the last page still says null.
    let pages6 = pages_with(&ctx, "/api/leads?limit=4").await;
    assert_eq!(pages6.last().unwrap()["nextCursor"], Value::Null);
    assert_eq!(pages6.iter().flat_map(|p| ids_of(p, "leads")).collect::<Vec<_>>(), expected);
}

async fn pages_with(ctx: &Ctx, path: &str) -> Vec<Value> {
    pages(ctx, path, "nextCursor").await
}

#[tokio::test]
async fn lead_type_filter_returns_only_that_type() {
    let ctx = Ctx::new(0).await;
    let persons = ctx.leads((0..4).map(|i| person(&format!("tf{i}"))).collect()).await;
    let companies = ctx.leads((0..5).map(|i| company(&format!("tfc{i}"))).collect()).await;
    for (t, expected) in [("company", &companies), ("person", &persons)] {
        let pages = pages(&ctx, &format!("/api/leads?type={t}&limit=2"), "nextCursor").await;
        let all: Vec<&Value> = pages.iter().flat_map(|p| p["leads"].as_array().unwrap().iter()).collect();
        assert!(all.iter().all(|l| l["type"] == t), "{t}: {all:?}");
        let mut got: Vec<String> = all.iter().map(|l| l["id"].as_str().unwrap().to_string()).collect();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(got, want, "{t}: ascending, each once");
        got.dedup();
        assert_eq!(got.len(), expected.len());
    }
    assert_eq!(all_lead_ids(&ctx, "").await.len(), 9);
    assert_error(&ctx.get("/api/leads?type=robot").await, 400, "INVALID_REQUEST");
}

// -------------------------------------------------------------------- Lists

#[tokio::test]
async fn create_list_is_201_with_counts() {
    let ctx = Ctx::new(0).await;
    let p = ctx.people("cl", 2).await;
    let c = ctx.leads(vec![company("clc")]).await;
    let ids = vec![p[0].clone(), p[1].clone(), c[0].clone(), p[0].clone()];
    let r = ctx.post("/api/lists", json!({"name": "Prospects", "description": "Q3", "leadIds": ids})).await;
    assert_eq!(r.status, 201, "{r:?}");
    let l = &r.body["list"];
    assert!(l["id"].as_str().unwrap().starts_with("list_"));
    assert_eq!(l["name"], "Prospects");
    assert_eq!(l["description"], "Q3");
    assert_eq!(l["leadType"], "mixed");
    assert_eq!(
        (l["leadCount"].as_u64(), l["personCount"].as_u64(), l["companyCount"].as_u64()),
        (Some(3), Some(2), Some(1))
    );
    assert!(is_rfc3339_utc(l["createdAt"].as_str().unwrap()));
    assert!(is_rfc3339_utc(l["updatedAt"].as_str().unwrap()));
    let g = ctx.get(&format!("/api/lists/{}", l["id"].as_str().unwrap())).await;
    assert_eq!(g.status, 200, "{g:?}");
    assert_eq!(g.body, r.body, "GET /api/lists/{{id}} returns the created List");

    // Nothing but the required defaults.
    let r = ctx.post("/api/lists", json!({})).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert!(r.body["list"]["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert_eq!(r.body["list"]["leadType"], "mixed");
    assert_eq!(r.body["list"]["leadCount"], 0);
    let r = ctx.post("/api/lists", json!({"name": "People", "leadType": "person", "leadIds": [p[0]]})).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["list"]["leadType"], "person");
    assert_eq!(r.body["list"]["personCount"], 1);
}

#[tokio::test]
async fn typed_list_rejects_leads_of_the_other_type() {
    let ctx = Ctx::new(0).await;
    let p = ctx.people("ty", 1).await;
    let c = ctx.leads(vec![company("tyc")]).await;
    let r = ctx.post("/api/lists", json!({"leadType": "person", "leadIds": [p[0], c[0]]})).await;
    assert_error(&r, 400, "INVALID_REQUEST");
    let r = ctx.get("/api/lists").await;
    assert_eq!(r.body["lists"], json!([]), "a rejected create leaves no List");
    let r = ctx.post("/api/lists", json!({"leadType": "company"})).await;
    let id = r.body["list"]["id"].as_str().unwrap().to_string();
    let r = ctx.post(&format!("/api/lists/{id}/leads"), json!({"leadIds": [p[0]]})).await;
    assert_error(&r, 400, "INVALID_REQUEST");
    let r = ctx.post(&format!("/api/lists/{id}/leads"), json!({"leadIds": [c[0]]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["list"]["companyCount"], 1);
    assert_eq!(r.body["list"]["personCount"], 0);
    assert_error(&ctx.post("/api/lists", json!({"leadType": "robot"})).await, 400, "INVALID_REQUEST");
}

#[tokio::test]
async fn lists_are_paged_each_once() {
    let ctx = Ctx::new(0).await;
    let mut created = vec![];
    for i in 0..5 {
        let r = ctx.post("/api/lists", json!({"name": format!("L{i}")})).await;
        assert_eq!(r.status, 201, "{r:?}");
        created.push(r.body["list"]["id"].as_str().unwrap().to_string());
    }
    let pages = pages(&ctx, "/api/lists?limit=2", "nextCursor").await;
    assert_eq!(pages.len(), 3, "{pages:?}");
    let seen: Vec<String> = pages.iter().flat_map(|p| ids_of(p, "lists")).collect();
    let mut want = created.clone();
    want.sort();
    assert_eq!(seen, want);
    assert!(pages.iter().all(|p| p["lists"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["name"].as_str().unwrap().starts_with('L'))));
    let all = ctx.get("/api/lists").await;
    assert_eq!(ids_of(&all.body, "lists").len(), 5);
    assert_eq!(all.body["nextCursor"], Value::Null);
    for bad in ["0", "501", "x"] {
        assert_error(&ctx.get(&format!("/api/lists?limit={bad}")).await, 400, "INVALID_REQUEST");
    }
}

#[tokio::test]
async fn add_leads_returns_the_list_with_counts() {
    let ctx = Ctx::new(0).await;
    let list = ctx.list(&[]).await;
    let p = ctx.people("add", 3).await;
    let c = ctx.leads(vec![company("addc0"), company("addc1")]).await;
    let r = ctx.post(&format!("/api/lists/{list}/leads"), json!({"leadIds": [p[0], p[1], c[0]]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body.as_object().unwrap().len(), 1, "only `list`: {r:?}");
    let l = &r.body["list"];
    assert_eq!(l["id"], list.as_str());
    assert_eq!(
        (l["leadCount"].as_u64(), l["personCount"].as_u64(), l["companyCount"].as_u64()),
        (Some(3), Some(2), Some(1))
    );
    let r = ctx.post(&format!("/api/lists/{list}/leads"), json!({"leadIds": [p[1], p[2], c[1]]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let l = &r.body["list"];
    assert_eq!(
        (l["leadCount"].as_u64(), l["personCount"].as_u64(), l["companyCount"].as_u64()),
        (Some(5), Some(3), Some(2))
    );
    assert_eq!(ctx.get(&format!("/api/lists/{list}")).await.body, r.body);
    // Leads are referenced, not copied: a later upsert shows through the List.
    let email = ctx.get(&format!("/api/leads?id={}", p[0])).await.body["lead"]["contacts"].clone();
    ctx.post("/api/leads", json!({"type": "person", "contacts": email, "title": "Changed"})).await;
    let m = ctx.get(&format!("/api/lists/{list}/leads?limit=100")).await;
    let lead = m.body["leads"].as_array().unwrap().iter().find(|l| l["id"] == p[0].as_str()).unwrap().clone();
    assert_eq!(lead["title"], "Changed");
}

#[tokio::test]
async fn adding_the_same_lead_twice_changes_nothing() {
    let ctx = Ctx::new(0).await;
    let p = ctx.people("twice", 2).await;
    let list = ctx.list(&p).await;
    let before = ctx.get(&format!("/api/lists/{list}")).await;
    assert_eq!(before.body["list"]["leadCount"], 2);
    let r = ctx.post(&format!("/api/lists/{list}/leads"), json!({"leadIds": [p[0], p[1], p[0]]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, before.body, "a repeat add changes nothing, not even updatedAt");
    let members = ctx.get(&format!("/api/lists/{list}/leads")).await;
    assert_eq!(members.body["total"], 2);
    assert_eq!(ids_of(&members.body, "leads").len(), 2);
    // Duplicates inside one request of new Leads count once.
    let q = ctx.people("twice-b", 1).await;
    let r = ctx.post(&format!("/api/lists/{list}/leads"), json!({"leadIds": [q[0], q[0], q[0]]})).await;
    assert_eq!(r.body["list"]["leadCount"], 3, "{r:?}");
    assert_eq!(r.body["list"]["personCount"], 3, "{r:?}");
}

#[tokio::test]
async fn adds_larger_than_one_transaction_count_every_lead_once() {
    let ctx = Ctx::new(0).await;
    let mut leads = ctx.people("big", 200).await;
    leads.extend(ctx.leads((0..100).map(|i| company(&format!("bigc{i}"))).collect()).await);
    let list = ctx.list(&[]).await;
    // 250 ids (several transactions), then 150 already-added plus 50 new.
    let first: Vec<String> = leads[..150].iter().chain(&leads[200..300]).cloned().collect();
    let r = ctx.post(&format!("/api/lists/{list}/leads"), json!({"leadIds": first})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let l = &r.body["list"];
    assert_eq!(
        (l["leadCount"].as_u64(), l["personCount"].as_u64(), l["companyCount"].as_u64()),
        (Some(250), Some(150), Some(100))
    );
    let second: Vec<String> = leads[..200].to_vec();
    let r = ctx.post(&format!("/api/lists/{list}/leads"), json!({"leadIds": second})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let l = &r.body["list"];
    assert_eq!(
        (l["leadCount"].as_u64(), l["personCount"].as_u64(), l["companyCount"].as_u64()),
        (Some(300), Some(200), Some(100))
    );
    let seen: Vec<String> = pages(&ctx, &format!("/api/lists/{list}/leads?limit=128"), "nextCursor")
        .await
        .iter()
        .flat_map(|p| ids_of(p, "leads"))
        .collect();
    let mut want = leads.clone();
    want.sort();
    assert_eq!(seen, want);
    // More than 1000 ids in one request is refused whole.
    let too_many: Vec<String> = (0..1001).map(|i| leads[i % leads.len()].clone()).collect();
    assert_error(
        &ctx.post(&format!("/api/lists/{list}/leads"), json!({"leadIds": too_many})).await,
        400,
        "INVALID_REQUEST",
    );
    assert_eq!(ctx.get(&format!("/api/lists/{list}")).await.body["list"]["leadCount"], 300);
}

#[tokio::test]
async fn unknown_list_is_404_list_not_found() {
    let ctx = Ctx::new(0).await;
    let p = ctx.people("unk", 1).await;
    for id in [format!("list_{}", unique()), "nope".into(), format!("lead_{}", unique()), "list_".into()] {
        assert_error(&ctx.get(&format!("/api/lists/{id}")).await, 404, "LIST_NOT_FOUND");
        assert_error(&ctx.get(&format!("/api/lists/{id}/leads")).await, 404, "LIST_NOT_FOUND");
        assert_error(&ctx.post(&format!("/api/lists/{id}/leads"), json!({"leadIds": p})).await, 404, "LIST_NOT_FOUND");
    }
}

#[tokio::test]
async fn unknown_lead_ids_are_400_leads_not_found_with_the_ids() {
    let ctx = Ctx::new(0).await;
    let p = ctx.people("unkl", 2).await;
    let list = ctx.list(&p[..1]).await;
    let before = ctx.get(&format!("/api/lists/{list}")).await;
    let missing = format!("lead_{}", unique());
    let r = ctx.post(&format!("/api/lists/{list}/leads"), json!({"leadIds": [p[1], missing, "garbage"]})).await;
    assert_error(&r, 400, "LEADS_NOT_FOUND");
    let mut reported: Vec<String> = r.body["details"]["leadIds"]
        .as_array()
        .expect("details.leadIds")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    reported.sort();
    let mut want = vec![missing.clone(), "garbage".to_string()];
    want.sort();
    assert_eq!(reported, want);
    // Nothing of the request was added, not even the valid Lead.
    assert_eq!(ctx.get(&format!("/api/lists/{list}")).await.body, before.body);
    // Creating a List with an unknown Lead leaves no List behind.
    let r = ctx.post("/api/lists", json!({"name": "bad", "leadIds": [missing]})).await;
    assert_error(&r, 400, "LEADS_NOT_FOUND");
    assert_eq!(r.body["details"]["leadIds"], json!([missing]));
    assert_eq!(ids_of(&ctx.get("/api/lists").await.body, "lists"), vec![list]);
}

#[tokio::test]
async fn list_leads_paging_over_10_with_limit_4_sees_each_once() {
    let ctx = Ctx::new(0).await;
    let mut leads = ctx.people("mem", 7).await;
    leads.extend(ctx.leads((0..3).map(|i| company(&format!("memc{i}"))).collect()).await);
    let list = ctx.list(&leads).await;
    let pages = pages(&ctx, &format!("/api/lists/{list}/leads?limit=4"), "nextCursor").await;
    assert_eq!(pages.iter().map(|p| p["leads"].as_array().unwrap().len()).collect::<Vec<_>>(), vec![4, 4, 2]);
    for (i, p) in pages.iter().enumerate() {
        assert_eq!(p["total"], 10, "page {i}");
        let last = i == pages.len() - 1;
        assert_eq!(p["hasMore"], !last, "page {i}: {p}");
        assert_eq!(p["nextCursor"].is_null(), last, "page {i}");
        for l in p["leads"].as_array().unwrap() {
            assert!(l["type"].is_string() && l["createdAt"].is_string(), "Lead fields: {l}");
            assert_eq!(l["membership"]["id"], format!("{list}.{}", l["id"].as_str().unwrap()));
        }
    }
    let seen: Vec<String> = pages.iter().flat_map(|p| ids_of(p, "leads")).collect();
    let mut want = leads.clone();
    want.sort();
    assert_eq!(seen, want, "each once, in id order");

    // type filter: only companies, total is the company count.
    let c = ctx.get(&format!("/api/lists/{list}/leads?type=company&limit=2")).await;
    assert_eq!(c.status, 200, "{c:?}");
    assert_eq!(c.body["total"], 3);
    assert_eq!(c.body["hasMore"], true);
    let cpages = pages_with(&ctx, &format!("/api/lists/{list}/leads?type=company&limit=2")).await;
    let companies: Vec<&Value> = cpages.iter().flat_map(|p| p["leads"].as_array().unwrap().iter()).collect();
    assert_eq!(companies.len(), 3);
    assert!(companies.iter().all(|l| l["type"] == "company"));
    let p = ctx.get(&format!("/api/lists/{list}/leads?type=person&limit=100")).await;
    assert_eq!(p.body["total"], 7);
    assert_eq!(p.body["hasMore"], false);
    assert_eq!(p.body["leads"].as_array().unwrap().len(), 7);
    for bad in ["0", "501", "abc"] {
        assert_error(&ctx.get(&format!("/api/lists/{list}/leads?limit={bad}")).await, 400, "INVALID_REQUEST");
    }
    assert_error(&ctx.get(&format!("/api/lists/{list}/leads?type=robot")).await, 400, "INVALID_REQUEST");
}

// -------------------------------------------------------------- concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_overlapping_adds_keep_counts_exact() {
    let ctx = Ctx::new(0).await;
    let mut leads: Vec<(String, &str)> = ctx.people("par", 20).await.into_iter().map(|i| (i, "person")).collect();
    leads.extend(
        ctx.leads((0..10).map(|i| company(&format!("parc{i}"))).collect()).await.into_iter().map(|i| (i, "company")),
    );
    // Two Leads are in the List before the storm.
    let list = ctx.list(&[leads[0].0.clone(), leads[25].0.clone()]).await;
    let seed = 0x5EED_0003u64;
    let mut rng = Rng(seed);
    let requests: Vec<Vec<usize>> = (0..50).map(|_| rng.sample(leads.len(), 10)).collect();
    let mut distinct: HashSet<usize> = requests.iter().flatten().copied().collect();
    distinct.insert(0);
    distinct.insert(25);

    let tasks: Vec<_> = requests
        .iter()
        .map(|idx| {
            let c = ctx.clone();
            let path = format!("/api/lists/{list}/leads");
            let ids: Vec<String> = idx.iter().map(|i| leads[*i].0.clone()).collect();
            tokio::spawn(async move { c.post(&path, json!({"leadIds": ids})).await })
        })
        .collect();
    for (i, r) in futures::future::join_all(tasks).await.into_iter().enumerate() {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "request {i} (seed {seed:#x}): {r:?}");
        let l = &r.body["list"];
        assert_eq!(
            l["personCount"].as_u64().unwrap() + l["companyCount"].as_u64().unwrap(),
            l["leadCount"].as_u64().unwrap(),
            "{r:?}"
        );
    }
    let persons = distinct.iter().filter(|i| leads[**i].1 == "person").count() as u64;
    let companies = distinct.len() as u64 - persons;
    assert!(persons > 0 && companies > 0);
    let l = ctx.get(&format!("/api/lists/{list}")).await.body["list"].clone();
    assert_eq!(l["leadCount"].as_u64(), Some(distinct.len() as u64), "seed {seed:#x}: {l}");
    assert_eq!(l["personCount"].as_u64(), Some(persons), "{l}");
    assert_eq!(l["companyCount"].as_u64(), Some(companies), "{l}");
    // The memberships themselves agree with the counters.
    let members = ctx.get(&format!("/api/lists/{list}/leads?limit=500")).await;
    let got: BTreeSet<String> = ids_of(&members.body, "leads").into_iter().collect();
    let want: BTreeSet<String> = distinct.iter().map(|i| leads[*i].0.clone()).collect();
    assert_eq!(got, want);
    assert_eq!(members.body["total"].as_u64(), Some(distinct.len() as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_adds_of_disjoint_leads_all_count() {
    let ctx = Ctx::new(0).await;
    let leads = ctx.people("disj", 40).await;
    let list = ctx.list(&[]).await;
    let tasks: Vec<_> = leads
        .chunks(2)
        .map(|ch| {
            let c = ctx.clone();
            let path = format!("/api/lists/{list}/leads");
            let ids = ch.to_vec();
            tokio::spawn(async move { c.post(&path, json!({"leadIds": ids})).await })
        })
        .collect();
    for r in futures::future::join_all(tasks).await {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "{r:?}");
    }
    let l = ctx.get(&format!("/api/lists/{list}")).await.body["list"].clone();
    assert_eq!(l["leadCount"], 40, "{l}");
    assert_eq!(l["personCount"], 40, "{l}");
    assert_eq!(l["companyCount"], 0, "{l}");
}

// ------------------------------------------------------------------ cursors

/// Variants of a valid cursor that must each be rejected.
fn tampered(c: &str) -> Vec<String> {
    let flip = |i: usize| -> String {
        let mut ch: Vec<char> = c.chars().collect();
        ch[i] = if ch[i] == 'A' { 'B' } else { 'A' };
        ch.into_iter().collect()
    };
    let dot = c.find('.').expect("cursor has a payload and a tag");
    let mut mid = c.len() / 2;
    if mid == dot {
        mid += 1;
    }
    vec![
        flip(mid),                               // the middle
        flip(dot / 2),                           // inside the payload
        flip(dot + 1 + (c.len() - dot - 1) / 2), // inside the tag
        format!("{c}xyz"),                       // junk appended
        format!("{c}!!"),                        // junk outside the alphabet
        format!("{c}.{c}"),                      // a second dot
        c.replace('.', ""),                      // no separator
        c[..c.len() - 4].to_string(),            // truncated
        "not-a-cursor".to_string(),
        String::new(),
    ]
}

#[tokio::test]
async fn tampered_lead_cursor_is_400_invalid_request() {
    let ctx = Ctx::new(0).await;
    ctx.people("cur", 4).await;
    let r = ctx.get("/api/leads?limit=2").await;
    let c = r.body["nextCursor"].as_str().unwrap().to_string();
    // The genuine cursor works, twice, with the same answer (stable).
    let p1 = ctx.get(&format!("/api/leads?limit=2&cursor={}", enc(&c))).await;
    let p2 = ctx.get(&format!("/api/leads?limit=2&cursor={}", enc(&c))).await;
    assert_eq!(p1.status, 200, "{p1:?}");
    assert_eq!(p1.body, p2.body);
    assert_eq!(p1.body["leads"].as_array().unwrap().len(), 2);
    for t in tampered(&c) {
        let r = ctx.get(&format!("/api/leads?limit=2&cursor={}", enc(&t))).await;
        assert_error(&r, 400, "INVALID_REQUEST");
        assert_eq!(r.body["details"]["field"], "cursor", "{t}: {r:?}");
    }
    // A cursor of the person listing used on the company listing.
    let r = ctx.get("/api/leads?limit=1&type=person").await;
    let pc = r.body["nextCursor"].as_str().unwrap().to_string();
    assert_error(
        &ctx.get(&format!("/api/leads?limit=1&type=company&cursor={}", enc(&pc))).await,
        400,
        "INVALID_REQUEST",
    );
    assert_error(&ctx.get(&format!("/api/leads?limit=1&cursor={}", enc(&pc))).await, 400, "INVALID_REQUEST");
}

#[tokio::test]
async fn tampered_list_cursors_are_400_invalid_request() {
    let ctx = Ctx::new(0).await;
    let leads = ctx.people("lcur", 5).await;
    let list_a = ctx.list(&leads).await;
    let list_b = ctx.list(&leads).await;
    ctx.list(&[]).await;
    let lists_cursor = ctx.get("/api/lists?limit=1").await.body["nextCursor"].as_str().unwrap().to_string();
    let members_cursor =
        ctx.get(&format!("/api/lists/{list_a}/leads?limit=2")).await.body["nextCursor"].as_str().unwrap().to_string();
    let leads_cursor = ctx.get("/api/leads?limit=2").await.body["nextCursor"].as_str().unwrap().to_string();

    for t in tampered(&lists_cursor) {
        assert_error(&ctx.get(&format!("/api/lists?limit=1&cursor={}", enc(&t))).await, 400, "INVALID_REQUEST");
    }
    for t in tampered(&members_cursor) {
        assert_error(
            &ctx.get(&format!("/api/lists/{list_a}/leads?limit=2&cursor={}", enc(&t))).await,
            400,
            "INVALID_REQUEST",
        );
    }
    // A cursor from another listing.
    let cross = [
        (format!("/api/lists/{list_b}/leads?limit=2"), members_cursor.clone()), // another List's members
        (format!("/api/lists/{list_a}/leads?limit=2&type=person"), members_cursor.clone()), // another type filter
        (format!("/api/lists/{list_a}/leads?limit=2"), leads_cursor.clone()),
        (format!("/api/lists/{list_a}/leads?limit=2"), lists_cursor.clone()),
        ("/api/lists?limit=1".to_string(), leads_cursor.clone()),
        ("/api/lists?limit=1".to_string(), members_cursor.clone()),
        ("/api/leads?limit=2".to_string(), lists_cursor.clone()),
        ("/api/leads?limit=2".to_string(), members_cursor.clone()),
    ];
    for (path, c) in cross {
        let r = ctx.get(&format!("{path}&cursor={}", enc(&c))).await;
        assert_error(&r, 400, "INVALID_REQUEST");
    }
    // The genuine ones still work.
    assert_eq!(
        ctx.get(&format!("/api/lists/{list_a}/leads?limit=2&cursor={}", enc(&members_cursor))).await.status,
        200
    );
    assert_eq!(ctx.get(&format!("/api/lists?limit=1&cursor={}", enc(&lists_cursor))).await.status, 200);
}

#[tokio::test]
async fn a_cursor_of_another_workspace_shows_nothing_of_it() {
    let a = Ctx::new(0).await;
    let b = Ctx::new(0).await;
    a.people("wscA", 3).await;
    let b_ids = b.people("wscB", 3).await;
    let c = a.get("/api/leads?limit=1").await.body["nextCursor"].as_str().unwrap().to_string();
    let r = b.get(&format!("/api/leads?limit=10&cursor={}", enc(&c))).await;
    assert!(r.status == 200 || r.status == 400, "{r:?}");
    if r.status == 200 {
        for id in ids_of(&r.body, "leads") {
            assert!(b_ids.contains(&id), "A's cursor showed a Lead that is not B's: {id}");
        }
    } else {
        assert_error(&r, 400, "INVALID_REQUEST");
    }
}
