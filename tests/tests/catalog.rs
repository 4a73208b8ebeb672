//! The catalog's real providers, key-free checks, LLM enrichments and
//! waterfalls, end to end on private stacks whose worker reaches only this
//! process: stand-ins for Hunter, People Data Labs, Apollo and an
//! OpenAI-compatible API in their documented shapes (`puffle_tests::fake`,
//! which names the doc each follows), a real DNS server over UDP
//! (`puffle_tests::dns`, hickory-server) and a local web server. Nothing
//! reaches the internet: the catalog files are the shipped ones with their
//! origin pointed at the stand-ins (PUFFLE_CATALOG_DIR replaces a built-in
//! with the same slug).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use puffle_tests::dns::{black_hole, Rr, TestDns};
use puffle_tests::fake::Fake;
use puffle_tests::isolated::Isolated;
use puffle_tests::{settle, unique, Ctx};
use serde_json::{json, Value};

const CATALOG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/domain/src/catalog/enrichments");

/// The shipped provider files, aimed at `fake` and allowed its pace (the
/// stand-in has no rate limit: the shipped 5–10 calls/s would only slow the test).
fn catalog_dir(fake: &Fake) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for slug in [
        "hunter_email_finder",
        "hunter_email_verifier",
        "pdl_person",
        "apollo_people_match",
        "company_classify",
        "persona_summary",
    ] {
        let mut e: Value =
            serde_json::from_str(&std::fs::read_to_string(Path::new(CATALOG).join(format!("{slug}.json"))).unwrap())
                .unwrap();
        let b = &mut e["toolBinding"];
        let retarget = |url: &str| {
            let rest = url.split_once("://").unwrap().1;
            let path = &rest[rest.find(['/', '?']).unwrap_or(rest.len())..];
            format!("{}{path}", fake.origin())
        };
        if b["type"] == "http" {
            b["request"]["url"] = json!(retarget(b["request"]["url"].as_str().unwrap()));
        } else {
            b["baseUrl"] = json!(retarget(b["baseUrl"].as_str().unwrap()));
        }
        b["ratePerSecond"] = json!(2000);
        std::fs::write(dir.path().join(format!("{slug}.json")), e.to_string()).unwrap();
    }
    // A waterfall whose steps have runIf filters, over the Lead and the
    // results so far: Hunter only for Leads with a title, PDL only after
    // Hunter found an email that failed the check, Apollo only without a title.
    let mut w: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(CATALOG).join("work_email.json")).unwrap()).unwrap();
    let slug = "titled_email";
    w["id"] = json!(format!("enr_{slug}"));
    w["slug"] = json!(slug);
    w["defaultOutput"]["attributeKey"] = json!(slug);
    w["defaultOutputAttributeKey"] = json!(slug);
    w["costModel"]["creditAction"] = json!(format!("enrichment.{slug}"));
    w["toolBinding"]["steps"] = json!([
        {"enrichmentId": "hunter_email_finder", "runIf": {"all": [{"field": "title", "op": "exists"}]}},
        {"enrichmentId": "pdl_person", "runIf": {"all": [{"field": "attributes.hunter_email_finder", "op": "exists"}]}},
        {"enrichmentId": "apollo_people_match", "runIf": {"all": [{"field": "title", "op": "not_exists"}]}},
    ]);
    std::fs::write(dir.path().join(format!("{slug}.json")), w.to_string()).unwrap();
    dir
}

async fn start(fake: &Fake, dns: Option<&TestDns>, extra: &[(&str, &str)]) -> (Isolated, tempfile::TempDir) {
    let dir = catalog_dir(fake);
    let allow = format!("127.0.0.1:{}", fake.addr.port());
    let dns_servers = dns.map(|d| d.addr.to_string());
    let mut env: Vec<(&str, &str)> = vec![
        ("PUFFLE_EGRESS_ALLOW_HOSTS", &allow),
        ("PUFFLE_CATALOG_DIR", dir.path().to_str().unwrap()),
        ("PUFFLE_PAGE_TIMEOUT_MS", "1500"),
        // Calls must not outlive the visibility timeout (no redelivery mid-chunk).
        ("PUFFLE_LOCAL_VISIBILITY_TIMEOUT", "60"),
    ];
    // Without a test DNS server the stack's own default (a closed local port) stays.
    if let Some(d) = &dns_servers {
        env.push(("PUFFLE_DNS_SERVERS", d));
    }
    env.extend_from_slice(extra);
    (Isolated::start(&env).await, dir)
}

