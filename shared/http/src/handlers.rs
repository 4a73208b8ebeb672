//! One handler per function: parse, call the app, map the result. Every
//! handler answers with a response (never an Err): errors are contract
//! bodies, and each request logs one line with its outcome and run id.

use std::time::Instant;

use lambda_http::{Body, Request, RequestExt, Response};
use puffle_app::runs::items::{ItemsQuery, DEFAULT_ITEMS_LIMIT, MAX_ITEMS_LIMIT};
use puffle_app::{App, AppError};
use puffle_domain::item::ItemStatus;
use puffle_domain::lead::LeadType;
use puffle_domain::list::{AddLeadsRequest, CreateListRequest};
use puffle_domain::DomainError;
use serde_json::{json, Value};

use crate::errors::{client_error, error_response, json_response};
use crate::request::{self, json_body, BodyError};
use crate::routes::{self, Resolved};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Health,
    Credits,
    Catalog,
    Create,
    Status,
    Items,
    Cancel,
    Leads,
    Lists,
    WebhookApi,
    Mcp,
}

impl Function {
    pub const ALL: &'static [Function] = &[
        Function::Health,
        Function::Credits,
        Function::Catalog,
        Function::Create,
        Function::Status,
        Function::Items,
        Function::Cancel,
        Function::Leads,
        Function::Lists,
        Function::WebhookApi,
        Function::Mcp,
    ];

    /// The binary (and template `Metadata.Binary`) name.
    pub fn binary(self) -> &'static str {
        match self {
            Function::Health => "health",
            Function::Credits => "credits",
            Function::Catalog => "catalog",
            Function::Create => "create",
            Function::Status => "status",
            Function::Items => "items",
            Function::Cancel => "cancel",
            Function::Leads => "leads",
            Function::Lists => "lists",
            Function::WebhookApi => "webhook-api",
            Function::Mcp => "mcp",
        }
    }
}

/// What a handler produced, and the run it concerned (for the log line).
struct Outcome {
    response: Response<Body>,
    run_id: Option<String>,
}

