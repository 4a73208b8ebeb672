//! `--scope` shorthands and JSON-or-`@file` arguments.
//!
//! Scope forms:
//! - a JSON object, sent as given (`{"type":"list","listId":"list_1"}`);
//! - `@file.json`: the JSON object in a file;
//! - `list:<listId>` → `{"type":"list","listId"}`;
//! - `leads:<id1>,<id2>` → `{"type":"explicit_leads","leadIds":[...]}`;
//! - `filtered:<listId>:<filter>` → `{"type":"filtered_list","listId","filter"}`,
//!   where `<filter>` is the filter JSON (`{"all":[...]}`) or a shorthand of
//!   comma-separated conditions: `field=value` (eq), `field!=value` (neq),
//!   `field~value` (contains), `field?` (exists), `!field` (not_exists), e.g.
//!   `filtered:list_1:type=person`.

use serde_json::{json, Map, Value};

use crate::error::{CliError, Result};

const FORMS: &str = "use a JSON object, @file.json, list:<listId>, leads:<id1>,<id2> or filtered:<listId>:<filter>";

/// JSON text, `@path` (a file) or `@-` (stdin).
pub fn json_arg(flag: &str, raw: &str) -> Result<Value> {
    let (text, origin) = read_text(flag, raw)?;
    serde_json::from_str(&text).map_err(|e| CliError::usage(format!("{flag}: {origin} is not valid JSON: {e}")))
}

/// Like [`json_arg`] but the value must be an object.
pub fn json_object_arg(flag: &str, raw: &str) -> Result<Value> {
    let v = json_arg(flag, raw)?;
    if !v.is_object() {
        return Err(CliError::usage(format!("{flag} must be a JSON object, got `{}`", short(&v.to_string()))));
    }
    Ok(v)
}

fn read_text(flag: &str, raw: &str) -> Result<(String, String)> {
    match raw.strip_prefix('@') {
        Some("-") => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| CliError::usage(format!("{flag}: cannot read stdin: {e}")))?;
            Ok((s, "stdin".into()))
        }
        Some(path) => std::fs::read_to_string(path)
            .map(|s| (s, format!("the file {path}")))
            .map_err(|e| CliError::usage(format!("{flag}: cannot read {path}: {e}"))),
        None => Ok((raw.to_string(), "the value".into())),
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Parses a `--scope` value into the scope JSON the API takes. The shape of
/// JSON scopes is left to the API (it answers shape errors precisely).
pub fn parse_scope(raw: &str) -> Result<Value> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(CliError::usage(format!("--scope is empty: {FORMS}")));
    }
    if t.starts_with('{') || t.starts_with('@') {
        return json_object_arg("--scope", t);
    }
    let (kind, rest) = t.split_once(':').ok_or_else(|| CliError::usage(format!("--scope `{}`: {FORMS}", short(t))))?;
    match kind {
        "list" => Ok(json!({"type": "list", "listId": one_id(rest, "list:<listId>")?})),
        "leads" => {
            let ids = split_ids(rest);
            if ids.is_empty() {
                return Err(CliError::usage("--scope leads:<id1>,<id2> needs at least one lead id"));
            }
            Ok(json!({"type": "explicit_leads", "leadIds": ids}))
        }
        "filtered" => {
            let (list, filter) = rest.split_once(':').ok_or_else(|| {
                CliError::usage("--scope filtered:<listId>:<filter> needs a filter after the list id")
            })?;
            let list = one_id(list, "filtered:<listId>:<filter>")?;
            Ok(json!({"type": "filtered_list", "listId": list, "filter": parse_filter(filter)?}))
        }
        other => Err(CliError::usage(format!("--scope: unknown form `{other}:`; {FORMS}"))),
    }
}

fn one_id(s: &str, form: &str) -> Result<String> {
    let s = s.trim();
    if s.is_empty() || s.contains(',') || s.contains(char::is_whitespace) {
        return Err(CliError::usage(format!("--scope {form} needs exactly one id, got `{}`", short(s))));
    }
    Ok(s.to_string())
}

/// Comma- or whitespace-separated ids, empties dropped.
pub fn split_ids(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// A filter: JSON (`{"all":[...]}`) or the condition shorthand.
pub fn parse_filter(raw: &str) -> Result<Value> {
    let t = raw.trim();
    if t.starts_with('{') {
        return json_object_arg("--scope filter", t);
    }
    if t.is_empty() {
        return Err(CliError::usage("--scope filtered:<listId>:<filter> has an empty filter"));
    }
    let mut all = vec![];
    for part in t.split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        all.push(condition(part)?);
    }
    if all.is_empty() {
        return Err(CliError::usage("--scope filtered:<listId>:<filter> has an empty filter"));
    }
    Ok(json!({"all": all}))
}

