//! `openapi.yaml` against the service.
//!
//! - `spec_documents_every_route`: the spec's operations are exactly the
//!   route table's, each with the statuses every route can answer (401,
//!   429 and 503 with Retry-After, 404 for ids, 413 for bodies). No stack needed.
//! - `spec_is_valid_openapi_3_0_3`: openapi-spec-validator from the venv.
//! - `live_api_conforms_to_the_spec`: on a private stack, a scripted tour of
//!   every documented outcome (202, 200 reused and preview, every 4xx code,
//!   402, 409, 413, 422, 502 with the queue stopped, 503 with DynamoDB
//!   stopped) is validated against the spec, and schemathesis fuzzes every
//!   operation (positive and negative data, `--checks all`), also with real
//!   List and run ids. Any 5xx or undocumented response fails the test.
//!
//! schemathesis and openapi-spec-validator come from the project venv
//! (`make venv`). See docs/openapi.md for running schemathesis by hand.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use puffle_http::routes::ROUTES;
use puffle_tests::isolated::Isolated;
use puffle_tests::{company, person, Ctx};
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn spec_path() -> PathBuf {
    root().join("openapi.yaml")
}

fn spec() -> serde_yaml::Value {
    let text = std::fs::read_to_string(spec_path()).expect("openapi.yaml at the repository root");
    serde_yaml::from_str(&text).expect("openapi.yaml is YAML")
}

/// The venv's Python, after checking the tools this file needs are there.
fn venv_python() -> PathBuf {
    let venv = root().join(".venv");
    for tool in ["python", "schemathesis", "openapi-spec-validator"] {
        let p = venv.join("bin").join(tool);
        assert!(
            p.exists(),
            "{} is missing: the OpenAPI checks need the project venv. Run `make venv` (it installs requirements-dev.txt, schemathesis included).",
            p.display()
        );
    }
    venv.join("bin/python")
}

/// Runs schemathesis (`st <args>`) or the response validator (`validate
/// <spec> <records.json>`) in the venv's Python.
///
/// Two adjustments, both documented in docs/openapi.md:
/// - schemathesis 3.x generates objects through hypothesis-jsonschema, which
///   calls `many.more()`; recent Hypothesis releases replaced that API with
///   an iterator, so every object body dies with `AttributeError: 'many'
///   object has no attribute 'more'`. The shim puts `more()` back on top of
///   the new iterator (only when it is missing).
/// - Generation hooks: no query parameters the operation does not declare
///   (the API ignores unknown parameters, which schemathesis counts as
///   "accepted negative data" but OpenAPI 3.0 cannot express), and no header
///   values with control characters (not valid HTTP: the HTTP server answers
///   400 before the API sees the request).
const HELPER_PY: &str = r#"
import json, sys

def compat():
    from hypothesis.internal.conjecture import utils as cu
    if hasattr(cu.many, "more"):
        return
    def more(self):
        it = getattr(self, "_compat_iter", None)
        if it is None:
            self.__enter__()
            it = self._compat_iter = iter(self)
        try:
            next(it)
            return True
        except StopIteration:
            self.__exit__(None, None, None)
            return False
    cu.many.more = more

def run_schemathesis(args):
    compat()
    import schemathesis

    @schemathesis.hook
    def filter_query(context, query):
        declared = {p.name for p in context.operation.query}
        return not query or set(query) <= declared

    @schemathesis.hook
    def filter_headers(context, headers):
        def ok(v):
            return isinstance(v, str) and all(c == "\t" or (" " <= c and c != "\x7f") for c in v)
        return not headers or all(ok(v) for v in headers.values())

    from schemathesis.cli import schemathesis as cli
    sys.argv = ["schemathesis"] + args
    cli()

