//! The route table: every HTTP route and the function that serves it. The
//! local server routes with it; a test checks it against template.yaml.

use crate::handlers::Function;

pub struct Route {
    pub method: &'static str,
    /// API Gateway path syntax: `{id}` is a path parameter.
    pub path: &'static str,
    pub function: Function,
}

pub const ROUTES: &[Route] = &[
    Route { method: "GET", path: "/api/health", function: Function::Health },
    Route { method: "GET", path: "/api/credits", function: Function::Credits },
    Route { method: "GET", path: "/api/enrichments", function: Function::Catalog },
    Route { method: "POST", path: "/api/enrichments", function: Function::Catalog },
    Route { method: "DELETE", path: "/api/enrichments/{id}", function: Function::Catalog },
    Route { method: "GET", path: "/api/secrets", function: Function::Catalog },
    Route { method: "PUT", path: "/api/secrets/{id}", function: Function::Catalog },
    Route { method: "POST", path: "/api/enrichment", function: Function::Create },
    Route { method: "GET", path: "/api/enrichment/{id}", function: Function::Status },
    Route { method: "GET", path: "/api/enrichment/{id}/items", function: Function::Items },
    Route { method: "POST", path: "/api/enrichment/{id}/cancel", function: Function::Cancel },
    Route { method: "POST", path: "/api/enrichment/{id}/retry", function: Function::Create },
    Route { method: "POST", path: "/api/leads", function: Function::Leads },
    Route { method: "GET", path: "/api/leads", function: Function::Leads },
    Route { method: "POST", path: "/api/lists", function: Function::Lists },
    Route { method: "GET", path: "/api/lists", function: Function::Lists },
    Route { method: "GET", path: "/api/lists/{id}", function: Function::Lists },
    Route { method: "POST", path: "/api/lists/{id}/leads", function: Function::Lists },
    Route { method: "GET", path: "/api/lists/{id}/leads", function: Function::Lists },
    Route { method: "POST", path: "/api/lists/{id}/rules", function: Function::Lists },
    Route { method: "GET", path: "/api/lists/{id}/rules", function: Function::Lists },
    Route { method: "DELETE", path: "/api/lists/{id}/rules/{ruleId}", function: Function::Lists },
    Route { method: "GET", path: "/api/lists/{id}/rules/{ruleId}/runs", function: Function::Lists },
    Route { method: "POST", path: "/api/webhooks", function: Function::WebhookApi },
    Route { method: "GET", path: "/api/webhooks", function: Function::WebhookApi },
    Route { method: "GET", path: "/api/webhooks/{id}", function: Function::WebhookApi },
    Route { method: "PATCH", path: "/api/webhooks/{id}", function: Function::WebhookApi },
    Route { method: "DELETE", path: "/api/webhooks/{id}", function: Function::WebhookApi },
    Route { method: "POST", path: "/api/webhooks/{id}/rotate-secret", function: Function::WebhookApi },
    Route { method: "GET", path: "/api/webhooks/{id}/deliveries", function: Function::WebhookApi },
    Route { method: "POST", path: "/api/webhooks/{id}/deliveries/{deliveryId}/replay", function: Function::WebhookApi },
    Route { method: "POST", path: "/api/webhooks/{id}/test", function: Function::WebhookApi },
    // Streamable HTTP: POST carries JSON-RPC; GET and DELETE answer 405 (stateless).
    Route { method: "POST", path: "/mcp", function: Function::Mcp },
    Route { method: "GET", path: "/mcp", function: Function::Mcp },
    Route { method: "DELETE", path: "/mcp", function: Function::Mcp },
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
                assert_eq!(p, vec![("id".to_string(), "run_1".to_string())]);
            }
            _ => panic!("not found"),
        }
        assert!(matches!(resolve("DELETE", "/api/leads"), Resolved::MethodNotAllowed(_)));
        assert!(matches!(resolve("GET", "/api/nothing"), Resolved::NotFound));
        assert!(matches!(resolve("GET", "/api/enrichment//items"), Resolved::NotFound));
    }
}
