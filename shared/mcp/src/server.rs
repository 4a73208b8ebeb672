//! The MCP server: every tool is one API request (two for `wait_for_run`,
//! which polls), its arguments named as the API names them, its result the
//! API's JSON. Tool descriptions carry the API's agent notes.

use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, Implementation, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResourceContents, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use serde_json::{json, Map, Value};

use crate::api::{Api, ApiReply, ApiRequest, Caller, Unreachable};
use crate::{args, reply, resources, wait};

/// What the server tells a client on connecting: the journey, once.
pub const INSTRUCTIONS: &str = "Puffle enriches Leads (people and companies) held in Lists. The journey: \
1) list_enrichments / get_enrichment: pick the enrichmentId and read its subject (person or company) and inputSchema; \
2) choose Leads of that subject (search_leads, or create_leads then create_list / add_to_list); \
3) preview_enrichment: a free dry run that resolves the Lead count and the credits it would cost; \
4) start_enrichment with the same arguments (an idempotencyKey is generated and returned: send it again to retry safely); \
5) wait_for_run until `terminal` is true (or get_run every 2-5 s); \
6) list_results, with status=failed to triage. \
Errors are tool errors whose JSON carries the API's `code` (INSUFFICIENT_CREDITS with required and balance, \
SUBJECT_MISMATCH, EMPTY_LEAD_SCOPE, …) and `httpStatus`. Resources: puffle://runs/{runId} and puffle://runs/{runId}/results.";

#[derive(Clone)]
pub struct PuffleMcp {
    api: Arc<dyn Api>,
    /// The longest wait_for_run may wait on this transport.
    wait_cap: Duration,
    tool_router: ToolRouter<PuffleMcp>,
}

impl PuffleMcp {
    /// `wait_cap`: how long one tool call may take on this transport
    /// (stdio: the full 60 s; through API Gateway: under its 29 s).
    pub fn new(api: Arc<dyn Api>, wait_cap: Duration) -> PuffleMcp {
        PuffleMcp { api, wait_cap, tool_router: Self::tool_router() }
    }

    async fn call(&self, caller: &Caller, request: ApiRequest) -> Result<ApiReply, Unreachable> {
        let shown = request.display();
        let reply = self.api.call(caller, request).await;
        match &reply {
            Ok(r) => tracing::debug!(request = %shown, status = r.status, "api call"),
            Err(e) => tracing::warn!(request = %shown, error = %e.0, "api unreachable"),
        }
        reply
    }

    async fn tool(&self, ctx: &RequestContext<RoleServer>, request: ApiRequest) -> CallToolResult {
        reply::from_reply(self.call(&caller(ctx), request).await)
    }

    /// The create request preview and start share.
    fn create_body(a: CreateFields, mode: Option<String>, extra: Map<String, Value>) -> Value {
        let mut body = Map::new();
        body.insert("enrichmentId".into(), json!(a.enrichment_id));
        if let Some(m) = mode {
            body.insert("mode".into(), json!(m));
        }
        body.insert("scope".into(), a.scope);
        body.insert("input".into(), a.input.unwrap_or_else(|| json!({})));
        if let Some(o) = a.output {
            body.insert("output".into(), o);
        }
        if let Some(w) = a.write_policy {
            body.insert("writePolicy".into(), json!(w));
        }
        body.extend(extra);
        Value::Object(body)
    }
}

struct CreateFields {
    enrichment_id: String,
    scope: Value,
    input: Option<Value>,
    output: Option<Value>,
    write_policy: Option<String>,
}

/// Over Streamable HTTP the transport hands us the HTTP request's parts:
/// its `Authorization` header is the caller's token. Over stdio there are
/// none and the adapter's own token is used.
fn caller(ctx: &RequestContext<RoleServer>) -> Caller {
    let authorization = ctx
        .extensions
        .get::<http::request::Parts>()
        .and_then(|p| p.headers.get(http::header::AUTHORIZATION))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Caller { authorization }
}

