//! `job_seniority`: classifies `title` into
//! `{"seniority": "c_level"|"vp"|"director"|"manager"|"senior"|"entry"|"unknown"}`.
//!
//! The title is lowercased and split into words on anything that is not a
//! letter or digit, and rules match whole words or word sequences, so
//! `director` never matches inside another word and `cto` never matches
//! `director`. The highest level any rule finds wins (`Founder & CEO`,
//! `VP & Co-founder` → c_level; `Senior Director` → director; `Assistant
//! Vice President` → vp). Words after `to` are ignored, so `Assistant to the
//! CEO` is entry, not c_level.
//!
//! No title → `Skipped(missing_input)`.

use serde_json::json;

use super::{skipped_missing, Outcome};
use crate::lead::Lead;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Seniority {
    Unknown,
    Entry,
    Senior,
    Manager,
    Director,
    Vp,
    CLevel,
}

impl Seniority {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Seniority::CLevel => "c_level",
            Seniority::Vp => "vp",
            Seniority::Director => "director",
            Seniority::Manager => "manager",
            Seniority::Senior => "senior",
            Seniority::Entry => "entry",
            Seniority::Unknown => "unknown",
        }
    }
}

/// Word sequences per level, most senior first.
const RULES: &[(Seniority, &[&[&str]])] = &[
    (
        Seniority::CLevel,
        &[
            &["ceo"],
            &["cto"],
            &["cfo"],
            &["coo"],
            &["cmo"],
            &["cio"],
            &["ciso"],
            &["cso"],
            &["cpo"],
            &["cro"],
            &["cdo"],
            &["cco"],
            &["cao"],
            &["caio"],
            &["cxo"],
            &["founder"],
            &["cofounder"],
            &["owner"],
            &["chairman"],
            &["chairwoman"],
            &["chairperson"],
            &["president"],
        ],
    ),
    (Seniority::Vp, &[&["vp"], &["svp"], &["evp"], &["avp"], &["vice", "president"], &["vicepresident"]]),
    (Seniority::Director, &[&["director"], &["head"]]),
    (Seniority::Manager, &[&["manager"], &["mgr"]]),
    (
        Seniority::Senior,
        &[
            &["senior"],
            &["sr"],
            &["lead"],
            &["principal"],
            &["staff", "engineer"],
            &["staff", "software"],
            &["staff", "scientist"],
            &["staff", "data"],
        ],
    ),
    (
        Seniority::Entry,
        &[
            &["intern"],
            &["internship"],
            &["junior"],
            &["jr"],
            &["associate"],
            &["assistant"],
            &["trainee"],
            &["apprentice"],
            &["graduate"],
            &["entry", "level"],
        ],
    ),
];

fn contains_seq(words: &[String], seq: &[&str]) -> bool {
    !seq.is_empty() && words.windows(seq.len()).any(|w| w.iter().zip(seq).all(|(a, b)| a == b))
}

/// `Chief <anything> Officer` (Chief Executive Officer, Chief People
/// Officer, ...) — but not `Chief of Staff`.
fn chief_officer(words: &[String]) -> bool {
    match words.iter().position(|w| w == "chief") {
        Some(i) => words.iter().skip(i + 1).any(|w| w == "officer"),
        None => false,
    }
}

pub(super) fn classify(title: &str) -> Seniority {
    let lower = title.to_lowercase();
    let mut words: Vec<String> =
        lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect();
    // "Assistant to the CEO", "Advisor to the President": the role is what
    // comes before `to`.
    if let Some(i) = words.iter().position(|w| w == "to") {
        if i > 0 {
            words.truncate(i);
        }
    }
    let mut best = Seniority::Unknown;
    for (level, seqs) in RULES {
        let hit = seqs.iter().any(|seq| match *seq {
            // "President" is c_level, but "Vice President" is not.
            ["president"] => words
                .iter()
                .enumerate()
                .any(|(i, w)| w == "president" && (i == 0 || words.get(i - 1).map(String::as_str) != Some("vice"))),
            _ => contains_seq(&words, seq),
        }) || (*level == Seniority::CLevel && chief_officer(&words));
        if hit && *level > best {
            best = *level;
        }
    }
    best
}

