//! Faults injected at the step boundaries of the create and worker flows,
//! for the chaos test: `PUFFLE_FAULTS="after_create_commit=0.3,after_chunk_count=0.2:abort"`.
//!
//! At a named boundary, with the given probability, the flow either fails as
//! if the next SDK call had failed (default) or the process dies on the spot
//! (`:abort`, as a Lambda killed by a timeout would). Off unless the variable
//! is set; production never sets it.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::error::StoreError;

/// The boundaries the chaos test interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Boundary {
    /// The charge, run and key committed; the plan message not yet sent.
    AfterCreateCommit,
    /// A plan step recorded; the next step's message not yet sent.
    AfterPlanRecord,
    /// A chunk counted; the run's completion not yet attempted.
    AfterChunkCount,
    /// The dead-letter handler wrote its items; not yet counted.
    InDeadLetter,
}

impl Boundary {
    fn name(self) -> &'static str {
        match self {
            Boundary::AfterCreateCommit => "after_create_commit",
            Boundary::AfterPlanRecord => "after_plan_record",
            Boundary::AfterChunkCount => "after_chunk_count",
            Boundary::InDeadLetter => "in_dead_letter",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    probability: f64,
    abort: bool,
}

fn faults() -> &'static HashMap<String, Fault> {
    static FAULTS: OnceLock<HashMap<String, Fault>> = OnceLock::new();
    FAULTS.get_or_init(|| parse(&std::env::var("PUFFLE_FAULTS").unwrap_or_default()))
}

fn parse(spec: &str) -> HashMap<String, Fault> {
    spec.split(',')
        .filter_map(|part| {
            let (name, rest) = part.trim().split_once('=')?;
            let (p, mode) = rest.split_once(':').unwrap_or((rest, ""));
            let probability = p.trim().parse::<f64>().ok()?.clamp(0.0, 1.0);
            Some((name.trim().to_string(), Fault { probability, abort: mode.trim() == "abort" }))
        })
        .collect()
}

/// Passes unless a fault is configured for `b` and the dice say so.
pub fn at(b: Boundary) -> Result<(), StoreError> {
    let Some(f) = faults().get(b.name()) else { return Ok(()) };
    if rand::random::<f64>() >= f.probability {
        return Ok(());
    }
    if f.abort {
        tracing::warn!(boundary = b.name(), "injected fault: aborting the process");
        std::process::abort();
    }
    tracing::warn!(boundary = b.name(), "injected fault");
    Err(StoreError::Unavailable(format!("injected fault at {}", b.name())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_probabilities_and_modes() {
        let f = parse("after_create_commit=0.5, after_chunk_count=1:abort,bad,x=notanumber");
        assert_eq!(f.len(), 2);
        assert_eq!(f["after_create_commit"].probability, 0.5);
        assert!(!f["after_create_commit"].abort);
        assert!(f["after_chunk_count"].abort);
    }
}
