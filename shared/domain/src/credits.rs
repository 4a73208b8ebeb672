//! Credits: what a run costs, and the ledger's entry kinds.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    Grant,
    Charge,
    Refund,
}

/// One append-only ledger line. `amount` is always positive; the kind says
/// which way it moved the balance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    pub id: String,
    pub kind: LedgerKind,
    pub amount: u64,
    pub reason: String,
    #[serde(default)]
    pub run_id: Option<String>,
    pub created_at: String,
}

impl LedgerEntry {
    fn new(kind: LedgerKind, amount: u64, reason: impl Into<String>, run_id: Option<&str>, now: &str) -> LedgerEntry {
        LedgerEntry {
            id: crate::ids::new_id("led"),
            kind,
            amount,
            reason: reason.into(),
            run_id: run_id.map(str::to_string),
            created_at: now.to_string(),
        }
    }

    /// Credits taken from the balance for a run.
    pub fn charge(amount: u64, reason: impl Into<String>, run_id: &str, now: &str) -> LedgerEntry {
        Self::new(LedgerKind::Charge, amount, reason, Some(run_id), now)
    }

    /// Credits a run gives back (dispatch failed, scope shrank, work not done).
    pub fn refund(amount: u64, reason: impl Into<String>, run_id: &str, now: &str) -> LedgerEntry {
        Self::new(LedgerKind::Refund, amount, reason, Some(run_id), now)
    }

    /// Credits added to a workspace.
    pub fn grant(amount: u64, reason: impl Into<String>, now: &str) -> LedgerEntry {
        Self::new(LedgerKind::Grant, amount, reason, None, now)
    }

    pub fn signed(&self) -> i128 {
        match self.kind {
            LedgerKind::Grant | LedgerKind::Refund => self.amount as i128,
            LedgerKind::Charge => -(self.amount as i128),
        }
    }
}

/// Cost of a run: leads × credits per lead. None on overflow (a caller bug,
/// reported as a 400 by the app).
pub fn cost(lead_count: u64, credits_per_lead: u64) -> Option<u64> {
    lead_count.checked_mul(credits_per_lead)
}

/// The balance a ledger implies; the audit compares it with the stored one.
pub fn replay(entries: &[LedgerEntry]) -> i128 {
    entries.iter().map(LedgerEntry::signed).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: LedgerKind, amount: u64) -> LedgerEntry {
        LedgerEntry { id: "x".into(), kind, amount, reason: "r".into(), run_id: None, created_at: "t".into() }
    }

    #[test]
    fn replay_adds_grants_and_refunds_and_subtracts_charges() {
        let l = [e(LedgerKind::Grant, 100), e(LedgerKind::Charge, 30), e(LedgerKind::Refund, 10)];
        assert_eq!(replay(&l), 80);
    }

    #[test]
    fn cost_checks_overflow() {
        assert_eq!(cost(10, 3), Some(30));
        assert_eq!(cost(u64::MAX, 2), None);
    }
}
