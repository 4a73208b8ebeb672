use serde_json::{json, Value};

use super::template::lead_context;
use super::*;
use crate::providers::test_support::{contacts, lead};

fn binding(v: Value) -> HttpBinding {
    serde_json::from_value(v).expect("binding")
}

fn example() -> HttpBinding {
    binding(json!({
        "request": {"method": "POST", "url": "https://api.example.com/v1/find?domain={{lead.company.domain}}&q=x",
                    "headers": {"Authorization": "Bearer {{secrets.EXAMPLE_KEY}}"},
                    "body": {"name": "{{lead.name.full}}", "minScore": "{{input.minScore}}", "note": "for {{lead.name.full}}"}},
        "response": {"found": "/data/email", "result": {"email": "/data/email", "confidence": "/data/score"}},
        "timeoutMs": 5000, "maxAttempts": 3, "ratePerSecond": 10
    }))
}

fn ada() -> Value {
    lead_context(&lead(json!({
        "name": {"full": "Ada Lovelace"},
        "company": {"domain": "acme.co.uk", "name": "Acme & Sons"},
        "contacts": contacts(&[("phone", "+44 20 7946 0958"), ("email", " ada@acme.co.uk ")]),
        "socials": [{"url": "https://uk.linkedin.com/in/ada"}],
    })))
}

fn secrets(name: &str) -> Option<String> {
    (name == "EXAMPLE_KEY").then(|| "sk_live_123".to_string())
}

#[test]
fn the_issue_example_parses_validates_and_round_trips() {
    let raw = json!({"type": "http",
        "request": {"method": "POST", "url": "https://api.example.com/v1/find?domain={{lead.company.domain}}",
                    "headers": {"Authorization": "Bearer {{secrets.EXAMPLE_KEY}}"},
                    "body": {"name": "{{lead.name.full}}", "minScore": "{{input.minScore}}"}},
        "response": {"found": "/data/email", "result": {"email": "/data/email", "confidence": "/data/score"}},
        "timeoutMs": 5000, "maxAttempts": 3, "ratePerSecond": 10});
    let b: ToolBinding = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(serde_json::to_value(&b).unwrap(), raw);
    let h = b.http().unwrap();
    assert_eq!(h.validate(), Ok(()));
    assert_eq!(h.secret_names().into_iter().collect::<Vec<_>>(), ["EXAMPLE_KEY"]);
    assert_eq!(h.provider_name(), "api.example.com");
    assert_eq!(h.timeout_ms(), 5000);
    assert_eq!(h.cache_ttl_seconds(), 30 * 24 * 3600);
    let builtin: ToolBinding = serde_json::from_value(json!({"type": "builtin", "provider": "email_domain"})).unwrap();
    assert!(builtin.http().is_none());
}

#[test]
fn unknown_fields_are_rejected() {
    let mut raw = serde_json::to_value(example()).unwrap();
    raw["retries"] = json!(3);
    assert!(serde_json::from_value::<HttpBinding>(raw).is_err());
    let bad: Result<ToolBinding, _> = serde_json::from_value(json!({"type": "ftp"}));
    assert!(bad.is_err());
}

#[test]
fn renders_typed_values_interpolations_and_encoded_urls() {
    let input = json!({"minScore": 80});
    let r = render(&example(), &Values { lead: &ada(), input: &input, secret: &secrets }).unwrap();
    assert_eq!(r.method, "POST");
    assert_eq!(r.url, "https://api.example.com/v1/find?domain=acme.co.uk&q=x");
    assert_eq!(r.headers, vec![("Authorization".to_string(), "Bearer sk_live_123".to_string())]);
    // A whole placeholder keeps the JSON type; an embedded one is text.
    assert_eq!(r.body, Some(json!({"name": "Ada Lovelace", "minScore": 80, "note": "for Ada Lovelace"})));

    let b = binding(json!({
        "request": {"method": "GET", "url": "https://x.test/p/{{lead.company.name}}?n={{lead.name.full}}&e={{lead.email}}"},
        "response": {"found": "", "result": {"a": "/a"}}
    }));
    let r = render(&b, &Values { lead: &ada(), input: &json!({}), secret: &secrets }).unwrap();
    assert_eq!(r.url, "https://x.test/p/Acme%20%26%20Sons?n=Ada%20Lovelace&e=ada%40acme.co.uk");
}

