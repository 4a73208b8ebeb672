//! Every failure of a command, its exit code, and the message that tells the
//! user what to do next.

use serde_json::Value;

/// Exit codes (documented in `puffle --help` and docs/cli.md).
pub mod exit {
    pub const OK: i32 = 0;
    /// Something local went wrong (a file could not be written).
    pub const LOCAL: i32 = 1;
    /// Usage error: bad flags or arguments (clap's own code too).
    pub const USAGE: i32 = 2;
    /// The API rejected the request (4xx other than 401).
    pub const REJECTED: i32 = 3;
    /// Authentication failed (401, or no token configured).
    pub const AUTH: i32 = 4;
    /// Server or network failure (5xx, timeout, unreachable).
    pub const SERVER: i32 = 5;
    /// A watched run ended `failed` or `cancelled`.
    pub const RUN_NOT_COMPLETED: i32 = 6;
    /// Ctrl-C while watching (the run goes on).
    pub const INTERRUPTED: i32 = 130;
}

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  ok
  1  local failure (e.g. a file could not be written)
  2  usage error (bad flags, unreadable --scope/--input JSON or file)
  3  the API rejected the request (4xx other than 401); its error JSON is on stderr
  4  authentication failed (401, or no token: set PUFFLE_TOKEN or run `puffle login`)
  5  server or network failure (5xx, timeout, API unreachable)
  6  a watched run (--wait/--watch) ended failed or cancelled
  130  interrupted (Ctrl-C) while watching; the run itself goes on

Configuration: flags beat environment (PUFFLE_API_URL, PUFFLE_TOKEN) beat the
profile file written by `puffle login` ($XDG_CONFIG_HOME/puffle/config.json,
else ~/.config/puffle/config.json).";

#[derive(Debug)]
pub enum CliError {
    /// Bad local input (flags, files, JSON).
    Usage(String),
    /// A non-2xx answer of the API.
    Api { status: u16, body: Value, url: String },
    /// No answer at all (connect, timeout, TLS, unreadable body).
    Network { url: String, message: String },
    /// No token configured.
    NoToken,
    /// A watched run ended in `failed` or `cancelled` (its status is printed).
    RunNotCompleted { status: String },
    /// Ctrl-C while watching.
    Interrupted { run_id: String },
    /// A local failure that is not the user's input (writing a file).
    Local(String),
}

pub type Result<T> = std::result::Result<T, CliError>;

impl CliError {
    pub fn usage(m: impl Into<String>) -> CliError {
        CliError::Usage(m.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Api { status: 401, .. } | CliError::NoToken => exit::AUTH,
            CliError::Api { status, .. } if (400..500).contains(status) => exit::REJECTED,
            CliError::Api { .. } | CliError::Network { .. } => exit::SERVER,
            CliError::RunNotCompleted { .. } => exit::RUN_NOT_COMPLETED,
            CliError::Interrupted { .. } => exit::INTERRUPTED,
            CliError::Local(_) => exit::LOCAL,
        }
    }

    /// What goes to stderr: for API errors, the error JSON on its own line,
    /// then a sentence saying what to do.
    pub fn report(&self) -> String {
        match self {
            CliError::Usage(m) => format!("error: {m}\n(see `puffle --help`)"),
            CliError::Api { status, body, url } => {
                let mut s = String::new();
                if body.is_object() {
                    s.push_str(&body.to_string());
                    s.push('\n');
                }
                s.push_str(&format!("error: {}", api_message(*status, body, url)));
                s
            }
            CliError::Network { url, message } => format!(
                "error: could not reach the API at {url}: {message}\n\
                 Is the local stack up (`make up`, `make status`)? Otherwise point --api-url or PUFFLE_API_URL at the API."
            ),
            CliError::NoToken => "error: no API token configured: set PUFFLE_TOKEN, pass --token, or run `puffle login --token <token>` \
                 (a local workspace with a token: `make workspace NAME=<name> CREDITS=<n>`)"
                .to_string(),
            CliError::RunNotCompleted { status } => format!("error: the run ended {status} (its status is on stdout)"),
            CliError::Interrupted { run_id } => format!(
                "stopped watching; the run {run_id} goes on. Watch again: puffle enrichment status --id {run_id} --watch \
                 (cancel: puffle enrichment cancel --id {run_id})"
            ),
            CliError::Local(m) => format!("error: {m}"),
        }
    }
}

fn str_field<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

