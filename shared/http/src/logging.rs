//! Powertools-style JSON logs: one flat JSON object per line on stdout, each
//! with `timestamp` (RFC 3339), `level`, `message`, `function_name`,
//! `cold_start`, and whatever the enclosing spans carry — above all
//! `correlation_id`. Lambda's JSON log format reads `level` and `timestamp`
//! from each line: a line without them counts as INFO, so
//! `ApplicationLogLevel` would drop real errors. That is why nothing here
//! prints a bare line, and panics are logged as ERROR lines too.
//!
//! Correlation: the HTTP edge enters [`correlation_span`] for each request
//! (id from `X-Request-Id`, else API Gateway's request id). The worker side
//! does the same for each message or stream record:
//!
//! ```ignore
//! use tracing::Instrument;
//! app.handle_work(&body).instrument(puffle_http::logging::correlation_span(&id)).await
//! ```

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The span field every line of a request, message or stream record carries.
pub const CORRELATION_FIELD: &str = "correlation_id";

static FUNCTION_NAME: OnceLock<String> = OnceLock::new();
static INVOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Installs the JSON logger (once per process; later calls do nothing).
/// `function` names the function when `AWS_LAMBDA_FUNCTION_NAME` is unset
/// (the local server, tests).
pub fn init(function: &str) {
    let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok().filter(|n| !n.is_empty() && n != "_");
    let _ = FUNCTION_NAME.set(name.unwrap_or_else(|| function.to_string()));
    let filter = filter_from(std::env::var("RUST_LOG").ok().as_deref());
    if tracing_subscriber::registry().with(filter).with(JsonLines).try_init().is_ok() {
        // The default hook prints a bare line on stderr, which Lambda would
        // file as INFO. A panic is an error.
        std::panic::set_hook(Box::new(|info| {
            let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %payload, location = %location, "panic");
        }));
    }
}

/// `RUST_LOG` as `target=level` directives and a default level (`info`,
/// `warn,puffle_app=debug`); unset or unreadable means `info`. `Targets`
/// rather than `EnvFilter`: the latter's span and field matching brings a
/// regex engine into every zip, and no deployment uses it.
fn filter_from(spec: Option<&str>) -> tracing_subscriber::filter::Targets {
    let info = || tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO);
    match spec.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s.parse().unwrap_or_else(|_| info()),
        None => info(),
    }
}

/// Marks the start of an invocation: lines of the first one (and of the
/// init before it) say `cold_start: true`, later ones `false`.
pub fn invocation_started() {
    INVOCATIONS.fetch_add(1, Ordering::Relaxed);
}

fn cold_start() -> bool {
    INVOCATIONS.load(Ordering::Relaxed) <= 1
}

/// A span whose `correlation_id` every log line inside it carries. ERROR
/// level so that no `RUST_LOG` filter that lets any line through drops it.
pub fn correlation_span(correlation_id: &str) -> tracing::Span {
    tracing::error_span!("correlation", correlation_id = %correlation_id)
}

/// Span fields, kept on the span for the lines logged inside it.
struct SpanFields(Map<String, Value>);

struct JsonLines;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for JsonLines {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut Fields(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(SpanFields(fields)) = ext.get_mut::<SpanFields>() {
                values.record(&mut Fields(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut spans = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    for (k, v) in fields {
                        // An inner span's empty value (a message without a
                        // correlation id) does not hide the outer one's.
                        if v.as_str() == Some("") && spans.contains_key(k) {
                            continue;
                        }
                        spans.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        let mut fields = Map::new();
        event.record(&mut Fields(&mut fields));
        let line = log_line(
            &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            event.metadata().level().as_str(),
            event.metadata().target(),
            spans,
            fields,
        );
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}

/// Keys every line has; a span or event field of the same name is renamed
/// `field_<name>` rather than overwrite them.
const RESERVED: &[&str] = &["timestamp", "level", "message", "function_name", "cold_start", "service", "target"];

/// One log line. Pure, so its shape is unit-tested.
fn log_line(
    timestamp: &str,
    level: &str,
    target: &str,
    spans: Map<String, Value>,
    mut fields: Map<String, Value>,
) -> Value {
    let mut line = Map::new();
    line.insert("timestamp".into(), timestamp.into());
    line.insert("level".into(), level.into());
    line.insert("message".into(), fields.remove("message").unwrap_or(Value::String(String::new())));
    line.insert("service".into(), "puffle".into());
    line.insert("function_name".into(), FUNCTION_NAME.get().map(String::as_str).unwrap_or("puffle").into());
    line.insert("cold_start".into(), cold_start().into());
    line.insert("target".into(), target.into());
    if let Ok(trace) = std::env::var("_X_AMZN_TRACE_ID") {
        if !trace.is_empty() {
            line.insert("xray_trace_id".into(), trace.into());
        }
    }
    for (k, v) in spans.into_iter().chain(fields) {
        // The runtime's invoke span names them in its own style.
        let k = match k.as_str() {
            "requestId" => "function_request_id".to_string(),
            "xrayTraceId" => "xray_trace_id".to_string(),
            _ if RESERVED.contains(&k.as_str()) => format!("field_{k}"),
            _ => k,
        };
        line.insert(k, v);
    }
    Value::Object(line)
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn rust_log_sets_the_default_level_and_per_target_levels() {
        use tracing::Level;
        let f = filter_from(Some("warn,puffle_app=debug"));
        assert!(f.would_enable("puffle_app::worker", &Level::DEBUG));
        assert!(!f.would_enable("puffle_app::worker", &Level::TRACE));
        assert!(f.would_enable("aws_smithy_runtime", &Level::WARN));
        assert!(!f.would_enable("aws_smithy_runtime", &Level::INFO));
        for unset in [None, Some(""), Some("  "), Some("=nonsense=")] {
            let f = filter_from(unset);
            assert!(f.would_enable("puffle_http", &Level::INFO), "{unset:?}");
            assert!(!f.would_enable("puffle_http", &Level::DEBUG), "{unset:?}");
        }
        assert!(filter_from(Some("error")).would_enable("x", &Level::ERROR));
        assert!(!filter_from(Some("error")).would_enable("x", &Level::WARN));
    }

    #[test]
    fn a_line_is_flat_json_with_timestamp_level_and_the_correlation_id() {
        let line = log_line(
            "2026-12-01T00:00:00.000Z",
            "ERROR",
            "puffle_app::worker",
            map(json!({"correlation_id": "req-1", "requestId": "aws-1"})),
            map(json!({"message": "chunk failed", "run_id": "run_1", "level": "shadow"})),
        );
        assert_eq!(line["timestamp"], "2026-12-01T00:00:00.000Z");
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["message"], "chunk failed");
        assert_eq!(line["correlation_id"], "req-1");
        assert_eq!(line["function_request_id"], "aws-1");
        assert_eq!(line["run_id"], "run_1");
        assert_eq!(line["field_level"], "shadow", "an event field never replaces the level");
        assert!(line["cold_start"].is_boolean());
        assert!(line["function_name"].is_string());
        assert!(chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str().unwrap()).is_ok());
    }
}
