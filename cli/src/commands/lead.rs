//! `puffle lead ...`: list or get Leads, add one, import a CSV.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use crate::client::Retry;
use crate::error::{CliError, Result};
use crate::import::{self, parse_map_arg, Field, ImportOptions, FIELD_NAMES};
use crate::output::{self, require_single_object_format, Format};
use crate::scope::json_object_arg;

use super::{print_object, Ctx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LeadType {
    Person,
    Company,
}

impl LeadType {
    pub fn as_str(self) -> &'static str {
        match self {
            LeadType::Person => "person",
            LeadType::Company => "company",
        }
    }
}

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    about = "Leads; without a subcommand, list them (GET /api/leads) or show one with --id",
    after_help = "Formats: json (the API's page), table, csv, jsonl.\nExamples:\n  puffle lead --type person --limit 20 --format table\n  puffle lead --all --format csv > leads.csv\n  puffle lead --id lead_01h..."
)]
pub struct LeadArgs {
    #[command(subcommand)]
    pub command: Option<LeadCommand>,
    /// One Lead by id
    #[arg(long)]
    pub id: Option<String>,
    /// Only Leads of this type
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub lead_type: Option<LeadType>,
    /// Leads per page (1..500, API default 100)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: Option<u32>,
    /// Page cursor (nextCursor of the previous page)
    #[arg(long)]
    pub cursor: Option<String>,
    /// Follow nextCursor to the last page
    #[arg(long)]
    pub all: bool,
}

#[derive(Subcommand, Debug)]
pub enum LeadCommand {
    /// Create or update one Lead (POST /api/leads) from flags or --json
    Add(Box<AddArgs>),
    /// Import a CSV file (or - for stdin) of Leads, in batches of 1000
    Import(ImportArgs),
}

#[derive(Args, Debug)]
#[command(after_help = "A person needs --email or --linkedin; a company needs --company-domain (or --website).\n\
Examples:\n  puffle lead add --email ada@nimbus.example.com --name 'Ada Quill' --title CTO --company Nimbus\n  \
puffle lead add --type company --company Nimbus --company-domain nimbus.example.com\n  \
puffle lead add --json '{\"type\":\"person\",\"contacts\":[{\"type\":\"email\",\"value\":\"a@b.example.com\"}]}'")]
pub struct AddArgs {
    /// person (default) or company
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub lead_type: Option<LeadType>,
    /// Email address (a person's identifier)
    #[arg(long)]
    pub email: Option<String>,
    /// Full name
    #[arg(long)]
    pub name: Option<String>,
    /// First name
    #[arg(long)]
    pub first_name: Option<String>,
    /// Last name
    #[arg(long)]
    pub last_name: Option<String>,
    /// Job title
    #[arg(long)]
    pub title: Option<String>,
    /// Company name
    #[arg(long)]
    pub company: Option<String>,
    /// Company domain or URL (a company's identifier)
    #[arg(long)]
    pub company_domain: Option<String>,
    /// Website contact (also identifies a company)
    #[arg(long)]
    pub website: Option<String>,
    /// Phone number
    #[arg(long)]
    pub phone: Option<String>,
    /// LinkedIn profile URL (a person's identifier)
    #[arg(long)]
    pub linkedin: Option<String>,
    /// City
    #[arg(long)]
    pub city: Option<String>,
    /// Country
    #[arg(long)]
    pub country: Option<String>,
    /// The whole Lead as JSON (or @file.json) instead of the flags above
    #[arg(long, value_name = "JSON", conflicts_with_all = [
        "lead_type", "email", "name", "first_name", "last_name", "title", "company",
        "company_domain", "website", "phone", "linkedin", "city", "country"
    ])]
    pub json: Option<String>,
}

#[derive(Args, Debug)]
#[command(after_help = "Columns are matched by name, ignoring case, spaces, '_', '-' and '.':
  email | first name | last name | full name, name | title, job title | company |
  company domain, website, domain | phone | linkedin | city | state | country | type (person/company)
Rows are validated before sending; rejected rows go to <file>.rejects.csv (the
original columns plus line and reason). Re-importing updates, never duplicates.
The summary (created, updated, rejected, ...) is printed as JSON on stdout.
Examples:
  puffle lead import samples/leads.csv --list-id list_01h...
  puffle lead import contacts.csv --map 'Work Mail=email' --map Notes=ignore
  cat companies.csv | puffle lead import - --type company")]
