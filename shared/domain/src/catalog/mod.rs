//! The enrichment catalog: what a client can run against its leads.
//!
//! Each enrichment is one JSON data file in `enrichments/`, compiled into the
//! binary (`build.rs` lists the directory) and parsed once. An enrichment
//! bound to an outside provider (`toolBinding.type = "http"`) is that one
//! file; a built-in also needs its function in [`crate::providers`] (bound
//! by `toolBinding.provider`). `PUFFLE_CATALOG_DIR` adds the `*.json` files
//! of a directory at start (local stacks and tests; a broken file stops the
//! process at its first catalog read); a file there with a built-in's slug
//! replaces that entry.
//!
//! Workspaces define their own enrichments too ([`custom`]); those live in
//! the store, not here.

pub mod custom;

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::binding::ToolBinding;
use crate::lead::LeadType;

/// One catalog entry, as stored in its data file and returned by the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrichment {
    /// `enr_<slug>`.
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// The kind of lead the enrichment reads.
    pub subject: LeadType,
    pub version: u32,
    /// Disabled enrichments are neither found nor listed.
    pub enabled: bool,
    /// `"public"` (listed) or `"internal"` (runnable by id/slug, never listed).
    pub visibility: String,
    /// JSON Schema for the run's `input` object.
    pub input_schema: Value,
    /// JSON Schema of one lead's result.
    pub output_schema: Value,
    pub default_output: DefaultOutput,
    /// The lead attribute the result is written to unless the run overrides it.
    pub default_output_attribute_key: String,
    /// `"allow"`: a run may choose another attribute key.
    pub output_override_policy: String,
    pub cost_model: CostModel,
    /// `{"type":"builtin","provider":"<slug>"}` or an HTTP binding.
    pub tool_binding: ToolBinding,
    /// Why a listed enrichment cannot run now (e.g. a secret it needs is not
    /// configured); set when listing, never in a data file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultOutput {
    /// `"lead"`: results are written into the lead's attributes.
    pub target: String,
    pub attribute_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostModel {
    /// The credit ledger action charged, `enrichment.<slug>`.
    pub credit_action: String,
    pub credits_per_lead: u64,
}

// `SOURCES: &[(file name, text)]`, one per data file in `enrichments/`.
include!(concat!(env!("OUT_DIR"), "/catalog_sources.rs"));

/// The environment variable naming a directory of extra catalog files.
pub const CATALOG_DIR_ENV: &str = "PUFFLE_CATALOG_DIR";

static CATALOG: OnceLock<Vec<Enrichment>> = OnceLock::new();

/// One compiled input-schema validator per catalog entry (same order as
/// [`all`]), each compiled on first use.
type Compiled = Result<jsonschema::Validator, String>;
static VALIDATORS: OnceLock<Vec<OnceLock<Compiled>>> = OnceLock::new();

/// Every enrichment (enabled or not, public or internal), sorted by slug.
pub fn all() -> &'static [Enrichment] {
    CATALOG.get_or_init(|| {
        let mut list: Vec<Enrichment> = SOURCES
            .iter()
            .map(|(file, text)| {
                // The data files are part of the source tree and covered by
                // tests, so a parse failure is a build defect, not user input.
                parse_entry(text).unwrap_or_else(|e| panic!("catalog data file {file} is invalid: {e}"))
            })
            .collect();
        if let Some(dir) = std::env::var_os(CATALOG_DIR_ENV).filter(|d| !d.is_empty()) {
            // Operator configuration: failing loudly beats running without a provider.
            let extra = read_dir(std::path::Path::new(&dir)).unwrap_or_else(|e| panic!("{CATALOG_DIR_ENV}: {e}"));
            // A file with a built-in's slug replaces it: an operator tunes a
            // provider to its plan (rate, timeouts) or points it at a proxy.
            list.retain(|b| !extra.iter().any(|x| x.slug == b.slug));
            list.extend(extra);
        }
        list.sort_by(|a, b| a.slug.cmp(&b.slug));
        if let Some(w) = list.windows(2).find(|w| w[0].slug == w[1].slug) {
            panic!("two catalog entries have the slug {}", w[0].slug);
        }
        list
    })
}

