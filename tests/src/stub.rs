//! A provider stub in the test process, on 127.0.0.1 (reached by the
//! worker because the stack's PUFFLE_EGRESS_ALLOW_HOSTS names it).
//!
//! `POST /find` with `{"name": "<behaviour>-<anything>", ...}` answers by
//! the name's first word:
//! `hit` 200 with an email · `miss` 200 without · `gone` 404 · `html` a
//! non-JSON body · `wrongtype` JSON that fails the outputSchema · `flaky`
//! 503 on the first call, then a hit · `busy` 429 with `Retry-After: 1` on
//! the first call, then a hit · `slow` a hit after 3 s · `down` 500 always ·
//! `meta` a redirect to the cloud metadata address.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Call {
    pub name: String,
    pub at: Instant,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Seen {
    calls: Vec<Call>,
}

#[derive(Clone)]
pub struct Stub {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl Stub {
    pub async fn start() -> Stub {
        let seen: Arc<Mutex<Seen>> = Default::default();
        let app = axum::Router::new().route("/find", post(find)).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Stub { addr, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.seen.lock().unwrap().calls.clone()
    }

    /// Calls whose name is `name`.
    pub fn calls_for(&self, name: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.name == name).collect()
    }
}

async fn find(State(seen): State<Arc<Mutex<Seen>>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let name = body["name"].as_str().unwrap_or_default().to_string();
    let nth = {
        let mut s = seen.lock().unwrap();
        s.calls.push(Call {
            name: name.clone(),
            at: Instant::now(),
            authorization: headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string),
        });
        s.calls.iter().filter(|c| c.name == name).count()
    };
    let hit = || {
        let local = name.split_whitespace().next().unwrap_or("x").to_lowercase();
        Json(json!({"data": {"email": format!("{local}@found.test"), "score": 0.9}, "requestId": format!("req-{nth}")}))
            .into_response()
    };
    match name.split('-').next().unwrap_or_default() {
        "hit" => hit(),
        "miss" => Json(json!({"data": {"email": null}, "requestId": "req-miss"})).into_response(),
        "gone" => (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response(),
        "html" => (StatusCode::OK, [("content-type", "text/html")], "<html>oops</html>").into_response(),
        "wrongtype" => Json(json!({"data": {"email": 42}})).into_response(),
        "flaky" if nth == 1 => (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response(),
        "flaky" => hit(),
        "busy" if nth == 1 => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down").into_response(),
        "busy" => hit(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            hit()
        }
        "down" => (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
        "meta" => (StatusCode::FOUND, [("location", "http://169.254.169.254/latest/meta-data/")]).into_response(),
        _ => (StatusCode::BAD_REQUEST, "unknown behaviour").into_response(),
    }
}
