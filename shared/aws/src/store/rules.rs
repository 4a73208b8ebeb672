//! List rules, the claims that make a rule start at most one run per
//! membership, and each rule's index of the runs it started.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use puffle_domain::rule::Rule;

use super::{from_row, get_s, key_of, row, s, Row, Store};
use crate::error::{classify, StoreError};
use crate::keys;

impl Store {
    pub async fn put_rule(&self, ws: &str, rule: &Rule) -> Result<(), StoreError> {
        let r = row(rule, keys::rule(ws, &rule.list_id, &rule.id), &[("workspaceId", s(ws))])?;
        self.transact(vec![self.put_new(r)]).await
    }

    pub async fn list_rules(&self, ws: &str, list_id: &str) -> Result<Vec<Rule>, StoreError> {
        self.query_all(&keys::rules_pk(ws, list_id)).await?.into_iter().map(from_row).collect()
    }

    pub async fn get_rule(&self, ws: &str, list_id: &str, rule_id: &str) -> Result<Option<Rule>, StoreError> {
        self.get_row(keys::rule(ws, list_id, rule_id)).await?.map(from_row).transpose()
    }

    /// Deletes a rule; false when there was none.
    pub async fn delete_rule(&self, ws: &str, list_id: &str, rule_id: &str) -> Result<bool, StoreError> {
        let out = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key_of(keys::rule(ws, list_id, rule_id))))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .map_err(classify);
        match out {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The transaction action that files a run under the rule that started it.
    pub fn rule_run_entry(
        &self,
        rule_id: &str,
        run_id: &str,
        created_at: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut r: Row = HashMap::new();
        let (pk, sk) = keys::rule_run(rule_id, run_id);
        r.insert("pk".into(), s(pk));
        r.insert("sk".into(), s(sk));
        r.insert("runId".into(), s(run_id));
        r.insert("createdAt".into(), s(created_at));
        Ok(TransactWriteItem::builder()
            .put(Put::builder().table_name(self.table()).set_item(Some(r)).build().expect("put"))
            .build())
    }

    /// The newest `limit` run ids a rule started.
    pub async fn rule_run_ids(&self, rule_id: &str, limit: i32) -> Result<Vec<String>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(keys::rule_runs_pk(rule_id)))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.items.unwrap_or_default().iter().filter_map(|r| get_s(r, "runId")).collect())
    }

    /// Claims `lead_ids` for the run `run_id` of rule `rule_id`, so that a
    /// redelivered or re-split stream batch never starts a second run for
    /// the same membership. Returns the Leads this run owns: new claims,
    /// claims it already held, and claims of a run that was never created
    /// (its creator died between claiming and creating; `run_exists` says).
    pub async fn claim_for_rule<F, Fut>(
        &self,
        rule_id: &str,
        run_id: &str,
        lead_ids: &[String],
        run_exists: F,
    ) -> Result<Vec<String>, StoreError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<bool, StoreError>>,
    {
        let mut owned = vec![];
        for chunk in lead_ids.chunks(100) {
            // lead → the run its claim must still name for us to take it over.
            let mut todo: Vec<(String, Option<String>)> = chunk.iter().map(|l| (l.clone(), None)).collect();
            let mut rounds = 0;
            while !todo.is_empty() {
                rounds += 1;
                if rounds > 10 {
                    return Err(StoreError::Unavailable("rule claims are contended; retry".into()));
                }
                let actions: Vec<TransactWriteItem> = todo
                    .iter()
                    .map(|(lead, previous)| {
                        let (pk, sk) = keys::rule_claim(rule_id, lead);
                        let mut item: Row = HashMap::new();
                        item.insert("pk".into(), s(pk));
                        item.insert("sk".into(), s(sk));
                        item.insert("runId".into(), s(run_id));
                        let mut put = Put::builder()
                            .table_name(self.table())
                            .set_item(Some(item))
                            .expression_attribute_values(":run", s(run_id));
                        put = match previous {
                            None => put.condition_expression("attribute_not_exists(pk) OR runId = :run"),
                            Some(prev) => put
                                .condition_expression("runId = :run OR runId = :prev")
                                .expression_attribute_values(":prev", s(prev)),
                        };
                        TransactWriteItem::builder().put(put.build().expect("put")).build()
                    })
                    .collect();
                match self.transact(actions).await {
                    Ok(()) => {
                        owned.extend(todo.drain(..).map(|(l, _)| l));
                    }
                    Err(StoreError::TransactionCanceled(codes)) => {
                        let refused: HashSet<String> = codes
                            .iter()
                            .zip(&todo)
                            .filter(|(c, _)| c.as_deref() == Some("ConditionalCheckFailed"))
                            .map(|(_, (l, _))| l.clone())
                            .collect();
                        if refused.is_empty() {
                            return Err(StoreError::Unavailable(format!("claim transaction cancelled: {codes:?}")));
                        }
                        let holders =
                            self.batch_get(refused.iter().map(|l| keys::rule_claim(rule_id, l)).collect()).await?;
                        let mut next = vec![];
                        for (lead, prev) in todo.drain(..) {
                            if !refused.contains(&lead) {
                                next.push((lead, prev));
                                continue;
                            }
                            let holder = holders
                                .iter()
                                .find(|r| get_s(r, "sk").as_deref() == Some(lead.as_str()))
                                .and_then(|r| get_s(r, "runId"));
                            match holder {
                                Some(h) if h != run_id && !run_exists(h.clone()).await? => next.push((lead, Some(h))),
                                _ => {} // another live run covers it
                            }
                        }
                        todo = next;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(owned)
    }
}

impl Store {
    /// Where the local stream poller stopped in a shard (last sequence number handled).
    pub async fn stream_checkpoint(&self, shard_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get_row(keys::stream_checkpoint(shard_id)).await?.and_then(|r| get_s(&r, "sequenceNumber")))
    }

    pub async fn set_stream_checkpoint(&self, shard_id: &str, sequence_number: &str) -> Result<(), StoreError> {
        let mut item = key_of(keys::stream_checkpoint(shard_id));
        item.insert("sequenceNumber".into(), s(sequence_number));
        self.client().put_item().table_name(self.table()).set_item(Some(item)).send().await.map_err(classify)?;
        Ok(())
    }
}
