//! The webhook-api function: `/api/webhooks…` routes → the app's webhook use cases.

use lambda_http::Request;
use puffle_app::webhooks::api::{DEFAULT_DELIVERIES_LIMIT, MAX_DELIVERIES_LIMIT};
use puffle_app::{App, AppError};
use serde_json::{json, Value};

use crate::request::{self, BodyError};

pub fn body(req: &Request) -> Result<Value, AppError> {
    match request::json_body(req) {
        Ok(v) => Ok(v),
        Err(BodyError::TooLarge) => Err(AppError::PayloadTooLarge(request::MAX_BODY_BYTES)),
        Err(BodyError::Invalid(d)) => Err(d.into()),
    }
}

/// (status, body) of a webhook route; 204 has no body.
pub async fn handle(
    app: &App,
    ws: &str,
    req: &Request,
    route: &str,
    params: &[(String, String)],
) -> Result<(u16, Value), AppError> {
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let id = param("id");
    let method = req.method().as_str();
    match (method, route) {
        ("POST", "/api/webhooks") => {
            let (webhook, secret) = app.create_webhook(ws, &body(req)?).await?;
            Ok((201, json!({"webhook": webhook, "secret": secret})))
        }
        ("GET", "/api/webhooks") => Ok((200, json!({"webhooks": app.list_webhooks(ws).await?}))),
        ("GET", "/api/webhooks/{id}") => Ok((200, json!({"webhook": app.get_webhook(ws, &id).await?}))),
        ("PATCH", "/api/webhooks/{id}") => {
            Ok((200, json!({"webhook": app.update_webhook(ws, &id, &body(req)?).await?})))
        }
        ("DELETE", "/api/webhooks/{id}") => {
            app.delete_webhook(ws, &id).await?;
            Ok((204, Value::Null))
        }
        ("POST", "/api/webhooks/{id}/rotate-secret") => {
            Ok((200, json!({"secret": app.rotate_webhook_secret(ws, &id).await?})))
        }
        ("GET", "/api/webhooks/{id}/deliveries") => {
            let limit = request::limit(req, DEFAULT_DELIVERIES_LIMIT, MAX_DELIVERIES_LIMIT)?;
            let cursor = request::query(req, "cursor");
            let page = app.list_deliveries(ws, &id, limit, cursor.as_deref()).await?;
            Ok((200, serde_json::to_value(page).unwrap_or_default()))
        }
        ("POST", "/api/webhooks/{id}/deliveries/{deliveryId}/replay") => {
            let d = app.replay_delivery(ws, &id, &param("deliveryId")).await?;
            Ok((202, json!({"delivery": d})))
        }
        ("POST", "/api/webhooks/{id}/test") => Ok((202, json!({"delivery": app.test_webhook(ws, &id).await?}))),
        _ => Err(AppError::not_found("NOT_FOUND", format!("no route {method} {route}"))),
    }
}