pub struct ImportArgs {
    /// CSV file, or - for stdin
    #[arg(value_name = "FILE")]
    pub file: String,
    /// Add the imported Leads to this List
    #[arg(long, value_name = "LIST_ID")]
    pub list_id: Option<String>,
    /// Type of rows without a type column value
    #[arg(long = "type", value_enum, value_name = "TYPE", default_value = "person")]
    pub lead_type: LeadType,
    /// Column mapping override, repeatable: <column>=<field>
    #[arg(long = "map", value_name = "COL=FIELD", value_parser = parse_map)]
    pub map: Vec<(String, Field)>,
    /// Where rejected rows go [default: <file>.rejects.csv]
    #[arg(long, value_name = "PATH")]
    pub rejects: Option<std::path::PathBuf>,
    /// Field delimiter (one ASCII character; use '\t' for tab)
    #[arg(long, default_value = ",", value_parser = parse_delimiter)]
    pub delimiter: u8,
    /// Leads per request (1..1000)
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub batch_size: u32,
    /// Validate and write the rejects file, send nothing
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_map(s: &str) -> std::result::Result<(String, Field), String> {
    parse_map_arg(s).map_err(|e| format!("{e} (fields: {FIELD_NAMES})"))
}

fn parse_delimiter(s: &str) -> std::result::Result<u8, String> {
    match s {
        "\\t" | "tab" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(format!("`{s}` is not one ASCII character")),
    }
}

pub async fn run(ctx: &Ctx, args: LeadArgs) -> Result<()> {
    match args.command {
        Some(LeadCommand::Add(a)) => add(ctx, *a).await,
        Some(LeadCommand::Import(a)) => import_csv(ctx, a).await,
        None => list(ctx, args).await,
    }
}

async fn list(ctx: &Ctx, a: LeadArgs) -> Result<()> {
    if let Some(id) = &a.id {
        if a.lead_type.is_some() || a.limit.is_some() || a.cursor.is_some() || a.all {
            return Err(CliError::usage("--id shows one Lead; it takes no --type, --limit, --cursor or --all"));
        }
        let body = ctx.client.get(&["api", "leads"], &[("id", id.clone())]).await?;
        let lead = body.get("lead").cloned().unwrap_or(Value::Null);
        return print_leads(ctx.format, &body, std::slice::from_ref(&lead), false);
    }
    let mut query: Vec<(&str, String)> = vec![];
    if let Some(t) = a.lead_type {
        query.push(("type", t.as_str().into()));
    }
    if let Some(n) = a.limit {
        query.push(("limit", n.to_string()));
    }
    page_leads(ctx, &["api", "leads"], query, a.cursor, a.all).await
}

/// Pages through a `{leads, nextCursor}` listing (Leads or a List's Leads).
pub async fn page_leads(
    ctx: &Ctx,
    path: &[&str],
    query: Vec<(&str, String)>,
    cursor: Option<String>,
    all: bool,
) -> Result<()> {
    let mut cursor = cursor;
    let mut leads = vec![];
    loop {
        let mut q = query.clone();
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let body = ctx.client.get(path, &q).await?;
        let page: Vec<Value> = body.get("leads").and_then(Value::as_array).cloned().unwrap_or_default();
        if !all {
            let more = body.get("nextCursor").and_then(Value::as_str).is_some();
            return print_leads(ctx.format, &body, &page, more);
        }
        if ctx.format == Format::Jsonl {
            if !page.is_empty() {
                output::out(&output::jsonl(&page));
            }
        } else {
            leads.extend(page);
        }
        match body.get("nextCursor").and_then(Value::as_str) {
            Some(c) if !c.is_empty() && Some(c) != cursor.as_deref() => cursor = Some(c.to_string()),
            _ => break,
        }
    }
    match ctx.format {
        Format::Jsonl => Ok(()),
        _ => print_leads(ctx.format, &json!({"leads": leads, "nextCursor": null}), &leads, false),
    }
}

fn print_leads(format: Format, body: &Value, leads: &[Value], more: bool) -> Result<()> {
    match format {
        Format::Json => output::print_json(body),
        Format::Table => {
            let mut t = output::leads_table(leads);
            if more {
                if let Some(c) = body.get("nextCursor").and_then(Value::as_str) {
                    t.push_str(&format!("(more: --cursor {c}, or --all)\n"));
                }
            }
            output::out(&t)
        }
        Format::Csv => output::out(&output::leads_csv(leads)?),
        Format::Jsonl => output::out(&output::jsonl(leads)),
    }
    Ok(())
}

/// The Lead JSON from `lead add` flags.
pub fn lead_from_flags(a: &AddArgs) -> Result<Value> {
    if let Some(j) = &a.json {
        return json_object_arg("--json", j);
    }
    let t = a.lead_type.unwrap_or(LeadType::Person);
    let mut lead = Map::new();
    lead.insert("type".into(), json!(t.as_str()));
    let mut name = Map::new();
    for (k, v) in [("full", &a.name), ("first", &a.first_name), ("last", &a.last_name)] {
        if let Some(v) = v {
            name.insert(k.into(), json!(v));
        }
    }
    if !name.is_empty() {
        lead.insert("name".into(), Value::Object(name));
    }
    if let Some(t) = &a.title {
        lead.insert("title".into(), json!(t));
    }
    let mut company = Map::new();
    if let Some(c) = &a.company {
        company.insert("name".into(), json!(c));
    }
    if let Some(d) = &a.company_domain {
        company.insert("domain".into(), json!(d));
    }
    if !company.is_empty() {
        lead.insert("company".into(), Value::Object(company));
    }
    let mut contacts = vec![];
    for (k, v) in [("email", &a.email), ("phone", &a.phone), ("website", &a.website)] {
        if let Some(v) = v {
            contacts.push(json!({"type": k, "value": v}));
        }
    }
    if !contacts.is_empty() {
        lead.insert("contacts".into(), Value::Array(contacts));
    }
    if let Some(l) = &a.linkedin {
        lead.insert("socials".into(), json!([{"url": l}]));
    }
    let mut loc = Map::new();
    for (k, v) in [("city", &a.city), ("country", &a.country)] {
        if let Some(v) = v {
            loc.insert(k.into(), json!(v));
        }
    }
    if !loc.is_empty() {
        lead.insert("location".into(), Value::Object(loc));
    }
    if lead.len() == 1 {
        return Err(CliError::usage(
            "lead add needs some fields: --email or --linkedin for a person, --company-domain for a company (or --json)",
        ));
    }
    Ok(Value::Object(lead))
}

async fn add(ctx: &Ctx, a: AddArgs) -> Result<()> {
    require_single_object_format(ctx.format, "lead add")?;
    let lead = lead_from_flags(&a)?;
    let answer = ctx.client.post(&["api", "leads"], &lead, Retry::Never).await?;
    print_object(ctx.format, &answer.body);
    Ok(())
}

async fn import_csv(ctx: &Ctx, a: ImportArgs) -> Result<()> {
    require_single_object_format(ctx.format, "lead import")?;
    let summary = import::run(
        &ctx.client,
        ImportOptions {
            file: a.file,
            list_id: a.list_id,
            default_type: a.lead_type.as_str().into(),
            overrides: a.map,
            rejects: a.rejects,
            delimiter: a.delimiter,
            batch_size: a.batch_size as usize,
            dry_run: a.dry_run,
        },
    )
    .await?;
    print_object(ctx.format, &summary);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: AddArgs,
    }

