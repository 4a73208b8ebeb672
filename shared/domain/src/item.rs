//! A run's per-Lead item, as `GET /api/enrichment/{id}/items` returns it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::providers::Outcome;
use crate::run::RunError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Pending,
    Running,
    Completed,
    Skipped,
    Failed,
}

impl ItemStatus {
    /// Completed, skipped or failed: the item is settled and never changes.
    pub fn is_terminal(self) -> bool {
        matches!(self, ItemStatus::Completed | ItemStatus::Skipped | ItemStatus::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Pending => "pending",
            ItemStatus::Running => "running",
            ItemStatus::Completed => "completed",
            ItemStatus::Skipped => "skipped",
            ItemStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => ItemStatus::Pending,
            "running" => ItemStatus::Running,
            "completed" => ItemStatus::Completed,
            "skipped" => ItemStatus::Skipped,
            "failed" => ItemStatus::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ItemMetadata {
    pub input_snapshot: Value,
    pub lead_snapshot: Value,
    pub result: Value,
    pub provider: Option<String>,
    pub provider_submission_id: Option<String>,
    /// Outside providers only: the result came from the provider result cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    /// Waterfalls: every step tried (`enrichmentId`, `provider`, `outcome`,
    /// `reason`, `cost`, `durationMs`, `calls`), in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Value>,
    /// LLM enrichments: tokens used (`promptTokens`, `completionTokens`,
    /// `totalTokens`, `calls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ItemTiming {
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
}

/// What one item costs: the credits its run reserved for it, and how they
/// settled. A pending item holds its reservation; a completed one is
/// charged it (unless the enrichment waives cached hits), a skipped or
/// failed one has it released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ItemCost {
    pub reserved: u64,
    pub charged: u64,
    pub released: u64,
}

impl ItemCost {
    fn settle(&mut self, charged: bool) {
        (self.charged, self.released) = if charged { (self.reserved, 0) } else { (0, self.reserved) };
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub id: String,
    pub run_id: String,
    pub lead_id: String,
    pub list_id: Option<String>,
    pub membership_id: Option<String>,
    pub status: ItemStatus,
    pub result: Option<Value>,
    pub skipped_reason: Option<String>,
    pub error: Option<RunError>,
    pub attempts: u32,
    pub metadata: ItemMetadata,
    /// Items written before billing by outcome read as zero.
    #[serde(default)]
    pub cost: ItemCost,
    pub timing: ItemTiming,
}

/// Item ids sort like the Leads they stand for, so pages come in id order.
pub fn item_id(run_id: &str, lead_id: &str) -> String {
    format!("{run_id}.{lead_id}")
}

pub fn membership_id(list_id: &str, lead_id: &str) -> String {
    format!("{list_id}.{lead_id}")
}

impl Item {
    pub fn pending(run_id: &str, lead_id: &str, list_id: Option<&str>, now: &str) -> Item {
        Item {
            id: item_id(run_id, lead_id),
            run_id: run_id.to_string(),
            lead_id: lead_id.to_string(),
            list_id: list_id.map(str::to_string),
            membership_id: list_id.map(|l| membership_id(l, lead_id)),
            status: ItemStatus::Pending,
            result: None,
            skipped_reason: None,
            error: None,
            attempts: 0,
            metadata: ItemMetadata::default(),
            cost: ItemCost::default(),
            timing: ItemTiming { created_at: now.into(), updated_at: now.into(), ..Default::default() },
        }
    }

    /// The credits the run reserved for this item (its `creditsPerLead`).
    pub fn reserving(mut self, credits: u64) -> Item {
        self.cost = ItemCost { reserved: credits, ..Default::default() };
        self
    }

    /// A completed item whose charge the enrichment waives (a cached hit
    /// with `cache.chargeHits: false`): its reservation is released.
    pub fn waive_charge(mut self) -> Item {
        self.cost.settle(false);
        self
    }

    /// A completed item that costs less than the run reserved per Lead (a
    /// waterfall's winning step is cheaper than its dearest): it is charged
    /// `credits` (never more than reserved) and the rest is released.
    pub fn charge_at_most(mut self, credits: u64) -> Item {
        if self.status == ItemStatus::Completed {
            let charged = credits.min(self.cost.reserved);
            self.cost.charged = charged;
            self.cost.released = self.cost.reserved - charged;
        }
        self
    }

    pub fn skipped(mut self, reason: &str, now: &str) -> Item {
        self.status = ItemStatus::Skipped;
        self.cost.settle(false);
        self.skipped_reason = Some(reason.to_string());
        self.timing.updated_at = now.into();
        self.timing.completed_at = Some(now.into());
        self
    }

    pub fn failed(mut self, message: &str, code: &str, now: &str) -> Item {
        self.status = ItemStatus::Failed;
        self.cost.settle(false);
        self.error = Some(RunError { message: message.to_string(), details: serde_json::json!({"code": code}) });
        self.timing.updated_at = now.into();
        self.timing.completed_at = Some(now.into());
        self
    }

    /// Applies a provider outcome; returns the result to write to the
    /// attribute, if any.
    pub fn finish(mut self, outcome: Outcome, now: &str) -> (Item, Option<Value>) {
        match outcome {
            Outcome::Completed(v) => {
                self.status = ItemStatus::Completed;
                self.cost.settle(true);
                self.result = Some(v.clone());
                self.metadata.result = v.clone();
                self.timing.updated_at = now.into();
                self.timing.completed_at = Some(now.into());
                (self, Some(v))
            }
            Outcome::Skipped { reason } => (self.skipped(reason, now), None),
            Outcome::Failed { message, code } => (self.failed(&message, &code, now), None),
        }
    }
}

#[cfg(test)]
mod charge_tests {
    use super::*;

    #[test]
    fn a_cheaper_winner_is_charged_its_price_and_the_rest_released() {
        let done = |c: u64| {
            Item::pending("r", "l", None, "t")
                .reserving(3)
                .finish(Outcome::Completed(serde_json::json!({})), "t")
                .0
                .charge_at_most(c)
        };
        assert_eq!(done(2).cost, ItemCost { reserved: 3, charged: 2, released: 1 });
        assert_eq!(done(9).cost, ItemCost { reserved: 3, charged: 3, released: 0 }, "never more than reserved");
        let missed = Item::pending("r", "l", None, "t").reserving(3).skipped("no_match", "t").charge_at_most(2);
        assert_eq!(missed.cost, ItemCost { reserved: 3, charged: 0, released: 3 }, "a miss stays released");
    }
}
