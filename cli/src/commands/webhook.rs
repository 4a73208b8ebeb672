//! `puffle webhook ...`: webhooks (Standard Webhooks) and their delivery log.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::client::Retry;
use crate::error::{CliError, Result};
use crate::output::{self, Format};

use super::{print_object, Ctx};

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    about = "Webhooks; without a subcommand, list them (GET /api/webhooks) or show one with --id",
    after_help = "Examples:\n  puffle webhook create --url https://hooks.example.com/puffle --events enrichment.run.completed,enrichment.run.failed\n  puffle webhook deliveries --id wh_01h... --format table\n  puffle webhook replay --id wh_01h... --delivery-id dlv_01h...\n  puffle webhook rotate-secret --id wh_01h..."
)]
pub struct WebhookArgs {
    #[command(subcommand)]
    pub command: Option<WebhookCommand>,
    /// One webhook by id
    #[arg(long)]
    pub id: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Subscribe a URL (POST /api/webhooks); the secret is printed once
    Create(CreateArgs),
    /// Change a webhook (PATCH /api/webhooks/{id})
    Update(UpdateArgs),
    /// Delete a webhook (DELETE /api/webhooks/{id})
    Delete(IdArgs),
    /// A new secret; the old one signs beside it for 24 h (POST /api/webhooks/{id}/rotate-secret)
    RotateSecret(IdArgs),
    /// The delivery log, newest first (GET /api/webhooks/{id}/deliveries)
    Deliveries(DeliveriesArgs),
    /// Send a delivery again, same webhook-id (POST /api/webhooks/{id}/deliveries/{deliveryId}/replay)
    Replay(ReplayArgs),
    /// Send a webhook.test event (POST /api/webhooks/{id}/test)
    Test(IdArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The endpoint (https; http too on a local stack)
    #[arg(long)]
    pub url: String,
    /// Event names, comma separated, or * for all
    #[arg(long, value_delimiter = ',', required = true)]
    pub events: Vec<String>,
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Webhook id
    #[arg(long)]
    pub id: String,
    #[arg(long)]
    pub url: Option<String>,
    /// Event names, comma separated, or * for all
    #[arg(long, value_delimiter = ',')]
    pub events: Option<Vec<String>>,
    /// true or false
    #[arg(long)]
    pub enabled: Option<bool>,
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Args, Debug)]
pub struct IdArgs {
    /// Webhook id
    #[arg(long)]
    pub id: String,
}

#[derive(Args, Debug)]
pub struct DeliveriesArgs {
    /// Webhook id
    #[arg(long)]
    pub id: String,
    /// Deliveries per page (1..100, API default 20)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: Option<u32>,
    /// Page cursor (page.nextCursor of the previous page)
    #[arg(long)]
    pub cursor: Option<String>,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Webhook id
    #[arg(long)]
    pub id: String,
    /// Delivery id (see `puffle webhook deliveries`)
    #[arg(long)]
    pub delivery_id: String,
}

/// The create body from the flags.
pub fn create_body(a: &CreateArgs) -> Result<Value> {
    if a.url.trim().is_empty() {
        return Err(CliError::usage("--url must not be empty"));
    }
    let mut b = Map::new();
    b.insert("url".into(), json!(a.url));
    b.insert("events".into(), json!(a.events.iter().map(|e| e.trim()).collect::<Vec<_>>()));
    if let Some(d) = &a.description {
        b.insert("description".into(), json!(d));
    }
    Ok(Value::Object(b))
}

pub fn update_body(a: &UpdateArgs) -> Result<Value> {
    let mut b = Map::new();
    if let Some(u) = &a.url {
        b.insert("url".into(), json!(u));
    }
    if let Some(e) = &a.events {
        b.insert("events".into(), json!(e.iter().map(|e| e.trim()).collect::<Vec<_>>()));
    }
    if let Some(e) = a.enabled {
        b.insert("enabled".into(), json!(e));
    }
    if let Some(d) = &a.description {
        b.insert("description".into(), json!(d));
    }
    if b.is_empty() {
        return Err(CliError::usage("give at least one of --url, --events, --enabled, --description"));
    }
    Ok(Value::Object(b))
}

pub async fn run(ctx: &Ctx, args: WebhookArgs) -> Result<()> {
    match args.command {
        None => match args.id {
            Some(id) => print(ctx, &ctx.client.get(&["api", "webhooks", &id], &[]).await?),
            None => {
                let body = ctx.client.get(&["api", "webhooks"], &[]).await?;
                listing(ctx, &body, "webhooks")
            }
        },
        Some(WebhookCommand::Create(a)) => {
            let answer = ctx.client.post(&["api", "webhooks"], &create_body(&a)?, Retry::Never).await?;
            eprintln!("Webhook created. The secret is shown only once: keep it.");
            print(ctx, &answer.body)
        }
        Some(WebhookCommand::Update(a)) => {
            print(ctx, &ctx.client.patch(&["api", "webhooks", &a.id], &update_body(&a)?).await?.body)
        }
        Some(WebhookCommand::Delete(a)) => {
            ctx.client.delete(&["api", "webhooks", &a.id]).await?;
            print(ctx, &json!({"deleted": true, "id": a.id}))
        }
        Some(WebhookCommand::RotateSecret(a)) => {
            let answer =
                ctx.client.post(&["api", "webhooks", &a.id, "rotate-secret"], &json!({}), Retry::Never).await?;
            eprintln!("The previous secret keeps signing beside this one for 24 hours.");
            print(ctx, &answer.body)
        }
        Some(WebhookCommand::Deliveries(a)) => {
            let mut q = vec![];
            if let Some(n) = a.limit {
                q.push(("limit", n.to_string()));
            }
            if let Some(c) = a.cursor {
                q.push(("cursor", c));
            }
            let body = ctx.client.get(&["api", "webhooks", &a.id, "deliveries"], &q).await?;
            listing(ctx, &body, "deliveries")
        }
        Some(WebhookCommand::Replay(a)) => {
            let path = ["api", "webhooks", &a.id, "deliveries", &a.delivery_id, "replay"];
            print(ctx, &ctx.client.post(&path, &json!({}), Retry::Never).await?.body)
        }
        Some(WebhookCommand::Test(a)) => {
            print(ctx, &ctx.client.post(&["api", "webhooks", &a.id, "test"], &json!({}), Retry::Never).await?.body)
        }
    }
}

fn print(ctx: &Ctx, body: &Value) -> Result<()> {
    print_object(ctx.format, body);
    Ok(())
}

fn listing(ctx: &Ctx, body: &Value, key: &str) -> Result<()> {
    let rows: Vec<Value> = body.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    match ctx.format {
        Format::Json => output::print_json(body),
        Format::Jsonl => output::out(&output::jsonl(&rows)),
        Format::Table | Format::Csv => {
            for r in &rows {
                output::out(&output::kv_table(r));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_from_flags() {
        let a = CreateArgs { url: "https://x.test/h".into(), events: vec!["*".into()], description: None };
        assert_eq!(create_body(&a).unwrap(), json!({"url": "https://x.test/h", "events": ["*"]}));
        let u = UpdateArgs { id: "wh_1".into(), url: None, events: None, enabled: Some(false), description: None };
        assert_eq!(update_body(&u).unwrap(), json!({"enabled": false}));
        let empty = UpdateArgs { id: "wh_1".into(), url: None, events: None, enabled: None, description: None };
        assert!(matches!(update_body(&empty), Err(CliError::Usage(_))));
    }
}