#[test]
fn derived_lead_fields() {
    let ctx = ada();
    assert_eq!(ctx["email"], "ada@acme.co.uk");
    assert_eq!(ctx["phone"], "+44 20 7946 0958");
    assert_eq!(ctx["linkedin"], "https://uk.linkedin.com/in/ada");
    assert!(ctx.get("website").is_none());
}

#[test]
fn missing_values_are_reported_lead_first() {
    let no_domain = lead_context(&lead(json!({"name": {"full": "Ada"}})));
    let input = json!({"minScore": 1});
    let v = Values { lead: &no_domain, input: &input, secret: &|_| None };
    assert_eq!(render(&example(), &v), Err(Missing::Lead("company.domain".into())));

    let empty_name = lead_context(&lead(json!({"name": {"full": ""}, "company": {"domain": "a.com"}})));
    let v = Values { lead: &empty_name, input: &input, secret: &secrets };
    assert_eq!(render(&example(), &v), Err(Missing::Lead("name.full".into())));

    let v = Values { lead: &ada(), input: &json!({}), secret: &secrets };
    assert_eq!(render(&example(), &v), Err(Missing::Input("minScore".into())));

    let v = Values { lead: &ada(), input: &input, secret: &|_| None };
    assert_eq!(render(&example(), &v), Err(Missing::Secret("EXAMPLE_KEY".into())));
}

#[test]
fn array_paths_go_through_json_pointer() {
    let b = binding(json!({
        "request": {"method": "POST", "url": "https://x.test/", "body": {"first": "{{lead.contacts.0.value}}"}},
        "response": {"found": "/a", "result": {"a": "/a"}}
    }));
    let r = render(&b, &Values { lead: &ada(), input: &json!({}), secret: &secrets }).unwrap();
    assert_eq!(r.body, Some(json!({"first": "+44 20 7946 0958"})));
}

#[test]
fn validation_names_each_problem() {
    let b = binding(json!({
        "request": {"method": "FETCH", "url": "ftp://x.test/{{lead.name}}", "headers": {"X Bad": "{{secrets.lower}}"},
                    "body": "{{nope.x}}"},
        "response": {"found": "data", "result": {}},
        "timeoutMs": 0, "maxAttempts": 9, "ratePerSecond": 0, "concurrency": 1000
    }));
    let errs = b.validate().unwrap_err();
    let joined = errs.join("\n");
    for needle in [
        "request.method",
        "secrets.lower",
        "nope.x",
        "X Bad",
        "request.body must be a JSON object",
        "response.found",
        "response.result must map",
        "timeoutMs",
        "maxAttempts",
        "ratePerSecond",
        "concurrency",
    ] {
        assert!(joined.contains(needle), "{needle} not in:\n{joined}");
    }
    let b = binding(json!({
        "request": {"method": "GET", "url": "ftp://x.test/"}, "response": {"found": "", "result": {"a": "/a"}}
    }));
    assert!(b.validate().unwrap_err()[0].contains("only http and https"));
    for url in ["https://{{lead.company.domain}}/x", "{{input.url}}", "https://api.{{input.region}}.x.test/"] {
        let b = binding(json!({
            "request": {"method": "GET", "url": url}, "response": {"found": "", "result": {"a": "/a"}}
        }));
        assert!(b.validate().is_err(), "{url}");
    }
    let b = binding(json!({
        "request": {"method": "GET", "url": "https://x.test/{{lead.name.full"}, "response": {"found": "", "result": {"a": "/a"}}
    }));
    assert!(b.validate().unwrap_err().iter().any(|e| e.contains("unbalanced")));
}

fn schema() -> jsonschema::Validator {
    jsonschema::validator_for(&json!({
        "type": "object",
        "properties": {"email": {"type": "string"}, "confidence": {"type": "number"}},
        "required": ["email"],
        "additionalProperties": false
    }))
    .unwrap()
}

