//! Reply framing for the add-on's bare-JSON protocol.
//!
//! Blender's add-on writes one JSON object per reply and **no delimiter**: the reply ends where
//! the object's closing brace is. [`ReplyScanner`] finds that point incrementally: it is fed the
//! growing receive buffer after every read and only looks at bytes it has not seen, so the total
//! work is linear in the reply size however the bytes are chunked (the original pool re-ran
//! `JSON.parse` over the whole buffer per chunk, which is quadratic).
//!
//! The scanner only tracks structure (nesting depth, strings, escapes). Whether the bytes are
//! valid UTF-8 and JSON, and whether the object is a Blender response, is checked once, on the
//! complete reply, by [`validate_reply`].
//!
//! Security note: the scanner itself never allocates; the caller owns the buffer and must bound
//! it (`maxResponseBytes`), since a peer can send an endless string.

use std::fmt;

use memchr::memchr2;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::PoolError;

/// Where the scanner is in the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Skipping whitespace before the reply's first byte.
    Before,
    /// Inside the object, outside any string.
    Structure,
    /// Inside a string.
    Str,
    /// Just after a backslash inside a string.
    StrEscape,
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
        /// Offset of the opening `{`.
        start: usize,
        /// Offset just past the closing `}`.
        end: usize,
    },
    /// The first non-whitespace byte, at this offset, cannot start an object.
    NotAnObject(usize),
}

/// Incremental finder of the end of the first JSON object in a byte stream.
#[derive(Debug, Clone)]
pub struct ReplyScanner {
    state: State,
    /// Open `{` and `[` not yet closed.
    depth: usize,
    /// Bytes of the buffer already examined.
    scanned: usize,
    /// Offset of the reply's opening brace, once seen.
    start: usize,
}

impl Default for ReplyScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyScanner {
    /// A scanner at the start of a reply.
    pub fn new() -> Self {
        ReplyScanner { state: State::Before, depth: 0, scanned: 0, start: 0 }
    }

    /// Forgets everything: the next buffer is a new reply.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Examines the bytes of `buf` not seen by earlier calls. `buf` must be the same buffer as
    /// before, grown at the end (never shrunk or changed) since the last [`ReplyScanner::reset`].
    pub fn scan(&mut self, buf: &[u8]) -> Scan {
        let mut i = self.scanned;
        while i < buf.len() {
            match self.state {
                // Leading whitespace is allowed; the first other byte must open the object.
                State::Before => match buf[i] {
                    b' ' | b'\t' | b'\n' | b'\r' => i += 1,
                    b'{' => {
                        self.start = i;
                        self.depth = 1;
                        self.state = State::Structure;
                        i += 1;
                    }
                    _ => {
                        self.scanned = i;
                        return Scan::NotAnObject(i);
                    }
                },
                // Outside strings only brackets and quotes matter; the validator checks the rest.
                State::Structure => {
                    let b = buf[i];
                    i += 1;
                    match b {
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth -= 1;
                            if self.depth == 0 {
                                self.scanned = i;
                                return Scan::Complete { start: self.start, end: i };
                            }
                        }
                        b'"' => self.state = State::Str,
                        _ => {}
                    }
                }
                // Jump to the next quote or backslash: big replies are mostly long strings.
                State::Str => match memchr2(b'"', b'\\', &buf[i..]) {
                    Some(off) => {
                        i += off;
                        self.state = if buf[i] == b'"' { State::Structure } else { State::StrEscape };
                        i += 1;
                    }
                    None => i = buf.len(),
                },
                // Whatever follows a backslash is part of the string, a quote included.
                State::StrEscape => {
                    self.state = State::Str;
                    i += 1;
                }
            }
        }
        self.scanned = buf.len();
        if self.state == State::Before {
            Scan::Empty
        } else {
            Scan::Incomplete
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
    fn a_reply_split_at_a_quote_after_a_backslash_stays_in_the_string() {
        let mut s = ReplyScanner::new();
        assert_eq!(s.scan(br#"{"a":"x\"#), Scan::Incomplete);
        assert_eq!(s.scan(br#"{"a":"x\"}"#), Scan::Incomplete);
        assert_eq!(s.scan(br#"{"a":"x\"}"}"#), Scan::Complete { start: 0, end: 12 });
    }

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
