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

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

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
struct HeadVisitor;

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = Head;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
        let mut head = Head::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "status" => {
                    let v: AnyScalar<'de> = map.next_value()?;
                    head.status = Some(match v {
                        AnyScalar::Str(s) if s == "success" => Status::Success,
                        AnyScalar::Str(s) if s == "error" => Status::Error,
                        _ => Status::Other,
                    });
                }
                "message" => {
                    let v: AnyScalar<'de> = map.next_value()?;
                    head.message_not_string = !matches!(v, AnyScalar::Str(_));
                }
                _ => {
                    let IgnoredAny = map.next_value()?;
                }
            }
        }
        Ok(head)
    }
}

/// A JSON value seen only as "a string (kept) or something else (skipped)".
enum AnyScalar<'a> {
    Str(std::borrow::Cow<'a, str>),
    Other,
}

impl<'de> de::Deserialize<'de> for AnyScalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyScalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(AnyScalar::Str(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(AnyScalar::Str(v.to_owned().into()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(AnyScalar::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(AnyScalar::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(AnyScalar::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(AnyScalar::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(AnyScalar::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(AnyScalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyScalar::Other)
            }
        }
        d.deserialize_any(V)
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
    }
}
