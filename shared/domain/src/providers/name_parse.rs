//! `name_parse`: splits `name.full` into `{"first", "last"}`.
//!
//! Rules (chosen for Western-order names, the common case for B2B leads):
//! - Leading honorifics (`Dr.`, `Mr`, `Ms.`, `Prof.`, ...) and trailing
//!   suffixes (`Jr.`, `Sr`, `III`, `PhD`, ...) are dropped, with or without the
//!   dot, case-insensitively, as long as a name word remains.
//! - `Last, First [Middle]` (exactly one comma left after dropping a comma
//!   suffix such as `, Jr.`): last = the part before the comma; first = the
//!   first word after it; the middle names are dropped, since the comma says
//!   where the last name is.
//! - Otherwise first = the first word and last = **all** remaining words:
//!   `Ada King Lovelace` → first `Ada`, last `King Lovelace`. Middle names and
//!   multi-word surnames (`van der Berg`, `García Márquez`) cannot be told
//!   apart without a dictionary; keeping them in `last` loses nothing.
//! - A single word → `last: null`. Original capitalisation is kept.
//!
//! No `name.full` (or nothing left after the rules) → `Skipped(missing_input)`.

use serde_json::{json, Value};

use super::{skipped_missing, Outcome};
use crate::lead::Lead;

