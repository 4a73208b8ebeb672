//! Local stand-ins for the catalog's outside providers, on 127.0.0.1, each
//! answering in the request and response shapes of the provider's public
//! documentation:
//!
//! - Hunter Email Finder, `GET /v2/email-finder?domain=&full_name=` with
//!   `X-API-KEY` — <https://hunter.io/api-documentation/v2#email-finder>:
//!   `{"data": {"first_name", "last_name", "email", "score", "domain",
//!   "position", "linkedin_url", "verification": {"status"}}, "meta": {...}}`;
//!   errors `{"errors": [{"id", "code", "details"}]}` (401 authentication_failed;
//!   403 when calls come too fast, 429 when the month's quota is spent —
//!   <https://hunter.io/api-documentation/v2#errors>).
//! - Hunter Email Verifier, `GET /v2/email-verifier?email=` —
//!   <https://hunter.io/api-documentation/v2#email-verifier>: `{"data":
//!   {"status": "valid|invalid|accept_all|webmail|disposable|unknown",
//!   "result", "score", "email", "regexp", "gibberish", "disposable",
//!   "webmail", "mx_records", "smtp_server", "smtp_check", "accept_all",
//!   "block", "sources"}}`.
//! - People Data Labs Person Enrichment, `GET /v5/person/enrich` with
//!   `X-Api-Key` — <https://docs.peopledatalabs.com/docs/reference-person-enrichment-api>
//!   and <https://docs.peopledatalabs.com/docs/output-response-person-enrichment-api>:
//!   200 `{"status": 200, "likelihood": 1..10, "data": {"full_name",
//!   "work_email", "job_title", "job_company_name", "job_company_website",
//!   "linkedin_url", ...}}`; no match is 404 `{"status": 404, "error":
//!   {"type": "not_found", "message"}}`; 401 invalid key, 402 out of credits
//!   (`payment_required`), 429 rate limit; `min_likelihood` makes weaker
//!   matches a 404.
//! - Apollo People Enrichment, `POST /api/v1/people/match?name=&domain=`
//!   with `x-api-key` — <https://docs.apollo.io/reference/people-enrichment>:
//!   `{"person": {"id", "first_name", "last_name", "name", "title",
//!   "linkedin_url", "email", "email_status", "organization": {"name"}}}`;
//!   no match is 200 `{"person": null}`.
//! - OpenAI chat completions, `POST /v1/chat/completions` with
//!   `Authorization: Bearer` — <https://platform.openai.com/docs/api-reference/chat/create>:
//!   `{"id", "object": "chat.completion", "model", "choices": [{"index",
//!   "message": {"role": "assistant", "content"}, "finish_reason"}],
//!   "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}`.
//!
//! Behaviour, so tests can say what they expect:
//! - by key: `bad` answers 401, `broke` 402 (PDL's payment_required; Apollo
//!   likewise), `throttled` 429 with `Retry-After: 0`, and Hunter's own
//!   statuses for the last two (`broke` 429, `throttled` 403); anything else
//!   is a valid key;
//! - by the first word of a person's name: Hunter finds people whose first
//!   word holds `h`, PDL `p`, Apollo `a` (so `hpa` is found by all, `x` by
//!   none); a first word holding `low` gets a low score, one holding `huge`
//!   a Hunter answer of about 3 MB (past the 2 MB cap); the email found is
//!   `first.last@<the domain asked>`;
//! - chat: a prompt holding `malformed` answers content that is not JSON;
//!   `once-malformed` does so on its first call only; `ratelimit` answers 429;
//!   `unsure` gets a confidence of 0.3, anything else 0.9.
//! - web pages under `/site/...` for `website_overview` (see [`Fake::page`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Seen {
    pub route: &'static str,
    pub query: HashMap<String, String>,
    pub key: Option<String>,
    pub body: Value,
}

#[derive(Clone, Default)]
struct St {
    seen: Arc<Mutex<Vec<Seen>>>,
}

#[derive(Clone)]
pub struct Fake {
    pub addr: SocketAddr,
    st: St,
}

