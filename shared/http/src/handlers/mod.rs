//! The HTTP handlers: one module per function, one small function per route
//! (parse → app → map). [`serve`] is what every route shares: the route
//! check, authentication and the request's log line. Every request gets a
//! response, never an Err: errors become contract bodies (errors.rs).
//!
//! A Lambda binary names its function's [`Endpoint`] (`serve::<lists::Lists>`),
//! so its zip links only that function's handlers; the local server and the
//! in-process tests pick one at run time with [`handle`].

pub mod cancel;
pub mod catalog;
pub mod create;
pub mod credits;
pub mod health;
pub mod items;
pub mod leads;
pub mod lists;
pub mod mcp;
pub mod status;
pub mod webhooks;

use std::future::Future;
use std::time::Instant;

use lambda_http::{Body, Request, Response};
use puffle_app::admission::Admitted;
use puffle_app::{App, AppError};
use puffle_domain::lead::LeadType;
use puffle_domain::DomainError;
use serde_json::{json, Value};
use tracing::Instrument;

use crate::errors::{client_error, error_response, json_response, with_rate_headers};
use crate::logging;
use crate::request::{self, BodyError};
use crate::routes::{self, Function, Op, Resolved};

/// One function's routes: which function it is and how each of its
/// operations is handled.
pub trait Endpoint {
    const FUNCTION: Function;
    /// Routes that need no token (only health).
    const PUBLIC: bool = false;
    fn call<'a>(op: Op, cx: &'a Ctx<'a>) -> impl Future<Output = Result<Outcome, Reply>> + Send + 'a;
}

/// What a route handler gets: the request, and who sent it.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub req: &'a Request,
    /// The authenticated workspace (empty on public routes).
    pub ws: &'a str,
    pub request_id: &'a str,
}

impl Ctx<'_> {
    pub fn query(&self, name: &str) -> Option<String> {
        request::query(self.req, name)
    }

    /// The `{id}` path parameter of `pattern`.
    pub fn id(&self, pattern: &str) -> String {
        self.param("id", pattern)
    }

    /// A path parameter of `pattern` (`{ruleId}`…).
    pub fn param(&self, name: &str, pattern: &str) -> String {
        request::param_or_path(self.req, name, pattern).unwrap_or_default()
    }

    /// The JSON body: too large is a 413, not JSON a 400.
    pub fn body(&self) -> Result<Value, Reply> {
        match request::json_body(self.req) {
            Ok(v) => Ok(v),
            Err(BodyError::TooLarge) => Err(Reply::Client {
                response: Box::new(client_error(
                    413,
                    "PAYLOAD_TOO_LARGE",
                    format!("bodies are limited to {} bytes", request::MAX_BODY_BYTES),
                )),
                code: "PAYLOAD_TOO_LARGE",
            }),
            Err(BodyError::Invalid(d)) => Err(d.into()),
        }
    }

    /// A body the contract fixes as an object, parsed into `T` (serde would
    /// also build a struct from a JSON array).
    pub fn parse_body<T: serde::de::DeserializeOwned>(&self) -> Result<T, Reply> {
        let v = self.body()?;
        if !v.is_object() {
            return Err(DomainError::invalid("the body must be a JSON object").into());
        }
        serde_json::from_value(v).map_err(|e| DomainError::invalid(format!("invalid request body: {e}")).into())
    }

    pub fn limit(&self, default: usize, max: usize) -> Result<usize, Reply> {
        Ok(request::limit(self.req, default, max)?)
    }

    pub fn lead_type(&self) -> Result<Option<LeadType>, Reply> {
        match self.query("type") {
            None => Ok(None),
            Some(t) => LeadType::parse(&t).map(Some).ok_or_else(|| {
                DomainError::invalid_with("type must be person or company", json!({"field": "type"})).into()
            }),
        }
    }
}

/// What a handler produced, and the run it concerned (for the log line).
pub struct Outcome {
    pub response: Response<Body>,
    pub run_id: Option<String>,
}

impl Outcome {
    pub fn json(status: u16, body: &Value) -> Outcome {
        Outcome { response: json_response(status, body), run_id: None }
    }

    pub fn for_run(mut self, run_id: impl Into<String>) -> Outcome {
        self.run_id = Some(run_id.into());
        self
    }
}

pub fn ok(status: u16, body: Value) -> Result<Outcome, Reply> {
    Ok(Outcome::json(status, &body))
}

/// `204 No Content`.
pub fn no_content() -> Outcome {
    Outcome { response: crate::errors::empty_response(204), run_id: None }
}