/// Kept short on purpose: words like "Lady" or "Hon" are also given names.
const HONORIFICS: &[&str] = &["mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "rev"];

const SUFFIXES: &[&str] = &["jr", "sr", "ii", "iii", "iv", "phd", "md", "esq", "mba", "cpa"];

/// Lowercased word without dots, for comparing against the lists above.
fn key(word: &str) -> String {
    word.chars().filter(|c| *c != '.').collect::<String>().to_lowercase()
}

fn is_honorific(word: &str) -> bool {
    HONORIFICS.contains(&key(word).as_str())
}

fn is_suffix(word: &str) -> bool {
    SUFFIXES.contains(&key(word).as_str())
}

/// Drops honorifics from the front and suffixes from the end, always keeping
/// at least one word.
fn strip<'a>(mut words: &'a [&'a str]) -> &'a [&'a str] {
    while let [first, rest @ ..] = words {
        if !rest.is_empty() && is_honorific(first) {
            words = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = words {
        if !rest.is_empty() && is_suffix(last) {
            words = rest;
        } else {
            break;
        }
    }
    words
}

/// The first word and the rest (joined by one space, None when empty).
fn first_and_rest(words: &[&str]) -> Option<(String, Option<String>)> {
    let (first, rest) = words.split_first()?;
    let rest = (!rest.is_empty()).then(|| rest.join(" "));
    Some((first.to_string(), rest))
}

/// Returns `(first, last)`, or None when no name word is present.
pub(super) fn parse(full: &str) -> Option<(String, Option<String>)> {
    let mut parts: Vec<&str> = full.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    // Comma-separated suffix groups (`Smith, John, Jr.` / `John Smith, PhD`).
    while parts.len() > 1 {
        let is_suffix_part = parts.last().map(|p| p.split_whitespace().all(is_suffix)).unwrap_or(false);
        if is_suffix_part {
            parts.pop();
        } else {
            break;
        }
    }

    if let [last_part, given_part] = parts.as_slice() {
        // `Last, First Middle`.
        let last_words: Vec<&str> = last_part.split_whitespace().collect();
        let given_words: Vec<&str> = given_part.split_whitespace().collect();
        let last_words = strip(&last_words);
        let given_words = strip(&given_words);
        // An honorific may sit on the surname side (`Dr. Lovelace, Ada`).
        let first = given_words.first()?.to_string();
        let last = (!last_words.is_empty()).then(|| last_words.join(" "));
        return Some((first, last));
    }

    let joined = parts.join(" ");
    let words: Vec<&str> = joined.split_whitespace().collect();
    let words = strip(&words);
    // A lone honorific or suffix is not a name.
    if let [only] = words {
        if is_honorific(only) || is_suffix(only) {
            return None;
        }
    }
    first_and_rest(words)
}

pub(super) fn run(lead: &Lead) -> Outcome {
    let Some(full) = lead.name.full.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
        return skipped_missing();
    };
    match parse(full) {
        Some((first, last)) => Outcome::Completed(json!({
            "first": first,
            "last": last.map(Value::String).unwrap_or(Value::Null),
        })),
        None => skipped_missing(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::lead;
    use super::*;
    use serde_json::json;

    fn out(full: &str) -> Outcome {
        run(&lead(json!({"name": {"full": full}})))
    }

    fn done(first: &str, last: Option<&str>) -> Outcome {
        Outcome::Completed(json!({"first": first, "last": last}))
    }

    #[test]
    fn first_last() {
        assert_eq!(out("Ada Lovelace"), done("Ada", Some("Lovelace")));
        assert_eq!(out("  Ada   Lovelace  "), done("Ada", Some("Lovelace")));
    }

    #[test]
    fn multi_part_last_name_keeps_the_rest() {
        assert_eq!(out("Ada King Lovelace"), done("Ada", Some("King Lovelace")));
        assert_eq!(out("Jan van der Berg"), done("Jan", Some("van der Berg")));
    }

    #[test]
    fn honorifics_are_dropped() {
        assert_eq!(out("Dr. Ada Lovelace"), done("Ada", Some("Lovelace")));
        assert_eq!(out("Mr John Smith"), done("John", Some("Smith")));
        assert_eq!(out("ms. Jane Doe"), done("Jane", Some("Doe")));
        assert_eq!(out("Prof. Dr. Hans Weber"), done("Hans", Some("Weber")));
    }

    #[test]
    fn suffixes_are_dropped() {
        assert_eq!(out("Martin Luther King Jr."), done("Martin", Some("Luther King")));
        assert_eq!(out("John Smith Sr"), done("John", Some("Smith")));
        assert_eq!(out("Thurston Howell III"), done("Thurston", Some("Howell")));
        assert_eq!(out("John Smith, Jr."), done("John", Some("Smith")));
        assert_eq!(out("Jane Doe, PhD"), done("Jane", Some("Doe")));
        assert_eq!(out("Dr. Jane Doe, MD, PhD"), done("Jane", Some("Doe")));
    }

    #[test]
    fn last_comma_first() {
        assert_eq!(out("Lovelace, Ada"), done("Ada", Some("Lovelace")));
        assert_eq!(out("Lovelace, Ada King"), done("Ada", Some("Lovelace")));
        assert_eq!(out("van der Berg, Jan"), done("Jan", Some("van der Berg")));
        assert_eq!(out("Smith, Dr. John"), done("John", Some("Smith")));
        assert_eq!(out("Smith, John, Jr."), done("John", Some("Smith")));
        assert_eq!(out("Smith Jr., John"), done("John", Some("Smith")));
    }

    #[test]
    fn single_token_has_null_last() {
        assert_eq!(out("Cher"), done("Cher", None));
        assert_eq!(out("Dr. Cher"), done("Cher", None));
        assert_eq!(out("Cher,"), done("Cher", None));
    }

    #[test]
    fn capitalisation_is_kept() {
        assert_eq!(out("ada LOVELACE"), done("ada", Some("LOVELACE")));
    }

    #[test]
    fn missing_name_is_skipped() {
        let skipped = Outcome::Skipped { reason: "missing_input" };
        assert_eq!(run(&lead(json!({}))), skipped);
        assert_eq!(run(&lead(json!({"name": {"first": "Ada"}}))), skipped);
        assert_eq!(out("   "), skipped);
        assert_eq!(out(","), skipped);
        assert_eq!(out(" , , "), skipped);
        assert_eq!(out("Dr."), skipped);
        assert_eq!(out("Jr."), skipped);
    }

    #[test]
    fn odd_input_does_not_panic() {
        for s in [",Ada", "Ada,", ", ,Ada", "Dr., Jr.", "Mr, Smith", "., .", "Ünïcødé Nâmé", "👩‍💻 Dev", "a,b,c,d"]
        {
            let _ = out(s);
        }
        assert_eq!(out(",Ada"), done("Ada", None));
        assert_eq!(out("a,b,c"), done("a", Some("b c")));
    }
}