impl Fake {
    pub async fn start() -> Fake {
        let st = St::default();
        let app = axum::Router::new()
            .route("/v2/email-finder", get(hunter_finder))
            .route("/v2/email-verifier", get(hunter_verifier))
            .route("/v5/person/enrich", get(pdl))
            .route("/api/v1/people/match", post(apollo))
            .route("/v1/chat/completions", post(chat))
            .route("/site/{page}", get(site))
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { addr, st }
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// A page's URL: `home` (title, description, socials, text), `r1` (three
    /// redirects to `home`), `loop1` (four redirects), `notitle`, `huge`
    /// (3 MB), `pdf`, `slow` (answers after 5 s).
    pub fn page(&self, name: &str) -> String {
        format!("{}/site/{name}", self.origin())
    }

    pub fn seen(&self, route: &str) -> Vec<Seen> {
        self.st.seen.lock().unwrap().iter().filter(|s| s.route == route).cloned().collect()
    }
}

fn record(st: &St, route: &'static str, q: &HashMap<String, String>, key: Option<&str>, body: Value) -> usize {
    let mut s = st.seen.lock().unwrap();
    s.push(Seen { route, query: q.clone(), key: key.map(str::to_string), body });
    s.iter().filter(|x| x.route == route).count()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The key-driven failures, in each provider's error shape.
fn refused(key: Option<&str>, shape: fn(u16, &str) -> Value) -> Option<Response> {
    let (status, id) = match key {
        None | Some("bad") => (401, "authentication_failed"),
        Some("broke") => (402, "payment_required"),
        Some("throttled") => (429, "too_many_requests"),
        Some(_) => return None,
    };
    Some(refusal(status, id, shape))
}

/// Hunter's own statuses: 403 when calls come too fast, 429 when the
/// month's quota is spent (<https://hunter.io/api-documentation/v2#errors>).
fn hunter_refused(key: Option<&str>) -> Option<Response> {
    let (status, id) = match key {
        None | Some("bad") => (401, "authentication_failed"),
        Some("throttled") => (403, "too_many_requests"),
        Some("broke") => (429, "usage_limit_reached"),
        Some(_) => return None,
    };
    Some(refusal(status, id, hunter_error))
}

fn refusal(status: u16, id: &str, shape: fn(u16, &str) -> Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap();
    (code, [("retry-after", "0")], Json(shape(status, id))).into_response()
}

fn hunter_error(code: u16, id: &str) -> Value {
    json!({"errors": [{"id": id, "code": code, "details": format!("{id} (stub)")}]})
}

fn pdl_error(code: u16, id: &str) -> Value {
    json!({"status": code, "error": {"type": id, "message": format!("{id} (stub)")}})
}

fn apollo_error(_code: u16, id: &str) -> Value {
    json!({"error": id, "error_code": id.to_uppercase()})
}

/// First and last word of a full name, lowercased.
fn split(name: &str) -> (String, String) {
    let mut words = name.split_whitespace();
    let first = words.next().unwrap_or("x").to_lowercase();
    let last = words.last().unwrap_or("doe").to_lowercase();
    (first, last)
}

async fn hunter_finder(State(st): State<St>, Query(q): Query<HashMap<String, String>>, h: HeaderMap) -> Response {
    let key = header(&h, "x-api-key");
    record(&st, "hunter_finder", &q, key, Value::Null);
    if let Some(r) = hunter_refused(key) {
        return r;
    }
    let domain = q.get("domain").cloned().unwrap_or_default();
    let (first, last) = split(q.get("full_name").map_or("", String::as_str));
    let found = first.contains('h');
    let email = found.then(|| format!("{first}.{last}@{domain}"));
    let score = if first.contains("low") { 30 } else { 91 };
    // `huge`: a real hit whose sources list takes the body past the 2 MB cap.
    let sources: Vec<Value> = if first.contains("huge") {
        (0..30_000)
            .map(|i| json!({"domain": domain, "uri": format!("https://{domain}/team/page-{i:06}"), "still_on_page": true}))
            .collect()
    } else {
        vec![]
    };
    Json(json!({
        "data": {"first_name": first, "last_name": last, "email": email, "score": found.then_some(score),
                 "domain": domain, "accept_all": false, "position": found.then_some("CTO"), "twitter": null,
                 "linkedin_url": null, "phone_number": null, "company": "Acme", "sources": sources,
                 "verification": {"date": null, "status": null}},
        "meta": {"params": {"first_name": null, "last_name": null, "full_name": q.get("full_name"), "domain": domain,
                            "company": null, "max_duration": null}}
    }))
    .into_response()
}

async fn hunter_verifier(State(st): State<St>, Query(q): Query<HashMap<String, String>>, h: HeaderMap) -> Response {
    let key = header(&h, "x-api-key");
    record(&st, "hunter_verifier", &q, key, Value::Null);
    if let Some(r) = hunter_refused(key) {
        return r;
    }
    let email = q.get("email").cloned().unwrap_or_default();
    let valid = !email.starts_with("bounce");
    Json(json!({"data": {
        "status": if valid { "valid" } else { "invalid" }, "result": if valid { "deliverable" } else { "undeliverable" },
        "score": if valid { 96 } else { 12 }, "email": email, "regexp": true, "gibberish": false, "disposable": false,
        "webmail": false, "mx_records": true, "smtp_server": true, "smtp_check": valid, "accept_all": false,
        "block": false, "sources": []}, "meta": {"params": {"email": email}}}))
    .into_response()
}

async fn pdl(State(st): State<St>, Query(q): Query<HashMap<String, String>>, h: HeaderMap) -> Response {
    let key = header(&h, "x-api-key");
    record(&st, "pdl", &q, key, Value::Null);
    if let Some(r) = refused(key, pdl_error) {
        return r;
    }
    let (first, last) = split(q.get("name").map_or("", String::as_str));
    let likelihood: u64 = if first.contains("low") { 3 } else { 8 };
    let min: u64 = q.get("min_likelihood").and_then(|m| m.parse().ok()).unwrap_or(2);
    if !first.contains('p') || likelihood < min {
        let body = json!({"status": 404, "error": {"type": "not_found", "message": "No records were found matching your request"}});
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    let company = q.get("company").cloned().unwrap_or_default();
    Json(json!({"status": 200, "likelihood": likelihood, "data": {
        "id": "qEnOZ5Oh0poWnQ1luFBfVw_0000", "full_name": format!("{first} {last}"), "first_name": first, "last_name": last,
        "work_email": format!("{first}.{last}@{company}"), "personal_emails": [], "job_title": "vp engineering",
        "job_company_name": "acme", "job_company_website": company, "linkedin_url": format!("linkedin.com/in/{first}-{last}"),
        "location_name": null}}))
    .into_response()
}

async fn apollo(State(st): State<St>, Query(q): Query<HashMap<String, String>>, h: HeaderMap) -> Response {
    let key = header(&h, "x-api-key");
    record(&st, "apollo", &q, key, Value::Null);
    if let Some(r) = refused(key, apollo_error) {
        return r;
    }
    let (first, last) = split(q.get("name").map_or("", String::as_str));
    if !first.contains('a') {
        return Json(json!({"person": null})).into_response();
    }
    let domain = q.get("domain").cloned().unwrap_or_default();
    Json(json!({"person": {
        "id": "587cf802f65125cad923a266", "first_name": first, "last_name": last, "name": format!("{first} {last}"),
        "title": "Head of Sales", "linkedin_url": format!("http://www.linkedin.com/in/{first}{last}"),
        "email_status": "verified", "email": format!("{first}.{last}@{domain}"),
        "organization": {"id": "5e66b6381e05b4008c8331b8", "name": "Acme", "primary_domain": domain}}}))
    .into_response()
}

async fn chat(State(st): State<St>, h: HeaderMap, Json(body): Json<Value>) -> Response {
    let key = header(&h, "authorization").map(|k| k.trim_start_matches("Bearer ").to_string());
    let prompt =
        body["messages"].as_array().and_then(|m| m.last()).map(|m| m["content"].to_string()).unwrap_or_default();
    let nth = record(&st, "chat", &HashMap::new(), key.as_deref(), body.clone());
    if let Some(r) = refused(key.as_deref(), |c, id| json!({"error": {"message": id, "type": id, "code": c}})) {
        return r;
    }
    // Like OpenAI's strict mode and the OpenAI-compatible servers that copy
    // it: a schema with numeric or length constraints is refused outright.
    let asked = body["response_format"]["json_schema"]["schema"].to_string();
    if let Some(k) =
        ["\"minimum\"", "\"maximum\"", "\"minLength\"", "\"maxLength\""].iter().find(|k| asked.contains(*k))
    {
        let message = format!("Invalid schema for response_format: {k} is not permitted");
        let err = json!({"error": {"message": message, "type": "invalid_request_error", "code": null}});
        return (StatusCode::BAD_REQUEST, Json(err)).into_response();
    }
    let schema = body["response_format"]["json_schema"]["name"].as_str().unwrap_or_default().to_string();
    let earlier_for_prompt = st.seen.lock().unwrap().iter().filter(|s| s.route == "chat" && s.body == body).count();
    if prompt.contains("ratelimit") {
        let err =
            json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}});
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], Json(err)).into_response();
    }
    let malformed = prompt.contains("once-malformed") && earlier_for_prompt == 1
        || prompt.contains("malformed") && !prompt.contains("once-malformed");
    // The model's own confidence: low when the prompt says so.
    // "overconfident": a value outside the outputSchema's 0–1, which the
    // schema the model was asked with no longer says in keywords.
    let confidence = if prompt.contains("unsure") {
        0.3
    } else if prompt.contains("overconfident") {
        1.5
    } else {
        0.9
    };
    let content = if malformed {
        "Sure! The company is in aerospace.".to_string()
    } else if schema == "company_classify" {
        json!({"industry": "Aerospace", "sizeBand": "51-200", "businessModel": "B2B", "confidence": confidence})
            .to_string()
    } else {
        json!({"summary": "A senior engineering leader who cares about reliability.", "seniority": "vp",
               "function": "engineering", "confidence": confidence})
        .to_string()
    };
    Json(json!({
        "id": format!("chatcmpl-{nth}"), "object": "chat.completion", "created": 1_764_633_600, "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70}
    }))
    .into_response()
}

