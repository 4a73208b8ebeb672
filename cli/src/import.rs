//! `puffle lead import`: CSV rows → Leads.
//!
//! Columns are mapped by name (case, spaces, `_`, `-` and `.` ignored; see
//! [`guess_field`]), `--map col=field` overrides. Every row is validated here,
//! by the API's own functions (`puffle_domain`), before anything is sent, so one bad
//! row never rejects a batch: rejected rows go to `<file>.rejects.csv` with
//! their reason. Valid rows are upserted in batches of up to 1000 (a repeat
//! import updates instead of duplicating) and, with `--list-id`, added to the
//! List (≤1000 ids per request).

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use puffle_domain::identity::{CompanyDomain, Email};
use puffle_domain::lead::LeadInput;
use serde_json::{json, Map, Value};

use crate::client::{Client, Retry};
use crate::error::{CliError, Result};

pub const MAX_BATCH: usize = 1000;
pub const MAX_LIST_ADD: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Email,
    FirstName,
    LastName,
    FullName,
    Title,
    Company,
    CompanyDomain,
    Phone,
    Linkedin,
    City,
    State,
    Country,
    Type,
    Ignore,
}

pub const FIELD_NAMES: &str =
    "email, first_name, last_name, full_name, title, company, company_domain, phone, linkedin, city, state, country, type, ignore";

/// `"First Name"`, `first_name`, `first-name` → `firstname`.
pub fn normalize_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The field a column header names, if it is one of the common names.
pub fn guess_field(header: &str) -> Option<Field> {
    Some(match normalize_header(header).as_str() {
        "email" | "emailaddress" | "workemail" | "businessemail" | "mail" => Field::Email,
        "firstname" | "first" | "givenname" | "forename" => Field::FirstName,
        "lastname" | "last" | "surname" | "familyname" => Field::LastName,
        "fullname" | "name" | "contactname" | "personname" => Field::FullName,
        "title" | "jobtitle" | "position" | "role" | "jobrole" => Field::Title,
        "company" | "companyname" | "organization" | "organisation" | "org" | "account" | "accountname"
        | "employer" => Field::Company,
        "companydomain" | "domain" | "website" | "site" | "companywebsite" | "web" | "url" | "websiteurl"
        | "homepage" | "companyurl" => Field::CompanyDomain,
        "phone" | "phonenumber" | "mobile" | "mobilephone" | "tel" | "telephone" | "workphone" | "cell" => Field::Phone,
        "linkedin" | "linkedinurl" | "linkedinprofile" | "linkedinprofileurl" => Field::Linkedin,
        "city" | "town" => Field::City,
        "state" | "region" | "province" => Field::State,
        "country" | "countrycode" => Field::Country,
        "type" | "leadtype" | "kind" => Field::Type,
        _ => return None,
    })
}

/// A field name as `--map` takes it (`company_domain`, `company domain`, `website`...).
pub fn parse_field_name(s: &str) -> Option<Field> {
    match normalize_header(s).as_str() {
        "ignore" | "skip" | "none" | "" => Some(Field::Ignore),
        _ => guess_field(s),
    }
}

/// `--map "Work Phone=phone"` → (`Work Phone`, Phone).
pub fn parse_map_arg(s: &str) -> std::result::Result<(String, Field), String> {
    let (col, field) = s.rsplit_once('=').ok_or_else(|| format!("`{s}`: use --map <column>=<field>"))?;
    if col.trim().is_empty() {
        return Err(format!("`{s}`: the column name is empty"));
    }
    let f = parse_field_name(field).ok_or_else(|| format!("`{field}` is not a field; use one of {FIELD_NAMES}"))?;
    Ok((col.trim().to_string(), f))
}

/// Which field each column feeds (None: ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub columns: Vec<Option<Field>>,
    pub ignored: Vec<String>,
}

