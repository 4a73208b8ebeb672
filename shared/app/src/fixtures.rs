//! The fixed workspace, token, Lead, List and run that `events/*.json` name,
//! so those events work as shipped (`sam local invoke ... -e events/create.json`,
//! `make invoke`) against the local stack. `puffle admin seed-events` writes
//! them; writing them again changes nothing. Local stacks only: the token is
//! public.

use puffle_domain::credits::{LedgerEntry, LedgerKind};
use puffle_domain::lead::LeadInput;
use puffle_domain::list::{AddLeadsRequest, List, ListLeadType};
use puffle_domain::plan::WorkMessage;
use puffle_domain::run::RunStatus;
use puffle_domain::{ids, time};
use serde_json::json;

use crate::{App, AppError};

pub const WORKSPACE_ID: &str = "ws_0000events0000fixture0000";
pub const TOKEN: &str = "pfl_events_fixture_local_stack_only_0000000000000000000000000000";
pub const LEAD_ID: &str = "lead_0000events0000fixture0001";
pub const LIST_ID: &str = "list_0000events0000fixture0001";
pub const RUN_ID: &str = "run_0000events0000fixture0001";
const LEAD_EMAIL: &str = "ada@events.puffle.example";

/// Whether the SDK is pointed at a local DynamoDB (the fixtures' token is
/// public, so they are never written to a real table).
pub fn targets_local_stack() -> bool {
    ["PUFFLE_DYNAMODB_ENDPOINT", "AWS_ENDPOINT_URL_DYNAMODB"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|u| u.contains("://127.0.0.1") || u.contains("://localhost")))
}

impl App {
    /// Writes the event fixtures (idempotent). The run is planned and
    /// enriched by the stack's worker; this waits until it is finished.
    pub async fn seed_event_fixtures(&self) -> Result<(), AppError> {
        if !targets_local_stack() {
            return Err(AppError::Internal(
                "event fixtures are for a local stack only (set AWS_ENDPOINT_URL_DYNAMODB)".into(),
            ));
        }
        let now = time::now();
        let grant = LedgerEntry {
            id: ids::new_id("led"),
            kind: LedgerKind::Grant,
            amount: 1_000_000,
            reason: "event fixtures".into(),
            run_id: None,
            created_at: now.clone(),
        };
        match self.store().create_workspace(WORKSPACE_ID, "events", &ids::token_hash(TOKEN), &grant).await {
            Ok(()) | Err(puffle_aws::StoreError::TransactionCanceled(_)) => {}
            Err(e) => return Err(e.into()),
        }
        // The Lead's identity is claimed for the fixed id first, so the
        // upsert (matched by identity) writes that id.
        let lead = json!({"type": "person", "name": {"full": "Ada Events"}, "title": "CTO",
            "contacts": [{"type": "email", "value": LEAD_EMAIL}]});
        let identity = LeadInput::from_json(lead.clone())?.identity();
        let claims: Vec<(String, String)> =
            identity.keys().map(|k| (k.as_str().to_string(), LEAD_ID.to_string())).collect();
        self.store().claim_identities(WORKSPACE_ID, &claims).await?;
        let up = self.upsert_leads(WORKSPACE_ID, vec![lead]).await?;
        if up.leads[0].id != LEAD_ID {
            return Err(AppError::Internal(format!("the fixture Lead came back as {}", up.leads[0].id)));
        }
        let list = List {
            id: LIST_ID.into(),
            name: "events".into(),
            description: None,
            lead_type: ListLeadType::Mixed,
            lead_count: 0,
            person_count: 0,
            company_count: 0,
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        match self.store().put_list(WORKSPACE_ID, &list).await {
            Ok(()) | Err(puffle_aws::StoreError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
        self.add_list_leads(WORKSPACE_ID, LIST_ID, AddLeadsRequest { lead_ids: vec![LEAD_ID.into()] }).await?;
        if self.store().get_run(WORKSPACE_ID, RUN_ID).await?.is_none() {
            // A real run, created as any other; its record is then written
            // again under the fixed id and planned like a new run.
            let body = json!({"enrichmentId": "job_seniority", "input": {},
                "scope": {"type": "explicit_leads", "leadIds": [LEAD_ID]}});
            let created = self.create_run(WORKSPACE_ID, &body, None, "events-fixture").await?;
            let source = created.response.run_id.unwrap_or_default();
            let mut run = self.load_run(WORKSPACE_ID, &source).await?.run;
            run.id = RUN_ID.into();
            run.status = RunStatus::Pending;
            // Free: it reserves nothing, so its items settle at 0.
            let no_reserve = LedgerEntry { amount: 0, kind: LedgerKind::Reserve, run_id: Some(RUN_ID.into()), ..grant };
            // Any outcome leaves a run under the fixed id (a concurrent seed may have won).
            self.store().create_run(WORKSPACE_ID, &run, 0, 0, None, &no_reserve, vec![]).await?;
            let plan = WorkMessage::first_step(WORKSPACE_ID, RUN_ID, Some("events-fixture"), false);
            self.aws.queue.send(&plan).await?;
        }
        for _ in 0..300 {
            if self.run_status(WORKSPACE_ID, RUN_ID).await?.status.is_terminal() {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(AppError::Unavailable("the fixture run did not finish in 30 s: is the local worker running?".into()))
    }
}