#[test]
fn responses_map_to_hits_misses_and_invalid() {
    let m = &example().response;
    let hit = map_response(m, br#"{"data":{"email":"ada@acme.co.uk","score":0.9}}"#, &schema());
    assert_eq!(hit, Mapped::Hit { result: json!({"email": "ada@acme.co.uk", "confidence": 0.9}), submission_id: None });
    for miss in [r#"{"data":{"email":null}}"#, r#"{"data":{}}"#, r#"{"data":{"email":""}}"#, r#"{}"#, r#"[]"#] {
        assert!(matches!(map_response(m, miss.as_bytes(), &schema()), Mapped::Miss { .. }), "{miss}");
    }
    match map_response(m, b"<html>oops</html>", &schema()) {
        Mapped::Invalid(msg) => assert!(msg.contains("not JSON"), "{msg}"),
        other => panic!("{other:?}"),
    }
    match map_response(m, br#"{"data":{"email":42}}"#, &schema()) {
        Mapped::Invalid(msg) => assert!(msg.contains("outputSchema"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let mut with_id = m.clone();
    with_id.submission_id = Some("/id".into());
    assert!(matches!(
        map_response(&with_id, br#"{"id":"req_9","data":{"email":"a@b.co"}}"#, &schema()),
        Mapped::Hit { submission_id: Some(id), .. } if id == "req_9"
    ));
    for found in [json!(false), json!([]), json!({}), json!("  ")] {
        assert!(!response::is_found(Some(&found)), "{found}");
    }
    for found in [json!(true), json!(0), json!("x"), json!([1])] {
        assert!(response::is_found(Some(&found)), "{found}");
    }
}

#[test]
fn cache_keys_normalise_and_never_hold_secrets() {
    let input = json!({"minScore": 80});
    let a = cache_key(&example(), &ada(), &input).unwrap();
    assert_eq!(a.len(), 64);
    assert_eq!(a, cache_key(&example(), &ada(), &input).unwrap(), "deterministic");
    // The binding is part of the key: editing it never reuses old results.
    let mut edited = example();
    edited.response.found = "/data".into();
    assert_ne!(a, cache_key(&edited, &ada(), &input).unwrap());
    let other_lead =
        lead_context(&lead(json!({"name": {"full": "Grace Hopper"}, "company": {"domain": "acme.co.uk"}})));
    assert_ne!(a, cache_key(&example(), &other_lead, &input).unwrap());
    assert_ne!(a, cache_key(&example(), &ada(), &json!({"minScore": 81})).unwrap());
    // A key is computed without any secret: there is no way to pass one.
    assert!(!a.contains("sk_live"));
}

#[test]
fn optional_placeholders_drop_their_parameter_or_field() {
    let b = binding(json!({
        "request": {"method": "POST",
                    "url": "https://api.example.com/v5/enrich?name={{lead.name.full}}&min_likelihood={{input.minLikelihood?}}&t={{lead.title?}}",
                    "headers": {"X-Title": "{{lead.title?}}"},
                    "body": {"name": "{{lead.name.full}}", "min": "{{input.minLikelihood?}}", "note": "title: {{lead.title?}}"}},
        "response": {"found": "/data", "result": {"x": "/data"}}
    }));
    assert_eq!(b.validate(), Ok(()));
    let lead = ada();
    let none = json!({});
    let r = render(&b, &Values { lead: &lead, input: &none, secret: &secrets }).unwrap();
    assert_eq!(r.url, "https://api.example.com/v5/enrich?name=Ada%20Lovelace");
    assert!(r.headers.is_empty(), "{:?}", r.headers);
    assert_eq!(r.body, Some(json!({"name": "Ada Lovelace", "note": "title: "})));
    let some = json!({"minLikelihood": 6});
    let r = render(&b, &Values { lead: &lead, input: &some, secret: &secrets }).unwrap();
    assert_eq!(r.url, "https://api.example.com/v5/enrich?name=Ada%20Lovelace&min_likelihood=6");
    assert_eq!(r.body.unwrap()["min"], 6);
}

#[test]
fn confidence_is_scaled_graded_or_fixed_and_evidence_names_the_fields_read() {
    let rule = |v: Value| -> ConfidenceRule { serde_json::from_value(v).unwrap() };
    let doc = json!({"likelihood": 8, "person": {"email_status": "Verified"}, "data": {"score": 97}});
    assert_eq!(rule(json!({"pointer": "/likelihood", "scale": 10.0})).of(&doc), Some(0.8));
    assert_eq!(rule(json!({"pointer": "/data/score", "scale": 100.0})).of(&doc), Some(0.97));
    let graded = rule(json!({"pointer": "/person/email_status", "values": {"verified": 0.9}, "default": 0.3}));
    assert_eq!(graded.of(&doc), Some(0.9));
    assert_eq!(graded.of(&json!({})), Some(0.3));
    assert_eq!(rule(json!({"pointer": "/nope", "scale": 10.0})).of(&doc), None);
    let mut errs = vec![];
    rule(json!({"scale": -1.0})).validate(&mut errs);
    assert_eq!(errs.len(), 2, "{errs:?}");

    let m: ResponseMapping = serde_json::from_value(json!({
        "found": "/data", "result": {"email": "/data/work_email"},
        "confidence": {"pointer": "/likelihood", "scale": 10.0}}))
    .unwrap();
    let schema = jsonschema::validator_for(&json!({"type": "object"})).unwrap();
    let body = json!({"likelihood": 6, "data": {"work_email": "ada@acme.test", "big": [1, 2]}}).to_string();
    let src = response::Source { provider: "pdl", fetched_at: "2026-12-02T00:00:00Z" };
    let Mapped::Hit { result, .. } = map_response_at(&m, body.as_bytes(), &schema, Some(src)) else { panic!() };
    assert_eq!(result["confidence"], 0.6);
    assert_eq!(
        result["evidence"],
        json!({"provider": "pdl", "fetchedAt": "2026-12-02T00:00:00Z",
               "fields": {"/data/work_email": "ada@acme.test", "/likelihood": 6}}),
        "the whole record `found` points at is not copied"
    );
    assert!(below_min_confidence(&result, &json!({"minConfidence": 0.7})));
    assert!(!below_min_confidence(&result, &json!({"minConfidence": 0.5})));
    assert!(!below_min_confidence(&json!({"email": "x"}), &json!({"minConfidence": 0.9})), "no confidence, no gate");
}

#[test]
fn status_codes_remap_only_4xx_errors() {
    let mut v = serde_json::to_value(example()).unwrap();
    v["statusCodes"] = json!({"403": "rate_limited", "429": "quota_exceeded"});
    let b = binding(v.clone());
    assert_eq!(b.status_meanings().get(&403), Some(&StatusMeaning::RateLimited));
    assert_eq!(b.status_meanings().get(&429), Some(&StatusMeaning::QuotaExceeded));
    assert!(b.validate().is_ok(), "{:?}", b.validate());
    for bad in ["404", "500", "200", "4o3"] {
        v["statusCodes"] = json!({bad: "rate_limited"});
        let errors = binding(v.clone()).validate().unwrap_err();
        assert!(errors.iter().any(|e| e.starts_with("statusCodes")), "{bad}: {errors:?}");
    }
    v["statusCodes"] = json!({"403": "retry_forever"});
    assert!(serde_json::from_value::<HttpBinding>(v).is_err(), "an unknown meaning is refused");
}

#[test]
fn a_prompt_s_evidence_holds_the_values_it_used_and_never_a_secret() {
    let input = json!({"tone": "brief"});
    let v = Values { lead: &ada(), input: &input, secret: &secrets };
    let used = template::values_used(
        &["{{lead.name.full}} at {{lead.company.domain}} ({{lead.title?}}) {{input.tone}}", "{{secrets.EXAMPLE_KEY}}"],
        &v,
    );
    assert_eq!(
        Value::Object(used),
        json!({"lead.name.full": "Ada Lovelace", "lead.company.domain": "acme.co.uk", "input.tone": "brief"})
    );
}