async fn run_of(ctx: &Ctx, enrichment: &str, lead_ids: &[String], input: Value) -> (Value, HashMap<String, Value>) {
    let r = ctx
        .post(
            "/api/enrichment",
            json!({"enrichmentId": enrichment, "scope": {"type": "explicit_leads", "leadIds": lead_ids}, "input": input}),
        )
        .await;
    assert_eq!(r.status, 202, "{enrichment}: {r:?}");
    let run_id = r.body["runId"].as_str().unwrap().to_string();
    let run = settle(ctx, &run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    let items =
        ctx.all_items(&run_id, "").await.into_iter().map(|i| (i["leadId"].as_str().unwrap().to_string(), i)).collect();
    (run, items)
}

fn code(item: &Value) -> &str {
    item["error"]["details"]["code"].as_str().unwrap_or("")
}

fn person(first: &str, domain: &str, email: Option<&str>) -> Value {
    let mut p = json!({"type": "person", "name": {"full": format!("{first} Smith{}", unique())},
                       "company": {"domain": domain}});
    if let Some(e) = email {
        p["contacts"] = json!([{"type": "email", "value": e}]);
    }
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dns_server_that_does_not_answer_costs_a_bounded_wait() {
    let down = black_hole().await;
    let dns = puffle_app::enrich::network::DnsState::new(vec![down], Duration::from_millis(300));
    let started = Instant::now();
    let hosts = dns.mail_hosts("acme.test").await;
    let waited = started.elapsed();
    assert!(matches!(hosts, puffle_domain::providers::email_verify::MailHosts::Unknown(_)), "{hosts:?}");
    assert!(waited < Duration::from_millis(1500), "waited {waited:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn email_verify_and_website_overview_need_no_account() {
    let fake = Fake::start().await;
    let dns = TestDns::start(&[
        ("acme.test", vec![Rr::Mx("acme.test", 20, "mx2.acme.test."), Rr::Mx("acme.test", 10, "mx1.acme.test.")]),
        ("amail.test", vec![Rr::A("amail.test", Ipv4Addr::new(192, 0, 2, 10))]),
        // IPv6 only: the implicit MX must see AAAA records too.
        ("v6mail.test", vec![Rr::Aaaa("v6mail.test", "2001:db8::25".parse().unwrap())]),
        ("nullmx.test", vec![Rr::Mx("nullmx.test", 0, ".")]),
        ("nomail.test", vec![]),
        ("mailinator.com", vec![Rr::Mx("mailinator.com", 10, "mail.mailinator.com.")]),
        ("gmail.com", vec![Rr::Mx("gmail.com", 5, "gmail-smtp-in.l.google.com.")]),
    ])
    .await;
    let (iso, _dir) = start(&fake, Some(&dns), &[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;
    let tag = unique().to_lowercase();

    // Four people at one domain: one MX query for the run.
    let same: Vec<Value> = ["ada", "bob", "cy", "info"]
        .iter()
        .map(|n| person("x", "acme.test", Some(&format!("{n}.{tag}@acme.test").replace("info.", "info+"))))
        .collect();
    let same_ids = ctx.leads(same).await;
    let before = dns.queries();
    let (_, items) = run_of(&ctx, "email_verify", &same_ids, json!({})).await;
    assert_eq!(dns.queries() - before, 1, "one query for four addresses at acme.test");
    let ada = &items[&same_ids[0]];
    assert_eq!(
        ada["result"],
        json!({"email": format!("ada.{tag}@acme.test"), "status": "deliverable", "reason": "mx_found",
               "mx": ["mx1.acme.test", "mx2.acme.test"], "disposable": false, "role": false, "freeMail": false}),
        "{ada}"
    );
    let info = &items[&same_ids[3]]["result"];
    assert_eq!((info["status"].as_str(), info["role"].as_bool()), (Some("risky"), Some(true)), "{info}");

    let cases = [
        (format!("x.{tag}@amail.test"), "risky", "no_mx_implicit_address"),
        (format!("x.{tag}@v6mail.test"), "risky", "no_mx_implicit_address"),
        (format!("x.{tag}@nullmx.test"), "undeliverable", "null_mx"),
        (format!("x.{tag}@nomail.test"), "undeliverable", "no_mail_host"),
        (format!("x.{tag}@ghost.acme.test"), "undeliverable", "domain_not_found"),
        (format!("x.{tag}@mailinator.com"), "risky", "disposable"),
        (format!("x.{tag}@gmail.com"), "deliverable", "mx_found"),
        (format!("x.{tag}@elsewhere.example"), "unknown", "dns_unavailable"),
    ];
    let mut leads: Vec<Value> = cases.iter().map(|(e, _, _)| person("x", "acme.test", Some(e))).collect();
    leads.push(json!({"type": "person", "name": {"full": format!("No Email {tag}")}, "contacts": [{"type": "phone", "value": "+14155550123"}]}));
    let ids = ctx.leads(leads).await;
    let balance = ctx.balance().await;
    let (run, items) = run_of(&ctx, "email_verify", &ids, json!({})).await;
    for ((email, status, reason), id) in cases.iter().zip(&ids) {
        let r = &items[id]["result"];
        assert_eq!((r["status"].as_str(), r["reason"].as_str()), (Some(*status), Some(*reason)), "{email}: {r}");
    }
    assert_eq!(items[&ids[6]]["result"]["freeMail"], true);
    assert_eq!(items[&ids[5]]["result"]["disposable"], true);
    assert_eq!(items[&ids[8]]["skippedReason"], "missing_input");
    // Eight results charged at 1 credit, the Lead without an email released.
    assert_eq!(run["cost"]["charged"], 8, "{run}");
    assert_eq!(ctx.balance().await, balance - 8);
    // Answers are kept per domain: asking again for known domains sends nothing.
    let before = dns.queries();
    run_of(&ctx, "email_verify", &ids[..7], json!({})).await;
    assert_eq!(dns.queries(), before, "cached answers");

    // website_overview: a local web server through the egress guard.
    let pages = ["home", "r1", "loop1", "notitle", "huge", "pdf", "slow"];
    let mut companies: Vec<Value> = pages
        .iter()
        .map(|p| {
            json!({"type": "company", "company": {"name": format!("Co {p} {tag}")},
                        "contacts": [{"type": "website", "value": fake.page(p)}]})
        })
        .collect();
    companies.push(json!({"type": "company", "company": {"name": format!("Co nowhere {tag}")}}));
    let cids = ctx.leads(companies).await;
    let (_, items) = run_of(&ctx, "website_overview", &cids, json!({})).await;
    let item = |p: &str| &items[&cids[pages.iter().position(|x| *x == p).unwrap_or(pages.len())]];
    let home = &item("home")["result"];
    assert_eq!(
        home,
        &json!({"url": fake.page("home"), "finalUrl": fake.page("home"), "title": "Acme Rockets",
                "description": "Reusable rockets for small satellites.", "language": "en",
                "socials": ["https://linkedin.com/company/acme-rockets", "https://x.com/acmerockets"],
                "summary": "Acme builds reusable rockets for small satellites and launches every week."}),
    );
    assert_eq!(item("r1")["result"]["finalUrl"], fake.page("home"), "three redirects are followed");
    assert_eq!((item("loop1")["status"].as_str(), code(item("loop1"))), (Some("failed"), "PROVIDER_ERROR"));
    assert!(item("loop1")["error"]["message"].as_str().unwrap().contains("more than 3"), "{}", item("loop1"));
    assert_eq!(item("notitle")["result"]["title"], Value::Null);
    assert!(item("notitle")["result"]["summary"].as_str().unwrap().starts_with("We make things"));
    assert_eq!(item("huge")["result"]["title"], "Huge", "the first 2 MB are read and parsed");
    assert_eq!(item("pdf")["skippedReason"], "not_html");
    assert_eq!((item("slow")["status"].as_str(), code(item("slow"))), (Some("failed"), "PROVIDER_TIMEOUT"));
    assert_eq!(items[&cids[pages.len()]]["skippedReason"], "missing_input");
    assert!(!iso.log("worker").contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn providers_answer_in_their_shapes_and_bad_keys_open_the_circuit() {
    let fake = Fake::start().await;
    let keys = [
        ("PUFFLE_SECRET_HUNTER_API_KEY", "good-hunter"),
        ("PUFFLE_SECRET_PDL_API_KEY", "good-pdl"),
        ("PUFFLE_SECRET_APOLLO_API_KEY", "good-apollo"),
        ("PUFFLE_SECRET_OPENAI_API_KEY", "good-openai"),
    ];
    let (iso, _dir) = start(&fake, None, &keys).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 1000).await;

    // Hunter Email Finder: hit (confidence = score / 100, evidence), miss, missing input, low confidence.
    let mut no_domain = person("hal", "acme.test", None);
    no_domain["company"] = json!({});
    let ids = ctx
        .leads(vec![
            person("hugo", "acme.test", None),
            person("xavier", "acme.test", None),
            no_domain,
            person("hlow", "acme.test", None),
        ])
        .await;
    let (run, items) = run_of(&ctx, "hunter_email_finder", &ids, json!({"minConfidence": 0.5})).await;
    let hit = &items[&ids[0]];
    assert_eq!(hit["status"], "completed", "{hit}");
    let r = &hit["result"];
    assert!(
        r["email"].as_str().unwrap().starts_with("hugo.smith") && r["email"].as_str().unwrap().ends_with("@acme.test")
    );
    assert_eq!(
        (r["score"].as_u64(), r["confidence"].as_f64(), r["position"].as_str()),
        (Some(91), Some(0.91), Some("CTO"))
    );
    assert_eq!(r["evidence"]["provider"], "hunter");
    assert!(r["evidence"]["fetchedAt"].is_string());
    assert_eq!(r["evidence"]["fields"]["/data/score"], 91, "{r}");
    assert_eq!(hit["metadata"]["provider"], "hunter");
    assert_eq!(items[&ids[1]]["skippedReason"], "no_match");
    assert_eq!(items[&ids[2]]["skippedReason"], "missing_input");
    assert_eq!(items[&ids[3]]["skippedReason"], "low_confidence", "score 30 < minConfidence 0.5");
    assert_eq!((run["cost"]["charged"].as_u64(), run["cost"]["released"].as_u64()), (Some(2), Some(6)), "{run}");
    let seen = fake.seen("hunter_finder");
    assert!(seen.iter().all(|s| s.key.as_deref() == Some("good-hunter") && s.query["domain"] == "acme.test"));
    assert_eq!(seen.len(), 3, "no call for the Lead without a domain");

    // Hunter Email Verifier.
    let v = ctx.leads(vec![person("x", "acme.test", Some(&format!("ok.{}@acme.test", unique().to_lowercase())))]).await;
    let (_, items) = run_of(&ctx, "hunter_email_verifier", &v, json!({})).await;
    let r = &items[&v[0]]["result"];
    assert_eq!(
        (r["status"].as_str(), r["smtpCheck"].as_bool(), r["confidence"].as_f64()),
        (Some("valid"), Some(true), Some(0.96)),
        "{r}"
    );

    // An answer above the 2 MB body cap fails its Lead with
    // INVALID_PROVIDER_RESPONSE after one call (a retry would get the same
    // answer), is not charged, and the run's other Leads go on.
    let big = ctx.leads(vec![person("hugely", "acme.test", None), person("hugo", "acme.test", None)]).await;
    let calls_before = fake.seen("hunter_finder").len();
    let (run, items) = run_of(&ctx, "hunter_email_finder", &big, json!({})).await;
    let too_big = &items[&big[0]];
    assert_eq!((code(too_big), too_big["attempts"].as_u64()), ("INVALID_PROVIDER_RESPONSE", Some(1)), "{too_big}");
    assert!(too_big["error"]["message"].as_str().unwrap().contains("larger than 2097152 bytes"), "{too_big}");
    assert_eq!(items[&big[1]]["status"], "completed");
    assert_eq!(fake.seen("hunter_finder").len() - calls_before, 2);
    assert_eq!((run["status"].as_str(), run["cost"]["charged"].as_u64()), (Some("completed"), Some(2)), "{run}");

    // PDL: likelihood → confidence, minLikelihood → min_likelihood (only when given).
    let p = ctx
        .leads(vec![
            person("pete", "acme.test", None),
            person("plow", "acme.test", None),
            person("xena", "acme.test", None),
        ])
        .await;
    let (_, items) = run_of(&ctx, "pdl_person", &p, json!({"minLikelihood": 6})).await;
    let r = &items[&p[0]]["result"];
    assert_eq!((r["likelihood"].as_u64(), r["confidence"].as_f64()), (Some(8), Some(0.8)), "{r}");
    assert!(r["email"].as_str().unwrap().ends_with("@acme.test"));
    assert_eq!(items[&p[1]]["skippedReason"], "no_match", "likelihood 3 < min_likelihood 6 is PDL's 404");
    assert_eq!(items[&p[2]]["skippedReason"], "no_match");
    assert!(fake.seen("pdl").iter().all(|s| s.query.get("min_likelihood").map(String::as_str) == Some("6")));
    run_of(&ctx, "pdl_person", &p[..1], json!({})).await;
    assert!(!fake.seen("pdl").last().unwrap().query.contains_key("min_likelihood"), "an absent input is not sent");

    // Apollo: email_status graded into a confidence; `person: null` is a miss.
    let a = ctx.leads(vec![person("anna", "acme.test", None), person("xu", "acme.test", None)]).await;
    let (_, items) = run_of(&ctx, "apollo_people_match", &a, json!({})).await;
    let r = &items[&a[0]]["result"];
    assert_eq!((r["emailStatus"].as_str(), r["confidence"].as_f64()), (Some("verified"), Some(0.9)), "{r}");
    assert_eq!(items[&a[1]]["skippedReason"], "no_match");

    // A workspace's revoked key (401): its Leads fail PROVIDER_ERROR, no
    // retries, and the circuit opens instead of burning the run; the
    // platform key's circuit (other workspaces) stays closed.
    let bad = Ctx::on(&app, iso.api_url(), 1000).await;
    let put = bad.send("PUT", "/api/secrets/HUNTER_API_KEY", Some(json!({"value": "bad"})), Some(&bad.token)).await;
    assert_eq!(put.status, 204);
    let many = bad.leads((0..60).map(|_| person("hank", "acme.test", None)).collect()).await;
    let calls_before = fake.seen("hunter_finder").len();
    let (run, items) = run_of(&bad, "hunter_email_finder", &many, json!({})).await;
    let calls = fake.seen("hunter_finder").len() - calls_before;
    let errors = items.values().filter(|i| code(i) == "PROVIDER_ERROR").count();
    let fast = items.values().filter(|i| code(i) == "PROVIDER_UNAVAILABLE").count();
    assert_eq!(errors + fast, 60, "every Lead failed");
    assert!(errors >= 5 && fast >= 20, "{errors} refused calls, then {fast} failed fast");
    assert_eq!(calls, errors, "one call per refused Lead: a 401 is not retried");
    let refused = items.values().find(|i| code(i) == "PROVIDER_ERROR").unwrap();
    assert!(refused["error"]["message"].as_str().unwrap().contains("401"), "{refused}");
    assert_eq!(run["cost"]["charged"], 0, "{run}");
    let (_, items) = run_of(&ctx, "hunter_email_finder", &ids[..1], json!({})).await;
    assert_eq!(items[&ids[0]]["status"], "completed", "the platform key still works: {}", items[&ids[0]]);

    // Out of credits (402; Hunter: 429) and rate limited (429; Hunter: 403):
    // own keys of other workspaces. A spent quota is not retried.
    for (secret, value, enrichment, first, want, attempts) in [
        ("PDL_API_KEY", "broke", "pdl_person", "pam", "PROVIDER_QUOTA_EXCEEDED", 1),
        ("APOLLO_API_KEY", "throttled", "apollo_people_match", "abe", "PROVIDER_RATE_LIMITED", 3),
        ("HUNTER_API_KEY", "throttled", "hunter_email_finder", "hal", "PROVIDER_RATE_LIMITED", 3),
        ("HUNTER_API_KEY", "broke", "hunter_email_finder", "hank", "PROVIDER_QUOTA_EXCEEDED", 1),
    ] {
        let w = Ctx::on(&app, iso.api_url(), 100).await;
        let put = w.send("PUT", &format!("/api/secrets/{secret}"), Some(json!({"value": value})), Some(&w.token)).await;
        assert_eq!(put.status, 204);
        let l = w.leads(vec![person(first, "acme.test", None)]).await;
        let (_, items) = run_of(&w, enrichment, &l, json!({})).await;
        let i = &items[&l[0]];
        assert_eq!((code(i), i["attempts"].as_u64()), (want, Some(attempts)), "{enrichment}: {i}");
    }
    let broke = fake.seen("pdl").into_iter().filter(|s| s.key.as_deref() == Some("broke")).count();
    assert_eq!(broke, 1);

    // LLM: company_classify reads website_overview when present.
    let co = ctx
        .leads(vec![
            json!({"type": "company", "company": {"name": format!("Acme {}", unique()), "domain": "acme.test"},
                           "contacts": [{"type": "website", "value": fake.page("home")}]}),
        ])
        .await;
    run_of(&ctx, "website_overview", &co, json!({})).await;
    let (run, items) = run_of(&ctx, "company_classify", &co, json!({})).await;
    let i = &items[&co[0]];
    let r = &i["result"];
    assert_eq!(
        (&r["industry"], &r["sizeBand"], &r["businessModel"], &r["confidence"]),
        (&json!("Aerospace"), &json!("51-200"), &json!("B2B"), &json!(0.9)),
        "{i}"
    );
    // Evidence is Puffle's: who answered, with which model, when, and the
    // Lead values the prompt was rendered from.
    let ev = &r["evidence"];
    assert_eq!((&ev["provider"], &ev["model"]), (&json!("openai"), &json!("gpt-4o-mini")), "{ev}");
    assert!(ev["fetchedAt"].as_str().is_some_and(|t| t.starts_with("20")), "{ev}");
    assert_eq!(ev["fields"]["lead.company.domain"], "acme.test", "{ev}");
    assert_eq!(ev["fields"]["lead.attributes.website_overview.description"], "Reusable rockets for small satellites.");
    assert_eq!(
        i["metadata"]["usage"],
        json!({"promptTokens": 50, "completionTokens": 20, "totalTokens": 70, "calls": 1})
    );
    assert_eq!(run["cost"]["charged"], 2);
    let asked = fake.seen("chat").last().cloned().unwrap();
    assert_eq!(asked.key.as_deref(), Some("good-openai"));
    let prompt = asked.body["messages"][1]["content"].as_str().unwrap().to_string();
    assert!(prompt.contains("Reusable rockets for small satellites.") && prompt.contains("acme.test"), "{prompt}");
    assert_eq!(asked.body["response_format"]["json_schema"]["strict"], true);
    // The model is asked for its confidence, never for the evidence.
    let asked_schema = &asked.body["response_format"]["json_schema"]["schema"];
    assert!(asked_schema["required"].as_array().unwrap().contains(&json!("confidence")), "{asked_schema}");
    assert!(asked_schema["properties"].get("evidence").is_none(), "{asked_schema}");
    // ...within the strict subset: the stand-in refuses numeric and length
    // keywords as OpenAI's strict mode does, so the 0–1 range is said in words.
    let asked_confidence = &asked_schema["properties"]["confidence"];
    assert!(asked_confidence.get("minimum").is_none() && asked_confidence.get("maximum").is_none(), "{asked_schema}");
    assert!(asked_confidence["description"].as_str().unwrap().ends_with("Must be at least 0, at most 1."));

    // minConfidence: an answer below it is a miss, released; one above it is charged.
    let ps = ctx.leads(vec![person("unsure", "acme.test", None), person("sure", "acme.test", None)]).await;
    let (run, items) = run_of(&ctx, "persona_summary", &ps, json!({"minConfidence": 0.5})).await;
    let low = &items[&ps[0]];
    assert_eq!(
        (low["status"].as_str(), low["skippedReason"].as_str()),
        (Some("skipped"), Some("low_confidence")),
        "{low}"
    );
    assert_eq!(items[&ps[1]]["status"], "completed");
    let sure = &items[&ps[1]]["result"];
    assert_eq!(sure["confidence"], 0.9);
    let fields = &sure["evidence"]["fields"];
    assert!(fields["lead.name.full"].as_str().is_some_and(|n| n.starts_with("sure Smith")), "{fields}");
    assert!(fields.get("lead.title").is_none(), "an absent optional value is no evidence: {fields}");
    assert_eq!((run["cost"]["charged"].as_u64(), run["cost"]["released"].as_u64()), (Some(2), Some(2)), "{run}");

    // persona_summary: a malformed answer is asked again once; twice is
    // INVALID_PROVIDER_RESPONSE; a 429 is retried, then PROVIDER_RATE_LIMITED;
    // a confidence outside 0–1 is an invalid answer like malformed JSON.
    let ps = ctx
        .leads(vec![
            person("once-malformed", "acme.test", None),
            person("malformed", "acme.test", None),
            person("ratelimit", "acme.test", None),
            person("overconfident", "acme.test", None),
        ])
        .await;
    let (_, items) = run_of(&ctx, "persona_summary", &ps, json!({})).await;
    let second_try = &items[&ps[0]];
    assert_eq!(
        (second_try["status"].as_str(), second_try["attempts"].as_u64()),
        (Some("completed"), Some(2)),
        "{second_try}"
    );
    assert_eq!(second_try["metadata"]["usage"]["totalTokens"], 140);
    assert_eq!(second_try["result"]["seniority"], "vp");
    let bad_json = &items[&ps[1]];
    assert_eq!((code(bad_json), bad_json["attempts"].as_u64()), ("INVALID_PROVIDER_RESPONSE", Some(2)), "{bad_json}");
    let limited = &items[&ps[2]];
    assert_eq!((code(limited), limited["attempts"].as_u64()), ("PROVIDER_RATE_LIMITED", Some(3)), "{limited}");
    // The answer is held to the whole outputSchema: confidence 1.5 is invalid.
    let over = &items[&ps[3]];
    assert_eq!((code(over), over["attempts"].as_u64()), ("INVALID_PROVIDER_RESPONSE", Some(2)), "{over}");

    let logs = iso.log("api") + &iso.log("worker");
    for (_, secret) in keys {
        assert!(!logs.contains(secret), "a log holds a key");
    }
    assert!(!logs.contains("panicked"));
}

fn steps(item: &Value) -> Vec<(String, String, u64)> {
    item["metadata"]["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("no metadata.attempts: {item}"))
        .iter()
        .map(|a| {
            (
                a["enrichmentId"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
                a["cost"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn work_email_waterfall_over_1000_leads_charges_only_the_step_that_found() {
    let fake = Fake::start().await;
    let dns = TestDns::start(&[
        ("acme.test", vec![Rr::Mx("acme.test", 10, "mx1.acme.test.")]),
        ("nomx.test", vec![Rr::A("nomx.test", Ipv4Addr::new(192, 0, 2, 20))]),
    ])
    .await;
    // No platform keys: each workspace brings its own.
    let (iso, _dir) = start(&fake, Some(&dns), &[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 10_000).await;

    // Listed disabled until the key is configured; the waterfall is always enabled.
    let listed = |body: &Value, slug: &str| {
        body["enrichments"].as_array().unwrap().iter().find(|e| e["slug"] == slug).cloned().unwrap()
    };
    let r = ctx.get("/api/enrichments").await;
    assert_eq!(listed(&r.body, "hunter_email_finder")["enabled"], false);
    assert!(listed(&r.body, "hunter_email_finder")["disabledReason"].as_str().unwrap().contains("HUNTER_API_KEY"));
    assert_eq!(listed(&r.body, "work_email")["enabled"], true);
    assert_eq!(listed(&r.body, "work_email")["costModel"]["creditsPerLead"], 3);
    for (name, value) in [("HUNTER_API_KEY", "k-hunter"), ("PDL_API_KEY", "k-pdl"), ("APOLLO_API_KEY", "k-apollo")] {
        let put =
            ctx.send("PUT", &format!("/api/secrets/{name}"), Some(json!({"value": value})), Some(&ctx.token)).await;
        assert_eq!(put.status, 204);
    }
    let r = ctx.get("/api/enrichments").await;
    assert_eq!(listed(&r.body, "hunter_email_finder")["enabled"], true);

    // 1,000 Leads: Hunter finds the first third (i % 3 == 0), PDL the
    // second, Apollo the last.
    let first = |i: usize| match i % 3 {
        0 => format!("h{i}"),
        1 => format!("p{i}"),
        _ => format!("a{i}"),
    };
    let leads: Vec<Value> = (0..1000).map(|i| person(&first(i), "acme.test", None)).collect();
    let ids = ctx.leads(leads).await;
    let balance = ctx.balance().await;
    let started = Instant::now();
    let (run, items) = run_of(&ctx, "work_email", &ids, json!({})).await;
    let took = started.elapsed();
    assert_eq!(run["scope"]["counts"]["completed"], 1000, "{run}");
    let (mut by_hunter, mut by_pdl, mut by_apollo) = (0, 0, 0);
    for (i, id) in ids.iter().enumerate() {
        let item = &items[id];
        let s = steps(item);
        let want: Vec<(String, String, u64)> = match i % 3 {
            0 => vec![("hunter_email_finder".into(), "hit".into(), 2)],
            1 => vec![("hunter_email_finder".into(), "miss".into(), 0), ("pdl_person".into(), "hit".into(), 3)],
            _ => vec![
                ("hunter_email_finder".into(), "miss".into(), 0),
                ("pdl_person".into(), "miss".into(), 0),
                ("apollo_people_match".into(), "hit".into(), 2),
            ],
        };
        assert_eq!(s, want, "lead {i}: {item}");
        let price = want.last().unwrap().2;
        assert_eq!(item["cost"], json!({"reserved": 3, "charged": price, "released": 3 - price}), "lead {i}");
        let r = &item["result"];
        assert_eq!(r["verification"]["status"], "deliverable", "{r}");
        assert_eq!(r["source"], want.last().unwrap().0);
        assert!(r["email"].as_str().unwrap().starts_with(&format!("{}.smith", first(i))), "{r}");
        assert!(r["confidence"].is_number() && r["evidence"]["provider"].is_string(), "{r}");
        for a in item["metadata"]["attempts"].as_array().unwrap() {
            assert!(a["durationMs"].is_u64() && a["provider"].is_string(), "{a}");
        }
        match i % 3 {
            0 => by_hunter += 1,
            1 => by_pdl += 1,
            _ => by_apollo += 1,
        }
    }
    assert_eq!((by_hunter, by_pdl, by_apollo), (334, 333, 333));
    let charged = 334 * 2 + 333 * 3 + 333 * 2;
    assert_eq!(
        (run["cost"]["reserved"].as_u64(), run["cost"]["charged"].as_u64(), run["cost"]["released"].as_u64()),
        (Some(3000), Some(charged), Some(3000 - charged)),
        "{}",
        run["cost"]
    );
    assert_eq!(ctx.balance().await, balance - charged);
    assert_eq!(fake.seen("hunter_finder").len(), 1000);
    assert_eq!(fake.seen("pdl").len(), 666, "PDL only for the Leads Hunter missed");
    assert_eq!(fake.seen("apollo").len(), 333);
    eprintln!("work_email: 1,000 Leads in {took:?}; DNS queries: {}", dns.queries());

    // Found but not deliverable at every step: nothing wins, nothing is charged.
    let risky = ctx.leads(vec![person("hpx", "nomx.test", None)]).await;
    let (run, items) = run_of(&ctx, "work_email", &risky, json!({})).await;
    let i = &items[&risky[0]];
    assert_eq!(i["skippedReason"], "no_match", "{i}");
    let outcomes: Vec<String> = steps(i).into_iter().map(|s| s.1).collect();
    assert_eq!(outcomes, ["rejected", "rejected", "miss"]);
    assert!(i["metadata"]["attempts"][0]["reason"].as_str().unwrap().contains("risky"), "{i}");
    assert_eq!(run["cost"]["charged"], 0);

    // Without keys it runs what it can and says why the rest were skipped.
    let none = Ctx::on(&app, iso.api_url(), 100).await;
    let only_apollo = Ctx::on(&app, iso.api_url(), 100).await;
    let put = only_apollo
        .send("PUT", "/api/secrets/APOLLO_API_KEY", Some(json!({"value": "k"})), Some(&only_apollo.token))
        .await;
    assert_eq!(put.status, 204);
    let l = none.leads(vec![person("hpa", "acme.test", None)]).await;
    let (run, items) = run_of(&none, "work_email", &l, json!({})).await;
    let i = &items[&l[0]];
    assert_eq!(i["skippedReason"], "providers_disabled", "{i}");
    let reasons: Vec<&str> =
        i["metadata"]["attempts"].as_array().unwrap().iter().map(|a| a["reason"].as_str().unwrap()).collect();
    assert_eq!(
        reasons,
        [
            "disabled: needs the secret(s) HUNTER_API_KEY",
            "disabled: needs the secret(s) PDL_API_KEY",
            "disabled: needs the secret(s) APOLLO_API_KEY"
        ]
    );
    assert_eq!(run["cost"]["charged"], 0);
    let l = only_apollo.leads(vec![person("hpa", "acme.test", None)]).await;
    let (_, items) = run_of(&only_apollo, "work_email", &l, json!({})).await;
    let i = &items[&l[0]];
    let outcomes: Vec<String> = steps(i).into_iter().map(|s| s.1).collect();
    assert_eq!(outcomes, ["skipped", "skipped", "hit"], "{i}");
    assert_eq!(i["cost"]["charged"], 2);

    // runIf, end to end: each step runs only for the Leads its filter admits.
    let titled = |first: &str, domain: &str| {
        let mut p = person(first, domain, None);
        p["title"] = json!("Head of Sales");
        p
    };
    let l =
        ctx.leads(vec![titled("hpa", "acme.test"), person("hpa", "acme.test", None), titled("hpa", "nomx.test")]).await;
    let calls = |route: &str| fake.seen(route).len();
    let before = (calls("hunter_finder"), calls("pdl"), calls("apollo"));
    let (run, items) = run_of(&ctx, "titled_email", &l, json!({})).await;
    let outcomes = |id: &String| steps(&items[id]).into_iter().map(|s| (s.0, s.1)).collect::<Vec<_>>();
    let s = |e: &str, o: &str| (e.to_string(), o.to_string());
    // Titled: Hunter runs and wins; the other steps are never reached.
    assert_eq!(outcomes(&l[0]), [s("hunter_email_finder", "hit")]);
    // No title: Hunter and PDL (no Hunter result to follow up) are skipped, Apollo wins.
    assert_eq!(
        outcomes(&l[1]),
        [s("hunter_email_finder", "skipped"), s("pdl_person", "skipped"), s("apollo_people_match", "hit")]
    );
    assert!(items[&l[1]]["metadata"]["attempts"].as_array().unwrap()[..2]
        .iter()
        .all(|a| a["reason"] == "run_if_false"));
    // Titled, undeliverable domain: Hunter's find is rejected, so PDL runs
    // (its runIf sees Hunter's result); Apollo's runIf is false.
    assert_eq!(
        outcomes(&l[2]),
        [s("hunter_email_finder", "rejected"), s("pdl_person", "rejected"), s("apollo_people_match", "skipped")]
    );
    assert_eq!(items[&l[2]]["skippedReason"], "no_match");
    let after = (calls("hunter_finder"), calls("pdl"), calls("apollo"));
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (2, 1, 1),
        "calls only where runIf admits"
    );
    assert_eq!(run["cost"]["charged"].as_u64(), Some(2 + 2), "Hunter's and Apollo's wins: {run}");
    assert!(!iso.log("worker").contains("panicked"));
}