/// Parses and checks one catalog data file.
pub fn parse_entry(text: &str) -> Result<Enrichment, String> {
    let e: Enrichment = serde_json::from_str(text).map_err(|e| e.to_string())?;
    e.tool_binding.validate().map_err(|errs| format!("toolBinding: {}", errs.join("; ")))?;
    e.compile_output()?;
    jsonschema::validator_for(&e.input_schema).map_err(|err| format!("inputSchema: {err}"))?;
    Ok(e)
}

fn read_dir(dir: &std::path::Path) -> Result<Vec<Enrichment>, String> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            parse_entry(&text).map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect()
}

/// An enabled enrichment by id (`enr_email_domain`) or slug (`email_domain`).
/// Internal ones are found too (they are runnable, just not listed).
pub fn find(id_or_slug: &str) -> Option<&'static Enrichment> {
    all().iter().find(|e| e.enabled && (e.id == id_or_slug || e.slug == id_or_slug))
}

/// The enrichments a client sees: enabled and `visibility == "public"`,
/// sorted by slug. `q` (trimmed; empty means no filter) is a case-insensitive
/// substring match over slug, name and description.
pub fn listed(q: Option<&str>) -> Vec<&'static Enrichment> {
    all().iter().filter(|e| e.enabled && e.visibility == "public").filter(|e| matches_query(e, q)).collect()
}

/// The listing's `q`: trimmed (empty means no filter), a case-insensitive
/// substring of slug, name or description.
pub fn matches_query(e: &Enrichment, q: Option<&str>) -> bool {
    match q.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty()) {
        None => true,
        Some(q) => [&e.slug, &e.name, &e.description].iter().any(|field| field.to_lowercase().contains(q.as_str())),
    }
}

fn compile(schema: &Value) -> Compiled {
    jsonschema::validator_for(schema).map_err(|e| format!("inputSchema is not a valid JSON Schema: {e}"))
}