/// Column names for a message: control characters dropped, long names and
/// long lists cut (a binary file must not flood the terminal).
fn show_headers(headers: &[String]) -> String {
    let mut shown: Vec<String> = headers
        .iter()
        .take(20)
        .map(|h| {
            let clean: String = h.chars().filter(|c| !c.is_control()).collect();
            if clean.chars().count() > 30 {
                format!("{}…", clean.chars().take(30).collect::<String>())
            } else {
                clean
            }
        })
        .collect();
    if headers.len() > 20 {
        shown.push(format!("… ({} columns)", headers.len()));
    }
    shown.join(", ")
}

pub fn build_mapping(headers: &[String], overrides: &[(String, Field)]) -> std::result::Result<Mapping, String> {
    let norm: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();
    let mut columns: Vec<Option<Field>> = headers.iter().map(|h| guess_field(h)).collect();
    for (col, field) in overrides {
        let n = normalize_header(col);
        let idx = norm
            .iter()
            .position(|h| *h == n)
            .ok_or_else(|| format!("--map: no column `{col}` in the file (columns: {})", show_headers(headers)))?;
        columns[idx] = (*field != Field::Ignore).then_some(*field);
    }
    // A field fed by two columns: the first wins, the others are ignored.
    let mut seen = HashSet::new();
    for c in columns.iter_mut() {
        if let Some(f) = *c {
            if !seen.insert(format!("{f:?}")) {
                *c = None;
            }
        }
    }
    let ignored = headers
        .iter()
        .zip(&columns)
        .filter(|(_, c)| c.is_none())
        .map(|(h, _)| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let makes_a_lead = columns.iter().flatten().any(|c| {
        matches!(
            c,
            Field::Email
                | Field::Linkedin
                | Field::CompanyDomain
                | Field::FullName
                | Field::FirstName
                | Field::LastName
                | Field::Company
                | Field::Phone
        )
    });
    if !makes_a_lead {
        return Err(format!(
            "no column holds a name, a contact or a company (email, name, company, company domain/website, phone, linkedin) among: {}; name one with --map <column>=<field>",
            show_headers(headers)
        ));
    }
    Ok(Mapping { columns, ignored })
}

/// One CSV row → the Lead JSON `POST /api/leads` takes, or why not.
pub fn row_to_lead(mapping: &Mapping, row: &[String], default_type: &str) -> std::result::Result<Value, String> {
    let mut vals: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for (i, f) in mapping.columns.iter().enumerate() {
        if let (Some(f), Some(v)) = (f, row.get(i)) {
            let v = v.trim();
            if !v.is_empty() {
                vals.insert(format!("{f:?}"), v.to_string());
            }
        }
    }
    let get = |f: Field| vals.get(&format!("{f:?}")).cloned();
    let lead_type = match get(Field::Type) {
        Some(t) => match t.to_lowercase().as_str() {
            "person" | "people" | "contact" => "person",
            "company" | "companies" | "account" | "organization" | "organisation" => "company",
            _ => return Err(format!("type `{t}` is not person or company")),
        },
        None => default_type,
    };
    // The API's own rules (shared/domain), so a row it would refuse never
    // reaches a batch and the reasons read the same.
    let email = get(Field::Email);
    if let Some(e) = &email {
        Email::parse(e).map_err(|e| e.to_string())?;
    }
    let domain = match get(Field::CompanyDomain) {
        Some(d) => Some(CompanyDomain::parse(&d).map_err(|e| e.to_string())?.as_str().to_string()),
        None => None,
    };
    let linkedin = get(Field::Linkedin);
    let mut lead = Map::new();
    lead.insert("type".into(), json!(lead_type));
    let mut contacts = vec![];
    if let Some(e) = &email {
        contacts.push(json!({"type": "email", "value": e.to_lowercase()}));
    }
    if let Some(p) = get(Field::Phone) {
        contacts.push(json!({"type": "phone", "value": p}));
    }
    let mut company = Map::new();
    if lead_type == "person" {
        let mut name = Map::new();
        for (f, k) in [(Field::FullName, "full"), (Field::FirstName, "first"), (Field::LastName, "last")] {
            if let Some(v) = get(f) {
                name.insert(k.into(), json!(v));
            }
        }
        if !name.is_empty() {
            lead.insert("name".into(), Value::Object(name));
        }
        if let Some(t) = get(Field::Title) {
            lead.insert("title".into(), json!(t));
        }
        if let Some(c) = get(Field::Company) {
            company.insert("name".into(), json!(c));
        }
    } else {
        if let Some(c) = get(Field::Company).or_else(|| get(Field::FullName)) {
            company.insert("name".into(), json!(c));
        }
    }
    if let Some(d) = domain {
        company.insert("domain".into(), json!(d));
    }
    if !company.is_empty() {
        lead.insert("company".into(), Value::Object(company));
    }
    if !contacts.is_empty() {
        lead.insert("contacts".into(), Value::Array(contacts));
    }
    if let Some(l) = linkedin {
        lead.insert("socials".into(), json!([{"url": l}]));
    }
    let mut loc = Map::new();
    for (f, k) in [(Field::City, "city"), (Field::State, "state"), (Field::Country, "country")] {
        if let Some(v) = get(f) {
            loc.insert(k.into(), json!(v));
        }
    }
    if !loc.is_empty() {
        lead.insert("location".into(), Value::Object(loc));
    }
    let lead = Value::Object(lead);
    LeadInput::from_json(lead.clone()).map_err(|e| e.to_string())?;
    Ok(lead)
}

/// `leads.csv` → `leads.rejects.csv`; `-` (stdin) → `stdin.rejects.csv`.
pub fn default_rejects_path(file: &str) -> PathBuf {
    if file == "-" {
        return PathBuf::from("stdin.rejects.csv");
    }
    let p = Path::new(file);
    let lower = file.to_lowercase();
    if lower.ends_with(".csv") {
        PathBuf::from(format!("{}.rejects.csv", &file[..file.len() - 4]))
    } else {
        p.with_file_name(format!(
            "{}.rejects.csv",
            p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
        ))
    }
}

pub struct ImportOptions {
    pub file: String,
    pub list_id: Option<String>,
    pub default_type: String,
    pub overrides: Vec<(String, Field)>,
    pub rejects: Option<PathBuf>,
    pub delimiter: u8,
    pub batch_size: usize,
    pub dry_run: bool,
}

struct Parsed {
    headers: Vec<String>,
    mapping: Mapping,
    /// (line, raw fields, lead JSON)
    valid: Vec<(u64, Vec<String>, Value)>,
    /// (line, raw fields, reason)
    rejects: Vec<(u64, Vec<String>, String)>,
    rows: u64,
}

fn parse_csv(opts: &ImportOptions) -> Result<Parsed> {
    let reader: Box<dyn std::io::Read> = if opts.file == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&opts.file).map_err(|e| CliError::usage(format!("cannot open {}: {e}", opts.file)))?,
        )
    };
    let mut rdr =
        csv::ReaderBuilder::new().flexible(true).delimiter(opts.delimiter).has_headers(true).from_reader(reader);
    let headers: Vec<String> = rdr
        .byte_headers()
        .map_err(|e| CliError::usage(format!("{}: cannot read the header row: {e}", opts.file)))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err(CliError::usage(format!("{}: no header row (the first line names the columns)", opts.file)));
    }
    let mapping =
        build_mapping(&headers, &opts.overrides).map_err(|m| CliError::usage(format!("{}: {m}", opts.file)))?;
    let mut valid = vec![];
    let mut rejects = vec![];
    let mut rows = 0;
    for rec in rdr.byte_records() {
        let rec = rec.map_err(|e| CliError::usage(format!("{}: {e}", opts.file)))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let fields: Vec<String> = rec.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        rows += 1;
        if rec.iter().any(|f| std::str::from_utf8(f).is_err()) {
            rejects.push((line, fields, "the row is not valid UTF-8".to_string()));
            continue;
        }
        if fields.len() > headers.len() && fields[headers.len()..].iter().any(|f| !f.trim().is_empty()) {
            let reason = format!("the row has {} fields, the header {}", fields.len(), headers.len());
            rejects.push((line, fields, reason));
            continue;
        }
        match row_to_lead(&mapping, &fields, &opts.default_type) {
            Ok(lead) => valid.push((line, fields, lead)),
            Err(reason) => rejects.push((line, fields, reason)),
        }
    }
    Ok(Parsed { headers, mapping, valid, rejects, rows })
}