    #[test]
    fn add_flags_make_a_lead() {
        let t = T::parse_from([
            "t",
            "--email",
            "a@b.example.com",
            "--name",
            "Ada Q",
            "--title",
            "CTO",
            "--company",
            "B",
            "--phone",
            "+1 415 555 0100",
            "--linkedin",
            "https://linkedin.com/in/a",
            "--country",
            "US",
        ]);
        assert_eq!(
            lead_from_flags(&t.a).unwrap(),
            json!({"type":"person","name":{"full":"Ada Q"},"title":"CTO","company":{"name":"B"},
                   "contacts":[{"type":"email","value":"a@b.example.com"},{"type":"phone","value":"+1 415 555 0100"}],
                   "socials":[{"url":"https://linkedin.com/in/a"}],"location":{"country":"US"}})
        );
        let t = T::parse_from(["t", "--type", "company", "--company-domain", "c.example.com"]);
        assert_eq!(lead_from_flags(&t.a).unwrap(), json!({"type":"company","company":{"domain":"c.example.com"}}));
        let t = T::parse_from(["t"]);
        assert!(matches!(lead_from_flags(&t.a), Err(CliError::Usage(_))));
        assert!(T::try_parse_from(["t", "--json", "{}", "--email", "x@y.example.com"]).is_err());
    }

    #[test]
    fn delimiters() {
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert_eq!(parse_delimiter("\\t"), Ok(b'\t'));
        assert!(parse_delimiter(";;").is_err());
        assert!(parse_delimiter("é").is_err());
    }
}
