//! The route table: every HTTP route, the operation it names and the
//! function (Lambda binary) that serves it. The local server routes with it;
//! a test checks it against template.yaml. Pure data: the handlers live in
//! `handlers/`, one module per function.

/// An HTTP function: one Lambda binary, serving one or more routes.
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

    /// The binary (and template `Metadata.BuildProperties.Binary`) name.
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

/// What a route does: each has exactly one handler function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Health,
    Balance,
    Catalog,
    CreateEnrichment,
    DeleteEnrichment,
    ListSecrets,
    PutSecret,
    CreateRun,
    RunStatus,
    RunItems,
    CancelRun,
    UpsertLeads,
    GetLeads,
    CreateList,
    GetLists,
    GetList,
    AddListLeads,
    GetListLeads,
    CreateRule,
    ListRules,
    DeleteRule,
    RuleRuns,
    RetryRun,
    CreateWebhook,
    ListWebhooks,
    GetWebhook,
    UpdateWebhook,
    DeleteWebhook,
    RotateWebhookSecret,
    ListDeliveries,
    ReplayDelivery,
    TestWebhook,
    /// MCP's JSON-RPC messages (each tool call is then admitted as the API route it calls).
    McpPost,
    McpGet,
    McpDelete,
}

impl Op {
    /// The per-token rate-limit class the route counts in
    /// (puffle_domain::rate::DEFAULT_LIMITS): the costly routes alone, other
    /// writes together, reads together.
    pub fn rate_class(self) -> &'static str {
        match self {
            Op::CreateRun | Op::RetryRun => "create",
            Op::UpsertLeads => "upsert",
            Op::CreateList
            | Op::AddListLeads
            | Op::CancelRun
            | Op::CreateEnrichment
            | Op::DeleteEnrichment
            | Op::PutSecret
            | Op::CreateRule
            | Op::DeleteRule
            | Op::CreateWebhook
            | Op::UpdateWebhook
            | Op::DeleteWebhook
            | Op::RotateWebhookSecret
            | Op::ReplayDelivery
            | Op::TestWebhook => "write",
            Op::Health
            | Op::ListSecrets
            | Op::ListRules
            | Op::RuleRuns
            | Op::Balance
            | Op::Catalog
            | Op::RunStatus
            | Op::RunItems
            | Op::GetLeads
            | Op::GetLists
            | Op::GetList
            | Op::GetListLeads
            | Op::ListWebhooks
            | Op::GetWebhook
            | Op::ListDeliveries => "read",
            // /mcp is public (initialize and tools/list need no token); its
            // tool calls count in the classes of the routes they call.
            Op::McpPost | Op::McpGet | Op::McpDelete => "read",
        }
    }
}

pub struct Route {
    pub method: &'static str,
    /// API Gateway path syntax: `{id}` is a path parameter.
    pub path: &'static str,
    pub function: Function,
    pub op: Op,
}

const fn route(method: &'static str, path: &'static str, function: Function, op: Op) -> Route {
    Route { method, path, function, op }
}

