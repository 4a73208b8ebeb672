//! Timestamps: RFC 3339 UTC with milliseconds, as the contract asks.

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn epoch_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}
