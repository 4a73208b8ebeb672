//! The HTTP API as a bench client sees it: one workspace token, JSON in and
//! out, and the bulk setup steps (import Leads, build Lists) done through the
//! public endpoints in batches of 1,000, a few requests at a time.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .pool_max_idle_per_host(16)
                .build()
                .expect("http client"),
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    pub fn with_base(&self, base: &str) -> Api {
        Api { http: self.http.clone(), base: base.trim_end_matches('/').to_string(), token: self.token.clone() }
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> anyhow::Result<Resp> {
        let mut req = self.http.request(method.clone(), format!("{}{}", self.base, path)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Resp { status, body })
    }

    /// A request that must answer one of `ok` (a bench figure from failed
    /// requests would be meaningless).
    pub async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> anyhow::Result<Value> {
        let r = self.send(method.clone(), path, body).await?;
        if !ok.contains(&r.status) {
            bail!("{method} {path} answered {}: {}", r.status, truncate(&r.body.to_string(), 400));
        }
        Ok(r.body)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.expect(reqwest::Method::GET, path, None, &[200]).await
    }

    /// GET, timed (only the request: sending, the server's work, reading the body).
    pub async fn timed_get(&self, path: &str) -> anyhow::Result<(Duration, Value)> {
        let t = Instant::now();
        let v = self.get(path).await?;
        Ok((t.elapsed(), v))
    }

    pub async fn post(&self, path: &str, body: &Value, ok: &[u16]) -> anyhow::Result<Value> {
        self.expect(reqwest::Method::POST, path, Some(body), ok).await
    }

    /// Upserts Leads in requests of 1,000, `concurrency` at a time; ids in input order.
    pub async fn import(&self, leads: Vec<Value>, concurrency: usize) -> anyhow::Result<Vec<String>> {
        let batches: Vec<Vec<Value>> = leads.chunks(1000).map(|c| c.to_vec()).collect();
        let out: Vec<Vec<String>> = stream::iter(batches)
            .map(|batch| async move {
                let n = batch.len();
                let body = self.post("/api/leads", &json!({"leads": batch}), &[200, 201]).await?;
                let ids: Vec<String> = body["leads"]
                    .as_array()
                    .ok_or_else(|| anyhow!("upsert answered without leads"))?
                    .iter()
                    .filter_map(|l| l["id"].as_str().map(str::to_string))
                    .collect();
                if ids.len() != n {
                    bail!("upsert of {n} leads returned {} ids", ids.len());
                }
                Ok::<_, anyhow::Error>(ids)
            })
            .buffered(concurrency.max(1))
            .try_collect()
            .await?;
        Ok(out.into_iter().flatten().collect())
    }

    /// A new person List.
    pub async fn new_list(&self, name: &str) -> anyhow::Result<String> {
        let body = self.post("/api/lists", &json!({"name": name, "leadType": "person"}), &[201]).await?;
        body["list"]["id"].as_str().map(str::to_string).ok_or_else(|| anyhow!("list create answered without an id"))
    }

    /// Adds Leads to a List in requests of 1,000, `concurrency` at a time;
    /// returns the List's `leadCount` afterwards.
    pub async fn add_to_list(&self, list_id: &str, lead_ids: &[String], concurrency: usize) -> anyhow::Result<u64> {
        let path = format!("/api/lists/{list_id}/leads");
        stream::iter(lead_ids.chunks(1000))
            .map(|chunk| {
                let path = path.clone();
                async move { self.post(&path, &json!({"leadIds": chunk}), &[200]).await }
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect::<Vec<_>>()
            .await?;
        let list = self.get(&format!("/api/lists/{list_id}")).await.ok();
        Ok(list.and_then(|l| l["list"]["leadCount"].as_u64()).unwrap_or(0))
    }

    /// POST /api/enrichment (202) → run id.
    pub async fn create_run(&self, body: &Value) -> anyhow::Result<String> {
        let r = self.post("/api/enrichment", body, &[202]).await?;
        r["runId"].as_str().map(str::to_string).ok_or_else(|| anyhow!("create answered without a runId: {r}"))
    }
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// A person with a unique work email (and a phone if given), about the size
/// of a CRM import row.
pub fn person(tag: &str, i: usize, phone: Option<String>) -> Value {
    let mut contacts = vec![json!({"type": "email", "value": format!("p{i}.{tag}@acme{}.com", i % 97)})];
    if let Some(p) = phone {
        contacts.push(json!({"type": "phone", "value": p}));
    }
    json!({
        "type": "person",
        "name": {"full": format!("Person {i} {tag}")},
        "title": "Engineering Manager",
        "company": {"name": format!("Acme {}", i % 97), "domain": format!("acme{}.com", i % 97)},
        "location": {"city": "San Francisco", "country": "US"},
        "contacts": contacts,
    })
}

/// A bench-unique tag, so repeated runs on one stack never collide.
pub fn tag() -> String {
    puffle_domain::ids::new_id("b")[2..12].to_string()
}

pub fn run_body(enrichment: &str, scope: Value, input: Value) -> Value {
    json!({
        "enrichmentId": enrichment,
        "scope": scope,
        "input": input,
        "idempotencyKey": format!("bench-{}", puffle_domain::ids::new_id("k")),
    })
}