pub(super) fn run(lead: &Lead) -> Outcome {
    let Some(title) = lead.title.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return skipped_missing();
    };
    Outcome::Completed(json!({ "seniority": classify(title).as_str() }))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::lead;
    use super::*;
    use serde_json::json;

    fn level(title: &str) -> &'static str {
        classify(title).as_str()
    }

    #[test]
    fn c_level() {
        for t in [
            "CEO",
            "Chief Executive Officer",
            "CTO",
            "Founder & CEO",
            "Co-founder",
            "Cofounder",
            "co founder and CTO",
            "CFO/COO",
            "Chief People Officer",
            "President",
            "President & CEO",
            "Owner",
            "VP & Co-founder",
        ] {
            assert_eq!(level(t), "c_level", "{t}");
        }
    }

    #[test]
    fn vp() {
        for t in [
            "VP of Engineering",
            "Vice President Sales",
            "SVP",
            "EVP, Operations",
            "Vice-President, Marketing",
            "Assistant Vice President",
        ] {
            assert_eq!(level(t), "vp", "{t}");
        }
    }

    #[test]
    fn director() {
        for t in [
            "Director of Sales",
            "Head of Marketing",
            "Senior Director, Product",
            "Associate Director",
            "Managing Director",
        ] {
            assert_eq!(level(t), "director", "{t}");
        }
    }

    #[test]
    fn manager() {
        for t in ["Engineering Manager", "Sr. Product Manager", "Assistant Manager", "Sales Mgr"] {
            assert_eq!(level(t), "manager", "{t}");
        }
    }

    #[test]
    fn senior() {
        for t in [
            "Senior Software Engineer",
            "Lead Engineer",
            "Principal",
            "Principal Data Scientist",
            "Sr. Developer",
            "Staff Engineer",
            "Team Lead",
        ] {
            assert_eq!(level(t), "senior", "{t}");
        }
    }

    #[test]
    fn entry() {
        for t in [
            "Intern",
            "Junior Developer",
            "Associate",
            "Assistant",
            "Marketing Intern",
            "Executive Assistant to the CEO",
            "Graduate Trainee",
            "Senior Associate",
        ] {
            let expected = if t == "Senior Associate" { "senior" } else { "entry" };
            assert_eq!(level(t), expected, "{t}");
        }
    }

    #[test]
    fn unknown() {
        for t in [
            "Software Engineer",
            "Accountant",
            "Chief of Staff",
            "Consultant",
            "???",
            "Directory Services Engineer",
            "Interne",
            "Headhunter",
            "Leader",
        ] {
            assert_eq!(level(t), "unknown", "{t}");
        }
    }

    #[test]
    fn word_boundaries() {
        // "cto" is inside "director", "director" inside "directorate",
        // "ceo" inside "ceologist": none of them match.
        assert_eq!(level("Director"), "director");
        assert_eq!(level("Directorate Coordinator"), "unknown");
        assert_eq!(level("Vice Presidential Aide"), "unknown");
        assert_eq!(level("Internal Auditor"), "unknown");
        assert_eq!(level("Vector Specialist"), "unknown");
        assert_eq!(level("ceologist"), "unknown");
        assert_eq!(level("HEAD OF GROWTH"), "director");
    }

    #[test]
    fn run_outputs_and_missing_title() {
        assert_eq!(run(&lead(json!({"title": "VP of Engineering"}))), Outcome::Completed(json!({"seniority": "vp"})));
        assert_eq!(run(&lead(json!({"title": "Barista"}))), Outcome::Completed(json!({"seniority": "unknown"})));
        let skipped = Outcome::Skipped { reason: "missing_input" };
        assert_eq!(run(&lead(json!({}))), skipped);
        assert_eq!(run(&lead(json!({"title": "  "}))), skipped);
        assert_eq!(run(&lead(json!({"title": null}))), skipped);
    }
}