pub fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Why a handler did not produce an [`Outcome`]: an application error (mapped
/// in errors.rs), or a client error the HTTP layer answers itself.
pub enum Reply {
    App(AppError),
    Client { response: Box<Response<Body>>, code: &'static str },
}

impl From<AppError> for Reply {
    fn from(e: AppError) -> Self {
        Reply::App(e)
    }
}

impl From<DomainError> for Reply {
    fn from(e: DomainError) -> Self {
        Reply::App(e.into())
    }
}

fn not_found(method: &str, path: &str) -> Reply {
    Reply::Client {
        response: Box::new(client_error(404, "NOT_FOUND", format!("no route {method} {path}"))),
        code: "NOT_FOUND",
    }
}

/// Entry point of one HTTP function's Lambda binary. Everything inside runs
/// in the request's correlation span, and every response carries its
/// `X-Request-Id`.
pub async fn serve<E: Endpoint>(app: &App, req: Request) -> Response<Body> {
    let request_id = request::correlation_id(&req);
    let span = logging::correlation_span(&request_id);
    let response = respond::<E>(app, req, &request_id).instrument(span).await;
    request::with_request_id(response, &request_id)
}

async fn respond<E: Endpoint>(app: &App, req: Request, request_id: &str) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = request::api_path(&req);
    let mut admitted = None;
    let result = route::<E>(app, &req, &method, &path, request_id, &mut admitted).await;
    let (response, run_id, code) = match result {
        Ok(o) => (o.response, o.run_id, None),
        Err(Reply::App(e)) => (error_response(&e), None, Some(e.code())),
        Err(Reply::Client { response, code }) => (*response, None, Some(code)),
    };
    tracing::info!(
        function = E::FUNCTION.binary(),
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        run_id = run_id.as_deref().unwrap_or(""),
        workspace_id = admitted.as_ref().map(|a| a.workspace.as_str()).unwrap_or(""),
        error = code.unwrap_or(""),
        duration_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    match admitted.and_then(|a| a.rate) {
        Some(rate) => with_rate_headers(response, &rate),
        None => response,
    }
}

/// The route check and authentication every route shares, then the route's handler.
async fn route<E: Endpoint>(
    app: &App,
    req: &Request,
    method: &str,
    path: &str,
    request_id: &str,
    admitted: &mut Option<Admitted>,
) -> Result<Outcome, Reply> {
    // A function checks the route itself: the same binary behind a
    // misconfigured route must not guess.
    let op = match routes::resolve(method, path) {
        Resolved::Found(r, _) if r.function == E::FUNCTION => r.op,
        Resolved::MethodNotAllowed(allowed) => {
            let mut response = client_error(
                405,
                "METHOD_NOT_ALLOWED",
                format!("{method} is not allowed on {path}; use {}", allowed.join(", ")),
            );
            response.headers_mut().insert("allow", allowed.join(", ").parse().expect("methods are header-safe"));
            return Err(Reply::Client { response: Box::new(response), code: "METHOD_NOT_ALLOWED" });
        }
        _ => return Err(not_found(method, path)),
    };
    if E::PUBLIC {
        return E::call(op, &Ctx { app, req, ws: "", request_id }).await;
    }
    let admission = app.admit(request::header(req, "authorization"), op.rate_class()).await?;
    let cx = Ctx { app, req, ws: &admission.workspace, request_id };
    let result = E::call(op, &cx).await;
    *admitted = Some(admission);
    result
}

/// Any HTTP function, chosen at run time (the local server, in-process tests).
pub async fn handle(app: &App, function: Function, req: Request) -> Response<Body> {
    match function {
        Function::Health => serve::<health::Health>(app, req).await,
        Function::Credits => serve::<credits::Credits>(app, req).await,
        Function::Catalog => serve::<catalog::Catalog>(app, req).await,
        Function::Create => serve::<create::Create>(app, req).await,
        Function::Status => serve::<status::Status>(app, req).await,
        Function::Items => serve::<items::Items>(app, req).await,
        Function::Cancel => serve::<cancel::Cancel>(app, req).await,
        Function::Leads => serve::<leads::Leads>(app, req).await,
        Function::Lists => serve::<lists::Lists>(app, req).await,
        Function::WebhookApi => serve::<webhooks::WebhookApi>(app, req).await,
        Function::Mcp => serve::<mcp::Mcp>(app, req).await,
    }
}

/// An operation routed to a function that does not serve it. Unreachable
/// while the route table is right (a test checks it); a 404 if not.
fn misrouted(cx: &Ctx<'_>) -> Reply {
    not_found(cx.req.method().as_str(), &request::api_path(cx.req))
}