def validate(spec, records_path):
    import requests, schemathesis
    schema = schemathesis.from_path(spec, base_url="http://api.invalid")
    records = json.load(open(records_path))
    problems, seen = [], set()
    for r in records:
        label = f'{r["method"]} {r["path"]} -> {r["status"]}'
        try:
            op = schema[r["template"]][r["method"]]
        except KeyError:
            problems.append(f"{label}: operation {r['method']} {r['template']} is not in the spec")
            continue
        seen.add((r["method"], r["template"], r["status"]))
        responses = op.definition.resolved["responses"]
        doc = responses.get(str(r["status"])) or responses.get("default")
        if doc is None:
            problems.append(f"{label}: status not documented (documented: {sorted(responses)})")
            continue
        headers = {k.lower(): v for k, v in r["headers"].items()}
        for name, h in (doc.get("headers") or {}).items():
            if h.get("required") and name.lower() not in headers:
                problems.append(f"{label}: required header {name} missing")
        ct = headers.get("content-type", "")
        if doc.get("content") and not any(ct.startswith(m) for m in doc["content"]):
            problems.append(f"{label}: content-type {ct!r} not documented")
        resp = requests.Response()
        resp.status_code = r["status"]
        resp._content = r["body"].encode()
        resp.headers.update(r["headers"])
        resp.url = "http://api.invalid" + r["path"]
        resp.request = requests.Request(r["method"], resp.url).prepare()
        try:
            op.validate_response(resp)
        except Exception as e:
            ctx = getattr(e, "context", None)
            detail = f"{getattr(ctx, 'validation_message', e)} at {list(getattr(ctx, 'instance_path', []))}"
            problems.append(f"{label}: {detail}\n    body: {r['body'][:400]}")
    print(json.dumps({"checked": len(records), "outcomes": len(seen), "problems": problems}))

if __name__ == "__main__":
    if sys.argv[1] == "st":
        run_schemathesis(sys.argv[2:])
    else:
        validate(sys.argv[2], sys.argv[3])
"#;

fn write_helper(dir: &Path) -> PathBuf {
    let p = dir.join("openapi_helper.py");
    std::fs::write(&p, HELPER_PY).unwrap();
    p
}

// ---------------------------------------------------------------- static

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

#[test]
fn spec_documents_every_route() {
    let s = spec();
    assert_eq!(s["openapi"].as_str(), Some("3.0.3"));
    assert_eq!(s["components"]["securitySchemes"]["bearer"]["scheme"].as_str(), Some("bearer"));
    assert!(s["security"].as_sequence().is_some_and(|v| !v.is_empty()), "bearer security is not the default");

    let paths = s["paths"].as_mapping().expect("paths");
    let mut in_spec = BTreeSet::new();
    let mut problems = vec![];
    for (path, item) in paths {
        let path = path.as_str().unwrap();
        for m in METHODS {
            let Some(op) = item.get(*m) else { continue };
            let label = format!("{} {path}", m.to_uppercase());
            in_spec.insert((m.to_uppercase(), path.to_string()));
            let responses = op["responses"].as_mapping().unwrap_or_else(|| panic!("{label}: no responses"));
            let has = |code: &str| responses.contains_key(serde_yaml::Value::String(code.into()));
            let public = op.get("security").and_then(|v| v.as_sequence()).is_some_and(|v| v.is_empty());
            if public {
                if path != "/api/health" {
                    problems.push(format!("{label}: only /api/health is public"));
                }
            } else {
                for code in ["401", "429", "503"] {
                    if !has(code) {
                        problems.push(format!("{label}: {code} not documented"));
                    }
                }
                if op["responses"]["503"]["$ref"].as_str() != Some("#/components/responses/Unavailable") {
                    problems.push(format!("{label}: 503 is not the shared Unavailable response (with Retry-After)"));
                }
                if op["responses"]["429"]["$ref"].as_str() != Some("#/components/responses/RateLimited") {
                    problems.push(format!("{label}: 429 is not the shared RateLimited response (with Retry-After)"));
                }
            }
            if path.contains("{id}") && !has("404") {
                problems.push(format!("{label}: 404 for an unknown id not documented"));
            }
            if op.get("requestBody").is_some() && !has("413") {
                problems.push(format!("{label}: 413 PAYLOAD_TOO_LARGE not documented"));
            }
            if op.get("requestBody").is_some() && !has("400") {
                problems.push(format!("{label}: 400 for a bad body not documented"));
            }
            if !responses.keys().any(|k| k.as_str().is_some_and(|c| c.starts_with('2'))) {
                problems.push(format!("{label}: no success response"));
            }
        }
    }
    // /mcp speaks JSON-RPC (the Model Context Protocol), not REST: its
    // contract is MCP's, checked with an MCP client in tests/mcp.rs.
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(in_spec, routes, "the spec's operations differ from shared/http/src/routes.rs");
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The named schemas and the extra fields of the contract's error bodies.
    let schemas = &s["components"]["schemas"];
    for name in ["Lead", "LeadInput", "List", "Run", "Item", "Enrichment", "CreateRequest", "CreateResponse", "Error"] {
        assert!(schemas.get(name).is_some(), "schema {name} missing");
    }
    for (name, fields) in [
        ("InsufficientCreditsError", &["code", "message", "required", "balance"][..]),
        ("DispatchFailedError", &["code", "message", "enrichmentRunId", "triggerRunId"][..]),
        ("RunNotCancellableError", &["code", "message", "reason"][..]),
    ] {
        let required: Vec<&str> =
            schemas[name]["required"].as_sequence().unwrap().iter().filter_map(|v| v.as_str()).collect();
        for f in fields {
            assert!(required.contains(f), "{name} does not require {f}");
        }
    }
}