/// A fresh key for a call that did not bring one (128 random bits).
fn new_idempotency_key() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("mcp-{hex}")
}

#[tool_router]
impl PuffleMcp {
    /// List the enrichments this workspace can run (GET /api/enrichments). Each has an `id` and a `slug`
    /// (either is an enrichmentId), a `subject` (person or company: the scope must hold Leads of that type only), an
    /// `inputSchema` that `input` must satisfy, a `defaultOutput` and a `costModel` (credits per Lead).
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn list_enrichments(
        &self,
        Parameters(a): Parameters<args::ListEnrichments>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.tool(&ctx, ApiRequest::get(&["api", "enrichments"]).query("q", a.q)).await
    }

    /// One enrichment by id (GET /api/enrichments?id=…): read its `subject` to choose Leads of that type,
    /// and its `inputSchema` to build `input`, before preview_enrichment.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_enrichment(
        &self,
        Parameters(a): Parameters<args::GetEnrichment>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.tool(&ctx, ApiRequest::get(&["api", "enrichments"]).query("id", Some(a.enrichment_id))).await
    }

    /// Dry-run an enrichment (POST /api/enrichment with mode "preview"): resolves the scope and returns
    /// `leadCount` and `preview{creditsRequired, balance, affordable}`. Free: writes, dispatches and charges
    /// nothing. Call it first with the exact arguments you will give start_enrichment; planner rejections
    /// (EMPTY_LEAD_SCOPE, SUBJECT_MISMATCH, LIST_NOT_FOUND, LEADS_NOT_FOUND, OUTPUT_TARGET_UNSUPPORTED)
    /// come back here as tool errors with that `code`.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn preview_enrichment(
        &self,
        Parameters(a): Parameters<args::Preview>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let fields = CreateFields {
            enrichment_id: a.enrichment_id,
            scope: a.scope,
            input: a.input,
            output: a.output,
            write_policy: a.write_policy,
        };
        let body = Self::create_body(fields, Some("preview".into()), Map::new());
        self.tool(&ctx, ApiRequest::post(&["api", "enrichment"], body).retry_safe(true)).await
    }

    /// Start an enrichment run (POST /api/enrichment): reserves leadCount × the enrichment's credits per
    /// Lead (found Leads are charged, the rest released as the run settles: see run.cost) and returns {runId, status, leadCount, reusedExistingRun, idempotencyKey}. Preview first. The scope
    /// must hold only Leads of the enrichment's subject (else SUBJECT_MISMATCH). An `idempotencyKey` is
    /// generated when absent and returned (also on errors): repeat the call with it and the same run comes
    /// back (`reusedExistingRun: true`), charged once. A 402 INSUFFICIENT_CREDITS error carries `required`
    /// and `balance`: ask the human to top up; nothing was created. Then call wait_for_run with the runId.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn start_enrichment(
        &self,
        Parameters(a): Parameters<args::Start>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let key = a.idempotency_key.clone().unwrap_or_else(new_idempotency_key);
        let mut extra = Map::new();
        if let Some(d) = a.display_request {
            extra.insert("displayRequest".into(), d);
        }
        extra.insert("idempotencyKey".into(), json!(key));
        let fields = CreateFields {
            enrichment_id: a.enrichment_id,
            scope: a.scope,
            input: a.input,
            output: a.output,
            write_policy: a.write_policy,
        };
        let body = Self::create_body(fields, a.mode, extra);
        // With a key the create is safe to resend: the adapters may retry a 429/503.
        let result = self.tool(&ctx, ApiRequest::post(&["api", "enrichment"], body).retry_safe(true)).await;
        reply::with_field(result, "idempotencyKey", json!(key))
    }

    /// A run's status (GET /api/enrichment/{runId}): `run.status` is pending, running, completed, failed or
    /// cancelled; `run.scope.counts` (pending, running, completed, skipped, failed) add up to resolvedCount.
    /// If you poll with this tool, poll every 2 to 5 s; wait_for_run does the polling for you.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_run(&self, Parameters(a): Parameters<args::RunId>, ctx: RequestContext<RoleServer>) -> CallToolResult {
        self.tool(&ctx, ApiRequest::get(&["api", "enrichment", &a.run_id])).await
    }

    /// Wait for a run to end: polls its status on the server side (every 0.5 s, slowing to every 2 s) for up
    /// to `timeoutSeconds` (default 30, at most 60; over HTTP at most 20, the gateway's limit) and returns
    /// {run, terminal}. `terminal` is true once the status is completed, failed or cancelled; when it is
    /// false, call wait_for_run again. Then read list_results (status=failed first).
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn wait_for_run(
        &self,
        Parameters(a): Parameters<args::Wait>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let budget = match wait::budget(a.timeout_seconds, self.wait_cap) {
            Ok(b) => b,
            Err(m) => return reply::invalid(m, "timeoutSeconds"),
        };
        let deadline = tokio::time::Instant::now() + budget;
        let who = caller(&ctx);
        let mut delays = wait::Backoff::default();
        loop {
            let r = match self.call(&who, ApiRequest::get(&["api", "enrichment", &a.run_id])).await {
                Ok(r) if r.is_success() => r,
                other => return reply::from_reply(other),
            };
            let run = r.body.get("run").cloned().unwrap_or(Value::Null);
            let terminal = wait::is_terminal(&run);
            let now = tokio::time::Instant::now();
            if terminal || now >= deadline {
                return CallToolResult::structured(json!({"run": run, "terminal": terminal}));
            }
            let delay = delays.next().unwrap_or(Duration::from_secs(2)).min(deadline - now);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                // The client gave up on this call: stop polling for it.
                _ = ctx.ct.cancelled() => return CallToolResult::structured(json!({"run": run, "terminal": terminal})),
            }
        }
    }

    /// A run's per-Lead results (GET /api/enrichment/{runId}/items): {items, page{limit, nextCursor, hasMore}},
    /// each item with status, result, skippedReason, error{message, details}. Filter with status=failed to
    /// triage; page with cursor = page.nextCursor.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn list_results(
        &self,
        Parameters(a): Parameters<args::ListResults>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let r = ApiRequest::get(&["api", "enrichment", &a.run_id, "items"])
            .query("status", a.status)
            .query("leadId", a.lead_id)
            .query("limit", a.limit)
            .query("cursor", a.cursor);
        self.tool(&ctx, r).await
    }

    /// Cancel a pending or running run (POST /api/enrichment/{runId}/cancel). Items not yet started become
    /// skipped (run_cancelled) and their credits are released; items already running finish. A run that has
    /// ended answers RUN_NOT_CANCELLABLE (409).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn cancel_run(
        &self,
        Parameters(a): Parameters<args::RunId>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.tool(&ctx, ApiRequest::post(&["api", "enrichment", &a.run_id, "cancel"], json!({}))).await
    }

    /// Retry a finished run's failed (or, with status "skipped", its skipped) items as a new run
    /// (POST /api/enrichment/{runId}/retry {status?, idempotencyKey}) → the new run, charged like any run. An
    /// idempotencyKey is generated when absent and returned, so repeating the call starts one run.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn retry_failed(
        &self,
        Parameters(a): Parameters<args::RetryFailed>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let key = a.idempotency_key.unwrap_or_else(new_idempotency_key);
        let mut body = Map::new();
        if let Some(s) = a.status {
            body.insert("status".into(), json!(s));
        }
        body.insert("idempotencyKey".into(), json!(key));
        let r = ApiRequest::post(&["api", "enrichment", &a.run_id, "retry"], Value::Object(body)).retry_safe(true);
        reply::with_field(self.tool(&ctx, r).await, "idempotencyKey", json!(key))
    }

    /// Find Leads (GET /api/leads): one by leadId (with all its attributes, where enrichments write), or a
    /// page of the workspace's Leads, optionally only `type` person or company → {leads, nextCursor}.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn search_leads(
        &self,
        Parameters(a): Parameters<args::SearchLeads>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let r = match a.lead_id {
            Some(id) => ApiRequest::get(&["api", "leads"]).query("id", Some(id)),
            None => ApiRequest::get(&["api", "leads"])
                .query("type", a.lead_type)
                .query("limit", a.limit)
                .query("cursor", a.cursor),
        };
        self.tool(&ctx, r).await
    }

    /// Create or update up to 1000 Leads (POST /api/leads {leads}) → {leads, created, updated}. Leads are
    /// matched by their identifiers (work email, LinkedIn URL, company domain), so repeating an import
    /// updates rather than duplicates. One invalid Lead rejects the batch (details.errors[{index, message}]).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn create_leads(
        &self,
        Parameters(a): Parameters<args::CreateLeads>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.tool(&ctx, ApiRequest::post(&["api", "leads"], json!({"leads": a.leads}))).await
    }

    /// Create a List (POST /api/lists) → {list}. A List references Leads (they are not copied). Give it
    /// leadType person or company when it feeds a person or company enrichment; a mixed List needs a
    /// filtered_list scope on type.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn create_list(
        &self,
        Parameters(a): Parameters<args::CreateList>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let mut body = Map::new();
        for (k, v) in [("name", a.name), ("description", a.description), ("leadType", a.lead_type)] {
            if let Some(v) = v {
                body.insert(k.into(), json!(v));
            }
        }
        if let Some(ids) = a.lead_ids {
            body.insert("leadIds".into(), json!(ids));
        }
        self.tool(&ctx, ApiRequest::post(&["api", "lists"], Value::Object(body))).await
    }

    /// Add Leads to a List (POST /api/lists/{listId}/leads {leadIds}) → {list} with its new counts. Adding a
    /// Lead twice changes nothing.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn add_to_list(
        &self,
        Parameters(a): Parameters<args::AddToList>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let r = ApiRequest::post(&["api", "lists", &a.list_id, "leads"], json!({"leadIds": a.lead_ids}));
        self.tool(&ctx, r).await
    }

    /// The workspace's credit balance (GET /api/credits) → {balance}. A run reserves leadCount × the
    /// enrichment's costModel.creditsPerLead (preview_enrichment shows the figure) and in the end costs
    /// only the Leads it found; the rest comes back to the balance.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_credits(&self, ctx: RequestContext<RoleServer>) -> CallToolResult {
        self.tool(&ctx, ApiRequest::get(&["api", "credits"])).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PuffleMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_server_info(
                Implementation::new("puffle", env!("CARGO_PKG_VERSION")).with_title("Puffle lead enrichment"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    /// Runs are not enumerable (the API has no run listing): the templates say how to address one.
    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(resources::templates()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let api_request = resources::request_for(&request.uri).map_err(|m| ErrorData::invalid_params(m, None))?;
        match self.call(&caller(&context), api_request).await {
            Ok(r) if r.is_success() => {
                let contents =
                    ResourceContents::text(r.body.to_string(), request.uri).with_mime_type("application/json");
                Ok(ReadResourceResult::new(vec![contents]).into())
            }
            Ok(r) => {
                let body = reply::error_body(&r);
                let message = body["message"].as_str().unwrap_or("the API refused the read").to_string();
                Err(match r.status {
                    404 => ErrorData::resource_not_found(message, Some(body)),
                    s if s >= 500 => ErrorData::internal_error(message, Some(body)),
                    _ => ErrorData::invalid_request(message, Some(body)),
                })
            }
            Err(Unreachable(m)) => Err(ErrorData::internal_error(
                format!("the Puffle API could not be reached: {m}"),
                Some(json!({"code": reply::API_UNAVAILABLE})),
            )),
        }
    }
}
