//! `puffle list ...`: Lists of Leads.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use crate::client::Retry;
use crate::error::{CliError, Result};
use crate::output::{self, require_single_object_format, Format};

use super::lead::{page_leads, LeadType};
use super::{lead_ids, print_object, Ctx};

/// Lead ids one request may carry.
const MAX_IDS: usize = 1000;

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    about = "Lists of Leads; without a subcommand, list them (GET /api/lists) or show one with --id"
)]
pub struct ListArgs {
    #[command(subcommand)]
    pub command: Option<ListCommand>,
    /// One List by id
    #[arg(long)]
    pub id: Option<String>,
    /// Lists per page (1..500)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: Option<u32>,
    /// Page cursor (nextCursor of the previous page)
    #[arg(long)]
    pub cursor: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ListCommand {
    /// Create a List (POST /api/lists)
    Create(CreateArgs),
    /// The Leads of a List (GET /api/lists/{id}/leads); `add` adds some
    Lead(ListLeadArgs),
    /// Auto-enrich rules of a List (GET /api/lists/{id}/rules); `create` and `delete` manage them
    Rule(RuleArgs),
}

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  puffle list rule --id list_01h...\n  puffle list rule create --id list_01h... --enrichment-id email_domain\n  puffle list rule delete --id list_01h... --rule-id rule_01h..."
)]
pub struct RuleArgs {
    #[command(subcommand)]
    pub command: Option<RuleCommand>,
    /// List id
    #[arg(long, required = true)]
    pub id: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RuleCommand {
    /// Enrich Leads as they join the List (POST /api/lists/{id}/rules)
    Create(RuleCreateArgs),
    /// Remove a rule (DELETE /api/lists/{id}/rules/{ruleId})
    Delete(RuleDeleteArgs),
}

#[derive(Args, Debug)]
pub struct RuleCreateArgs {
    /// List id
    #[arg(long)]
    pub id: String,
    /// Enrichment slug or id (see `puffle enrichment`)
    #[arg(long)]
    pub enrichment_id: String,
    /// The enrichment's input: JSON or @file.json [default: {}]
    #[arg(long)]
    pub input: Option<String>,
    /// Output: JSON or @file.json, e.g. {"attributeKey":"domain"} [default: the enrichment's]
    #[arg(long)]
    pub output: Option<String>,
    /// overwrite (default) or skip_existing
    #[arg(long, value_name = "POLICY")]
    pub write_policy: Option<String>,
}

#[derive(Args, Debug)]
pub struct RuleDeleteArgs {
    /// List id
    #[arg(long)]
    pub id: String,
    /// Rule id
    #[arg(long)]
    pub rule_id: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListLeadType {
    Person,
    Company,
    Mixed,
}

#[derive(Args, Debug)]
#[command(after_help = "Example: puffle list create --name 'Q3 prospects' --lead-type person --lead-ids lead_a,lead_b")]
pub struct CreateArgs {
    /// Name [API default: Untitled list]
    #[arg(long)]
    pub name: Option<String>,
    /// Description
    #[arg(long)]
    pub description: Option<String>,
    /// person, company or mixed (default)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub lead_type: Option<ListLeadType>,
    /// Leads to put in it: comma-separated, repeatable, or @file (more than 1000 are added in batches)
    #[arg(long, value_name = "IDS")]
    pub lead_ids: Vec<String>,
}

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Formats: json (the API's page), table, csv, jsonl.\nExamples:\n  puffle list lead --id list_01h... --format table\n  puffle list lead add --id list_01h... --lead-ids lead_a,lead_b"
)]
pub struct ListLeadArgs {
    #[command(subcommand)]
    pub command: Option<ListLeadCommand>,
    /// List id
    #[arg(long, required = true)]
    pub id: Option<String>,
    /// Leads per page (1..500)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: Option<u32>,
    /// Page cursor (nextCursor of the previous page)
    #[arg(long)]
    pub cursor: Option<String>,
    /// Only Leads of this type
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub lead_type: Option<LeadType>,
    /// Follow nextCursor to the last page
    #[arg(long)]
    pub all: bool,
}

#[derive(Subcommand, Debug)]
pub enum ListLeadCommand {
    /// Add Leads to a List (POST /api/lists/{id}/leads; adding twice changes nothing)
    Add(AddArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// List id
    #[arg(long)]
    pub id: String,
    /// Lead ids: comma-separated, repeatable, or @file (sent 1000 per request)
    #[arg(long, value_name = "IDS", required = true)]
    pub lead_ids: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: ListArgs) -> Result<()> {
    match args.command {
        Some(ListCommand::Create(a)) => create(ctx, a).await,
        Some(ListCommand::Lead(a)) => match a.command {
            Some(ListLeadCommand::Add(add_args)) => add(ctx, add_args).await,
            None => members(ctx, a).await,
        },
        Some(ListCommand::Rule(a)) => match a.command {
            Some(RuleCommand::Create(c)) => rule_create(ctx, c).await,
            Some(RuleCommand::Delete(d)) => {
                ctx.client.delete(&["api", "lists", &d.id, "rules", &d.rule_id]).await?;
                print_object(ctx.format, &json!({"deleted": true, "ruleId": d.rule_id}));
                Ok(())
            }
            None => {
                let id = a.id.ok_or_else(|| CliError::usage("list rule needs --id <listId>"))?;
                print_object(ctx.format, &ctx.client.get(&["api", "lists", &id, "rules"], &[]).await?);
                Ok(())
            }
        },
        None => show(ctx, args).await,
    }
}

async fn rule_create(ctx: &Ctx, a: RuleCreateArgs) -> Result<()> {
    require_single_object_format(ctx.format, "list rule create")?;
    let mut b = Map::new();
    b.insert("enrichmentId".into(), json!(a.enrichment_id));
    let input = match &a.input {
        Some(i) => crate::scope::json_object_arg("--input", i)?,
        None => json!({}),
    };
    b.insert("input".into(), input);
    if let Some(o) = &a.output {
        b.insert("output".into(), crate::scope::json_object_arg("--output", o)?);
    }
    if let Some(p) = &a.write_policy {
        b.insert("writePolicy".into(), json!(p));
    }
    let answer = ctx.client.post(&["api", "lists", &a.id, "rules"], &Value::Object(b), Retry::Never).await?;
    print_object(ctx.format, &answer.body);
    Ok(())
}

async fn show(ctx: &Ctx, a: ListArgs) -> Result<()> {
    require_single_object_format(ctx.format, "list")?;
    if let Some(id) = &a.id {
        let body = ctx.client.get(&["api", "lists", id], &[]).await?;
        print_object(ctx.format, &body);
        return Ok(());
    }
    let mut q: Vec<(&str, String)> = vec![];
    if let Some(n) = a.limit {
        q.push(("limit", n.to_string()));
    }
    if let Some(c) = a.cursor {
        q.push(("cursor", c));
    }
    let body = ctx.client.get(&["api", "lists"], &q).await?;
    match ctx.format {
        Format::Table => {
            let lists: Vec<Value> = body.get("lists").and_then(Value::as_array).cloned().unwrap_or_default();
            let headers: Vec<String> =
                ["id", "name", "leadType", "leadCount", "personCount", "companyCount", "createdAt"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
            let rows: Vec<Vec<String>> =
                lists.iter().map(|l| headers.iter().map(|h| output::cell(l.get(h.as_str()))).collect()).collect();
            output::out(&output::render_table(&headers, &rows, 40));
        }
        _ => output::print_json(&body),
    }
    Ok(())
}

async fn create(ctx: &Ctx, a: CreateArgs) -> Result<()> {
    require_single_object_format(ctx.format, "list create")?;
    let ids = lead_ids(&a.lead_ids)?;
    let mut b = Map::new();
    if let Some(n) = &a.name {
        b.insert("name".into(), json!(n));
    }
    if let Some(d) = &a.description {
        b.insert("description".into(), json!(d));
    }
    if let Some(t) = a.lead_type {
        b.insert("leadType".into(), json!(format!("{t:?}").to_lowercase()));
    }
    let (first, rest) = ids.split_at(ids.len().min(MAX_IDS));
    if !first.is_empty() {
        b.insert("leadIds".into(), json!(first));
    }
    let answer = ctx.client.post(&["api", "lists"], &Value::Object(b), Retry::Never).await?;
    let mut body = answer.body;
    if !rest.is_empty() {
        let id = body.pointer("/list/id").and_then(Value::as_str).map(str::to_string).ok_or_else(|| {
            CliError::Local("the API answered without list.id; the remaining lead ids were not added".into())
        })?;
        body = add_ids(ctx, &id, rest).await?;
    }
    print_object(ctx.format, &body);
    Ok(())
}

async fn add_ids(ctx: &Ctx, id: &str, ids: &[String]) -> Result<Value> {
    let mut last = Value::Null;
    for chunk in ids.chunks(MAX_IDS) {
        last = ctx.client.post(&["api", "lists", id, "leads"], &json!({"leadIds": chunk}), Retry::Never).await?.body;
    }
    Ok(last)
}

async fn add(ctx: &Ctx, a: AddArgs) -> Result<()> {
    require_single_object_format(ctx.format, "list lead add")?;
    let ids = lead_ids(&a.lead_ids)?;
    if ids.is_empty() {
        return Err(CliError::usage("--lead-ids names no lead ids"));
    }
    let body = add_ids(ctx, &a.id, &ids).await?;
    print_object(ctx.format, &body);
    Ok(())
}

async fn members(ctx: &Ctx, a: ListLeadArgs) -> Result<()> {
    let id = a.id.ok_or_else(|| CliError::usage("list lead needs --id <listId>"))?;
    let mut q: Vec<(&str, String)> = vec![];
    if let Some(n) = a.limit {
        q.push(("limit", n.to_string()));
    }
    if let Some(t) = a.lead_type {
        q.push(("type", t.as_str().into()));
    }
    page_leads(ctx, &["api", "lists", &id, "leads"], q, a.cursor, a.all).await
}