#[test]
fn spec_is_valid_openapi_3_0_3() {
    venv_python();
    let out = Command::new(root().join(".venv/bin/openapi-spec-validator"))
        .arg(spec_path())
        .output()
        .expect("openapi-spec-validator");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

// ---------------------------------------------------------------- live

/// Every response of the scripted tour, for the validator.
struct Tour {
    ctx: Ctx,
    records: Vec<Value>,
}

impl Tour {
    /// Sends a request (token: the workspace's, or `auth` when given) and
    /// records the response; the status must be `expect`.
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
        auth: Option<&str>,
        expect: u16,
    ) -> Value {
        self.call_raw(method, template, path, body.map(|b| b.to_string().into_bytes()), auth, &[], expect).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn call_raw(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Vec<u8>>,
        auth: Option<&str>,
        headers: &[(&str, &str)],
        expect: u16,
    ) -> Value {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.ctx.http.request(m, format!("{}{path}", self.ctx.base));
        match auth {
            Some("") => {}
            Some(t) => req = req.bearer_auth(t),
            None => req = req.bearer_auth(&self.ctx.token),
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status().as_u16();
        let mut hs = BTreeMap::new();
        for name in ["content-type", "retry-after", "allow"] {
            if let Some(v) = r.headers().get(name).and_then(|v| v.to_str().ok()) {
                hs.insert(name.to_string(), v.to_string());
            }
        }
        let text = r.text().await.unwrap_or_default();
        assert_eq!(status, expect, "{method} {path}: {text}");
        self.records.push(json!({"method": method, "template": template, "path": path, "status": status, "headers": hs, "body": text}));
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

async fn settle(ctx: &Ctx, run_id: &str) -> Value {
    for _ in 0..1200 {
        let r = ctx.get(&format!("/api/enrichment/{run_id}")).await;
        assert_eq!(r.status, 200, "{r:?}");
        let run = r.body["run"].clone();
        if matches!(run["status"].as_str(), Some("completed" | "failed" | "cancelled"))
            && run["scope"]["counts"]["pending"] == 0
        {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("run {run_id} did not finish within 4 minutes");
}

/// Runs schemathesis with `--checks all` and positive and negative data;
/// returns a failure description, or None when it passed.
fn schemathesis(
    python: &Path,
    helper: &Path,
    work: &Path,
    base: &str,
    token: &str,
    examples: u32,
    extra: &[&str],
) -> Option<String> {
    let t = Instant::now();
    let mut args: Vec<String> = vec![
        "run".into(),
        spec_path().display().to_string(),
        "--base-url".into(),
        base.into(),
        "-H".into(),
        format!("Authorization: Bearer {token}"),
        "--checks".into(),
        "all".into(),
        "--data-generation-method".into(),
        "all".into(),
        "--hypothesis-max-examples".into(),
        examples.to_string(),
        "--hypothesis-seed".into(),
        "1".into(),
        "--hypothesis-database".into(),
        "none".into(),
        "--hypothesis-deadline".into(),
        "60000".into(),
        "--hypothesis-suppress-health-check".into(),
        "too_slow,filter_too_much".into(),
        "--request-timeout".into(),
        "30000".into(),
        "--schemathesis-io-telemetry".into(),
        "false".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = Command::new(python)
        .arg(helper)
        .arg("st")
        .args(&args)
        .current_dir(work)
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" passed") || l.contains(" failed") || l.contains("errored") || l.contains("FAILED"))
        .collect();
    eprintln!("schemathesis {extra:?} ({:?}):\n{}", t.elapsed(), summary.join("\n"));
    if out.status.success() {
        return None;
    }
    let lines: Vec<&str> = stdout.lines().collect();
    let tail = lines[lines.len().saturating_sub(200)..].join("\n");
    Some(format!("schemathesis {extra:?} failed:\n{tail}\n{}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread")]
async fn live_api_conforms_to_the_spec() {
    let python = venv_python();
    let work = tempfile::tempdir().unwrap();
    let helper = write_helper(work.path());
    let examples: u32 = std::env::var("PUFFLE_OPENAPI_EXAMPLES").ok().and_then(|v| v.parse().ok()).unwrap_or(25);

    // One token sends every fuzzed request: per-token limits (tests/admission.rs)
    // would turn the later ones into 429s.
    let mut iso = Isolated::start(&[("PUFFLE_RATE_LIMITS", "off")]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 50).await;
    let token = ctx.token.clone();
    let base = iso.api_url();
    let mut t = Tour { ctx: ctx.clone(), records: vec![] };

    // ---- system and catalog
    t.call("GET", "/api/health", "/api/health", None, Some(""), 200).await;
    t.call("GET", "/api/credits", "/api/credits", None, None, 200).await;
    t.call("GET", "/api/credits", "/api/credits", None, Some(""), 401).await;
    t.call("GET", "/api/credits", "/api/credits", None, Some("pfl_unknown"), 401).await;
    t.call("GET", "/api/enrichments", "/api/enrichments", None, None, 200).await;
    t.call("GET", "/api/enrichments", "/api/enrichments?q=phone", None, None, 200).await;
    t.call("GET", "/api/enrichments", "/api/enrichments?id=email_domain", None, None, 200).await;
    t.call("GET", "/api/enrichments", "/api/enrichments?id=internal_echo", None, None, 404).await;

    // ---- workspace enrichments and secrets
    t.call("PUT", "/api/secrets/{id}", "/api/secrets/OA_KEY", Some(json!({"value": "oa-secret"})), None, 204).await;
    t.call("PUT", "/api/secrets/{id}", "/api/secrets/oa-key", Some(json!({"value": "v"})), None, 400).await;
    t.call("PUT", "/api/secrets/{id}", "/api/secrets/OA_KEY", Some(json!({"value": ""})), None, 400).await;
    t.call("GET", "/api/secrets", "/api/secrets", None, None, 200).await;
    let finder = |slug: &str, url: &str| {
        json!({"slug": slug, "name": "OA finder", "subject": "person",
               "outputSchema": {"type": "object", "properties": {"email": {"type": "string"}}},
               "costModel": {"creditsPerLead": 2},
               "toolBinding": {"type": "http",
                   "request": {"method": "GET", "url": url, "headers": {"X-Key": "{{secrets.OA_KEY}}"}},
                   "response": {"found": "/email", "result": {"email": "/email"}}}})
    };
    let ok_url = "https://api.example.com/find?d={{lead.company.domain}}";
    t.call("POST", "/api/enrichments", "/api/enrichments", Some(finder("oa_finder", ok_url)), None, 201).await;
    // A slug taken by the workspace or by a built-in: the same code.
    for slug in ["oa_finder", "email_domain"] {
        let v = t.call("POST", "/api/enrichments", "/api/enrichments", Some(finder(slug, ok_url)), None, 409).await;
        assert_eq!(v["code"], "ENRICHMENT_EXISTS", "{slug}: {v}");
    }
    t.call(
        "POST",
        "/api/enrichments",
        "/api/enrichments",
        Some(finder("oa_meta", "http://169.254.169.254/x")),
        None,
        400,
    )
    .await;
    t.call("POST", "/api/enrichments", "/api/enrichments", Some(json!({"slug": "x"})), None, 400).await;
    t.call(
        "POST",
        "/api/enrichments",
        "/api/enrichments",
        Some(finder("oa_nokey", "https://api.example.com/find?k={{secrets.OA_MISSING}}")),
        None,
        201,
    )
    .await;
    t.call("GET", "/api/enrichments", "/api/enrichments?id=oa_finder", None, None, 200).await;
    t.call("GET", "/api/enrichments", "/api/enrichments?id=oa_nokey", None, None, 200).await;
    t.call("DELETE", "/api/enrichments/{id}", "/api/enrichments/oa_finder", None, None, 204).await;
    t.call("DELETE", "/api/enrichments/{id}", "/api/enrichments/oa_finder", None, None, 404).await;

    // ---- Leads
    let mut vp = person("oa-vp");
    vp["title"] = json!("VP Sales");
    vp["location"] = json!({"city": "Lyon", "country": "FR"});
    vp["socials"] = json!([{"url": "https://www.linkedin.com/in/oa-vp"}]);
    let r = t.call("POST", "/api/leads", "/api/leads", Some(vp.clone()), None, 201).await;
    let p1 = r["lead"]["id"].as_str().unwrap().to_string();
    vp["title"] = json!("VP Sales EMEA");
    t.call("POST", "/api/leads", "/api/leads", Some(vp), None, 200).await;
    let mut with_attrs = person("oa-p2");
    with_attrs["attributes"] = json!({"score": 7, "tags": ["a"]});
    let batch = json!({"leads": [with_attrs, person("oa-p3"), company("oa-c1")]});
    let r = t.call("POST", "/api/leads", "/api/leads", Some(batch), None, 200).await;
    let ids: Vec<String> =
        r["leads"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_string()).collect();
    let (p2, p3, c1) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    t.call(
        "POST",
        "/api/leads",
        "/api/leads",
        Some(json!({"leads": [person("oa-ok"), {"type": "person"}]})),
        None,
        400,
    )
    .await;
    t.call("POST", "/api/leads", "/api/leads", Some(json!({"type": "robot"})), None, 400).await;
    t.call("POST", "/api/leads", "/api/leads", Some(json!({"leads": []})), None, 400).await;
    let huge = format!("{{\"type\":\"person\",\"title\":\"{}\"}}", "x".repeat(7 * 1024 * 1024));
    t.call_raw("POST", "/api/leads", "/api/leads", Some(huge.into_bytes()), None, &[], 413).await;
    t.call("POST", "/api/leads", "/api/leads", None, Some(""), 401).await;
    t.call("GET", "/api/leads", "/api/leads?limit=1", None, None, 200).await;
    t.call("GET", "/api/leads", "/api/leads?type=company", None, None, 200).await;
    t.call("GET", "/api/leads", &format!("/api/leads?id={p2}"), None, None, 200).await;
    t.call("GET", "/api/leads", "/api/leads?id=lead_00000000000000000000000000", None, None, 404).await;
    t.call("GET", "/api/leads", "/api/leads?limit=0", None, None, 400).await;
    t.call("GET", "/api/leads", "/api/leads?type=robot", None, None, 400).await;
    t.call("GET", "/api/leads", "/api/leads?cursor=not-a-cursor", None, None, 400).await;

    // ---- Lists
    let r = t
        .call(
            "POST",
            "/api/lists",
            "/api/lists",
            Some(json!({"name": "people", "description": "d", "leadType": "person", "leadIds": [p1, p2, p3]})),
            None,
            201,
        )
        .await;
    let people = r["list"]["id"].as_str().unwrap().to_string();
    let r = t.call("POST", "/api/lists", "/api/lists", Some(json!({})), None, 201).await;
    let empty = r["list"]["id"].as_str().unwrap().to_string();
    let r = t
        .call("POST", "/api/lists", "/api/lists", Some(json!({"name": "mixed", "leadIds": [p1, c1]})), None, 201)
        .await;
    let mixed = r["list"]["id"].as_str().unwrap().to_string();
    t.call("POST", "/api/lists", "/api/lists", Some(json!({"leadType": "person", "leadIds": [c1]})), None, 400).await;
    t.call(
        "POST",
        "/api/lists",
        "/api/lists",
        Some(json!({"leadIds": ["lead_00000000000000000000000000"]})),
        None,
        400,
    )
    .await;
    t.call("POST", "/api/lists", "/api/lists", Some(json!({"bogus": 1})), None, 400).await;
    t.call("GET", "/api/lists", "/api/lists?limit=1", None, None, 200).await;
    t.call("GET", "/api/lists", "/api/lists", None, None, 200).await;
    t.call("GET", "/api/lists", "/api/lists?limit=501", None, None, 400).await;
    t.call("GET", "/api/lists/{id}", &format!("/api/lists/{people}"), None, None, 200).await;
    t.call("GET", "/api/lists/{id}", "/api/lists/list_00000000000000000000000000", None, None, 404).await;
    t.call(
        "POST",
        "/api/lists/{id}/leads",
        &format!("/api/lists/{people}/leads"),
        Some(json!({"leadIds": [p1]})),
        None,
        200,
    )
    .await;
    t.call(
        "POST",
        "/api/lists/{id}/leads",
        &format!("/api/lists/{people}/leads"),
        Some(json!({"leadIds": [c1]})),
        None,
        400,
    )
    .await;
    t.call("POST", "/api/lists/{id}/leads", &format!("/api/lists/{people}/leads"), Some(json!({})), None, 400).await;
    t.call(
        "POST",
        "/api/lists/{id}/leads",
        "/api/lists/list_00000000000000000000000000/leads",
        Some(json!({"leadIds": [p1]})),
        None,
        404,
    )
    .await;
    t.call("GET", "/api/lists/{id}/leads", &format!("/api/lists/{people}/leads?limit=1"), None, None, 200).await;
    t.call("GET", "/api/lists/{id}/leads", &format!("/api/lists/{mixed}/leads?type=company"), None, None, 200).await;
    t.call("GET", "/api/lists/{id}/leads", &format!("/api/lists/{people}/leads?limit=0"), None, None, 400).await;
    t.call("GET", "/api/lists/{id}/leads", "/api/lists/list_00000000000000000000000000/leads", None, None, 404).await;

    // ---- create: every rule's outcome
    let list_scope = |l: &str| json!({"type": "list", "listId": l});
    let create = |e: &str, scope: Value| json!({"enrichmentId": e, "scope": scope, "input": {}});
    let mut preview = create("email_domain", list_scope(&people));
    preview["mode"] = json!("preview");
    t.call("POST", "/api/enrichment", "/api/enrichment", Some(preview), None, 200).await;
    let mut keyed = create("email_domain", list_scope(&people));
    keyed["idempotencyKey"] = json!("oa-k1");
    keyed["displayRequest"] = json!({"fieldId": "col-7"});
    let r = t.call("POST", "/api/enrichment", "/api/enrichment", Some(keyed.clone()), None, 202).await;
    let completed_run = r["runId"].as_str().unwrap().to_string();
    t.call("POST", "/api/enrichment", "/api/enrichment", Some(keyed.clone()), None, 200).await;
    let mut other = keyed.clone();
    other["writePolicy"] = json!("skip_existing");
    t.call("POST", "/api/enrichment", "/api/enrichment", Some(other), None, 422).await;
    let body = keyed.to_string().into_bytes();
    t.call_raw("POST", "/api/enrichment", "/api/enrichment", Some(body), None, &[("idempotency-key", "oa-k2")], 400)
        .await;
    t.call("POST", "/api/enrichment", "/api/enrichment", Some(create("nope", list_scope(&people))), None, 404).await;
    let mut bad_input = create("phone_normalize", list_scope(&people));
    bad_input["input"] = json!({"defaultCountry": "usa"});
    t.call("POST", "/api/enrichment", "/api/enrichment", Some(bad_input), None, 400).await;
    // A workspace enrichment whose secret is not set: ENRICHMENT_DISABLED.
    t.call("POST", "/api/enrichment", "/api/enrichment", Some(create("oa_nokey", list_scope(&people))), None, 400)
        .await;
    t.call("POST", "/api/enrichment", "/api/enrichment", Some(create("email_domain", list_scope(&empty))), None, 400)
        .await;
    t.call("POST", "/api/enrichment", "/api/enrichment", Some(create("email_domain", list_scope(&mixed))), None, 400)
        .await;
    t.call(
        "POST",
        "/api/enrichment",
        "/api/enrichment",
        Some(create("email_domain", list_scope("list_00000000000000000000000000"))),
        None,
        400,
    )
    .await;
    let unknown = json!({"type": "explicit_leads", "leadIds": ["lead_00000000000000000000000000"]});
    t.call("POST", "/api/enrichment", "/api/enrichment", Some(create("email_domain", unknown)), None, 400).await;
    let mut membership = create("email_domain", json!({"type": "explicit_leads", "leadIds": [p1]}));
    membership["output"] = json!({"target": "membership"});
    t.call("POST", "/api/enrichment", "/api/enrichment", Some(membership), None, 400).await;
    t.call(
        "POST",
        "/api/enrichment",
        "/api/enrichment",
        Some(json!({"enrichmentId": "email_domain", "scope": {"type": "everything"}, "input": {}})),
        None,
        400,
    )
    .await;
    let filtered = json!({"type": "filtered_list", "listId": people, "filter": {"all": [{"field": "title", "op": "contains", "value": "vp"}]}});
    let mut seniority = create("job_seniority", filtered);
    seniority["output"] = json!({"attributeKey": "seniority_vp", "target": "membership"});
    let r = t.call("POST", "/api/enrichment", "/api/enrichment", Some(seniority), None, 202).await;
    let membership_run = r["runId"].as_str().unwrap().to_string();
    // 402: a workspace with 1 credit and 2 Leads.
    let poor = Ctx::on(&app, base.clone(), 1).await;
    let poor_ids = poor.people("oa-poor", 2).await;
    let mut tp = Tour { ctx: poor, records: vec![] };
    tp.call(
        "POST",
        "/api/enrichment",
        "/api/enrichment",
        Some(create("email_domain", json!({"type": "explicit_leads", "leadIds": poor_ids}))),
        None,
        402,
    )
    .await;
    t.records.append(&mut tp.records);

    // ---- status, items, cancel
    settle(&ctx, &completed_run).await;
    settle(&ctx, &membership_run).await;
    let run_path = format!("/api/enrichment/{completed_run}");
    t.call("GET", "/api/enrichment/{id}", &run_path, None, None, 200).await;
    t.call("GET", "/api/enrichment/{id}", &format!("/api/enrichment/{membership_run}"), None, None, 200).await;
    t.call("GET", "/api/enrichment/{id}", "/api/enrichment/run_00000000000000000000000000", None, None, 404).await;
    let items = "/api/enrichment/{id}/items";
    t.call("GET", items, &format!("{run_path}/items?limit=1"), None, None, 200).await;
    t.call("GET", items, &format!("{run_path}/items?status=completed"), None, None, 200).await;
    t.call("GET", items, &format!("{run_path}/items?leadId={p1}"), None, None, 200).await;
    t.call("GET", items, &format!("/api/enrichment/{membership_run}/items"), None, None, 200).await;
    t.call("GET", items, &format!("{run_path}/items?status=bogus"), None, None, 400).await;
    t.call("GET", items, &format!("{run_path}/items?limit=101"), None, None, 400).await;
    t.call("GET", items, &format!("{run_path}/items?cursor=not-a-cursor"), None, None, 400).await;
    t.call("GET", items, "/api/enrichment/run_00000000000000000000000000/items", None, None, 404).await;
    let cancel = "/api/enrichment/{id}/cancel";
    t.call("POST", cancel, &format!("{run_path}/cancel"), None, None, 409).await;
    t.call("POST", cancel, "/api/enrichment/run_00000000000000000000000000/cancel", None, None, 404).await;

    // Without a worker runs stay pending: cancel one, keep one for schemathesis.
    iso.kill("worker");
    let explicit = |ids: &[&String]| json!({"type": "explicit_leads", "leadIds": ids});
    let r = t
        .call("POST", "/api/enrichment", "/api/enrichment", Some(create("email_domain", explicit(&[&p1]))), None, 202)
        .await;
    let to_cancel = r["runId"].as_str().unwrap().to_string();
    t.call("GET", "/api/enrichment/{id}", &format!("/api/enrichment/{to_cancel}"), None, None, 200).await;
    t.call("GET", items, &format!("/api/enrichment/{to_cancel}/items"), None, None, 200).await;
    t.call("POST", cancel, &format!("/api/enrichment/{to_cancel}/cancel"), None, None, 200).await;
    t.call("POST", cancel, &format!("/api/enrichment/{to_cancel}/cancel"), None, None, 409).await;
    t.call("GET", "/api/enrichment/{id}", &format!("/api/enrichment/{to_cancel}"), None, None, 200).await;
    let r = t
        .call("POST", "/api/enrichment", "/api/enrichment", Some(create("email_domain", explicit(&[&p2]))), None, 202)
        .await;
    let pending_run = r["runId"].as_str().unwrap().to_string();

    // ---- schemathesis: every operation, then real List and run ids.
    let mut failures = vec![];
    let runs: &[(&str, u32, Vec<String>)] = &[
        ("all operations", examples, vec![]),
        (
            "a real List",
            examples,
            vec!["--include-path-regex".into(), "^/api/lists/".into(), "--set-path".into(), format!("id={people}")],
        ),
        (
            "a completed run",
            examples,
            vec![
                "--include-path-regex".into(),
                "^/api/enrichment/".into(),
                "--set-path".into(),
                format!("id={completed_run}"),
            ],
        ),
        (
            "a pending run",
            examples,
            vec![
                "--include-path-regex".into(),
                "^/api/enrichment/".into(),
                "--set-path".into(),
                format!("id={pending_run}"),
            ],
        ),
    ];
    for (what, n, extra) in runs {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        if let Some(f) = schemathesis(&python, &helper, work.path(), &base, &token, *n, &extra) {
            failures.push(format!("[{what}] {f}"));
        }
    }

    // ---- outages: the queue (502), then DynamoDB (503).
    iso.kill("sqs");
    let r = t
        .call("POST", "/api/enrichment", "/api/enrichment", Some(create("email_domain", explicit(&[&p3]))), None, 502)
        .await;
    let failed_run = r["enrichmentRunId"].as_str().unwrap().to_string();
    t.call("GET", "/api/enrichment/{id}", &format!("/api/enrichment/{failed_run}"), None, None, 200).await;
    t.call("POST", cancel, &format!("/api/enrichment/{failed_run}/cancel"), None, None, 409).await;
    t.call("GET", "/api/health", "/api/health", None, Some(""), 503).await;
    iso.kill("dynamodb");
    t.call("GET", "/api/health", "/api/health", None, Some(""), 503).await;
    for (m, template, path, body) in [
        ("GET", "/api/credits", "/api/credits".to_string(), None),
        ("GET", "/api/leads", "/api/leads".to_string(), None),
        ("POST", "/api/leads", "/api/leads".to_string(), Some(person("oa-down"))),
        ("GET", "/api/lists", "/api/lists".to_string(), None),
        ("POST", "/api/lists", "/api/lists".to_string(), Some(json!({}))),
        ("GET", "/api/lists/{id}", format!("/api/lists/{people}"), None),
        ("POST", "/api/lists/{id}/leads", format!("/api/lists/{people}/leads"), Some(json!({"leadIds": [p1]}))),
        ("GET", "/api/lists/{id}/leads", format!("/api/lists/{people}/leads"), None),
        ("POST", "/api/enrichment", "/api/enrichment".to_string(), Some(create("email_domain", list_scope(&people)))),
        ("GET", "/api/enrichment/{id}", run_path.clone(), None),
        ("GET", items, format!("{run_path}/items"), None),
        ("POST", cancel, format!("/api/enrichment/{pending_run}/cancel"), None),
        ("GET", "/api/secrets", "/api/secrets".to_string(), None),
        ("PUT", "/api/secrets/{id}", "/api/secrets/OA_KEY".to_string(), Some(json!({"value": "v2"}))),
        ("POST", "/api/enrichments", "/api/enrichments".to_string(), Some(finder("oa_down", ok_url))),
        ("DELETE", "/api/enrichments/{id}", "/api/enrichments/oa_nokey".to_string(), None),
    ] {
        t.call(m, template, &path, body, None, 503).await;
    }
    // An unverifiable token is 503 too (not 401).
    t.call("GET", "/api/enrichments", "/api/enrichments", None, Some("pfl_unknown"), 503).await;
    assert!(!iso.log("api").contains("panicked"), "the API panicked");

    // ---- the tour against the spec
    let records_path = work.path().join("records.json");
    std::fs::write(&records_path, serde_json::to_vec(&t.records).unwrap()).unwrap();
    let out = Command::new(&python)
        .arg(&helper)
        .arg("validate")
        .arg(spec_path())
        .arg(&records_path)
        .output()
        .expect("validator");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("the validator failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let statuses: HashMap<u64, usize> = t.records.iter().fold(HashMap::new(), |mut m, r| {
        *m.entry(r["status"].as_u64().unwrap()).or_default() += 1;
        m
    });
    eprintln!("tour: {} responses, {} distinct outcomes, statuses {statuses:?}", report["checked"], report["outcomes"]);
    for p in report["problems"].as_array().unwrap() {
        failures.push(format!("[tour] {}", p.as_str().unwrap()));
    }
    assert!(failures.is_empty(), "the API and openapi.yaml disagree:\n\n{}", failures.join("\n\n"));
}

/// An `Idempotency-Key` header must either be honoured or rejected. Today a
/// value with non-ASCII bytes (e.g. UTF-8 `clé`) is silently dropped, so the
/// "idempotent" request runs and charges twice.
#[tokio::test(flavor = "multi_thread")]

async fn non_ascii_idempotency_key_header_is_not_silently_ignored() {
    let iso = Isolated::start(&[]).await;
    let app = iso.app().await;
    let ctx = Ctx::on(&app, iso.api_url(), 10).await;
    let ids = ctx.people("oa-key", 2).await;
    let body =
        json!({"enrichmentId": "email_domain", "scope": {"type": "explicit_leads", "leadIds": ids}, "input": {}})
            .to_string();
    let mut statuses = vec![];
    for _ in 0..2 {
        let r = ctx
            .http
            .post(format!("{}/api/enrichment", ctx.base))
            .bearer_auth(&ctx.token)
            .header("content-type", "application/json")
            .header("idempotency-key", reqwest::header::HeaderValue::from_bytes("clé-1".as_bytes()).unwrap())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    let balance = ctx.balance().await;
    assert!(
        statuses == [202, 200] || statuses == [400, 400],
        "statuses {statuses:?}, balance {balance} (10 before, 2 per run): the key was ignored"
    );
    assert!(balance >= 8, "charged twice: balance {balance}");
}
