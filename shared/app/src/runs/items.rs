//! `GET /api/enrichment/{id}/items`: pages in item id order, by status via
//! the status index (never a scan-then-filter of the whole run). Pending
//! items are not rows: they are the Leads of the run's uncounted chunks
//! that have no item yet, merged into the page (`store/chunks.rs`).

use puffle_aws::store::ItemPage;
use puffle_domain::item::{Item, ItemStatus};
use puffle_domain::page::merge_pages;
use puffle_domain::{ids, DomainError};
use serde::{Deserialize, Serialize};

use crate::{App, AppError};

pub const DEFAULT_ITEMS_LIMIT: usize = 50;
pub const MAX_ITEMS_LIMIT: usize = 100;

#[derive(Debug, Default)]
pub struct ItemsQuery {
    pub status: Option<ItemStatus>,
    pub lead_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct ItemsCursor {
    after: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub limit: usize,
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

#[derive(Debug, Serialize)]
pub struct ItemsPage {
    pub items: Vec<Item>,
    pub page: PageInfo,
}

impl App {
    pub async fn run_items(&self, ws: &str, run_id: &str, q: ItemsQuery) -> Result<ItemsPage, AppError> {
        let rec = self.load_run(ws, run_id).await?;
        let run_id = rec.run.id.as_str();
        let pending_of = |(lead, planned_at): (String, String)| {
            Item::pending(run_id, &lead, rec.run.scope.list_id(), &planned_at).reserving(rec.credits_per_lead)
        };
        let wants_pending = q.status.is_none_or(|s| s == ItemStatus::Pending);
        if let Some(lead) = &q.lead_id {
            // One Lead has at most one item per run: a key read, else its chunk's.
            let valid = ids::is_valid_id(lead, "lead");
            let mut item = if valid { self.store().get_item(run_id, lead).await? } else { None };
            if item.is_none() && wants_pending && valid {
                item = self
                    .store()
                    .uncounted_chunk_holding(run_id, lead)
                    .await?
                    .map(|c| pending_of((lead.clone(), c.planned_at)));
            }
            let items: Vec<Item> = item.into_iter().filter(|i| q.status.is_none_or(|s| s == i.status)).collect();
            return Ok(ItemsPage { items, page: PageInfo { limit: q.limit, next_cursor: None, has_more: false } });
        }
        let key = self.cursor_key().await?;
        let scope = format!("items:{run_id}:{}", q.status.map(|s| s.as_str()).unwrap_or("all"));
        let after = match &q.cursor {
            Some(c) => Some(key.decode::<ItemsCursor>(&scope, c).map_err(|_| DomainError::InvalidCursor)?.after),
            None => None,
        };
        let page = if wants_pending {
            // Pending Leads first: one whose item is written between the two
            // reads is then in both (and the item wins), never in neither.
            let (pending, pending_more) = self.store().pending_leads(run_id, after.as_deref(), q.limit).await?;
            let rows = self.store().query_items(run_id, q.status, after.as_deref(), q.limit).await?;
            let pending: Vec<Item> = pending.into_iter().map(pending_of).collect();
            let (items, has_more) =
                merge_pages((rows.items, rows.has_more), (pending, pending_more), q.limit, |i| i.lead_id.clone());
            ItemPage { items, has_more }
        } else {
            self.store().query_items(run_id, q.status, after.as_deref(), q.limit).await?
        };
        let next_cursor = if page.has_more {
            page.items.last().map(|i| key.encode(&scope, &ItemsCursor { after: i.lead_id.clone() }))
        } else {
            None
        };
        Ok(ItemsPage { page: PageInfo { limit: q.limit, has_more: page.has_more, next_cursor }, items: page.items })
    }
}
