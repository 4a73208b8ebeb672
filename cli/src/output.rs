//! What goes to stdout: the API's JSON body (default), aligned tables for
//! people, and CSV / JSON Lines for record listings (items, Leads, catalog).

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use serde_json::Value;

use crate::error::{CliError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The API's JSON body (pretty on a terminal, one line otherwise)
    Json,
    /// Aligned columns for people (long values truncated)
    Table,
    /// CSV with a header row (listings: results, lead, list lead, catalog)
    Csv,
    /// One JSON object per line (listings: results, lead, list lead, catalog)
    Jsonl,
}

impl Format {
    pub fn is_listing_only(self) -> bool {
        matches!(self, Format::Csv | Format::Jsonl)
    }
}

/// Refuses csv/jsonl for commands that answer one object.
pub fn require_single_object_format(format: Format, command: &str) -> Result<()> {
    if format.is_listing_only() {
        return Err(CliError::usage(format!(
            "--format {} is for listings (enrichment results, lead, list lead, the catalog); `{command}` takes json or table",
            format!("{format:?}").to_lowercase()
        )));
    }
    Ok(())
}

/// Writes to stdout; a closed pipe (`| head`) ends the program quietly.
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let r = o
        .write_all(text.as_bytes())
        .and_then(|_| if text.ends_with('\n') { Ok(()) } else { o.write_all(b"\n") })
        .and_then(|_| o.flush());
    if let Err(e) = r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(crate::error::exit::LOCAL);
    }
}

pub fn json_text(v: &Value) -> String {
    if std::io::stdout().is_terminal() {
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    } else {
        v.to_string()
    }
}

pub fn print_json(v: &Value) {
    out(&json_text(v));
}

/// A cell's text: strings as they are, null empty, the rest as JSON.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |acc, k| acc.get(k))
}

