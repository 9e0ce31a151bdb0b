//! Reply framing: where one reply ends in the byte stream, and whether it is a Blender response.
//!
//! Two framings exist in the wild, both supported ([`Framing`]):
//! - [`json`]: the classic add-on writes a bare JSON object with no delimiter; its end is found
//!   by scanning the structure incrementally;
//! - [`length_prefixed`]: newer add-ons put a 4-byte big-endian length before every message,
//!   both ways.
//!
//! A [`Decoder`] is fed the growing receive buffer after every read and only looks at bytes it
//! has not seen, so the work is linear in the reply size however the bytes are chunked. It
//! validates as it goes ([`scan`]: grammar, UTF-8, the Blender checks), in the same pass
//! that finds the end: one look at every byte, while it is still in the cache.
//!
//! Every reply is validated in full, also for `execute`, whose `JSON.parse` then reads the text
//! again. On purpose: a bad reply must fail its call *and* discard its connection, with a stable
//! code and a sample of the bytes, before JavaScript sees it (a `SyntaxError` from `JSON.parse`
//! says neither, and comes after the connection went back to the pool); finding where a bare
//! JSON reply ends already means following its strings and nesting, and the grammar check rides
//! on that same pass; and it runs as the bytes arrive, on the I/O thread for big replies, off the
//! event loop, where `JSON.parse` cannot (issue 20 measured it at several GB/s on long strings and
//! printed JSON, about 1 GB/s on a dense scene dump: `bench/native`'s `validate-bench`).
//!
//! Security note: decoders allocate at most a bit per nesting level past 64; the caller owns
//! the buffer and bounds it (`maxResponseBytes`), since a peer can send an endless string or
//! announce a huge length.

use crate::error::PoolError;

pub mod json;
pub mod length_prefixed;
mod reply;
pub mod scan;

pub use json::ReplyScanner;
pub use length_prefixed::LengthPrefixedScanner;
pub(crate) use reply::take_spare;
pub use reply::{recycle, Reply};
pub use scan::{Checked, Expected, Fault, NotBlender};

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
    /// The byte at `at` cannot be part of a valid reply (not JSON, not UTF-8).
    Invalid {
        /// Offset of the first byte no valid reply could have there.
        at: usize,
        /// What is wrong with it.
        fault: Fault,
    },
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

    /// The length of the buffer once the reply is in, when the framing says so in advance
    /// (a length prefix); `None` for bare JSON, whose end is only known when it arrives.
    pub fn expected_len(&self) -> Option<usize> {
        match self {
            Decoder::Json(_) => None,
            Decoder::LengthPrefixed(s) => s.expected_len(),
        }
    }

    /// After `Complete`: whether the reply is a Blender response, and whether it is ASCII.
    pub fn response(&self) -> Result<Checked, NotBlender> {
        match self {
            Decoder::Json(s) => s.response(),
            Decoder::LengthPrefixed(s) => s.response(),
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

/// Checks that a complete reply is a Blender response: valid UTF-8, valid JSON (whitespace
/// around it allowed), an object whose `status` is `"success"` or `"error"` and whose
/// `message`, if present, is a string (the same rule as the consumer's
/// `isBlenderSocketResponse`). On success the text is returned as `&str`.
///
/// The same one-pass validator the reader runs as bytes arrive ([`scan`]), on a whole
/// buffer.
pub fn validate_reply(reply: &[u8]) -> Result<&str, PoolError> {
    let _ = check_reply(reply)?;
    std::str::from_utf8(reply)
        .map_err(|e| PoolError::invalid_response(format!("Reply is not valid UTF-8 ({e})"), reply))
}

/// [`validate_reply`], saying what it found (whether the reply is ASCII).
pub fn check_reply(reply: &[u8]) -> Result<Checked, PoolError> {
    let mut v = scan::Validator::new();
    match v.feed(reply) {
        scan::Progress::Done { end, .. } => match reply[end..].iter().position(|b| !is_whitespace(&[*b])) {
            Some(k) => Err(fault_error(Fault::Json(Expected::End), end + k, reply)),
            None => v.response().map_err(|e| PoolError::invalid_response(e.message(), reply)),
        },
        scan::Progress::Bad { at, fault } => Err(fault_error(fault, at, reply)),
        scan::Progress::Empty | scan::Progress::More => {
            Err(fault_error(Fault::Json(Expected::More), reply.len(), reply))
        }
    }
}

/// The error for a reply found invalid at offset `at` of `reply` (its sample: the reply from
/// its first byte).
pub(crate) fn fault_error(fault: Fault, at: usize, reply: &[u8]) -> PoolError {
    match fault {
        Fault::Utf8 => {
            PoolError::invalid_response(format!("Reply is not valid UTF-8 (invalid byte at offset {at})"), reply)
        }
        Fault::Json(expected) => {
            PoolError::invalid_response(format!("Reply is not valid JSON ({expected} at offset {at})"), reply)
        }
        Fault::NotAnObject => PoolError::invalid_response("Reply is not a JSON object", &reply[at.min(reply.len())..]),
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
