//! The webhook-api function: `/api/webhooks…` → the app's webhook use cases
//! (puffle_app::webhooks::api). Deliveries themselves run off the webhook
//! queue (`crate::sqs`), not here.

use puffle_app::webhooks::api::{DEFAULT_DELIVERIES_LIMIT, MAX_DELIVERIES_LIMIT};
use serde_json::json;

use super::{misrouted, no_content, ok, Ctx, Endpoint, Outcome, Reply};
use crate::routes::{Function, Op};

pub struct WebhookApi;

impl Endpoint for WebhookApi {
    const FUNCTION: Function = Function::WebhookApi;
    async fn call<'a>(op: Op, cx: &'a Ctx<'a>) -> Result<Outcome, Reply> {
        match op {
            Op::CreateWebhook => create(cx).await,
            Op::ListWebhooks => ok(200, json!({"webhooks": cx.app.list_webhooks(cx.ws).await?})),
            Op::GetWebhook => ok(200, json!({"webhook": cx.app.get_webhook(cx.ws, &cx.id(ONE)).await?})),
            Op::UpdateWebhook => update(cx).await,
            Op::DeleteWebhook => {
                cx.app.delete_webhook(cx.ws, &cx.id(ONE)).await?;
                Ok(no_content())
            }
            Op::RotateWebhookSecret => ok(
                200,
                json!({"secret": cx.app.rotate_webhook_secret(cx.ws, &cx.id("/api/webhooks/{id}/rotate-secret")).await?}),
            ),
            Op::ListDeliveries => deliveries(cx).await,
            Op::ReplayDelivery => replay(cx).await,
            Op::TestWebhook => {
                ok(202, json!({"delivery": cx.app.test_webhook(cx.ws, &cx.id("/api/webhooks/{id}/test")).await?}))
            }
            _ => Err(misrouted(cx)),
        }
    }
}

const ONE: &str = "/api/webhooks/{id}";
const REPLAY: &str = "/api/webhooks/{id}/deliveries/{deliveryId}/replay";

async fn create(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let body = cx.body()?;
    let (webhook, secret) = cx.app.create_webhook(cx.ws, &body).await?;
    ok(201, json!({"webhook": webhook, "secret": secret}))
}

async fn update(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let body = cx.body()?;
    ok(200, json!({"webhook": cx.app.update_webhook(cx.ws, &cx.id(ONE), &body).await?}))
}

async fn deliveries(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let limit = cx.limit(DEFAULT_DELIVERIES_LIMIT, MAX_DELIVERIES_LIMIT)?;
    let cursor = cx.query("cursor");
    let page = cx.app.list_deliveries(cx.ws, &cx.id("/api/webhooks/{id}/deliveries"), limit, cursor.as_deref()).await?;
    ok(200, super::to_json(&page))
}

async fn replay(cx: &Ctx<'_>) -> Result<Outcome, Reply> {
    let (id, delivery_id) = (cx.id(REPLAY), cx.param("deliveryId", REPLAY));
    ok(202, json!({"delivery": cx.app.replay_delivery(cx.ws, &id, &delivery_id).await?}))
}