fn condition(part: &str) -> Result<Value> {
    let bad = || {
        CliError::usage(format!(
            "filter condition `{}`: use field=value, field!=value, field~value, field? or !field",
            short(part)
        ))
    };
    let mut m = Map::new();
    let (field, op, value) = if let Some((f, v)) = part.split_once("!=") {
        (f, "neq", Some(v))
    } else if let Some((f, v)) = part.split_once('=') {
        (f, "eq", Some(v))
    } else if let Some((f, v)) = part.split_once('~') {
        (f, "contains", Some(v))
    } else if let Some(f) = part.strip_suffix('?') {
        (f, "exists", None)
    } else if let Some(f) = part.strip_prefix('!') {
        (f, "not_exists", None)
    } else {
        return Err(bad());
    };
    let field = field.trim();
    if field.is_empty() || field.contains(char::is_whitespace) {
        return Err(bad());
    }
    m.insert("field".into(), json!(field));
    m.insert("op".into(), json!(op));
    if let Some(v) = value {
        m.insert("value".into(), scalar(v.trim(), op));
    }
    Ok(Value::Object(m))
}

/// `true`, `false` and numbers compare as JSON values for eq/neq
/// (`attributes.email_domain.freeMail=false`); everything else is a string.
fn scalar(v: &str, op: &str) -> Value {
    if op != "contains" {
        match v {
            "true" => return json!(true),
            "false" => return json!(false),
            _ => {}
        }
        if let Ok(n) = v.parse::<i64>() {
            return json!(n);
        }
    }
    json!(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthands() {
        assert_eq!(parse_scope("list:list_1").unwrap(), json!({"type":"list","listId":"list_1"}));
        assert_eq!(
            parse_scope("leads:lead_a, lead_b,,lead_c").unwrap(),
            json!({"type":"explicit_leads","leadIds":["lead_a","lead_b","lead_c"]})
        );
        assert_eq!(
            parse_scope("filtered:list_1:type=person").unwrap(),
            json!({"type":"filtered_list","listId":"list_1","filter":{"all":[{"field":"type","op":"eq","value":"person"}]}})
        );
        assert_eq!(
            parse_scope(r#"filtered:list_1:{"all":[{"field":"title","op":"exists"}]}"#).unwrap(),
            json!({"type":"filtered_list","listId":"list_1","filter":{"all":[{"field":"title","op":"exists"}]}})
        );
    }

    #[test]
    fn filter_shorthand_ops() {
        let f =
            parse_filter("type=company,title~vp,company.domain!=x.com,title?,!attributes.seniority,attributes.email_domain.freeMail=false")
                .unwrap();
        assert_eq!(
            f,
            json!({"all":[
                {"field":"type","op":"eq","value":"company"},
                {"field":"title","op":"contains","value":"vp"},
                {"field":"company.domain","op":"neq","value":"x.com"},
                {"field":"title","op":"exists"},
                {"field":"attributes.seniority","op":"not_exists"},
                {"field":"attributes.email_domain.freeMail","op":"eq","value":false}
            ]})
        );
    }

    #[test]
    fn json_scopes_pass_through() {
        let raw = r#"{"type":"list","listId":"l","extra":1}"#;
        assert_eq!(parse_scope(raw).unwrap(), serde_json::from_str::<Value>(raw).unwrap());
    }

    #[test]
    fn bad_scopes_are_usage_errors() {
        for bad in [
            "",
            "list",
            "list:",
            "list:a,b",
            "leads:",
            "leads: , ",
            "filtered:list_1",
            "filtered::type=person",
            "filtered:l:",
            "filtered:l:type",
            "filtered:l:=x",
            "everything:x",
            "{not json",
            "[1,2]",
            "@/nonexistent/scope.json",
        ] {
            assert!(matches!(parse_scope(bad), Err(CliError::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn json_args_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.json");
        std::fs::write(&p, r#"{"defaultCountry":"GB"}"#).unwrap();
        let v = json_object_arg("--input", &format!("@{}", p.display())).unwrap();
        assert_eq!(v, json!({"defaultCountry":"GB"}));
        assert!(json_object_arg("--input", "[1]").is_err());
        assert!(json_arg("--input", "nope").is_err());
        assert_eq!(parse_scope(&format!("@{}", p.display())).unwrap(), json!({"defaultCountry":"GB"}));
    }
}
