//! Reply framing: where one reply ends in the byte stream, and whether it is a Blender response.
//!
//! Two framings exist in the wild, both supported ([`Framing`]):
//! - [`json`]: the classic add-on writes a bare JSON object with no delimiter; its end is found
//!   by scanning the structure incrementally;
//! - [`length_prefixed`]: newer add-ons put a 4-byte big-endian length before every message,
//!   both ways.
//!
//! A [`Decoder`] is fed the growing receive buffer after every read and only looks at bytes it
//! has not seen, so the work is linear in the reply size however the bytes are chunked.
//! Validation ([`validate_reply`]) runs once, on the complete reply.
//!
//! Security note: decoders never allocate; the caller owns the buffer and bounds it
//! (`maxResponseBytes`), since a peer can send an endless string or announce a huge length.

use std::fmt;

use std::borrow::Cow;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::PoolError;

pub mod json;
pub mod length_prefixed;

pub use json::ReplyScanner;
pub use length_prefixed::LengthPrefixedScanner;

/// How messages are delimited on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// Request: JSON + `\n`; reply: a bare JSON object, no delimiter. Default.
    #[default]
    Json,
    /// Every message, both ways: a 4-byte big-endian length, then that many bytes of JSON.
    LengthPrefixed,
}

impl Framing {
    /// Frames a request body (a JSON text) for the wire, in place.
    pub fn frame_request(self, body: &mut Vec<u8>) {
        match self {
            Framing::Json => body.push(b'\n'),
            Framing::LengthPrefixed => {
                let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
                drop(body.splice(0..0, len.to_be_bytes()));
            }
        }
    }

    /// Whether `bytes`, found after a reply or between requests, leave the stream in step.
    /// JSON framing tolerates whitespace; with length prefixes every byte starts a message.
    pub fn is_harmless_extra(self, bytes: &[u8]) -> bool {
        match self {
            Framing::Json => is_whitespace(bytes),
            Framing::LengthPrefixed => bytes.is_empty(),
        }
    }
}

/// What the bytes seen so far amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// The reply is not complete yet: read more.
    Incomplete,
    /// Only whitespace so far (nothing of a reply has started).
    Empty,
    /// The reply occupies `buf[start..end]`; bytes from `end` on are not part of it.
    Complete {
        /// Offset of the reply's first byte.
        start: usize,
        /// Offset just past the reply's last byte.
        end: usize,
    },
    /// The first non-whitespace byte, at this offset, cannot start an object.
    NotAnObject(usize),
    /// A length prefix announced a reply of this many bytes, more than the limit.
    TooLarge(usize),
}


/// The decoder of one framing, behind one interface.
#[derive(Debug, Clone)]
pub enum Decoder {
    /// Bare JSON.
    Json(ReplyScanner),
    /// Length-prefixed, refusing lengths over the limit.
    LengthPrefixed(LengthPrefixedScanner),
}

impl Decoder {
    /// A decoder for `framing`, refusing announced lengths over `limit`.
    pub fn new(framing: Framing, limit: usize) -> Self {
        match framing {
            Framing::Json => Decoder::Json(ReplyScanner::new()),
            Framing::LengthPrefixed => Decoder::LengthPrefixed(LengthPrefixedScanner::new(limit)),
        }
    }

    /// See [`ReplyScanner::scan`]: same contract for both framings.
    pub fn scan(&mut self, buf: &[u8]) -> Scan {
        match self {
            Decoder::Json(s) => s.scan(buf),
            Decoder::LengthPrefixed(s) => s.scan(buf),
        }
    }

    /// Where the reply's body starts in a buffer of `len` bytes already scanned: past leading
    /// whitespace or the length prefix. The limit applies to the body alone, however the bytes
    /// arrive.
    pub fn body_start(&self, len: usize) -> usize {
        match self {
            Decoder::Json(s) => s.body_start(len),
            Decoder::LengthPrefixed(s) => s.body_start(len),
        }
    }

    /// Forgets everything: the next buffer is a new reply.
    pub fn reset(&mut self) {
        match self {
            Decoder::Json(s) => s.reset(),
            Decoder::LengthPrefixed(s) => s.reset(),
        }
    }
}