pub const ROUTES: &[Route] = &[
    route("GET", "/api/health", Function::Health, Op::Health),
    route("GET", "/api/credits", Function::Credits, Op::Balance),
    route("GET", "/api/enrichments", Function::Catalog, Op::Catalog),
    route("POST", "/api/enrichments", Function::Catalog, Op::CreateEnrichment),
    route("DELETE", "/api/enrichments/{id}", Function::Catalog, Op::DeleteEnrichment),
    route("GET", "/api/secrets", Function::Catalog, Op::ListSecrets),
    route("PUT", "/api/secrets/{id}", Function::Catalog, Op::PutSecret),
    route("POST", "/api/enrichment", Function::Create, Op::CreateRun),
    route("GET", "/api/enrichment/{id}", Function::Status, Op::RunStatus),
    route("GET", "/api/enrichment/{id}/items", Function::Items, Op::RunItems),
    route("POST", "/api/enrichment/{id}/cancel", Function::Cancel, Op::CancelRun),
    route("POST", "/api/enrichment/{id}/retry", Function::Create, Op::RetryRun),
    route("POST", "/api/leads", Function::Leads, Op::UpsertLeads),
    route("GET", "/api/leads", Function::Leads, Op::GetLeads),
    route("POST", "/api/lists", Function::Lists, Op::CreateList),
    route("GET", "/api/lists", Function::Lists, Op::GetLists),
    route("GET", "/api/lists/{id}", Function::Lists, Op::GetList),
    route("POST", "/api/lists/{id}/leads", Function::Lists, Op::AddListLeads),
    route("GET", "/api/lists/{id}/leads", Function::Lists, Op::GetListLeads),
    route("POST", "/api/lists/{id}/rules", Function::Lists, Op::CreateRule),
    route("GET", "/api/lists/{id}/rules", Function::Lists, Op::ListRules),
    route("DELETE", "/api/lists/{id}/rules/{ruleId}", Function::Lists, Op::DeleteRule),
    route("GET", "/api/lists/{id}/rules/{ruleId}/runs", Function::Lists, Op::RuleRuns),
    route("POST", "/api/webhooks", Function::WebhookApi, Op::CreateWebhook),
    route("GET", "/api/webhooks", Function::WebhookApi, Op::ListWebhooks),
    route("GET", "/api/webhooks/{id}", Function::WebhookApi, Op::GetWebhook),
    route("PATCH", "/api/webhooks/{id}", Function::WebhookApi, Op::UpdateWebhook),
    route("DELETE", "/api/webhooks/{id}", Function::WebhookApi, Op::DeleteWebhook),
    route("POST", "/api/webhooks/{id}/rotate-secret", Function::WebhookApi, Op::RotateWebhookSecret),
    route("GET", "/api/webhooks/{id}/deliveries", Function::WebhookApi, Op::ListDeliveries),
    route("POST", "/api/webhooks/{id}/deliveries/{deliveryId}/replay", Function::WebhookApi, Op::ReplayDelivery),
    route("POST", "/api/webhooks/{id}/test", Function::WebhookApi, Op::TestWebhook),
    // Streamable HTTP: POST carries JSON-RPC; GET and DELETE answer 405 (stateless).
    route("POST", "/mcp", Function::Mcp, Op::McpPost),
    route("GET", "/mcp", Function::Mcp, Op::McpGet),
    route("DELETE", "/mcp", Function::Mcp, Op::McpDelete),
];

/// Matches a concrete path against a route pattern; returns path parameters.
pub fn match_path(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
    let p: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let a: Vec<&str> = path.trim_matches('/').split('/').collect();
    if p.len() != a.len() {
        return None;
    }
    let mut params = vec![];
    for (pp, ap) in p.iter().zip(a.iter()) {
        if let Some(name) = pp.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            if ap.is_empty() {
                return None;
            }
            params.push((name.to_string(), ap.to_string()));
        } else if pp != ap {
            return None;
        }
    }
    Some(params)
}

pub enum Resolved {
    Found(&'static Route, Vec<(String, String)>),
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

pub fn resolve(method: &str, path: &str) -> Resolved {
    let mut allowed = vec![];
    for r in ROUTES {
        if let Some(params) = match_path(r.path, path) {
            if r.method == method {
                return Resolved::Found(r, params);
            }
            allowed.push(r.method);
        }
    }
    if allowed.is_empty() {
        Resolved::NotFound
    } else {
        Resolved::MethodNotAllowed(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_params_and_methods() {
        match resolve("GET", "/api/enrichment/run_1/items") {
            Resolved::Found(r, p) => {
                assert_eq!(r.function, Function::Items);
                assert_eq!(r.op, Op::RunItems);
                assert_eq!(p, vec![("id".to_string(), "run_1".to_string())]);
            }
            _ => panic!("not found"),
        }
        assert!(matches!(resolve("DELETE", "/api/leads"), Resolved::MethodNotAllowed(_)));
        assert!(matches!(resolve("GET", "/api/nothing"), Resolved::NotFound));
        assert!(matches!(resolve("GET", "/api/enrichment//items"), Resolved::NotFound));
    }

    #[test]
    fn every_op_has_one_route() {
        let mut seen = vec![];
        for r in ROUTES {
            assert!(!seen.contains(&r.op), "{:?} has two routes", r.op);
            seen.push(r.op);
        }
    }
}