fn write_rejects(path: &Path, headers: &[String], rejects: &mut [(u64, Vec<String>, String)]) -> Result<()> {
    rejects.sort_by_key(|r| r.0);
    let local = |e: String| CliError::Local(format!("cannot write {}: {e}", path.display()));
    let mut w = csv::WriterBuilder::new().flexible(true).from_path(path).map_err(|e| local(e.to_string()))?;
    let mut h = headers.to_vec();
    h.push("line".into());
    h.push("reason".into());
    w.write_record(&h).map_err(|e| local(e.to_string()))?;
    for (line, fields, reason) in rejects.iter() {
        let mut r: Vec<String> = fields.clone();
        r.resize(headers.len().max(fields.len()), String::new());
        r.truncate(headers.len().max(1));
        r.push(line.to_string());
        r.push(reason.clone());
        w.write_record(&r).map_err(|e| local(e.to_string()))?;
    }
    w.flush().map_err(|e| local(e.to_string()))
}

fn bar(len: u64, what: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    b.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    b.set_prefix(what.to_string());
    Some(b)
}

/// Server-side per-Lead errors of a rejected batch: `details.errors[{index, message}]`.
fn batch_errors(body: &Value) -> Vec<(usize, String)> {
    body.pointer("/details/errors")
        .and_then(Value::as_array)
        .map(|errs| {
            errs.iter()
                .filter_map(|e| {
                    Some((
                        e.get("index")?.as_u64()? as usize,
                        e.get("message").and_then(Value::as_str).unwrap_or("rejected").to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub async fn run(client: &Client, opts: ImportOptions) -> Result<Value> {
    let mut parsed = parse_csv(&opts)?;
    if let Some(list) = &opts.list_id {
        // Fail before writing anything when the List does not exist.
        client.get(&["api", "lists", list], &[]).await?;
    }
    let rejects_path = opts.rejects.clone().unwrap_or_else(|| default_rejects_path(&opts.file));
    let (mut created, mut updated) = (0u64, 0u64);
    let mut lead_ids: Vec<String> = vec![];
    let mut list_lead_count = Value::Null;
    let mut added_to_list = 0usize;
    let valid = std::mem::take(&mut parsed.valid);
    let valid_count = valid.len();
    if !opts.dry_run && !valid.is_empty() {
        let b = bar(valid.len() as u64, "importing");
        let mut sent = 0usize;
        for chunk in valid.chunks(opts.batch_size.clamp(1, MAX_BATCH)) {
            let mut batch: Vec<&(u64, Vec<String>, Value)> = chunk.iter().collect();
            let mut tries = 0;
            let answer = loop {
                let body = json!({"leads": batch.iter().map(|r| r.2.clone()).collect::<Vec<_>>()});
                match client.post(&["api", "leads"], &body, Retry::Never).await {
                    Ok(a) => break a,
                    Err(CliError::Api { status: 400, body: eb, .. }) if tries == 0 && !batch_errors(&eb).is_empty() => {
                        // Rows our checks let through but the API refused:
                        // reject them and send the rest once more.
                        let bad: std::collections::HashMap<usize, String> = batch_errors(&eb).into_iter().collect();
                        let mut keep = vec![];
                        for (i, r) in batch.into_iter().enumerate() {
                            match bad.get(&i) {
                                Some(m) => parsed.rejects.push((r.0, r.1.clone(), m.clone())),
                                None => keep.push(r),
                            }
                        }
                        batch = keep;
                        tries += 1;
                        if batch.is_empty() {
                            break crate::client::Answer {
                                status: 200,
                                body: json!({"leads": [], "created": 0, "updated": 0}),
                            };
                        }
                    }
                    Err(e) => {
                        if let Some(b) = &b {
                            b.abandon();
                        }
                        eprintln!(
                            "import stopped after {sent} of {valid_count} valid rows (created {created}, updated {updated}); running it again is safe: Leads are upserted"
                        );
                        let _ = write_rejects(&rejects_path, &parsed.headers, &mut parsed.rejects);
                        return Err(e);
                    }
                }
            };
            created += answer.body.get("created").and_then(Value::as_u64).unwrap_or(0);
            updated += answer.body.get("updated").and_then(Value::as_u64).unwrap_or(0);
            if let Some(ls) = answer.body.get("leads").and_then(Value::as_array) {
                lead_ids.extend(ls.iter().filter_map(|l| l.get("id").and_then(Value::as_str)).map(str::to_string));
            }
            sent += chunk.len();
            match &b {
                Some(b) => {
                    b.set_position(sent as u64);
                    let rate = sent as f64 / b.elapsed().as_secs_f64().max(0.001);
                    b.set_message(format!("created {created} · updated {updated} · {rate:.0} rows/s"));
                }
                None => eprintln!("imported {sent}/{valid_count} rows (created {created}, updated {updated})"),
            }
        }
        if let Some(b) = &b {
            b.finish();
        }
        if let Some(list) = &opts.list_id {
            let mut seen = HashSet::new();
            lead_ids.retain(|id| seen.insert(id.clone()));
            let b = bar(lead_ids.len() as u64, "adding to list");
            for chunk in lead_ids.chunks(MAX_LIST_ADD) {
                let a = client.post(&["api", "lists", list, "leads"], &json!({"leadIds": chunk}), Retry::Never).await?;
                added_to_list += chunk.len();
                list_lead_count = a.body.pointer("/list/leadCount").cloned().unwrap_or(Value::Null);
                if let Some(b) = &b {
                    b.set_position(added_to_list as u64);
                }
            }
            if let Some(b) = &b {
                b.finish_and_clear();
            }
        }
    }
    let rejected = parsed.rejects.len();
    let rejects_file = if rejected > 0 {
        write_rejects(&rejects_path, &parsed.headers, &mut parsed.rejects)?;
        eprintln!("{rejected} row(s) rejected; see {}", rejects_path.display());
        Value::String(rejects_path.display().to_string())
    } else {
        // A rejects file of an earlier import of this file is stale now.
        if opts.rejects.is_none() && rejects_path.is_file() {
            let _ = std::fs::remove_file(&rejects_path);
        }
        Value::Null
    };
    Ok(json!({
        "file": opts.file,
        "rows": parsed.rows,
        "valid": valid_count,
        "created": created,
        "updated": updated,
        "rejected": rejected,
        "rejectsFile": rejects_file,
        "listId": opts.list_id,
        "addedToList": added_to_list,
        "listLeadCount": list_lead_count,
        "ignoredColumns": parsed.mapping.ignored,
        "dryRun": opts.dry_run,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    fn row(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn column_names_map_insensitively() {
        let h = headers(&[
            "E-Mail",
            "First Name",
            "last_name",
            "Full Name",
            "JOB TITLE",
            "Company",
            "Company Website",
            "Phone Number",
            "LinkedIn URL",
            "City",
            "country",
            "Favourite colour",
        ]);
        let m = build_mapping(&h, &[]).unwrap();
        use Field::*;
        assert_eq!(
            m.columns,
            vec![
                Some(Email),
                Some(FirstName),
                Some(LastName),
                Some(FullName),
                Some(Title),
                Some(Company),
                Some(CompanyDomain),
                Some(Phone),
                Some(Linkedin),
                Some(City),
                Some(Country),
                None
            ]
        );
        assert_eq!(m.ignored, vec!["Favourite colour"]);
        assert_eq!(guess_field("Company Domain"), Some(CompanyDomain));
        assert_eq!(guess_field("\u{feff}email"), Some(Email));
        assert_eq!(guess_field("name"), Some(FullName));
    }

    #[test]
    fn map_overrides_and_errors() {
        let h = headers(&["Work Mail", "Mobile", "Notes"]);
        assert!(build_mapping(&h, &[]).is_ok(), "a phone column can make a Lead");
        assert!(build_mapping(&headers(&["Job Title", "City"]), &[]).is_err(), "nothing names a Lead");
        let o = vec![parse_map_arg("work mail=email").unwrap(), parse_map_arg("Mobile=ignore").unwrap()];
        let m = build_mapping(&h, &o).unwrap();
        assert_eq!(m.columns, vec![Some(Field::Email), None, None]);
        assert_eq!(parse_map_arg("a=company domain").unwrap(), ("a".to_string(), Field::CompanyDomain));
        assert!(parse_map_arg("nofield").is_err());
        assert!(parse_map_arg("a=salary").is_err());
        assert!(parse_map_arg("=email").is_err());
        assert!(build_mapping(&h, &[("Nope".into(), Field::Email)]).is_err());
    }

    #[test]
    fn a_column_mapped_twice_keeps_the_first() {
        let m = build_mapping(&headers(&["email", "Email Address"]), &[]).unwrap();
        assert_eq!(m.columns, vec![Some(Field::Email), None]);
    }

    fn people() -> Mapping {
        build_mapping(
            &headers(&[
                "type",
                "first name",
                "last name",
                "email",
                "title",
                "company",
                "website",
                "phone",
                "linkedin",
                "city",
                "country",
            ]),
            &[],
        )
        .unwrap()
    }

    #[test]
    fn valid_person_row() {
        let lead = row_to_lead(
            &people(),
            &row(&[
                "",
                "Ada",
                "Quill",
                "Ada.Quill@Nimbus.example.com",
                "CTO",
                "Nimbus",
                "https://www.nimbus.example/about",
                "+44 20 7946 0001",
                "",
                "Leeds",
                "GB",
            ]),
            "person",
        )
        .unwrap();
        assert_eq!(
            lead,
            json!({
                "type":"person","name":{"first":"Ada","last":"Quill"},"title":"CTO",
                "company":{"name":"Nimbus","domain":"nimbus.example"},
                "contacts":[{"type":"email","value":"ada.quill@nimbus.example.com"},{"type":"phone","value":"+44 20 7946 0001"}],
                "location":{"city":"Leeds","country":"GB"}
            })
        );
    }

    #[test]
    fn linkedin_is_an_identifier() {
        let lead = row_to_lead(
            &people(),
            &row(&["person", "Bo", "", "", "", "", "", "", "https://linkedin.com/in/bo-test", "", ""]),
            "person",
        )
        .unwrap();
        assert_eq!(lead["socials"], json!([{"url":"https://linkedin.com/in/bo-test"}]));
    }

    #[test]
    fn a_name_and_a_company_are_enough() {
        let m = people();
        let lead = row_to_lead(
            &m,
            &row(&["", "Ada", "Quill", "", "", "Nimbus", "www.nimbus.co.uk", "", "", "", ""]),
            "person",
        )
        .unwrap();
        assert_eq!(lead["company"], json!({"name": "Nimbus", "domain": "nimbus.co.uk"}));
        let c = row_to_lead(&m, &row(&["company", "", "", "", "", "Nodomain Inc", "", "", "", "", ""]), "person");
        assert!(c.is_ok(), "a company by its name alone: {c:?}");
    }

    #[test]
    fn invalid_rows_say_why() {
        let m = people();
        let cases = [
            (row(&["", "", "", "", "CEO", "", "", "", "", "Oslo", ""]), "something to find it by"),
            (row(&["", "Bad", "Mail", "not-an-email", "", "", "", "", "", "", ""]), "not an email address"),
            (row(&["", "Two", "Ats", "a@b@c.example.com", "", "", "", "", "", "", ""]), "not an email address"),
            (row(&["", "Sp", "Ace", "a b@c.example.com", "", "", "", "", "", "", ""]), "not an email address"),
            (row(&["", "", "", "", "", "", "", "", "https://example.com/in/x", "", ""]), "something to find it by"),
            (row(&["robot", "", "", "r@x.example.com", "", "", "", "", "", "", ""]), "not person or company"),
            (row(&["company", "", "", "", "", "Bad", "acme", "", "", "", ""]), "not a company domain"),
            (row(&["company", "", "", "", "", "Suffix", "co.uk", "", "", "", ""]), "public suffix"),
            (row(&["", "P", "Q", "p@q.example.com", "", "", "not a domain", "", "", "", ""]), "not a company domain"),
            (row(&["", "L", "", &format!("{}@x.com", "l".repeat(600)), "", "", "", "", "", "", ""]), "512"),
        ];
        for (r, why) in cases {
            let e = row_to_lead(&m, &r, "person").unwrap_err();
            assert!(e.contains(why), "{r:?}: {e}");
        }
    }

    #[test]
    fn company_rows() {
        let lead = row_to_lead(
            &people(),
            &row(&["Company", "", "", "", "", "Nimbus Ltd", "nimbus.example", "", "", "", "GB"]),
            "person",
        )
        .unwrap();
        assert_eq!(
            lead,
            json!({"type":"company","company":{"name":"Nimbus Ltd","domain":"nimbus.example"},"location":{"country":"GB"}})
        );
        // --type company as the default, the name column as the company name.
        let m = build_mapping(&headers(&["name", "domain"]), &[]).unwrap();
        let lead = row_to_lead(&m, &row(&["Acme", "acme.example"]), "company").unwrap();
        assert_eq!(lead, json!({"type":"company","company":{"name":"Acme","domain":"acme.example"}}));
    }

    #[test]
    fn the_email_rule_is_the_apis() {
        let ok = |e: &str| row_to_lead(&people(), &row(&["", "", "", e, "", "", "", "", "", "", ""]), "person").is_ok();
        assert!(ok("a@b.co"));
        assert!(ok("first.last+tag@sub.example.com"));
        for bad in ["a", "@b.co", "a@b", "a@.co", "a@b..co", "a @b.co", "a@b@c.co", "a@b.co/x"] {
            assert!(!ok(bad), "{bad}");
            assert!(puffle_domain::identity::Email::parse(bad).is_err(), "{bad}: the API refuses it too");
        }
    }

    #[test]
    fn rejects_file_name() {
        assert_eq!(default_rejects_path("samples/leads.csv"), PathBuf::from("samples/leads.rejects.csv"));
        assert_eq!(default_rejects_path("x.CSV"), PathBuf::from("x.rejects.csv"));
        assert_eq!(default_rejects_path("dir/data.txt"), PathBuf::from("dir/data.txt.rejects.csv"));
        assert_eq!(default_rejects_path("-"), PathBuf::from("stdin.rejects.csv"));
    }

    #[test]
    fn parse_csv_collects_valid_rejects_and_skips_blank_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.csv");
        std::fs::write(
            &p,
            "\u{feff}Email,Name,Extra\nok@x.example.com,Ok,\nbad,Bad,\n,,\nno-id-here,\nz@x.example.com,Z,,surplus\n",
        )
        .unwrap();
        let opts = ImportOptions {
            file: p.display().to_string(),
            list_id: None,
            default_type: "person".into(),
            overrides: vec![],
            rejects: None,
            delimiter: b',',
            batch_size: 1000,
            dry_run: true,
        };
        let parsed = parse_csv(&opts).unwrap();
        assert_eq!(parsed.headers, vec!["Email", "Name", "Extra"]);
        assert_eq!(parsed.rows, 4);
        assert_eq!(parsed.valid.len(), 1);
        let reasons: Vec<(u64, &str)> = parsed.rejects.iter().map(|r| (r.0, r.2.as_str())).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert_eq!(reasons[0].0, 3);
        assert!(reasons[2].1.contains("4 fields"), "{reasons:?}");
        let out = dir.path().join("r.csv");
        let mut rej = parsed.rejects.clone();
        write_rejects(&out, &parsed.headers, &mut rej).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("Email,Name,Extra,line,reason\nbad,Bad,,3,"), "{text}");
    }
}
