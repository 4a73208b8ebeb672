//! The pure part of a worker chunk: from the Leads it read and the results
//! the enrichment gave, the items (and attribute values) to write; from the
//! items as they ended up, the counts. The adapter keeps the rows.

use serde_json::Value;

use crate::item::{Item, ItemCost, ItemStatus};
use crate::lead::Lead;
use crate::providers::Outcome;

/// How one chunk moves the counts (pending shrinks by the chunk's size) and
/// the credits: what its items were charged and released, settled in the
/// same write that counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkDelta {
    pub size: u64,
    pub completed: u64,
    pub skipped: u64,
    pub failed: u64,
    pub charged: u64,
    pub released: u64,
}

/// What the chunk knows of one Lead before writing its item.
pub enum LeadState<'a> {
    /// The Lead was deleted since the run was planned.
    Gone,
    /// `skip_existing`, and another run already wrote the attribute.
    HasAttribute,
    /// Enriched: the outcome and who produced it.
    Enriched { lead: &'a Lead, outcome: Outcome, provider: String, provider_submission_id: Option<String> },
}

/// The terminal item for one Lead and the value to write to its attribute.
pub fn finish_item(base: Item, state: LeadState<'_>, input: &Value, now: &str) -> (Item, Option<Value>) {
    match state {
        LeadState::Gone => (base.failed("the lead no longer exists", "LEAD_NOT_FOUND", now), None),
        LeadState::HasAttribute => (base.skipped("attribute_exists", now), None),
        LeadState::Enriched { lead, outcome, provider, provider_submission_id } => {
            let mut item = base;
            item.metadata.input_snapshot = input.clone();
            item.metadata.lead_snapshot = serde_json::to_value(lead).unwrap_or(Value::Null);
            item.metadata.provider = Some(provider);
            item.metadata.provider_submission_id = provider_submission_id;
            item.finish(outcome, now)
        }
    }
}

/// Counts a chunk from the statuses (and settled costs) its items actually
/// have. None while any is still pending or running (the chunk is not
/// finished: do not count it).
pub fn delta_of(size: usize, items: impl IntoIterator<Item = (ItemStatus, ItemCost)>) -> Option<ChunkDelta> {
    let mut d = ChunkDelta { size: size as u64, ..Default::default() };
    let mut seen = 0;
    for (s, cost) in items {
        seen += 1;
        d.charged += cost.charged;
        d.released += cost.released;
        match s {
            ItemStatus::Completed => d.completed += 1,
            ItemStatus::Skipped => d.skipped += 1,
            ItemStatus::Failed => d.failed += 1,
            ItemStatus::Pending | ItemStatus::Running => return None,
        }
    }
    (seen == size).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Item {
        Item::pending("run_1", "lead_1", None, "t0")
    }

    #[test]
    fn a_gone_lead_fails_and_an_existing_attribute_skips() {
        let (i, v) = finish_item(base(), LeadState::Gone, &json!({}), "t1");
        assert_eq!((i.status, v), (ItemStatus::Failed, None));
        assert_eq!(i.error.unwrap().details["code"], "LEAD_NOT_FOUND");
        let (i, _) = finish_item(base(), LeadState::HasAttribute, &json!({}), "t1");
        assert_eq!(i.skipped_reason.as_deref(), Some("attribute_exists"));
    }

    #[test]
    fn an_enriched_lead_keeps_its_snapshots_and_value() {
        let lead = crate::providers::test_support::lead(json!({"name":{"full":"Ada"}}));
        let state = LeadState::Enriched {
            lead: &lead,
            outcome: Outcome::Completed(json!({"x":1})),
            provider: "builtin:x".into(),
            provider_submission_id: None,
        };
        let (i, v) = finish_item(base(), state, &json!({"k":2}), "t1");
        assert_eq!(i.status, ItemStatus::Completed);
        assert_eq!(v, Some(json!({"x":1})));
        assert_eq!(i.metadata.input_snapshot, json!({"k":2}));
        assert_eq!(i.metadata.provider.as_deref(), Some("builtin:x"));
    }

    #[test]
    fn counts_and_credits_come_from_finished_items_only() {
        use ItemStatus::*;
        let (hit, miss) =
            (ItemCost { reserved: 2, charged: 2, released: 0 }, ItemCost { reserved: 2, charged: 0, released: 2 });
        assert_eq!(
            delta_of(3, [(Completed, hit), (Skipped, miss), (Failed, miss)]),
            Some(ChunkDelta { size: 3, completed: 1, skipped: 1, failed: 1, charged: 2, released: 4 })
        );
        assert_eq!(delta_of(2, [(Completed, hit), (Pending, ItemCost::default())]), None);
        // An item missing from the read is not finished either.
        assert_eq!(delta_of(2, [(Completed, hit)]), None);
    }

    #[test]
    fn items_settle_their_reservation_by_outcome() {
        let lead = crate::providers::test_support::lead(json!({"name":{"full":"Ada"}}));
        let enriched =
            |outcome| LeadState::Enriched { lead: &lead, outcome, provider: "p".into(), provider_submission_id: None };
        let settle = |state| finish_item(base().reserving(3), state, &json!({}), "t1").0.cost;
        let charged = ItemCost { reserved: 3, charged: 3, released: 0 };
        let released = ItemCost { reserved: 3, charged: 0, released: 3 };
        assert_eq!(settle(enriched(Outcome::Completed(json!({"x":1})))), charged);
        assert_eq!(settle(enriched(Outcome::Skipped { reason: "no_match" })), released);
        assert_eq!(settle(enriched(Outcome::Skipped { reason: "missing_input" })), released);
        let failed = Outcome::Failed { message: "m".into(), code: "PROVIDER_ERROR".into() };
        assert_eq!(settle(enriched(failed)), released);
        assert_eq!(settle(LeadState::Gone), released);
        assert_eq!(settle(LeadState::HasAttribute), released);
        assert_eq!(base().reserving(3).skipped("run_cancelled", "t1").cost, released);
        let (hit, _) = finish_item(base().reserving(3), enriched(Outcome::Completed(json!({}))), &json!({}), "t1");
        assert_eq!(hit.waive_charge().cost, released);
    }
}