/// `abcdef…` at `max` characters (one-line: newlines become spaces).
pub fn truncate(s: &str, max: usize) -> String {
    let s: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if s.chars().count() <= max {
        s
    } else if max == 0 {
        String::new()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// Aligned columns, each at most `max_width` characters (longer cells are
/// truncated with `…`), two spaces apart, header first.
pub fn render_table(headers: &[String], rows: &[Vec<String>], max_width: usize) -> String {
    let n = headers.len();
    let cells: Vec<Vec<String>> = std::iter::once(headers.to_vec())
        .chain(rows.iter().cloned())
        .map(|r| (0..n).map(|i| truncate(r.get(i).map(String::as_str).unwrap_or(""), max_width)).collect())
        .collect();
    let widths: Vec<usize> = (0..n).map(|i| cells.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut s = String::new();
    for r in &cells {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == n {
                line.push_str(c);
            } else {
                line.push_str(c);
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// An object as `key  value` rows, nested objects flattened to dotted keys.
pub fn kv_table(v: &Value) -> String {
    let mut rows = vec![];
    flatten("", v, &mut rows, 0);
    let rows: Vec<Vec<String>> = rows.into_iter().map(|(k, v)| vec![k, v]).collect();
    render_table(&["field".into(), "value".into()], &rows, 80)
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>, depth: usize) {
    match v {
        Value::Object(m) if depth < 4 && !m.is_empty() => {
            for (k, x) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, x, out, depth + 1);
            }
        }
        other => out.push((if prefix.is_empty() { "value".into() } else { prefix.to_string() }, cell(Some(other)))),
    }
}

// ---- Leads -------------------------------------------------------------

const LEAD_COLUMNS: &[&str] = &[
    "id",
    "type",
    "name",
    "title",
    "company",
    "companyDomain",
    "email",
    "phone",
    "linkedin",
    "city",
    "country",
    "createdAt",
    "updatedAt",
];

fn contact(lead: &Value, kind: &str) -> String {
    lead.get("contacts")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(kind)))
        .map(|c| cell(c.get("value")))
        .unwrap_or_default()
}

fn lead_field(lead: &Value, col: &str) -> String {
    match col {
        "name" => cell(get(lead, "name.full")),
        "company" => cell(get(lead, "company.name")),
        "companyDomain" => cell(get(lead, "company.domain")),
        "email" | "phone" => contact(lead, col),
        "linkedin" => lead
            .get("socials")
            .and_then(Value::as_array)
            .and_then(|s| s.first())
            .map(|s| cell(s.get("url")))
            .unwrap_or_default(),
        "city" => cell(get(lead, "location.city")),
        "country" => cell(get(lead, "location.country")),
        other => cell(lead.get(other)),
    }
}

fn attribute_keys(leads: &[Value]) -> Vec<String> {
    let keys: BTreeSet<String> = leads
        .iter()
        .filter_map(|l| l.get("attributes").and_then(Value::as_object))
        .flat_map(|m| m.keys().cloned())
        .collect();
    keys.into_iter().collect()
}

pub fn leads_table(leads: &[Value]) -> String {
    let cols = ["id", "type", "name", "title", "company", "email", "phone"];
    let keys = attribute_keys(leads);
    let mut headers: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
    headers.extend(keys.iter().cloned());
    let rows: Vec<Vec<String>> = leads
        .iter()
        .map(|l| {
            let mut r: Vec<String> = cols.iter().map(|c| lead_field(l, c)).collect();
            r.extend(keys.iter().map(|k| compact_result(l.get("attributes").and_then(|a| a.get(k)))));
            r
        })
        .collect();
    render_table(&headers, &rows, 32)
}

/// Leads as CSV: fixed columns, then one `attributes.<key>` column per key.
pub fn leads_csv(leads: &[Value]) -> Result<String> {
    let keys = attribute_keys(leads);
    let mut headers: Vec<String> = LEAD_COLUMNS.iter().map(|c| c.to_string()).collect();
    headers.extend(keys.iter().map(|k| format!("attributes.{k}")));
    let rows = leads.iter().map(|l| {
        let mut r: Vec<String> = LEAD_COLUMNS.iter().map(|c| lead_field(l, c)).collect();
        r.extend(keys.iter().map(|k| cell(l.get("attributes").and_then(|a| a.get(k)))));
        r
    });
    to_csv(&headers, rows)
}

// ---- Items -------------------------------------------------------------

/// A result for a table cell: `{"domain":"a.com","freeMail":false}` →
/// `domain=a.com freeMail=false`.
fn compact_result(v: Option<&Value>) -> String {
    match v {
        Some(Value::Object(m)) => m.iter().map(|(k, x)| format!("{k}={}", cell(Some(x)))).collect::<Vec<_>>().join(" "),
        other => cell(other),
    }
}

fn item_note(item: &Value) -> String {
    match (item.get("skippedReason").and_then(Value::as_str), get(item, "error.message").and_then(Value::as_str)) {
        (Some(r), _) => r.to_string(),
        (None, Some(m)) => m.to_string(),
        _ => String::new(),
    }
}

pub fn items_table(items: &[Value]) -> String {
    let headers: Vec<String> = ["leadId", "status", "result", "note"].iter().map(|s| s.to_string()).collect();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| vec![cell(i.get("leadId")), cell(i.get("status")), compact_result(i.get("result")), item_note(i)])
        .collect();
    render_table(&headers, &rows, 48)
}

/// Items as CSV: `leadId,status`, one `result.<key>` column per key of the
/// results (a non-object result is one `result` column), then the reasons.
pub fn items_csv(items: &[Value]) -> Result<String> {
    let mut keys = BTreeSet::new();
    let mut scalar = false;
    for i in items {
        match i.get("result") {
            Some(Value::Object(m)) => keys.extend(m.keys().cloned()),
            None | Some(Value::Null) => {}
            Some(_) => scalar = true,
        }
    }
    let mut headers: Vec<String> = vec!["itemId".into(), "leadId".into(), "status".into()];
    if scalar {
        headers.push("result".into());
    }
    headers.extend(keys.iter().map(|k| format!("result.{k}")));
    headers.extend(["skippedReason", "error", "attempts", "completedAt"].iter().map(|s| s.to_string()));
    let rows = items.iter().map(|i| {
        let mut r = vec![cell(i.get("id")), cell(i.get("leadId")), cell(i.get("status"))];
        let result = i.get("result");
        if scalar {
            r.push(if result.is_some_and(Value::is_object) { String::new() } else { cell(result) });
        }
        r.extend(keys.iter().map(|k| cell(result.and_then(|x| x.get(k)))));
        r.push(cell(i.get("skippedReason")));
        r.push(cell(get(i, "error.message")));
        r.push(cell(i.get("attempts")));
        r.push(cell(get(i, "timing.completedAt")));
        r
    });
    to_csv(&headers, rows)
}

// ---- Catalog -----------------------------------------------------------

pub fn catalog_table(enrichments: &[Value]) -> String {
    let headers: Vec<String> =
        ["slug", "subject", "credits/lead", "attribute", "name"].iter().map(|s| s.to_string()).collect();
    let rows: Vec<Vec<String>> = enrichments
        .iter()
        .map(|e| {
            vec![
                cell(e.get("slug")),
                cell(e.get("subject")),
                cell(get(e, "costModel.creditsPerLead")),
                cell(e.get("defaultOutputAttributeKey")),
                cell(e.get("name")),
            ]
        })
        .collect();
    render_table(&headers, &rows, 48)
}

pub fn catalog_csv(enrichments: &[Value]) -> Result<String> {
    let headers: Vec<String> =
        ["id", "slug", "subject", "version", "creditsPerLead", "attributeKey", "name", "description"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let rows = enrichments.iter().map(|e| {
        vec![
            cell(e.get("id")),
            cell(e.get("slug")),
            cell(e.get("subject")),
            cell(e.get("version")),
            cell(get(e, "costModel.creditsPerLead")),
            cell(e.get("defaultOutputAttributeKey")),
            cell(e.get("name")),
            cell(e.get("description")),
        ]
    });
    to_csv(&headers, rows)
}

pub fn jsonl(records: &[Value]) -> String {
    let mut s = String::new();
    for r in records {
        s.push_str(&r.to_string());
        s.push('\n');
    }
    s
}

pub fn to_csv(headers: &[String], rows: impl Iterator<Item = Vec<String>>) -> Result<String> {
    let mut w = csv::Writer::from_writer(vec![]);
    let err = |e: csv::Error| CliError::Local(format!("cannot write CSV: {e}"));
    w.write_record(headers).map_err(err)?;
    for r in rows {
        w.write_record(&r).map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| CliError::Local(format!("cannot write CSV: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_truncate() {
        let t = render_table(
            &["a".into(), "bb".into(), "c".into()],
            &[vec!["x".into(), "a very long value here".into(), "z".into()], vec!["yy".into()]],
            10,
        );
        assert_eq!(t, "a   bb          c\nx   a very lo…  z\nyy\n");
        assert_eq!(truncate("line\nbreak", 20), "line break");
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn kv_flattens() {
        let t = kv_table(&json!({"run":{"id":"r1","scope":{"counts":{"completed":3}},"error":null}}));
        assert!(t.contains("run.id"));
        assert!(t.contains("run.scope.counts.completed  3"), "{t}");
    }

    #[test]
    fn items_csv_has_result_columns() {
        let items = vec![
            json!({"id":"i1","leadId":"lead_1","status":"completed","result":{"domain":"a.com","freeMail":false},"attempts":1,"timing":{"completedAt":"t"}}),
            json!({"id":"i2","leadId":"lead_2","status":"skipped","result":null,"skippedReason":"missing_input","attempts":0,"timing":{}}),
        ];
        let csv = items_csv(&items).unwrap();
        let mut r = csv::Reader::from_reader(csv.as_bytes());
        let h: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
        assert_eq!(
            h,
            vec![
                "itemId",
                "leadId",
                "status",
                "result.domain",
                "result.freeMail",
                "skippedReason",
                "error",
                "attempts",
                "completedAt"
            ]
        );
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(&rows[0][3], "a.com");
        assert_eq!(&rows[0][4], "false");
        assert_eq!(&rows[1][5], "missing_input");
    }

    #[test]
    fn leads_csv_and_table() {
        let leads = vec![json!({
            "id":"lead_1","type":"person","name":{"full":"Ada Quill"},"title":"CTO",
            "company":{"name":"Nimbus","domain":"nimbus.example.com"},
            "contacts":[{"type":"email","value":"ada@nimbus.example.com"},{"type":"phone","value":"+44 20 7946 0001"}],
            "socials":[{"url":"https://linkedin.com/in/ada"}],"location":{"city":"Leeds","country":"GB"},
            "attributes":{"seniority":{"seniority":"c_level"}},"createdAt":"t","updatedAt":"t"
        })];
        let csv = leads_csv(&leads).unwrap();
        assert!(csv.starts_with(
            "id,type,name,title,company,companyDomain,email,phone,linkedin,city,country,createdAt,updatedAt,attributes.seniority\n"
        ));
        assert!(csv.contains("ada@nimbus.example.com"));
        let t = leads_table(&leads);
        assert!(t.contains("seniority=c_level"), "{t}");
    }
}
