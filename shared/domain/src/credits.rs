//! Credits: what a run costs, how each item settles, and the ledger's lines.
//!
//! Billing by outcome: create reserves `leadCount × creditsPerLead` (the
//! balance drops by it); each item then settles once — a `completed` item
//! is charged (the reservation becomes a charge, the balance does not move
//! again), a `skipped` or `failed` one is released (its credits return to
//! the balance). So at any moment
//! `balance = grants − charges − held`, with `held = reserves − charges −
//! releases` the credits reserved for items not settled yet, zero once every
//! run is terminal.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    Grant,
    /// Credits set aside for a run when it is created (balance −).
    Reserve,
    /// Reserved credits a found result consumed (balance unchanged).
    Charge,
    /// Reserved credits returned for items that found nothing, failed or
    /// never ran (balance +). Older lines named it `refund`.
    #[serde(alias = "refund")]
    Release,
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

    /// Credits a new run sets aside.
    pub fn reserve(amount: u64, reason: impl Into<String>, run_id: &str, now: &str) -> LedgerEntry {
        Self::new(LedgerKind::Reserve, amount, reason, Some(run_id), now)
    }

    /// Reserved credits that found results consumed.
    pub fn charge(amount: u64, reason: impl Into<String>, run_id: &str, now: &str) -> LedgerEntry {
        Self::new(LedgerKind::Charge, amount, reason, Some(run_id), now)
    }

    /// Reserved credits given back (a miss, a failure, a cancel, a failed
    /// dispatch, a scope that shrank).
    pub fn release(amount: u64, reason: impl Into<String>, run_id: &str, now: &str) -> LedgerEntry {
        Self::new(LedgerKind::Release, amount, reason, Some(run_id), now)
    }

    /// Credits added to a workspace.
    pub fn grant(amount: u64, reason: impl Into<String>, now: &str) -> LedgerEntry {
        Self::new(LedgerKind::Grant, amount, reason, None, now)
    }

    /// How the line moved the balance.
    pub fn signed(&self) -> i128 {
        match self.kind {
            LedgerKind::Grant | LedgerKind::Release => self.amount as i128,
            LedgerKind::Reserve => -(self.amount as i128),
            LedgerKind::Charge => 0,
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

/// A ledger summed by kind, and what is still held for unsettled items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub grants: u64,
    pub reserves: u64,
    pub charges: u64,
    pub releases: u64,
}

impl Totals {
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a LedgerEntry>) -> Totals {
        let mut t = Totals::default();
        for e in entries {
            let slot = match e.kind {
                LedgerKind::Grant => &mut t.grants,
                LedgerKind::Reserve => &mut t.reserves,
                LedgerKind::Charge => &mut t.charges,
                LedgerKind::Release => &mut t.releases,
            };
            *slot += e.amount;
        }
        t
    }

    /// Reserved and neither charged nor released yet (negative only if the
    /// ledger is wrong: more settled than reserved).
    pub fn held(&self) -> i128 {
        self.reserves as i128 - self.charges as i128 - self.releases as i128
    }

    /// `grants − charges − held`: what the balance must be.
    pub fn expected_balance(&self) -> i128 {
        self.grants as i128 - self.charges as i128 - self.held()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: LedgerKind, amount: u64) -> LedgerEntry {
        LedgerEntry { id: "x".into(), kind, amount, reason: "r".into(), run_id: None, created_at: "t".into() }
    }

    #[test]
    fn a_reservation_settles_into_charges_and_releases() {
        // 100 granted; a run of 10 Leads at 3 reserves 30; 4 found (12
        // charged), 6 missed (18 released).
        let mut l = vec![e(LedgerKind::Grant, 100), e(LedgerKind::Reserve, 30)];
        let open = Totals::of(&l);
        assert_eq!((replay(&l), open.held(), open.expected_balance()), (70, 30, 70));
        l.extend([e(LedgerKind::Charge, 12), e(LedgerKind::Release, 18)]);
        let done = Totals::of(&l);
        assert_eq!((replay(&l), done.held(), done.expected_balance()), (88, 0, 88));
    }

    #[test]
    fn older_refund_lines_read_as_releases() {
        let e: LedgerEntry = serde_json::from_value(serde_json::json!({
            "id": "led_1", "kind": "refund", "amount": 3, "reason": "dispatch failed", "createdAt": "t"
        }))
        .unwrap();
        assert_eq!((e.kind, e.signed()), (LedgerKind::Release, 3));
    }

    #[test]
    fn cost_checks_overflow() {
        assert_eq!(cost(10, 3), Some(30));
        assert_eq!(cost(u64::MAX, 2), None);
    }
}

