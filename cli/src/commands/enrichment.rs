//! `puffle enrichment ...`: the catalog, create, status, results, cancel.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use crate::client::{random_idempotency_key, Retry};
use crate::error::{CliError, Result};
use crate::output::{self, require_single_object_format, Format};
use crate::scope::{json_object_arg, parse_scope};
use crate::watch::{self, WatchOptions};

use super::{poll_interval, print_object, Ctx};

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    about = "Enrichment runs; without a subcommand, the catalog (GET /api/enrichments)",
    after_help = "Examples:\n  puffle enrichment --format table\n  puffle enrichment --id email_domain\n  puffle enrichment --q phone"
)]
pub struct EnrichmentArgs {
    #[command(subcommand)]
    pub command: Option<EnrichmentCommand>,
    /// Catalog: one enrichment by id or slug (e.g. email_domain)
    #[arg(long, value_name = "SLUG")]
    pub id: Option<String>,
    /// Catalog: filter by text
    #[arg(long = "q", value_name = "TEXT")]
    pub q: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum EnrichmentCommand {
    /// Start a run (POST /api/enrichment); --wait follows it to the end
    Create(CreateArgs),
    /// A run's status (GET /api/enrichment/{id}); --watch follows it
    Status(StatusArgs),
    /// A run's per-Lead items (GET /api/enrichment/{id}/items)
    Results(ResultsArgs),
    /// Cancel a pending or running run (POST /api/enrichment/{id}/cancel)
    Cancel(CancelArgs),
    /// A new run over a finished run's failed (or skipped) items (POST /api/enrichment/{id}/retry)
    Retry(RetryArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RetryStatus {
    Failed,
    Skipped,
}

#[derive(Args, Debug)]
#[command(after_help = "Example: puffle enrichment retry --id run_01h... --status failed --wait")]
pub struct RetryArgs {
    /// Run id (a finished run)
    #[arg(long)]
    pub id: String,
    /// Which items' Leads to run again [default: failed]
    #[arg(long, value_enum)]
    pub status: Option<RetryStatus>,
    /// Repeat-safe key [default: derived from the run and status, so a repeat answers the same run]
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Wait until the new run is terminal, then print its status
    #[arg(long)]
    pub wait: bool,
    /// Seconds between polls with --wait
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub poll_interval: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    Persisted,
    Preview,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum WritePolicy {
    Overwrite,
    #[value(name = "skip_existing")]
    SkipExisting,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ItemStatus {
    Pending,
    Running,
    Completed,
    Skipped,
    Failed,
}

#[derive(Args, Debug)]
#[command(after_help = "Scope forms:
  list:<listId>                        every Lead of a List
  leads:<id1>,<id2>                    these Leads
  filtered:<listId>:<filter>           Leads of a List matching a filter: JSON {\"all\":[...]}
                                       or field=value,field!=value,field~text,field?,!field
  '{\"type\":\"list\",\"listId\":\"...\"}'  the API's JSON, or @scope.json
--input, --output and --display-request take JSON or @file.json.

Examples:
  puffle enrichment create --enrichment-id email_domain --scope list:list_01h... --wait
  puffle enrichment create --enrichment-id company_domain --scope filtered:list_01h...:type=company --mode preview
  puffle enrichment create --enrichment-id phone_normalize --scope leads:lead_a,lead_b --input '{\"defaultCountry\":\"GB\"}' --idempotency-key auto")]
pub struct CreateArgs {
    /// Enrichment id or slug (see `puffle enrichment`)
    #[arg(long, value_name = "ID")]
    pub enrichment_id: String,
    /// Which Leads: list:<id>, leads:<id>,<id>, filtered:<listId>:<filter>, JSON or @file
    #[arg(long, value_name = "SCOPE")]
    pub scope: String,
    /// persisted (default) runs and charges; preview only plans and prices
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// The enrichment's input object (JSON or @file) [default: {}]
    #[arg(long, value_name = "JSON")]
    pub input: Option<String>,
    /// Output: {"attributeKey"?, "target"?: "lead"|"membership"} (JSON or @file)
    #[arg(long, value_name = "JSON")]
    pub output: Option<String>,
    /// Display request: {"fieldId": "..."} (JSON or @file)
    #[arg(long, value_name = "JSON")]
    pub display_request: Option<String>,
    /// Repeat-safe key; `auto` generates one (printed to stderr). Enables retries on 429/503
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// overwrite (default) or skip_existing
    #[arg(long, value_enum)]
    pub write_policy: Option<WritePolicy>,
    /// Wait until the run is terminal (progress on stderr), then print its status
    #[arg(long)]
    pub wait: bool,
    /// Seconds between polls with --wait (backs off to 2.5x while nothing changes)
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub poll_interval: f64,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Run id
    #[arg(long)]
    pub id: String,
    /// Follow the run until it is terminal (progress on stderr); Ctrl-C stops watching, not the run
    #[arg(long)]
    pub watch: bool,
    /// Seconds between polls with --watch (backs off to 2.5x while nothing changes)
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub poll_interval: f64,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Formats: json (the API's page), table, csv (one result.<key> column per result field), jsonl (one item per line).\n\
Example: puffle enrichment results --id run_01h... --all --format csv > results.csv"
)]
pub struct ResultsArgs {
    /// Run id
    #[arg(long)]
    pub id: String,
    /// Only items with this status
    #[arg(long, value_enum)]
    pub status: Option<ItemStatus>,
    /// Only the item of this Lead
    #[arg(long, value_name = "LEAD_ID")]
    pub lead_id: Option<String>,
    /// Page cursor (page.nextCursor of the previous page)
    #[arg(long)]
    pub cursor: Option<String>,
    /// Items per page (1..100, API default 50)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: Option<u32>,
    /// Follow page.nextCursor to the last page
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct CancelArgs {
    /// Run id
    #[arg(long)]
    pub id: String,
}

pub async fn run(ctx: &Ctx, args: EnrichmentArgs) -> Result<()> {
    match args.command {
        None => catalog(ctx, args.id, args.q).await,
        Some(EnrichmentCommand::Create(a)) => create(ctx, a).await,
        Some(EnrichmentCommand::Status(a)) => status(ctx, a).await,
        Some(EnrichmentCommand::Results(a)) => results(ctx, a).await,
        Some(EnrichmentCommand::Cancel(a)) => cancel(ctx, a).await,
        Some(EnrichmentCommand::Retry(a)) => retry(ctx, a).await,
    }
}

async fn catalog(ctx: &Ctx, id: Option<String>, q: Option<String>) -> Result<()> {
    let mut query = vec![];
    if let Some(id) = id {
        query.push(("id", id));
    }
    if let Some(q) = q {
        query.push(("q", q));
    }
    let body = ctx.client.get(&["api", "enrichments"], &query).await?;
    let list: Vec<Value> = body.get("enrichments").and_then(Value::as_array).cloned().unwrap_or_default();
    match ctx.format {
        Format::Json => output::print_json(&body),
        Format::Table => output::out(&output::catalog_table(&list)),
        Format::Csv => output::out(&output::catalog_csv(&list)?),
        Format::Jsonl => output::out(&output::jsonl(&list)),
    }
    Ok(())
}

/// The create body from the flags (pure but for reading @files).
pub fn create_body(a: &CreateArgs) -> Result<(Value, Option<String>)> {
    if a.enrichment_id.trim().is_empty() {
        return Err(CliError::usage("--enrichment-id must not be empty"));
    }
    let mut b = Map::new();
    b.insert("enrichmentId".into(), json!(a.enrichment_id));
    if let Some(m) = a.mode {
        b.insert(
            "mode".into(),
            json!(match m {
                Mode::Persisted => "persisted",
                Mode::Preview => "preview",
            }),
        );
    }
    b.insert("scope".into(), parse_scope(&a.scope)?);
    b.insert(
        "input".into(),
        match &a.input {
            Some(i) => json_object_arg("--input", i)?,
            None => json!({}),
        },
    );
    if let Some(o) = &a.output {
        b.insert("output".into(), json_object_arg("--output", o)?);
    }
    if let Some(d) = &a.display_request {
        b.insert("displayRequest".into(), json_object_arg("--display-request", d)?);
    }
    let key = match a.idempotency_key.as_deref() {
        Some("auto") => Some(random_idempotency_key()),
        Some(k) if k.trim().is_empty() => {
            return Err(CliError::usage("--idempotency-key must not be empty (or use `auto`)"))
        }
        Some(k) => Some(k.to_string()),
        None => None,
    };
    if let Some(k) = &key {
        b.insert("idempotencyKey".into(), json!(k));
    }
    if let Some(w) = a.write_policy {
        b.insert(
            "writePolicy".into(),
            json!(match w {
                WritePolicy::Overwrite => "overwrite",
                WritePolicy::SkipExisting => "skip_existing",
            }),
        );
    }
    Ok((Value::Object(b), key))
}

async fn create(ctx: &Ctx, a: CreateArgs) -> Result<()> {
    require_single_object_format(ctx.format, "enrichment create")?;
    let interval = poll_interval(a.poll_interval)?;
    let (body, key) = create_body(&a)?;
    if a.idempotency_key.as_deref() == Some("auto") {
        if let Some(k) = &key {
            eprintln!("idempotency key: {k}");
        }
    }
    // Repeating a create is only safe when the key makes it idempotent.
    let retry = if key.is_some() { Retry::Safe } else { Retry::Never };
    let answer = ctx.client.post(&["api", "enrichment"], &body, retry).await?;
    let run_id = answer.body.get("runId").and_then(Value::as_str).map(str::to_string);
    if !a.wait {
        print_object(ctx.format, &answer.body);
        return Ok(());
    }
    let Some(run_id) = run_id else {
        // A preview has no run to wait for.
        eprintln!("nothing to wait for: a preview creates no run");
        print_object(ctx.format, &answer.body);
        return Ok(());
    };
    let reused = answer.body.get("reusedExistingRun").and_then(Value::as_bool).unwrap_or(false);
    let leads = answer.body.get("leadCount").cloned().unwrap_or(Value::Null);
    eprintln!(
        "run {run_id} {} ({leads} leads, HTTP {}); waiting for it to finish (Ctrl-C stops waiting, not the run)",
        if reused { "reused" } else { "accepted" },
        answer.status
    );
    wait_and_print(ctx, &run_id, interval).await
}

async fn wait_and_print(ctx: &Ctx, run_id: &str, interval: std::time::Duration) -> Result<()> {
    let last = watch::watch(&ctx.client, run_id, &WatchOptions { poll_interval: interval }).await?;
    print_object(ctx.format, &last);
    let status = last.pointer("/run/status").and_then(Value::as_str).unwrap_or("unknown");
    if status == "completed" {
        Ok(())
    } else {
        Err(CliError::RunNotCompleted { status: status.to_string() })
    }
}

async fn status(ctx: &Ctx, a: StatusArgs) -> Result<()> {
    require_single_object_format(ctx.format, "enrichment status")?;
    let interval = poll_interval(a.poll_interval)?;
    if a.watch {
        return wait_and_print(ctx, &a.id, interval).await;
    }
    let body = ctx.client.get(&["api", "enrichment", &a.id], &[]).await?;
    print_object(ctx.format, &body);
    Ok(())
}

async fn results(ctx: &Ctx, a: ResultsArgs) -> Result<()> {
    let mut query: Vec<(&str, String)> = vec![];
    if let Some(s) = a.status {
        query.push(("status", format!("{s:?}").to_lowercase()));
    }
    if let Some(l) = &a.lead_id {
        query.push(("leadId", l.clone()));
    }
    if let Some(n) = a.limit {
        query.push(("limit", n.to_string()));
    }
    let mut cursor = a.cursor.clone();
    let mut items: Vec<Value> = vec![];
    let mut last_page;
    loop {
        let mut q = query.clone();
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let body = ctx.client.get(&["api", "enrichment", &a.id, "items"], &q).await?;
        let page_items: Vec<Value> = body.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
        last_page = body.get("page").cloned().unwrap_or(Value::Null);
        if !a.all {
            match ctx.format {
                Format::Json => output::print_json(&body),
                Format::Table => output::out(&results_table(&page_items, &last_page)),
                Format::Csv => output::out(&output::items_csv(&page_items)?),
                Format::Jsonl => output::out(&output::jsonl(&page_items)),
            }
            return Ok(());
        }
        // JSON Lines stream page by page; the other formats need every item.
        if ctx.format == Format::Jsonl && !page_items.is_empty() {
            output::out(&output::jsonl(&page_items));
        } else {
            items.extend(page_items);
        }
        match last_page.get("nextCursor").and_then(Value::as_str) {
            Some(c) if !c.is_empty() && Some(c) != cursor.as_deref() => cursor = Some(c.to_string()),
            _ => break,
        }
    }
    match ctx.format {
        Format::Json => {
            let limit = last_page.get("limit").cloned().unwrap_or(Value::Null);
            output::print_json(&json!({"items": items, "page": {"limit": limit, "nextCursor": null, "hasMore": false}}))
        }
        Format::Table => output::out(&results_table(&items, &Value::Null)),
        Format::Csv => output::out(&output::items_csv(&items)?),
        Format::Jsonl => {}
    }
    Ok(())
}

fn results_table(items: &[Value], page: &Value) -> String {
    let mut s = output::items_table(items);
    if let Some(c) = page.get("nextCursor").and_then(Value::as_str) {
        s.push_str(&format!("(more: --cursor {c}, or --all)\n"));
    }
    s
}

async fn cancel(ctx: &Ctx, a: CancelArgs) -> Result<()> {
    require_single_object_format(ctx.format, "enrichment cancel")?;
    let answer = ctx.client.post(&["api", "enrichment", &a.id, "cancel"], &json!({}), Retry::Never).await?;
    print_object(ctx.format, &answer.body);
    Ok(())
}

async fn retry(ctx: &Ctx, a: RetryArgs) -> Result<()> {
    require_single_object_format(ctx.format, "enrichment retry")?;
    let interval = poll_interval(a.poll_interval)?;
    let mut body = Map::new();
    if let Some(s) = a.status {
        body.insert("status".into(), json!(format!("{s:?}").to_lowercase()));
    }
    if let Some(k) = &a.idempotency_key {
        if k.trim().is_empty() {
            return Err(CliError::usage("--idempotency-key must not be empty"));
        }
        body.insert("idempotencyKey".into(), json!(k));
    }
    // Safe to repeat: the server derives a key when none is given.
    let answer = ctx.client.post(&["api", "enrichment", &a.id, "retry"], &Value::Object(body), Retry::Safe).await?;
    let run_id = answer.body.get("runId").and_then(Value::as_str).map(str::to_string);
    match (a.wait, run_id) {
        (true, Some(run_id)) => {
            eprintln!("retry run {run_id} accepted (HTTP {}); waiting for it to finish", answer.status);
            wait_and_print(ctx, &run_id, interval).await
        }
        _ => {
            print_object(ctx.format, &answer.body);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(scope: &str) -> CreateArgs {
        CreateArgs {
            enrichment_id: "email_domain".into(),
            scope: scope.into(),
            mode: None,
            input: None,
            output: None,
            display_request: None,
            idempotency_key: None,
            write_policy: None,
            wait: false,
            poll_interval: 2.0,
        }
    }

    #[test]
    fn create_body_defaults_and_fields() {
        let (b, k) = create_body(&args("list:list_1")).unwrap();
        assert_eq!(b, json!({"enrichmentId":"email_domain","scope":{"type":"list","listId":"list_1"},"input":{}}));
        assert_eq!(k, None);
        let mut a = args("leads:lead_1");
        a.mode = Some(Mode::Preview);
        a.write_policy = Some(WritePolicy::SkipExisting);
        a.output = Some(r#"{"attributeKey":"dom"}"#.into());
        a.display_request = Some(r#"{"fieldId":"f1"}"#.into());
        a.input = Some(r#"{"defaultCountry":"GB"}"#.into());
        a.idempotency_key = Some("k1".into());
        let (b, k) = create_body(&a).unwrap();
        assert_eq!(b["mode"], "preview");
        assert_eq!(b["writePolicy"], "skip_existing");
        assert_eq!(b["output"], json!({"attributeKey":"dom"}));
        assert_eq!(b["displayRequest"], json!({"fieldId":"f1"}));
        assert_eq!(b["input"], json!({"defaultCountry":"GB"}));
        assert_eq!(b["idempotencyKey"], "k1");
        assert_eq!(k.as_deref(), Some("k1"));
    }

    #[test]
    fn auto_keys_and_bad_inputs() {
        let mut a = args("list:l");
        a.idempotency_key = Some("auto".into());
        let (b, k) = create_body(&a).unwrap();
        assert!(k.as_deref().unwrap().starts_with("cli-"));
        assert_eq!(b["idempotencyKey"].as_str(), k.as_deref());
        let mut a = args("list:l");
        a.input = Some("[]".into());
        assert!(matches!(create_body(&a), Err(CliError::Usage(_))));
        let mut a = args("list:l");
        a.enrichment_id = " ".into();
        assert!(matches!(create_body(&a), Err(CliError::Usage(_))));
        assert!(matches!(create_body(&args("nope")), Err(CliError::Usage(_))));
    }
}
