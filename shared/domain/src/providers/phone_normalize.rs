//! `phone_normalize`: the lead's first phone contact in E.164
//! (`{"e164": "+14155550123"}`).
//!
//! Numbers without a `+country code` are read as numbers of the input's
//! `defaultCountry` (ISO 3166-1 alpha-2, default `US`). The number must be
//! valid for its region (`phonenumber::is_valid`), not merely well-formed.
//! An extension (`x123`, `ext. 12`, `#5`) is accepted and dropped: E.164 has
//! none.
//!
//! No phone contact → `Skipped(missing_input)`; a number that cannot be parsed
//! or is not valid → `Failed(INVALID_PHONE)`; a `defaultCountry` the schema
//! should have rejected → `Failed(INVALID_INPUT)`.
//!
//! The text is screened before it reaches the `phonenumber` parser (ASCII
//! punctuation only, a bounded digit count), because that parser can panic on
//! some degenerate inputs (e.g. a `+` followed by too few digits) and release
//! builds abort on panic.

use std::str::FromStr;

use phonenumber::country::Id;
use phonenumber::Mode;
use serde_json::{json, Value};

use super::{first_contact, skipped_missing, Outcome};
use crate::lead::Lead;

const DEFAULT_COUNTRY: Id = Id::US;
/// Fewer digits than this cannot be a dialable number with its country.
const MIN_DIGITS: usize = 6;
/// E.164 allows 15 digits; leave room for an international or trunk prefix.
const MAX_DIGITS: usize = 18;
/// Longer text is not a phone number (and is not worth parsing).
const MAX_LEN: usize = 64;

fn invalid(raw: &str, why: &str) -> Outcome {
    Outcome::Failed {
        message: format!("`{raw}` is not a valid phone number: {why}"),
        code: "INVALID_PHONE".to_string(),
    }
}

/// The region numbers without `+` are read in.
fn default_country(input: &Value) -> Result<Id, String> {
    match input.get("defaultCountry") {
        None | Some(Value::Null) => Ok(DEFAULT_COUNTRY),
        Some(Value::String(s)) if s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()) => {
            Id::from_str(s).map_err(|_| format!("defaultCountry `{s}` is not a known region"))
        }
        Some(other) => Err(format!("defaultCountry must be an ISO 3166-1 alpha-2 code such as \"US\", got {other}")),
    }
}

/// Splits off an extension and checks the main part is plausible phone text.
/// Returns the main part.
fn screen(raw: &str) -> Result<&str, &'static str> {
    if raw.len() > MAX_LEN {
        return Err("too long");
    }
    let text = raw.trim();
    let text = match text.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("tel:") => text.get(4..).unwrap_or(""),
        _ => text,
    };
    // The main part ends at the first character that is not phone punctuation.
    let end = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.' | '/')))
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    let (main, rest) = text.split_at(end);
    if !rest.is_empty() {
        let rest = rest.trim().to_ascii_lowercase();
        let ext = ["extension", "ext.", "ext", ";ext=", "x", "#"]
            .iter()
            .find_map(|marker| rest.strip_prefix(marker))
            .map(str::trim);
        match ext {
            Some(digits) if !digits.is_empty() && digits.len() <= 10 && digits.chars().all(|c| c.is_ascii_digit()) => {}
            _ => return Err("unexpected characters"),
        }
    }
    let main = main.trim();
    // `+` only as the very first character.
    if main.char_indices().any(|(i, c)| c == '+' && i != 0) {
        return Err("misplaced +");
    }
    let digits = main.chars().filter(|c| c.is_ascii_digit()).count();
    if digits < MIN_DIGITS {
        return Err("too few digits");
    }
    if digits > MAX_DIGITS {
        return Err("too many digits");
    }
    Ok(main)
}

/// `raw` in E.164, read in `country` unless it carries its own country code.
pub(super) fn to_e164(raw: &str, country: Id) -> Result<String, String> {
    let main = screen(raw).map_err(str::to_string)?;
    // A number with its own country code is read without the default
    // region: read "in" the US, `+49 151 …` lost its leading national "1".
    let international = main.starts_with('+');
    let region = if international { None } else { Some(country) };
    let number = phonenumber::parse(region, main).map_err(|e| e.to_string())?;
    if !phonenumber::is_valid(&number) {
        return Err(if international {
            "not a valid international number".to_string()
        } else {
            format!("not a valid number for its region ({})", country.as_ref())
        });
    }
    Ok(number.format().mode(Mode::E164).to_string())
}

