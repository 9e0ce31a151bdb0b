//! Reply framing of the add-on's bare-JSON protocol.
//!
//! Blender's add-on writes one JSON object per reply and **no delimiter**: the reply ends where
//! the object's closing brace is. [`ReplyScanner`] finds that point incrementally: it is fed the
//! growing receive buffer after every read and only looks at bytes it has not seen, so the total
//! work is linear in the reply size however the bytes are chunked (the original pool re-ran
//! `JSON.parse` over the whole buffer per chunk, which is quadratic).
//!
//! The scanner only tracks structure (nesting depth, strings, escapes). Whether the bytes are
//! valid UTF-8 and JSON, and whether the object is a Blender response, is checked once, on the
//! complete reply, by [`super::validate_reply`].
//!
//! Security note: the scanner itself never allocates; the caller owns the buffer and must bound
//! it (`maxResponseBytes`), since a peer can send an endless string.

use memchr::memchr2;

use super::Scan;

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
    /// The object ended at `scanned`: the answer no longer changes until `reset`.
    Done,
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

    /// Offset of the reply's first byte in a buffer of `len` bytes scanned so far: `len` while
    /// only whitespace has been seen (no byte of the reply yet).
    pub fn body_start(&self, len: usize) -> usize {
        if self.state == State::Before {
            len
        } else {
            self.start
        }
    }

    /// Examines the bytes of `buf` not seen by earlier calls. `buf` must be the same buffer as
    /// before, grown at the end (never shrunk or changed) since the last [`ReplyScanner::reset`].
    pub fn scan(&mut self, buf: &[u8]) -> Scan {
        if self.state == State::Done {
            return Scan::Complete { start: self.start, end: self.scanned };
        }
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
                                self.state = State::Done;
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
                // Returned early above; nothing is scanned once the object has ended.
                State::Done => unreachable!("scan returns before looping in State::Done"),
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
}