/// One human sentence for an API error, with the next step.
pub fn api_message(status: u16, body: &Value, url: &str) -> String {
    let code = str_field(body, "code").unwrap_or("");
    let message = str_field(body, "message")
        .map(str::to_string)
        .or_else(|| body.as_str().filter(|s| !s.trim().is_empty()).map(|s| truncate_text(s.trim(), 200)))
        .unwrap_or_else(|| format!("HTTP {status}"));
    let hint = match (status, code) {
        (401, _) => "the API did not accept the token: set PUFFLE_TOKEN, pass --token, or run `puffle login --token <token>` \
                     (a local workspace with a token: `make workspace NAME=<name> CREDITS=<n>`)"
            .to_string(),
        (402, _) => {
            let required = body.get("required").map(Value::to_string).unwrap_or_else(|| "?".into());
            let balance = body.get("balance").map(Value::to_string).unwrap_or_else(|| "?".into());
            format!(
                "insufficient credits: this needs {required} credits and the balance is {balance}. On the local stack grant credits with \
                 `puffle admin credits grant --workspace-id <workspace> --credits <n>` or create a funded workspace with \
                 `make workspace NAME=<name> CREDITS=<n>`; `--mode preview` prices a run without running it"
            )
        }
        (404, "ENRICHMENT_NOT_FOUND") => "unknown enrichment: `puffle enrichment` lists the catalog".to_string(),
        (404, "LIST_NOT_FOUND") => "unknown list (lists of other workspaces answer 404 too): check the id".to_string(),
        (404, "NOT_FOUND") => format!("no such route ({url}): is --api-url the API's base URL?"),
        (404, _) => "not found (objects of other workspaces answer 404 too): check the id".to_string(),
        (409, _) => {
            let st = str_field(body, "status").unwrap_or("finished");
            format!("the run is {st}: only pending or running runs can be cancelled")
        }
        (413, _) => "the request is too large: send fewer Leads per request".to_string(),
        (422, "IDEMPOTENCY_KEY_REUSED") => {
            "this idempotency key was already used with a different request: use a new key (e.g. --idempotency-key auto)".to_string()
        }
        (429, _) => "rate limited, and still after retries: wait and try again".to_string(),
        (502, "DISPATCH_FAILED") => {
            let run = str_field(body, "enrichmentRunId").unwrap_or("?");
            format!("run {run} was created but could not be dispatched: it is marked failed and its credits were returned; run the command again")
        }
        (400, _) => match body.get("details") {
            Some(d) if !d.is_null() => format!("fix the request (details: {d})"),
            _ => "fix the request".to_string(),
        },
        (s, _) if s >= 500 => {
            format!("the API failed (HTTP {s}); try again shortly. On the local stack check `make status` and the API's log")
        }
        _ => String::new(),
    };
    let code_part = if code.is_empty() { String::new() } else { format!(" [{code}]") };
    if hint.is_empty() {
        format!("{message} (HTTP {status}{code_part})")
    } else {
        format!("{message} (HTTP {status}{code_part})\n{hint}")
    }
}

fn truncate_text(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exit_codes_follow_the_status() {
        let api = |status| CliError::Api { status, body: json!({}), url: String::new() };
        assert_eq!(api(401).exit_code(), 4);
        assert_eq!(api(404).exit_code(), 3);
        assert_eq!(api(402).exit_code(), 3);
        assert_eq!(api(429).exit_code(), 3);
        assert_eq!(api(500).exit_code(), 5);
        assert_eq!(api(502).exit_code(), 5);
        assert_eq!(CliError::NoToken.exit_code(), 4);
        assert_eq!(CliError::usage("x").exit_code(), 2);
        assert_eq!(CliError::Network { url: String::new(), message: String::new() }.exit_code(), 5);
    }

    #[test]
    fn insufficient_credits_says_how_to_grant() {
        let m = api_message(402, &json!({"code":"INSUFFICIENT_CREDITS","message":"m","required":10,"balance":3}), "u");
        assert!(m.contains("needs 10 credits") && m.contains("balance is 3"), "{m}");
        assert!(m.contains("puffle admin credits grant --workspace-id"), "{m}");
        assert!(m.contains("make workspace"), "{m}");
    }

    #[test]
    fn unauthenticated_says_how_to_log_in() {
        let e = CliError::Api { status: 401, body: json!({"code":"UNAUTHENTICATED","message":"m"}), url: "u".into() };
        let r = e.report();
        assert!(r.starts_with("{\"code\":\"UNAUTHENTICATED\""), "{r}");
        assert!(r.contains("PUFFLE_TOKEN") && r.contains("puffle login"), "{r}");
    }
}
