//! The HTTP client: reqwest with rustls, timeouts, and retries on 429/503
//! that honour `Retry-After`. Whether a request may be repeated is the
//! caller's call ([`Retry`]): GETs always, `POST /api/enrichment` only with an
//! idempotency key, other POSTs never.

use std::time::Duration;

use rand::Rng;
use reqwest::{Method, Url};
use serde_json::Value;

use crate::backoff::{parse_retry_after, retry_delay, retryable_status, MAX_RETRIES};
use crate::config::Resolved;
use crate::error::{CliError, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Safe to send again (GET, or a create carrying an idempotency key).
    Safe,
    /// Sent once only.
    Never,
}

pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

/// A 2xx answer.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Client {
    pub fn new(cfg: &Resolved, timeout: Duration) -> Result<Client> {
        let base = Url::parse(&cfg.api_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| CliError::usage(format!("--api-url `{}` is not an http(s) URL", cfg.api_url)))?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .user_agent(concat!("puffle-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Local(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client { http, base, token: cfg.token.clone() })
    }

    /// `segments` are path segments after the base (each percent-encoded).
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut p) = url.path_segments_mut() {
            p.pop_if_empty();
            p.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Value> {
        let url = self.url(segments, query);
        Ok(self.send(Method::GET, url, None, Retry::Safe).await?.body)
    }

    pub async fn post(&self, segments: &[&str], body: &Value, retry: Retry) -> Result<Answer> {
        let url = self.url(segments, &[]);
        self.send(Method::POST, url, Some(body), retry).await
    }

    pub async fn patch(&self, segments: &[&str], body: &Value) -> Result<Answer> {
        let url = self.url(segments, &[]);
        self.send(Method::PATCH, url, Some(body), Retry::Never).await
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<Answer> {
        let url = self.url(segments, &[]);
        self.send(Method::DELETE, url, None, Retry::Safe).await
    }

    async fn send(&self, method: Method, url: Url, body: Option<&Value>, retry: Retry) -> Result<Answer> {
        let token = self.token.as_deref().ok_or(CliError::NoToken)?;
        let shown = url.to_string();
        let mut attempt = 0;
        loop {
            let mut req =
                self.http.request(method.clone(), url.clone()).bearer_auth(token).header("accept", "application/json");
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| network(&shown, &e))?;
            let status = resp.status().as_u16();
            let retry_after =
                resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
            let text = resp.text().await.map_err(|e| network(&shown, &e))?;
            let body = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            if (200..300).contains(&status) {
                return Ok(Answer { status, body });
            }
            if retry == Retry::Safe && retryable_status(status) && attempt < MAX_RETRIES {
                let delay = retry_delay(attempt, retry_after, rand::thread_rng().gen::<f64>());
                eprintln!("note: HTTP {status} from {method} {}; retrying in {:.1}s", url.path(), delay.as_secs_f64());
                tokio::time::sleep(delay).await;
                attempt += 1;
                continue;
            }
            return Err(CliError::Api { status, body, url: format!("{method} {shown}") });
        }
    }
}

fn network(url: &str, e: &reqwest::Error) -> CliError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's Display hides the cause (e.g. "connection refused").
    let mut cause = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    let message = if cause.is_empty() { kind.to_string() } else { format!("{kind} ({cause})") };
    CliError::Network { url: url.to_string(), message }
}

/// A random idempotency key (128 bits), for `--idempotency-key auto`.
pub fn random_idempotency_key() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("cli-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn client(base: &str) -> Client {
        let cfg = Resolved {
            api_url: base.into(),
            api_url_source: Source::Flag,
            token: Some("t".into()),
            token_source: Source::Flag,
            config_file: None,
        };
        Client::new(&cfg, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn urls_encode_segments_and_keep_a_base_path() {
        let c = client("http://127.0.0.1:3000");
        assert_eq!(
            c.url(&["api", "enrichment", "a/b c"], &[]).as_str(),
            "http://127.0.0.1:3000/api/enrichment/a%2Fb%20c"
        );
        let c = client("https://h.example/prefix/");
        let u = c.url(&["api", "leads"], &[("cursor", "a+b=".to_string())]);
        assert_eq!(u.as_str(), "https://h.example/prefix/api/leads?cursor=a%2Bb%3D");
    }

    #[test]
    fn bad_api_urls_are_usage_errors() {
        for bad in ["", "127.0.0.1:3000", "ftp://x", "http://"] {
            let cfg = Resolved {
                api_url: bad.into(),
                api_url_source: Source::Flag,
                token: None,
                token_source: Source::None,
                config_file: None,
            };
            assert!(matches!(Client::new(&cfg, Duration::from_secs(1)), Err(CliError::Usage(_))), "{bad}");
        }
    }

    /// A one-route HTTP server answering the scripted statuses in turn
    /// (then 200); returns its URL and the request counter.
    async fn scripted(statuses: Vec<u16>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = vec![0u8; 65536];
                let mut got = 0;
                // Read the head and (small) body of one request.
                loop {
                    let n = sock.read(&mut buf[got..]).await.unwrap_or(0);
                    got += n;
                    let text = String::from_utf8_lossy(&buf[..got]).to_string();
                    if n == 0 || text.contains("\r\n\r\n") && (text.starts_with("GET") || text.ends_with('}')) {
                        break;
                    }
                }
                let i = c.fetch_add(1, Ordering::SeqCst);
                let status = statuses.get(i).copied().unwrap_or(200);
                let body = if status == 200 { r#"{"ok":true}"# } else { r#"{"code":"X","message":"busy"}"# };
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nretry-after: 0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        (url, count)
    }

    #[tokio::test]
    async fn retries_safe_requests_on_429_and_503_only() {
        use std::sync::atomic::Ordering;
        let (url, n) = scripted(vec![503, 429]).await;
        let v = client(&url).get(&["api", "credits"], &[]).await.unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(n.load(Ordering::SeqCst), 3);

        let (url, n) = scripted(vec![503]).await;
        let e = client(&url).post(&["api", "leads"], &serde_json::json!({}), Retry::Never).await.err().unwrap();
        assert!(matches!(e, CliError::Api { status: 503, .. }));
        assert_eq!(n.load(Ordering::SeqCst), 1, "a POST without a key is sent once");

        let (url, n) = scripted(vec![503, 503]).await;
        let a = client(&url)
            .post(&["api", "enrichment"], &serde_json::json!({"idempotencyKey":"k"}), Retry::Safe)
            .await
            .unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(n.load(Ordering::SeqCst), 3);

        let (url, n) = scripted(vec![500]).await;
        assert!(matches!(client(&url).get(&["x"], &[]).await, Err(CliError::Api { status: 500, .. })));
        assert_eq!(n.load(Ordering::SeqCst), 1, "a 500 is not retried");

        let (url, n) = scripted(vec![503; 10]).await;
        assert!(matches!(client(&url).get(&["x"], &[]).await, Err(CliError::Api { status: 503, .. })));
        assert_eq!(n.load(Ordering::SeqCst), 1 + MAX_RETRIES as usize);
    }

    #[test]
    fn idempotency_keys_are_random() {
        let a = random_idempotency_key();
        assert_eq!(a.len(), 4 + 32);
        assert_ne!(a, random_idempotency_key());
    }
}
