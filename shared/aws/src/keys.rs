//! Every key shape of the single table, in one place (README: Data model).
//!
//! | entity            | pk                      | sk                      |
//! |-------------------|-------------------------|-------------------------|
//! | workspace         | `WS#{ws}`               | `WS`                    |
//! | api token         | `TOKEN#{sha256}`        | `TOKEN`                 |
//! | ledger entry      | `LEDGER#{ws}`           | `{createdAt}#{entryId}` |
//! | lead              | `LEADS#{ws}`            | `{leadId}`              |
//! | lead attribute    | `LEADS#{ws}`            | `{leadId}#A#{key}`      |
//! | lead identity     | `LEADKEY#{ws}`          | `{kind}#{value}`        |
//! | list              | `LISTS#{ws}`            | `{listId}`              |
//! | membership        | `LIST#{ws}#{listId}`    | `M#{leadId}`            |
//! | membership attr   | `LISTATTR#{ws}#{listId}`| `{leadId}#A#{key}`      |
//! | run               | `RUNS#{ws}`             | `{runId}`               |
//! | run item          | `ITEMS#{runId}`         | `{leadId}`              |
//! | idempotency key   | `IDEM#{ws}#{key}`       | `IDEM`                  |
//! | cursor HMAC key   | `CONFIG`                | `CURSOR_KEY`            |
//! | stream checkpoint | `CONFIG`                | `STREAM#{shardId}`      |
//! | list rule         | `RULES#{ws}#{listId}`   | `{ruleId}`              |
//! | rule claim        | `RULECLAIM#{ruleId}`    | `{leadId}`              |
//! | rule's run        | `RULERUNS#{ruleId}`     | `{runId}`               |
//! | ws enrichment     | `WSENR#{ws}`            | `{slug}`                |
//! | ws secret         | `SECRETS#{ws}`          | `{name}`                |
//! | provider result   | `PCACHE#{ws}#{slug}#{hash}` | `PCACHE`            |
//! | webhook           | `WEBHOOKS#{ws}`         | `{webhookId}`           |
//! | webhook delivery  | `DELIVERIES#{webhookId}`| `{deliveryId}`          |
//! | rate-limit window | `RATE#{sha256}#{class}#{windowStart}` | `RATE`    |
//!
//! GSI `gsi1` (one index, overloaded by prefix):
//!
//! | entity            | gsi1pk                          | gsi1sk     |
//! |-------------------|---------------------------------|------------|
//! | run item          | `ITEMS#{runId}#{status}`        | `{leadId}` |
//! | lead              | `LEADTYPE#{ws}#{type}`          | `{leadId}` |
//! | membership        | `LISTTYPE#{ws}#{listId}#{type}` | `{leadId}` |
//!
//! GSI `gsi2` (sparse, keys only): live runs: `ACTIVE#{0..7}` / `{runId}`.

pub type Key = (String, String);

