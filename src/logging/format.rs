//! How one log record is written: a pino-shaped JSON line, a readable line, or the flat fields
//! object a host logger receives.
//!
//! A record holds what the core chose to log (command types, sizes, timings, connection ids,
//! codes), never a request or reply body. Fields stay flat, as pino and bunyan expect them.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::Level;

/// The `name` of every JSON line (pino's convention for the emitting library).
const NAME: &str = "blender-mcp-pool";

/// A field's value, as JSON text.
#[derive(Debug, Clone)]
pub(crate) struct JsonValue(String);

/// One record, ready to be written.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) level: Level,
    pub(crate) message: String,
    /// The pool's id and name, when the record is a pool's.
    pub(crate) pool: Option<(u64, String)>,
    pub(crate) fields: Vec<(&'static str, JsonValue)>,
}

impl Record {
    /// A record of `level` with `message` and no fields yet.
    pub(crate) fn new(level: Level, message: String, pool: Option<(u64, String)>) -> Self {
        Record { level, message, pool, fields: Vec::new() }
    }

    /// The flat fields as one JSON object (`pool`, `poolName`, then the record's own), for a
    /// host logger.
    pub(crate) fn fields_json(&self) -> String {
        let mut out = String::from("{");
        self.write_fields(&mut out);
        out.push('}');
        out
    }

    fn write_fields(&self, out: &mut String) {
        let mut first = true;
        let mut put = |out: &mut String, key: &str, raw: &str| {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{}:{raw}", json_string(key));
        };
        if let Some((id, name)) = &self.pool {
            put(out, "pool", &id.to_string());
            put(out, "poolName", &json_string(name));
        }
        for (key, JsonValue(raw)) in &self.fields {
            put(out, key, raw);
        }
    }

    /// A JSON line shaped like pino's: `level` as pino's number (20 debug, 30 info, 40 warn,
    /// 50 error), `time` in ms since the epoch, `pid`, `name`, the flat fields, then `msg`.
    pub(crate) fn json_line(&self) -> String {
        let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let mut out = format!(
            "{{\"level\":{},\"time\":{time},\"pid\":{},\"name\":\"{NAME}\"",
            pino_level(self.level),
            std::process::id()
        );
        let mut fields = String::new();
        self.write_fields(&mut fields);
        if !fields.is_empty() {
            out.push(',');
            out.push_str(&fields);
        }
        let _ = writeln!(out, ",\"msg\":{}}}", json_string(&self.message));
        out
    }

    /// A line for people: `2026-12-01T10:00:56.741Z WARN  blender-mcp-pool: message key=value`.
    pub(crate) fn pretty_line(&self) -> String {
        let mut out = format!("{} {:<5} {NAME}: {}", utc_now(), self.level.as_str(), self.message);
        if let Some((id, name)) = &self.pool {
            let _ = write!(out, " pool={id} poolName={}", pretty_value(&json_string(name)));
        }
        for (key, JsonValue(raw)) in &self.fields {
            let _ = write!(out, " {key}={}", pretty_value(raw));
        }
        out.push('\n');
        out
    }
}

/// pino's number for a level.
fn pino_level(level: Level) -> u8 {
    match level {
        Level::ERROR => 50,
        Level::WARN => 40,
        Level::INFO => 30,
        Level::DEBUG => 20,
        Level::TRACE => 10,
    }
}

/// A JSON value shown plainly when it needs no quotes (numbers, simple words).
fn pretty_value(raw: &str) -> &str {
    match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner)
            if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b)) =>
        {
            inner
        }
        _ => raw,
    }
}

/// `s` as a JSON string.
fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Now, in UTC, to the millisecond (RFC 3339).
fn utc_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let (secs, millis) = (now.as_secs(), now.subsec_millis());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The proleptic Gregorian date of day `z` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Visit for Record {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.push((field.name(), JsonValue(value.to_string())));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.push((field.name(), JsonValue(value.to_string())));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push((field.name(), JsonValue(value.to_string())));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.message);
        } else {
            self.fields.push((field.name(), JsonValue(json_string(value))));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields.push((field.name(), JsonValue(json_string(&text))));
        }
    }
}