/// Whether `bytes` is only JSON whitespace (what may follow a reply without breaking the stream).
pub fn is_whitespace(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Checks that a complete reply is a Blender response: valid UTF-8, valid JSON, an object whose
/// `status` is `"success"` or `"error"` and whose `message`, if present, is a string (the same
/// rule as the consumer's `isBlenderSocketResponse`). On success the text is returned as `&str`.
pub fn validate_reply(reply: &[u8]) -> Result<&str, PoolError> {
    let text = std::str::from_utf8(reply)
        .map_err(|e| PoolError::invalid_response(format!("Reply is not valid UTF-8 ({e})"), reply))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let head = de
        .deserialize_map(HeadVisitor)
        .and_then(|head| de.end().map(|()| head))
        .map_err(|e| PoolError::invalid_response(format!("Reply is not valid JSON ({e})"), reply))?;
    match head.status {
        Some(Status::Success | Status::Error) => {}
        Some(Status::Other) => {
            return Err(PoolError::invalid_response("Reply status is not \"success\" or \"error\"", reply))
        }
        None => return Err(PoolError::invalid_response("Reply has no status field", reply)),
    }
    if head.message_not_string {
        return Err(PoolError::invalid_response("Reply message is not a string", reply));
    }
    Ok(text)
}

/// The two fields of a reply that decide whether it is a Blender response.
#[derive(Debug, Default)]
struct Head {
    status: Option<Status>,
    message_not_string: bool,
}

#[derive(Debug, Clone, Copy)]
enum Status {
    Success,
    Error,
    Other,
}

/// Walks the top-level object once, keeping `status` and `message` (last one wins, as in
/// `JSON.parse`) and skipping every other value without building it.
///
/// Keys and those two values are read as raw bytes rather than as Rust strings, so that lone
/// UTF-16 surrogate escapes (`"\udce9"`), which `JSON.parse` accepts and Python's `json.dumps`
/// writes for a file name that is not UTF-8, are accepted there as they are everywhere else.
struct HeadVisitor;

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = Head;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
        let mut head = Head::default();
        while let Some(key) = map.next_key_seed(RawString)? {
            match key.as_ref() {
                b"status" => {
                    let value: &'de RawValue = map.next_value()?;
                    head.status = Some(match string_bytes(value) {
                        Some(s) if s.as_ref() == b"success" => Status::Success,
                        Some(s) if s.as_ref() == b"error" => Status::Error,
                        _ => Status::Other,
                    });
                }
                b"message" => {
                    let value: &'de RawValue = map.next_value()?;
                    head.message_not_string = !value.get().starts_with('"');
                }
                _ => {
                    let IgnoredAny = map.next_value()?;
                }
            }
        }
        Ok(head)
    }
}

/// The decoded bytes of a JSON string value (lone surrogates as WTF-8), or `None` for any other
/// value.
fn string_bytes<'a>(value: &'a RawValue) -> Option<Cow<'a, [u8]>> {
    let text = value.get();
    if !text.starts_with('"') {
        return None;
    }
    // Escapes are rare in a status: skip the decoder for the plain spelling.
    if !text.contains('\\') {
        return Some(Cow::Borrowed(text[1..text.len() - 1].as_bytes()));
    }
    serde_json::Deserializer::from_str(text).deserialize_bytes(RawString).ok()
}

/// A JSON string read as its decoded bytes, whatever escapes it holds.
struct RawString;

impl<'de> de::DeserializeSeed<'de> for RawString {
    type Value = Cow<'de, [u8]>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for RawString {
    type Value = Cow<'de, [u8]>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_accepts_success_and_error_and_rejects_the_rest() {
        assert!(validate_reply(br#"{"status":"success","result":{"a":[1,2]}}"#).is_ok());
        assert!(validate_reply(br#"{"status":"error","message":"boom"}"#).is_ok());
        for bad in [
            &br#"{"status":"weird"}"#[..],
            br#"{"result":1}"#,
            br#"{"status":"error","message":42}"#,
            br#"{"status":"error","message":null}"#,
            br#"{"status":success}"#,
            br#"{"status":"success"} x"#,
            b"{\"status\":\"success\",\"r\":\"\xff\"}",
        ] {
            let e = validate_reply(bad).unwrap_err();
            assert_eq!(e.code(), "ERR_INVALID_RESPONSE", "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_last_duplicate_status_wins_as_in_json_parse() {
        assert!(validate_reply(br#"{"status":"weird","status":"success"}"#).is_ok());
        assert!(validate_reply(br#"{"status":"success","status":1}"#).is_err());
    }

    #[test]
    fn escaped_status_values_are_decoded_before_comparing() {
        assert!(validate_reply(br#"{"status":"succ\u0065ss"}"#).is_ok());
        assert!(validate_reply(br#"{"st\u0061tus":"error","message":"m"}"#).is_ok());
        assert!(validate_reply(br#"{"status":"succ\u0065ss\u0000"}"#).is_err());
    }

    #[test]
    fn lone_surrogates_are_accepted_where_json_parse_accepts_them() {
        // Python's json.dumps(str(OSError)) for a file name that is not UTF-8.
        assert!(validate_reply(br#"{"status":"error","message":"No such file: 'caf\udce9.blend'"}"#).is_ok());
        assert!(validate_reply(br#"{"status":"success","result":{"\ud800":1},"\udfff":"\ud83d"}"#).is_ok());
        assert!(validate_reply(br#"{"\udce9":1,"status":"success"}"#).is_ok());
        // A lone surrogate still cannot spell "success".
        assert!(validate_reply(br#"{"status":"success\ud800"}"#).is_err());
        // And a broken escape is still not JSON.
        assert!(validate_reply(br#"{"status":"error","message":"\udzzz"}"#).is_err());
    }
}
