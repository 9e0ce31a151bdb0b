//! Reply framing of the add-on's bare-JSON protocol.
//!
//! Blender's add-on writes one JSON object per reply and **no delimiter**: the reply ends where
//! the object's closing brace is. [`ReplyScanner`] finds that point incrementally: it is fed the
//! growing receive buffer after every read and only looks at bytes it has not seen, so the total
//! work is linear in the reply size however the bytes are chunked (the original pool re-ran
//! `JSON.parse` over the whole buffer per chunk, which is quadratic).
//!
//! Finding the end and validating are one pass ([`super::scan`]): the grammar, UTF-8 and
//! the Blender checks are done as the bytes arrive, so a reply is known valid (or not) the
//! moment its last byte is in, and an invalid one fails at the first byte that is wrong.
//!
//! Security note: the scanner keeps one bit per nesting level beyond 64 (bounded by the reply
//! size); the caller owns the buffer and must bound it (`maxResponseBytes`), since a peer can
//! send an endless string.

use super::scan::{Checked, NotBlender, Progress, Validator};
use super::Scan;

/// Incremental finder and validator of the first JSON object in a byte stream.
#[derive(Debug, Clone, Default)]
pub struct ReplyScanner {
    validator: Validator,
    /// A final answer once given (`Complete`, `NotAnObject`, `Invalid`): repeated as is.
    last: Option<Scan>,
}

impl ReplyScanner {
    /// A scanner at the start of a reply.
    pub fn new() -> Self {
        ReplyScanner { validator: Validator::new(), last: None }
    }

    /// Forgets everything: the next buffer is a new reply.
    pub fn reset(&mut self) {
        self.validator.reset();
        self.last = None;
    }

    /// Offset of the reply's first byte in a buffer of `len` bytes scanned so far: `len` while
    /// only whitespace has been seen (no byte of the reply yet).
    pub fn body_start(&self, len: usize) -> usize {
        if self.validator.started() {
            self.validator.start()
        } else {
            len
        }
    }

    /// Examines the bytes of `buf` not seen by earlier calls. `buf` must be the same buffer as
    /// before, grown at the end (never shrunk or changed) since the last [`ReplyScanner::reset`].
    ///
    /// `Complete` means a valid JSON object (grammar and UTF-8) ends there; whether it is a
    /// Blender response is then [`ReplyScanner::response`]. `Invalid` is reported at the first
    /// byte that no valid reply could have there.
    pub fn scan(&mut self, buf: &[u8]) -> Scan {
        if let Some(last) = self.last {
            return last;
        }
        let scan = match self.validator.feed(buf) {
            Progress::Empty => Scan::Empty,
            Progress::More => Scan::Incomplete,
            Progress::Done { start, end } => Scan::Complete { start, end },
            Progress::Bad { at, fault: super::Fault::NotAnObject } => Scan::NotAnObject(at),
            Progress::Bad { at, fault } => Scan::Invalid { at, fault },
        };
        if !matches!(scan, Scan::Empty | Scan::Incomplete) {
            self.last = Some(scan);
        }
        scan
    }

    /// After `Complete`: whether the object is a Blender response, and whether it is ASCII.
    pub fn response(&self) -> Result<Checked, NotBlender> {
        debug_assert!(self.validator.done(), "response() before the reply is complete");
        self.validator.response()
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
    fn a_completed_scan_keeps_its_answer_as_bytes_keep_coming() {
        let mut s = ReplyScanner::new();
        assert_eq!(s.scan(b"{}"), Scan::Complete { start: 0, end: 2 });
        assert_eq!(s.scan(b"{}}}]]"), Scan::Complete { start: 0, end: 2 });
    }

    #[test]
    fn an_invalid_byte_fails_the_reply_before_it_ends() {
        let mut s = ReplyScanner::new();
        let scan = s.scan(br#"  {"status":"success","result":[1,2 3"#);
        assert!(matches!(scan, Scan::Invalid { at: 36, .. }), "{scan:?}");
        assert_eq!(s.scan(br#"  {"status":"success","result":[1,2 3]}"#), scan, "final");
    }
}