/// A workspace's balance is spread over [`BUCKETS`] items so that
/// concurrent creates (and chunks settling) in one workspace update
/// different items instead of queueing on one: DynamoDB cancels concurrent
/// transactions on the same item. Each bucket's balance never goes below
/// zero, and the balance is their sum.
pub const BUCKETS: u32 = 8;

/// Where some of a balance lives: one of the [`BUCKETS`], or the workspace
/// item itself (workspaces created before buckets kept their balance there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bucket {
    Workspace,
    Spread(u32),
}

/// How much to take from which bucket to cover `cost`: the fullest first,
/// so as few items as possible are touched; equal buckets in the order
/// given (callers rotate it, so concurrent creates do not all reach for
/// the same ones). None when the balances do not add up to the cost (the
/// caller answers 402).
pub fn draws(balances: &[(Bucket, u64)], cost: u64) -> Option<Vec<(Bucket, u64)>> {
    let mut by_size: Vec<(Bucket, u64)> = balances.iter().copied().filter(|(_, b)| *b > 0).collect();
    // Stable: ties keep the caller's order.
    by_size.sort_by_key(|b| std::cmp::Reverse(b.1));
    let mut left = cost;
    let mut out = vec![];
    for (bucket, balance) in by_size {
        if left == 0 {
            break;
        }
        let take = balance.min(left);
        out.push((bucket, take));
        left -= take;
    }
    (left == 0).then_some(out)
}

/// `amount` split over every bucket as evenly as whole credits allow (a
/// grant spreads, so the next creates find credits wherever they look).
pub fn spread(amount: u64) -> Vec<(Bucket, u64)> {
    let (each, rest) = (amount / BUCKETS as u64, amount % BUCKETS as u64);
    (0..BUCKETS).map(|k| (Bucket::Spread(k), each + u64::from((k as u64) < rest))).filter(|(_, a)| *a > 0).collect()
}

#[cfg(test)]
mod bucket_tests {
    use super::*;

    #[test]
    fn draws_take_the_fullest_buckets_first_and_cover_the_cost_exactly() {
        let b = [(Bucket::Spread(0), 3), (Bucket::Spread(1), 10), (Bucket::Workspace, 5), (Bucket::Spread(2), 0)];
        assert_eq!(draws(&b, 4), Some(vec![(Bucket::Spread(1), 4)]));
        assert_eq!(draws(&b, 12), Some(vec![(Bucket::Spread(1), 10), (Bucket::Workspace, 2)]));
        assert_eq!(draws(&b, 18), Some(vec![(Bucket::Spread(1), 10), (Bucket::Workspace, 5), (Bucket::Spread(0), 3)]));
        let ties = [(Bucket::Spread(3), 1), (Bucket::Spread(0), 1), (Bucket::Spread(5), 1)];
        assert_eq!(draws(&ties, 2), Some(vec![(Bucket::Spread(3), 1), (Bucket::Spread(0), 1)]));
        assert_eq!(draws(&b, 19), None);
        assert_eq!(draws(&b, 0), Some(vec![]));
        assert_eq!(draws(&[], 1), None);
    }

    #[test]
    fn a_spread_adds_up_and_differs_by_at_most_one() {
        for amount in [0, 1, 7, 8, 9, 1000, 1003] {
            let s = spread(amount);
            assert_eq!(s.iter().map(|(_, a)| a).sum::<u64>(), amount);
            let (min, max) = (s.iter().map(|x| x.1).min(), s.iter().map(|x| x.1).max());
            if amount >= BUCKETS as u64 {
                assert!(max.unwrap() - min.unwrap() <= 1, "{s:?}");
                assert_eq!(s.len(), BUCKETS as usize);
            }
        }
    }
}