pub fn workspace(ws: &str) -> Key {
    (format!("WS#{ws}"), "WS".into())
}
/// One credit bucket of a workspace (`store/credits.rs`): beside the
/// workspace item in its partition, so one Query reads the whole balance.
pub fn credit_bucket(ws: &str, k: u32) -> Key {
    (format!("WS#{ws}"), format!("B{k}"))
}
pub fn token(hash: &str) -> Key {
    (format!("TOKEN#{hash}"), "TOKEN".into())
}
pub fn ledger_pk(ws: &str) -> String {
    format!("LEDGER#{ws}")
}
pub fn leads_pk(ws: &str) -> String {
    format!("LEADS#{ws}")
}
pub fn lead(ws: &str, lead: &str) -> Key {
    (leads_pk(ws), lead.into())
}
pub fn attr_suffix(key: &str) -> String {
    format!("#A#{key}")
}
pub fn lead_attr(ws: &str, lead: &str, key: &str) -> Key {
    (leads_pk(ws), format!("{lead}{}", attr_suffix(key)))
}
/// A Lead under its type in `gsi1` (typed Leads pages).
pub fn lead_by_type(ws: &str, lead_type: &str, lead: &str) -> Key {
    (format!("LEADTYPE#{ws}#{lead_type}"), lead.into())
}
pub fn identity(ws: &str, key: &str) -> Key {
    (format!("LEADKEY#{ws}"), key.into())
}
pub fn lists_pk(ws: &str) -> String {
    format!("LISTS#{ws}")
}
pub fn list(ws: &str, list: &str) -> Key {
    (lists_pk(ws), list.into())
}
pub fn members_pk(ws: &str, list: &str) -> String {
    format!("LIST#{ws}#{list}")
}
pub fn member(ws: &str, list: &str, lead: &str) -> Key {
    (members_pk(ws, list), format!("M#{lead}"))
}
/// A membership under its List and type in `gsi1` (typed List pages).
pub fn member_by_type(ws: &str, list: &str, lead_type: &str, lead: &str) -> Key {
    (format!("LISTTYPE#{ws}#{list}#{lead_type}"), lead.into())
}
/// Membership attributes live beside, not inside, the members partition, so
/// a run writing them never shifts the planner's pages of members.
pub fn member_attrs_pk(ws: &str, list: &str) -> String {
    format!("LISTATTR#{ws}#{list}")
}
pub fn member_attr(ws: &str, list: &str, lead: &str, key: &str) -> Key {
    (member_attrs_pk(ws, list), format!("{lead}{}", attr_suffix(key)))
}
pub fn runs_pk(ws: &str) -> String {
    format!("RUNS#{ws}")
}
pub fn run(ws: &str, run: &str) -> Key {
    (runs_pk(ws), run.into())
}
pub fn items_pk(run: &str) -> String {
    format!("ITEMS#{run}")
}
pub fn item(run: &str, lead: &str) -> Key {
    (items_pk(run), lead.into())
}
/// The lease on one chunk of a run (`store/leases.rs`).
pub fn chunk_lease(run: &str, chunk: u32) -> Key {
    (format!("CHUNKLEASE#{run}"), format!("{chunk:06}"))
}
/// The marker of one counted chunk of a run (`Store::count_chunk`): one
/// small item per chunk, so the run item's size does not grow with its length.
pub fn chunk_counted(run: &str, chunk: u32) -> Key {
    (format!("CHUNKDONE#{run}"), format!("{chunk:06}"))
}
/// A planned chunk of a run: its Lead ids, written by the planner in place
/// of one pending item per Lead (`store/chunks.rs`).
pub fn planned_chunk(run: &str, chunk: u32) -> Key {
    (format!("CHUNKS#{run}"), format!("{chunk:06}"))
}
/// `gsi1pk` of a planned chunk until it is counted (a sparse index of the
/// run's uncounted chunks, by first Lead id).
pub fn uncounted_chunks_pk(run: &str) -> String {
    format!("CHUNKS#{run}#uncounted")
}
pub fn items_by_status_pk(run: &str, status: &str) -> String {
    format!("ITEMS#{run}#{status}")
}
pub fn idempotency(ws: &str, key: &str) -> Key {
    (format!("IDEM#{ws}#{key}"), "IDEM".into())
}
pub fn cursor_key() -> Key {
    ("CONFIG".into(), "CURSOR_KEY".into())
}
pub fn stream_checkpoint(shard_id: &str) -> Key {
    ("CONFIG".into(), format!("STREAM#{shard_id}"))
}
pub fn rules_pk(ws: &str, list: &str) -> String {
    format!("RULES#{ws}#{list}")
}
pub fn rule(ws: &str, list: &str, rule: &str) -> Key {
    (rules_pk(ws, list), rule.into())
}
pub fn rule_claim(rule: &str, lead: &str) -> Key {
    (format!("RULECLAIM#{rule}"), lead.into())
}
pub fn rule_runs_pk(rule: &str) -> String {
    format!("RULERUNS#{rule}")
}
pub fn rule_run(rule: &str, run: &str) -> Key {
    (rule_runs_pk(rule), run.into())
}
pub fn ws_enrichments_pk(ws: &str) -> String {
    format!("WSENR#{ws}")
}
pub fn ws_enrichment(ws: &str, slug: &str) -> Key {
    (ws_enrichments_pk(ws), slug.into())
}
pub fn secrets_pk(ws: &str) -> String {
    format!("SECRETS#{ws}")
}
pub fn secret(ws: &str, name: &str) -> Key {
    (secrets_pk(ws), name.into())
}
/// One partition per cached result: BatchGetItem reads a chunk's results
/// wherever they are, and no partition grows hot.
pub fn provider_cache(ws: &str, slug: &str, hash: &str) -> Key {
    (format!("PCACHE#{ws}#{slug}#{hash}"), "PCACHE".into())
}
pub fn webhooks_pk(ws: &str) -> String {
    format!("WEBHOOKS#{ws}")
}
pub fn webhook(ws: &str, id: &str) -> Key {
    (webhooks_pk(ws), id.into())
}
/// A webhook's deliveries, newest last (delivery ids are ULIDs).
pub fn deliveries_pk(webhook: &str) -> String {
    format!("DELIVERIES#{webhook}")
}
pub fn delivery(webhook: &str, id: &str) -> Key {
    (deliveries_pk(webhook), id.into())
}
/// One token's request count in one rate-limit window (expires by TTL).
pub fn rate_window(token_hash: &str, class: &str, window_start: u64) -> Key {
    (format!("RATE#{token_hash}#{class}#{window_start}"), "RATE".into())
}
