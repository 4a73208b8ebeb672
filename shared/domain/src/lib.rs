//! Puffle's domain: the rules of leads, lists and enrichment runs, free of AWS.
//!
//! Where to look:
//! - the create request and its validation: [`create`]; the planner's scope
//!   and filter rules: [`scope`], [`filter`];
//! - a run, its state machine and counts: [`run`]; its per-Lead items: [`item`];
//! - worker messages and chunking: [`plan`];
//! - Leads and who they are: [`lead`], [`identity`]; Lists: [`list`];
//! - credits: [`credits`]; idempotency: [`idempotency`]; paging: [`cursor`], [`page`];
//! - the catalog and the enrichment providers: [`catalog`], [`providers`];
//!   outside providers' HTTP bindings: [`binding`]; sealed secrets: [`secrets`];
//! - webhooks (Standard Webhooks signatures, filters, secrets): [`webhook`].

pub mod binding;
pub mod catalog;
pub mod chunk;
pub mod create;
pub mod credits;
pub mod cursor;
pub mod error;
pub mod events;
pub mod filter;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod item;
pub mod lead;
pub mod list;
pub mod page;
pub mod plan;
pub mod providers;
pub mod rate;
pub mod rule;
pub mod run;
pub mod scope;
pub mod secrets;
pub mod time;
pub mod webhook;

pub use error::DomainError;