async fn site(Path(page): Path<String>) -> Response {
    let html = |s: String| ([("content-type", "text/html; charset=utf-8")], s).into_response();
    let redirect = |to: &str| (StatusCode::FOUND, [("location", to.to_string())]).into_response();
    match page.as_str() {
        "home" => html(
            r#"<!doctype html><html lang="en"><head><title>Acme Rockets</title>
            <meta name="description" content="Reusable rockets for small satellites."></head>
            <body><nav><a href="/">Home</a> <a href="/pricing">Pricing</a></nav>
            <h1>Acme</h1><p>Acme builds reusable rockets for small satellites and launches every week.</p>
            <a href="https://www.linkedin.com/company/acme-rockets">LinkedIn</a>
            <a href="https://x.com/acmerockets">X</a></body></html>"#
                .to_string(),
        ),
        "r1" => redirect("/site/r2"),
        "r2" => redirect("/site/r3"),
        "r3" => redirect("/site/home"),
        "loop1" => redirect("/site/loop2"),
        "loop2" => redirect("/site/loop3"),
        "loop3" => redirect("/site/loop4"),
        "loop4" => redirect("/site/home"),
        "notitle" => html(
            "<html><body><p>We make things, and we have been making them for a very long time.</p></body></html>"
                .into(),
        ),
        "huge" => {
            let mut s = String::from("<html><head><title>Huge</title></head><body><p>The first paragraph of a very large page, long enough.</p>");
            while s.len() < 3 * 1024 * 1024 {
                s.push_str("<div>filler filler filler filler filler filler filler filler</div>\n");
            }
            s.push_str("</body></html>");
            html(s)
        }
        "pdf" => ([("content-type", "application/pdf")], b"%PDF-1.7 not a web page".to_vec()).into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            html("<title>Late</title>".into())
        }
        _ => (StatusCode::NOT_FOUND, "no such page").into_response(),
    }
}