fn ok(status: u16, body: Value) -> Result<Outcome, AppError> {
    Ok(Outcome { response: json_response(status, &body), run_id: None })
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Bodies the contract fixes as objects must be objects: serde would also
/// build a struct from a JSON array.
fn parse_body<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, AppError> {
    if !v.is_object() {
        return Err(AppError::Domain(DomainError::invalid("the body must be a JSON object")));
    }
    serde_json::from_value(v).map_err(|e| AppError::Domain(DomainError::invalid(format!("invalid request body: {e}"))))
}

fn lead_type_param(req: &Request) -> Result<Option<LeadType>, AppError> {
    match request::query(req, "type") {
        None => Ok(None),
        Some(t) => LeadType::parse(&t).map(Some).ok_or_else(|| {
            DomainError::invalid_with("type must be person or company", json!({"field": "type"})).into()
        }),
    }
}

/// Entry point of every HTTP function (Lambda binaries and the local server).
pub async fn handle(app: &App, function: Function, req: Request) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = request::api_path(&req);
    let request_id = req
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
        .or_else(|| request::header(&req, "x-request-id").map(str::to_string))
        .unwrap_or_else(|| puffle_domain::ids::new_id("req"));
    let mut workspace = None;
    let result = dispatch(app, function, req, &request_id, &mut workspace).await;
    let (response, run_id, code) = match result {
        Ok(o) => (o.response, o.run_id, None),
        Err(e) => (error_response(&e), None, Some(e.code())),
    };
    tracing::info!(
        function = function.binary(),
        request_id = %request_id,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        run_id = run_id.as_deref().unwrap_or(""),
        workspace_id = workspace.as_deref().unwrap_or(""),
        error = code.unwrap_or(""),
        duration_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

async fn dispatch(
    app: &App,
    function: Function,
    req: Request,
    request_id: &str,
    workspace: &mut Option<String>,
) -> Result<Outcome, AppError> {
    let path = request::api_path(&req);
    let method = req.method().as_str().to_string();
    // Functions that serve several routes check the route themselves: the
    // same binary behind a misconfigured route must not guess.
    let (route, params) = match routes::resolve(&method, &path) {
        Resolved::Found(r, p) if r.function == function => (r, p),
        Resolved::MethodNotAllowed(allowed) => {
            let mut resp = client_error(
                405,
                "METHOD_NOT_ALLOWED",
                format!("{method} is not allowed on {path}; use {}", allowed.join(", ")),
            );
            resp.headers_mut().insert("allow", allowed.join(", ").parse().expect("methods are header-safe"));
            return Ok(Outcome { response: resp, run_id: None });
        }
        _ => {
            return Ok(Outcome {
                response: client_error(404, "NOT_FOUND", format!("no route {method} {path}")),
                run_id: None,
            })
        }
    };
    // MCP checks the token per tool call (through the handlers below), so
    // a client can connect and list tools before it has one.
    if function == Function::Mcp {
        return Ok(Outcome { response: crate::mcp::handle(app, req).await, run_id: None });
    }
    if function == Function::Health {
        return match app.health().await {
            Ok(()) => ok(200, json!({"status": "ok"})),
            Err(e) => Ok(Outcome {
                response: json_response(
                    503,
                    &json!({"status": "unavailable", "code": "SERVICE_UNAVAILABLE", "message": e.to_string()}),
                ),
                run_id: None,
            }),
        };
    }
    let ws = app.authenticate(request::header(&req, "authorization")).await?;
    *workspace = Some(ws.clone());
    // A body that is too large answers 413; one that is not JSON, 400.
    macro_rules! body {
        () => {
            match json_body(&req) {
                Ok(v) => v,
                Err(BodyError::TooLarge) => {
                    return Ok(Outcome {
                        response: client_error(
                            413,
                            "PAYLOAD_TOO_LARGE",
                            format!("bodies are limited to {} bytes", request::MAX_BODY_BYTES),
                        ),
                        run_id: None,
                    })
                }
                Err(BodyError::Invalid(d)) => return Err(d.into()),
            }
        };
    }
    match function {
        Function::Health | Function::Mcp => unreachable!("handled above"),
        Function::Credits => ok(200, json!({"balance": app.balance(&ws).await?})),
        Function::Catalog => catalog(app, &ws, &req, &method, &path).await,
        Function::Create if route.path == "/api/enrichment/{id}/retry" => {
            let id = params.iter().find(|(k, _)| k == "id").map(|(_, v)| v.clone()).unwrap_or_default();
            let b = body!();
            let key = request::header_utf8(&req, "idempotency-key")?;
            let created = app.retry_run(&ws, &id, &b, key, request_id).await?;
            let run_id = created.response.run_id.clone();
            Ok(Outcome {
                response: json_response(if created.new_run { 202 } else { 200 }, &to_json(&created.response)),
                run_id,
            })
        }
        Function::WebhookApi => {
            crate::webhooks::handle(app, &ws, &req, route.path, &params).await.map(|(status, body)| Outcome {
                response: if status == 204 { crate::errors::empty_response(204) } else { json_response(status, &body) },
                run_id: None,
            })
        }
        Function::Create => {
            let b = body!();
            let key = request::header_utf8(&req, "idempotency-key")?;
            let created = app.create_run(&ws, &b, key, request_id).await?;
            let run_id = created.response.run_id.clone();
            Ok(Outcome {
                response: json_response(if created.new_run { 202 } else { 200 }, &to_json(&created.response)),
                run_id,
            })
        }
        Function::Status => {
            let id = request::param_or_path(&req, "id", "/api/enrichment/{id}").unwrap_or_default();
            let run = app.run_status(&ws, &id).await?;
            Ok(Outcome { response: json_response(200, &json!({"run": run})), run_id: Some(id) })
        }
        Function::Items => {
            let id = request::param_or_path(&req, "id", "/api/enrichment/{id}/items").unwrap_or_default();
            let status = match request::query(&req, "status") {
                None => None,
                Some(s) => Some(ItemStatus::parse(&s).ok_or_else(|| {
                    DomainError::invalid_with(
                        "status must be pending, running, completed, skipped or failed",
                        json!({"field": "status"}),
                    )
                })?),
            };
            let q = ItemsQuery {
                status,
                lead_id: match request::query(&req, "leadId") {
                    Some(l) if l.is_empty() => {
                        return Err(
                            DomainError::invalid_with("leadId must not be empty", json!({"field": "leadId"})).into()
                        )
                    }
                    other => other,
                },
                cursor: request::query(&req, "cursor"),
                limit: request::limit(&req, DEFAULT_ITEMS_LIMIT, MAX_ITEMS_LIMIT)?,
            };
            let page = app.run_items(&ws, &id, q).await?;
            Ok(Outcome { response: json_response(200, &to_json(&page)), run_id: Some(id) })
        }
        Function::Cancel => {
            let id = request::param_or_path(&req, "id", "/api/enrichment/{id}/cancel").unwrap_or_default();
            let run = app.cancel_run(&ws, &id).await?;
            let body = json!({"run": {"id": run.id, "status": run.status, "cancelledAt": run.timing.cancelled_at}});
            Ok(Outcome { response: json_response(200, &body), run_id: Some(id) })
        }
        Function::Leads => {
            if method == "POST" {
                let b = body!();
                match b {
                    Value::Object(ref m) if m.contains_key("leads") => {
                        if m.len() != 1 {
                            return Err(DomainError::invalid("a batch body holds only `leads`").into());
                        }
                        let list = m["leads"]
                            .as_array()
                            .cloned()
                            .ok_or_else(|| DomainError::invalid("`leads` must be an array"))?;
                        if list.len() > puffle_app::leads::MAX_LEADS_PER_UPSERT || list.is_empty() {
                            return Err(DomainError::invalid_with(
                                format!(
                                    "`leads` holds {} leads; send 1..{}",
                                    list.len(),
                                    puffle_app::leads::MAX_LEADS_PER_UPSERT
                                ),
                                json!({"field": "leads", "max": puffle_app::leads::MAX_LEADS_PER_UPSERT}),
                            )
                            .into());
                        }
                        let up = app.upsert_leads(&ws, list).await?;
                        let created = up.created.iter().filter(|c| **c).count();
                        let updated = up.created.len() - created;
                        ok(200, json!({"leads": up.leads, "created": created, "updated": updated}))
                    }
                    Value::Object(_) => {
                        let up = app.upsert_leads(&ws, vec![b]).await?;
                        let created = up.created[0];
                        ok(if created { 201 } else { 200 }, json!({"lead": up.leads[0], "created": created}))
                    }
                    _ => Err(DomainError::invalid("send one Lead object or {\"leads\": [...]}").into()),
                }
            } else if let Some(id) = request::query(&req, "id") {
                ok(200, json!({"lead": app.get_lead(&ws, &id).await?}))
            } else {
                let limit = request::limit(&req, 100, 500)?;
                let page = app
                    .list_leads(&ws, lead_type_param(&req)?, limit, request::query(&req, "cursor").as_deref())
                    .await?;
                ok(200, to_json(&page))
            }
        }
        Function::Lists if route.path.starts_with("/api/lists/{id}/rules") => {
            let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
            let (list_id, rule_id) = (param("id"), param("ruleId"));
            match (method.as_str(), route.path) {
                ("POST", "/api/lists/{id}/rules") => {
                    ok(201, json!({"rule": app.create_rule(&ws, &list_id, body!()).await?}))
                }
                ("GET", "/api/lists/{id}/rules") => ok(200, json!({"rules": app.list_rules(&ws, &list_id).await?})),
                ("DELETE", _) => {
                    app.delete_rule(&ws, &list_id, &rule_id).await?;
                    Ok(Outcome { response: crate::errors::empty_response(204), run_id: None })
                }
                _ => ok(200, json!({"runs": app.rule_runs(&ws, &list_id, &rule_id).await?})),
            }
        }
        Function::Lists => {
            let list_id = request::param_or_path(&req, "id", "/api/lists/{id}")
                .or_else(|| request::param_or_path(&req, "id", "/api/lists/{id}/leads"));
            let leads_route = path.ends_with("/leads");
            match (method.as_str(), list_id, leads_route) {
                ("POST", None, _) => {
                    let r: CreateListRequest = parse_body(body!())?;
                    ok(201, json!({"list": app.create_list(&ws, r).await?}))
                }
                ("GET", None, _) => {
                    let limit = request::limit(&req, 100, 500)?;
                    ok(200, to_json(&app.list_lists(&ws, limit, request::query(&req, "cursor").as_deref()).await?))
                }
                ("GET", Some(id), false) => ok(200, json!({"list": app.get_list(&ws, &id).await?})),
                ("POST", Some(id), true) => {
                    let r: AddLeadsRequest = parse_body(body!())?;
                    ok(200, json!({"list": app.add_list_leads(&ws, &id, r).await?}))
                }
                ("GET", Some(id), true) => {
                    let limit = request::limit(&req, 100, 500)?;
                    let page = app
                        .list_members(
                            &ws,
                            &id,
                            lead_type_param(&req)?,
                            limit,
                            request::query(&req, "cursor").as_deref(),
                        )
                        .await?;
                    ok(200, to_json(&page))
                }
                _ => Ok(Outcome {
                    response: client_error(404, "NOT_FOUND", format!("no route {method} {path}")),
                    run_id: None,
                }),
            }
        }
    }
}

/// The Catalog function: the catalog, workspace-defined enrichments and
/// workspace secrets (what a workspace can run and what it needs to).
async fn catalog(app: &App, ws: &str, req: &Request, method: &str, path: &str) -> Result<Outcome, AppError> {
    let slug = request::param_or_path(req, "id", "/api/enrichments/{id}");
    let secret = request::param_or_path(req, "id", "/api/secrets/{id}");
    match (method, path.starts_with("/api/secrets")) {
        ("GET", false) => list_enrichments(app, ws, req).await,
        ("POST", false) => create_enrichment(app, ws, req).await,
        ("DELETE", false) => {
            app.delete_workspace_enrichment(ws, &slug.unwrap_or_default()).await?;
            Ok(no_content())
        }
        ("GET", true) => ok(200, json!({"secrets": app.list_secrets(ws).await?})),
        ("PUT", true) => put_secret(app, ws, req, &secret.unwrap_or_default()).await,
        _ => {
            Ok(Outcome { response: client_error(404, "NOT_FOUND", format!("no route {method} {path}")), run_id: None })
        }
    }
}

async fn list_enrichments(app: &App, ws: &str, req: &Request) -> Result<Outcome, AppError> {
    let q = request::query(req, "q");
    if q.as_deref() == Some("") {
        return Err(
            DomainError::invalid_with("q must not be empty (omit it to list all)", json!({"field": "q"})).into()
        );
    }
    match request::query(req, "id") {
        Some(id) => ok(200, json!({"enrichments": [app.get_enrichment(ws, &id).await?]})),
        None => ok(200, json!({"enrichments": app.list_enrichments(ws, q.as_deref()).await?})),
    }
}

async fn create_enrichment(app: &App, ws: &str, req: &Request) -> Result<Outcome, AppError> {
    let b = match json_body(req) {
        Ok(v) => v,
        Err(e) => return body_error(e),
    };
    ok(201, json!({"enrichment": app.create_workspace_enrichment(ws, &b).await?}))
}

async fn put_secret(app: &App, ws: &str, req: &Request, name: &str) -> Result<Outcome, AppError> {
    let b = match json_body(req) {
        Ok(v) => v,
        Err(e) => return body_error(e),
    };
    app.put_secret(ws, name, &b).await?;
    Ok(no_content())
}

fn body_error(e: BodyError) -> Result<Outcome, AppError> {
    match e {
        BodyError::TooLarge => Ok(Outcome {
            response: client_error(
                413,
                "PAYLOAD_TOO_LARGE",
                format!("bodies are limited to {} bytes", request::MAX_BODY_BYTES),
            ),
            run_id: None,
        }),
        BodyError::Invalid(d) => Err(d.into()),
    }
}

fn no_content() -> Outcome {
    let response = Response::builder().status(204).body(Body::Empty).expect("static response parts are valid");
    Outcome { response, run_id: None }
}