pub(super) fn run(lead: &Lead, input: &Value) -> Outcome {
    let Some(raw) = first_contact(lead, "phone") else {
        return skipped_missing();
    };
    let country = match default_country(input) {
        Ok(c) => c,
        Err(message) => return Outcome::Failed { message, code: "INVALID_INPUT".to_string() },
    };
    match to_e164(raw, country) {
        Ok(e164) => Outcome::Completed(json!({ "e164": e164 })),
        Err(why) => invalid(raw, &why),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{contacts, lead};
    use super::*;
    use serde_json::json;

    fn out(phone: &str, input: Value) -> Outcome {
        run(&lead(json!({"contacts": contacts(&[("phone", phone)])})), &input)
    }

    fn done(e164: &str) -> Outcome {
        Outcome::Completed(json!({ "e164": e164 }))
    }

    fn code(o: Outcome) -> String {
        match o {
            Outcome::Failed { code, .. } => code,
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[test]
    fn us_national_formats() {
        for raw in [
            "(415) 555-0123",
            "415-555-0123",
            "415.555.0123",
            "4155550123",
            "1 415 555 0123",
            "+1 415 555 0123",
            "+14155550123",
            "tel:+1-415-555-0123",
        ] {
            assert_eq!(out(raw, json!({})), done("+14155550123"), "{raw}");
        }
    }

    #[test]
    fn default_country_is_used_for_national_numbers() {
        assert_eq!(out("020 7946 0958", json!({"defaultCountry": "GB"})), done("+442079460958"));
        assert_eq!(out("030 123456", json!({"defaultCountry": "DE"})), done("+4930123456"));
        assert_eq!(out("01 23 45 67 89", json!({"defaultCountry": "FR"})), done("+33123456789"));
        // An explicit country code wins over defaultCountry.
        assert_eq!(out("+1 415 555 0123", json!({"defaultCountry": "GB"})), done("+14155550123"));
        // Null means the default (US).
        assert_eq!(out("415 555 0123", json!({"defaultCountry": null})), done("+14155550123"));
    }

    #[test]
    fn extensions_are_dropped() {
        for raw in ["415-555-0123 x12", "415-555-0123 ext. 12", "415-555-0123;ext=12", "415 555 0123 #7"] {
            assert_eq!(out(raw, json!({})), done("+14155550123"), "{raw}");
        }
    }

    #[test]
    fn first_phone_contact_wins() {
        let l = lead(json!({"contacts": contacts(&[
            ("email", "a@b.co"),
            ("phone", "+44 20 7946 0958"),
            ("phone", "415 555 0123"),
        ])}));
        assert_eq!(run(&l, &json!({})), done("+442079460958"));
    }

    #[test]
    fn missing_phone_is_skipped() {
        let skipped = Outcome::Skipped { reason: "missing_input" };
        assert_eq!(run(&lead(json!({})), &json!({})), skipped);
        let l = lead(json!({"contacts": contacts(&[("email", "a@b.co")])}));
        assert_eq!(run(&l, &json!({})), skipped);
        assert_eq!(out("  ", json!({})), skipped);
    }

    #[test]
    fn invalid_phone_fails() {
        for raw in [
            "hello",
            "555",
            "123",
            "+1",
            "+",
            "+9",
            "+99",
            "+999",
            "++14155550123",
            "415+5550123",
            "000 000 0000",
            "415 555 01234567",
            "1234567890123456789012",
            "415-555-0123 call me",
            "415-555-0123 x",
            "１２３４５６７８９０",
            "+1 (000) 555-0123",
        ] {
            assert_eq!(code(out(raw, json!({}))), "INVALID_PHONE", "{raw}");
        }
        match out("nope", json!({})) {
            Outcome::Failed { message, .. } => assert!(message.contains("nope"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_default_country_is_invalid_input() {
        for input in [
            json!({"defaultCountry": "usa"}),
            json!({"defaultCountry": 5}),
            json!({"defaultCountry": "ZZ"}),
            json!({"defaultCountry": "us"}),
        ] {
            assert_eq!(code(out("415 555 0123", input.clone())), "INVALID_INPUT", "{input}");
        }
    }

    /// The parser is only reached with screened text; hammer it with every
    /// region and awkward digit strings to make sure nothing panics.
    #[test]
    fn no_panic_for_any_region() {
        let samples = [
            "000000",
            "0000000000",
            "+000000",
            "+0000000",
            "+100000",
            "+999999",
            "+8000000000",
            "00000000",
            "0011234567",
            "011 44 20 7946 0958",
            "00 44 20 7946 0958",
            "1111111",
            "999999999999999999",
            "+999999999999999999",
            "(((123456)))",
            "1-2-3-4-5-6",
            "+1 800 555 0199",
            "0",
            "+",
            "+-------",
            "8 800 555 35 35",
            "+7 800 555 35 35",
            "+380 44 123 4567",
            "+86 10 1234 5678",
            "06 12 34 56 78",
            "0800 123 456",
        ];
        for a in 'A'..='Z' {
            for b in 'A'..='Z' {
                let Ok(id) = Id::from_str(&format!("{a}{b}")) else {
                    continue;
                };
                for s in samples {
                    let _ = to_e164(s, id);
                }
            }
        }
    }

    #[test]
    fn international_numbers_ignore_the_default_region() {
        for (raw, e164) in [
            ("+49 151 23456789", "+4915123456789"),
            ("+44 20 7946 0958", "+442079460958"),
            ("+33 1 42 68 53 00", "+33142685300"),
            ("+55 11 98765-4321", "+5511987654321"),
        ] {
            assert_eq!(to_e164(raw, Id::US).as_deref(), Ok(e164), "{raw}");
        }
    }
}