fn errors_of(validator: &jsonschema::Validator, input: &Value) -> Result<(), Vec<String>> {
    let errors: Vec<String> = validator
        .iter_errors(input)
        .map(|e| {
            let path = e.instance_path.as_str();
            let path = if path.is_empty() { "/" } else { path };
            format!("{path}: {e}")
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

impl Enrichment {
    /// Validates a run's `input` against `inputSchema`.
    ///
    /// Each error reads `<instance path>: <problem>`, the path being a JSON
    /// pointer (`/` for the input object itself), e.g.
    /// `/defaultCountry: "usa" does not match "^[A-Z]{2}$"`.
    ///
    /// Catalog entries compile their schema once and cache it; an
    /// `Enrichment` built or modified elsewhere is compiled on each call.
    pub fn validate_input(&self, input: &Value) -> Result<(), Vec<String>> {
        let catalog = all();
        let cached = catalog.iter().position(|e| e.slug == self.slug && e.input_schema == self.input_schema);
        match cached {
            Some(index) => {
                let slots = VALIDATORS.get_or_init(|| catalog.iter().map(|_| OnceLock::new()).collect());
                let compiled = match slots.get(index) {
                    Some(slot) => slot.get_or_init(|| compile(&catalog[index].input_schema)),
                    None => return self.validate_uncached(input),
                };
                match compiled {
                    Ok(validator) => errors_of(validator, input),
                    Err(message) => Err(vec![message.clone()]),
                }
            }
            None => self.validate_uncached(input),
        }
    }

    /// The outputSchema's validator (compiled per call: callers keep it for a chunk).
    pub fn compile_output(&self) -> Result<jsonschema::Validator, String> {
        jsonschema::validator_for(&self.output_schema)
            .map_err(|e| format!("outputSchema is not a valid JSON Schema: {e}"))
    }

    /// Names of the secrets the enrichment's calls need (none for built-ins
    /// and waterfalls).
    pub fn secret_names(&self) -> std::collections::BTreeSet<String> {
        self.tool_binding.secret_names()
    }

    fn validate_uncached(&self, input: &Value) -> Result<(), Vec<String>> {
        match compile(&self.input_schema) {
            Ok(validator) => errors_of(&validator, input),
            Err(message) => Err(vec![message]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SLUGS: &[&str] = crate::providers::PROVIDERS;

    fn builtins() -> impl Iterator<Item = &'static Enrichment> {
        all().iter().filter(|e| matches!(e.tool_binding, ToolBinding::Builtin { .. }))
    }

    #[test]
    fn all_is_sorted_by_slug_and_complete() {
        let slugs: Vec<&str> = builtins().map(|e| e.slug.as_str()).collect();
        assert_eq!(slugs, SLUGS);
        let all_slugs: Vec<&str> = all().iter().map(|e| e.slug.as_str()).collect();
        let mut sorted = all_slugs.clone();
        sorted.sort();
        assert_eq!(all_slugs, sorted);
        assert_eq!(SOURCES.len(), all().len(), "every file in enrichments/ is compiled in");
    }

    #[test]
    fn the_documented_provider_example_is_a_valid_catalog_file() {
        let e = parse_entry(include_str!("examples/acme_email_finder.json")).unwrap();
        let h = e.tool_binding.http().expect("an http binding");
        assert_eq!(h.secret_names().into_iter().collect::<Vec<_>>(), ["ACME_API_KEY"]);
        assert_eq!(e.default_output_attribute_key, e.slug);
        assert_eq!(e.cost_model.credit_action, format!("enrichment.{}", e.slug));
        let raw: Value = serde_json::from_str(include_str!("examples/acme_email_finder.json")).unwrap();
        assert_eq!(serde_json::to_value(&e).unwrap(), raw, "no field of the example is ignored");
    }

    #[test]
    fn broken_entries_are_refused_with_their_reason() {
        let mut raw: Value = serde_json::from_str(include_str!("examples/acme_email_finder.json")).unwrap();
        raw["toolBinding"]["request"]["method"] = json!("FETCH");
        assert!(parse_entry(&raw.to_string()).unwrap_err().contains("request.method"));
        raw["toolBinding"] = json!({"type": "http"});
        assert!(parse_entry(&raw.to_string()).is_err());
        raw["toolBinding"] = json!({"type": "builtin", "provider": "x"});
        raw["outputSchema"] = json!({"type": 5});
        assert!(parse_entry(&raw.to_string()).unwrap_err().contains("outputSchema"));
    }

    #[test]
    fn data_files_follow_the_conventions() {
        for e in all() {
            assert!(e.disabled_reason.is_none(), "{}", e.slug);
            assert_eq!(e.id, format!("enr_{}", e.slug));
            assert_eq!(e.version, 1, "{}", e.slug);
            assert!(e.enabled, "{}", e.slug);
            assert_eq!(e.default_output_attribute_key, e.slug);
            assert_eq!(e.default_output.target, "lead");
            assert_eq!(e.default_output.attribute_key, e.slug);
            assert_eq!(e.output_override_policy, "allow");
            assert_eq!(e.cost_model.credit_action, format!("enrichment.{}", e.slug));
            assert!((1..=5).contains(&e.cost_model.credits_per_lead), "{}", e.slug);
            match &e.tool_binding {
                ToolBinding::Builtin { provider } => assert_eq!(provider, &e.slug),
                other => assert_eq!(other.validate(), Ok(()), "{}", e.slug),
            }
            assert!(matches!(e.visibility.as_str(), "public" | "internal"));
            assert_eq!(e.input_schema["type"], "object", "{}", e.slug);
            assert_eq!(e.input_schema["additionalProperties"], false, "{}", e.slug);
            assert!(jsonschema::validator_for(&e.output_schema).is_ok(), "{}", e.slug);
            assert!(jsonschema::validator_for(&e.input_schema).is_ok(), "{}", e.slug);
        }
    }

    #[test]
    fn data_files_have_no_unknown_fields() {
        // Serialising the parsed entry gives back the file exactly, so no key
        // in a data file is silently ignored (e.g. a misspelt one).
        for (file, text) in SOURCES {
            let raw: Value = serde_json::from_str(text).unwrap();
            let parsed: Enrichment = serde_json::from_value(raw.clone()).unwrap();
            assert_eq!(serde_json::to_value(&parsed).unwrap(), raw, "{file}");
        }
    }

    /// Every shipped provider-backed entry (HTTP or LLM) returns a 0–1
    /// `confidence` and an `evidence` object, and takes `minConfidence`.
    #[test]
    fn provider_entries_carry_confidence_and_evidence_and_take_min_confidence() {
        let mut seen = 0;
        for e in all() {
            if !matches!(e.tool_binding, ToolBinding::Http(_) | ToolBinding::Llm(_)) {
                continue;
            }
            seen += 1;
            let out = &e.output_schema;
            assert_eq!(out["properties"]["confidence"]["type"], "number", "{}", e.slug);
            assert_eq!(out["properties"]["confidence"]["minimum"], 0, "{}", e.slug);
            assert_eq!(out["properties"]["confidence"]["maximum"], 1, "{}", e.slug);
            assert!(out["required"].as_array().unwrap().contains(&json!("confidence")), "{}", e.slug);
            assert_eq!(out["properties"]["evidence"]["type"], "object", "{}", e.slug);
            assert_eq!(e.input_schema["properties"]["minConfidence"]["maximum"], 1, "{}", e.slug);
        }
        assert!(seen >= 6, "{seen} provider entries");
    }

    /// A waterfall's steps (and check) are catalog enrichments of its subject
    /// that are not waterfalls, and its price is the most a Lead can cost:
    /// the dearest step (only the winning step is charged).
    #[test]
    fn waterfalls_name_real_steps_and_reserve_the_dearest() {
        let mut seen = 0;
        for e in all() {
            let ToolBinding::Waterfall(w) = &e.tool_binding else { continue };
            seen += 1;
            let mut dearest = 0;
            for s in &w.steps {
                let step = find(&s.enrichment_id).unwrap_or_else(|| panic!("{}: no step {}", e.slug, s.enrichment_id));
                assert_eq!(step.subject, e.subject, "{}", s.enrichment_id);
                assert!(!matches!(step.tool_binding, ToolBinding::Waterfall(_)));
                dearest = dearest.max(step.cost_model.credits_per_lead);
            }
            if let Some(c) = &w.check {
                assert!(find(&c.enrichment_id).is_some(), "{}", c.enrichment_id);
            }
            assert_eq!(e.cost_model.credits_per_lead, dearest, "{}", e.slug);
        }
        assert!(seen >= 1);
    }

    #[test]
    fn subjects() {
        let subject = |s: &str| find(s).unwrap().subject;
        assert_eq!(subject("email_domain"), LeadType::Person);
        assert_eq!(subject("name_parse"), LeadType::Person);
        assert_eq!(subject("phone_normalize"), LeadType::Person);
        assert_eq!(subject("job_seniority"), LeadType::Person);
        assert_eq!(subject("internal_echo"), LeadType::Person);
        assert_eq!(subject("company_domain"), LeadType::Company);
    }

    #[test]
    fn find_by_id_and_slug() {
        assert_eq!(find("enr_email_domain").unwrap().slug, "email_domain");
        assert_eq!(find("email_domain").unwrap().id, "enr_email_domain");
        assert_eq!(find("company_domain").unwrap().id, "enr_company_domain");
        // Internal enrichments are runnable by id or slug.
        assert_eq!(find("enr_internal_echo").unwrap().visibility, "internal");
        assert!(find("nope").is_none());
        assert!(find("").is_none());
        assert!(find("EMAIL_DOMAIN").is_none());
    }

    #[test]
    fn listing_hides_internal() {
        let slugs: Vec<&str> = listed(None).iter().map(|e| e.slug.as_str()).collect();
        assert_eq!(
            slugs,
            [
                "apollo_people_match",
                "company_classify",
                "company_domain",
                "email_domain",
                "email_verify",
                "hunter_email_finder",
                "hunter_email_verifier",
                "job_seniority",
                "name_parse",
                "pdl_person",
                "persona_summary",
                "phone_normalize",
                "website_overview",
                "work_email"
            ]
        );
        assert!(listed(Some("echo")).is_empty());
        assert!(listed(Some("internal")).is_empty());
    }

    #[test]
    fn q_filters_case_insensitively_over_slug_name_description() {
        let slugs = |q: &str| -> Vec<&str> { listed(Some(q)).iter().map(|e| e.slug.as_str()).collect() };
        // slug / name
        assert_eq!(slugs("PHONE"), ["phone_normalize"]);
        assert_eq!(slugs("Job Sen"), ["job_seniority"]);
        // "_domain" is in two slugs
        assert_eq!(slugs("_domain"), ["company_domain", "email_domain"]);
        // description only
        assert!(slugs("free-mail").contains(&"email_domain"));
        assert_eq!(slugs("e.164"), ["phone_normalize"]);
        assert!(slugs("zzz-no-match").is_empty());
        // blank q means no filter
        assert_eq!(listed(Some("  ")).len(), listed(None).len());
        assert_eq!(listed(Some("")).len(), listed(None).len());
    }

    #[test]
    fn empty_object_is_valid_for_every_enrichment() {
        for e in all() {
            assert_eq!(e.validate_input(&json!({})), Ok(()), "{}", e.slug);
        }
    }

    #[test]
    fn unknown_property_is_rejected() {
        for e in all() {
            let errs = e.validate_input(&json!({"bogus": 1})).unwrap_err();
            assert_eq!(errs.len(), 1, "{}: {errs:?}", e.slug);
            assert!(errs[0].starts_with("/: "), "{errs:?}");
            assert!(errs[0].contains("bogus"), "{errs:?}");
        }
    }

    #[test]
    fn non_object_input_is_rejected() {
        let e = find("email_domain").unwrap();
        for bad in [json!(null), json!([]), json!("x"), json!(1)] {
            let errs = e.validate_input(&bad).unwrap_err();
            assert!(errs.iter().any(|m| m.contains("object")), "{bad}: {errs:?}");
        }
    }

    #[test]
    fn phone_default_country_is_checked() {
        let e = find("phone_normalize").unwrap();
        assert_eq!(e.validate_input(&json!({"defaultCountry": "GB"})), Ok(()));
        assert_eq!(e.validate_input(&json!({"defaultCountry": "US"})), Ok(()));

        let errs = e.validate_input(&json!({"defaultCountry": "usa"})).unwrap_err();
        assert!(!errs.is_empty());
        assert!(errs.iter().all(|m| m.starts_with("/defaultCountry: ")), "{errs:?}");
        assert!(errs.iter().any(|m| m.contains("^[A-Z]{2}$")), "{errs:?}");

        let errs = e.validate_input(&json!({"defaultCountry": 5})).unwrap_err();
        assert!(errs.iter().all(|m| m.starts_with("/defaultCountry: ")), "{errs:?}");
        assert!(errs.iter().any(|m| m.contains("string")), "{errs:?}");

        // Right shape, but not a region phonenumber knows.
        let errs = e.validate_input(&json!({"defaultCountry": "ZZ"})).unwrap_err();
        assert!(errs.iter().all(|m| m.starts_with("/defaultCountry: ")), "{errs:?}");

        let errs = e.validate_input(&json!({"defaultCountry": "us", "x": true})).unwrap_err();
        assert!(errs.len() >= 2, "{errs:?}");
    }

    #[test]
    fn default_country_enum_matches_phonenumber_regions() {
        use std::str::FromStr;
        let e = find("phone_normalize").unwrap();
        let listed: Vec<String> = e.input_schema["properties"]["defaultCountry"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        for code in &listed {
            assert!(phonenumber::country::Id::from_str(code).is_ok(), "{code}");
        }
        // Every two-letter code phonenumber knows is in the enum.
        for a in 'A'..='Z' {
            for b in 'A'..='Z' {
                let code = format!("{a}{b}");
                if phonenumber::country::Id::from_str(&code).is_ok() {
                    assert!(listed.contains(&code), "{code} missing from enum");
                }
            }
        }
        assert!(listed.len() > 200);
    }

    #[test]
    fn modified_enrichment_validates_against_its_own_schema() {
        let mut e = find("email_domain").unwrap().clone();
        e.input_schema = json!({"type": "object", "required": ["x"]});
        let errs = e.validate_input(&json!({})).unwrap_err();
        assert!(errs[0].contains("\"x\""), "{errs:?}");
        assert_eq!(e.validate_input(&json!({"x": 1})), Ok(()));

        e.input_schema = json!({"type": 12});
        let errs = e.validate_input(&json!({})).unwrap_err();
        assert!(errs[0].starts_with("inputSchema is not a valid JSON Schema"), "{errs:?}");
    }

    #[test]
    fn enrichment_serialises_camel_case() {
        let v = serde_json::to_value(find("email_domain").unwrap()).unwrap();
        assert_eq!(v["defaultOutputAttributeKey"], "email_domain");
        assert_eq!(v["costModel"]["creditsPerLead"], 1);
        assert_eq!(v["defaultOutput"]["attributeKey"], "email_domain");
        assert_eq!(v["subject"], "person");
    }
}
