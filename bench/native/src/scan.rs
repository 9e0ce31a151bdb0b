//! Finds where the first JSON object (or array) of a byte stream ends, incrementally: brace depth,
//! strings and backslash escapes are tracked across reads, so the cost is linear in the reply size
//! however it is chunked. This is how a client of the Blender add-on has to frame a reply, since
//! the add-on sends no delimiter after it. Inside strings, `memchr2` jumps to the next `"` or `\`.

use memchr::memchr2;

/// Why the scanner gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// The stream starts with something other than `{` or `[` (after whitespace).
    NotAContainer(u8),
    /// A closing bracket with nothing open.
    Unbalanced,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::NotAContainer(b) => write!(f, "reply does not start with '{{' or '[' (byte 0x{b:02x})"),
            ScanError::Unbalanced => write!(f, "reply has an unbalanced closing bracket"),
        }
    }
}

impl std::error::Error for ScanError {}

/// Incremental scanner over a growing buffer: call [`ReplyScanner::scan`] with the whole buffer
/// after each read; it resumes where it stopped.
#[derive(Debug, Default)]
pub struct ReplyScanner {
    pos: usize,
    depth: usize,
    in_string: bool,
    escape: bool,
}

impl ReplyScanner {
    /// A scanner at the start of a reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans `buf[pos..]` (`buf` holds every byte received so far). Returns `Some(end)`, the
    /// exclusive end of the first complete value, or `None` when more bytes are needed.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, ScanError> {
        let mut i = self.pos;
        while i < buf.len() {
            if self.in_string {
                i = self.skip_string(buf, i);
                continue;
            }
            let b = buf[i];
            i += 1;
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    if self.depth == 0 {
                        return Err(ScanError::Unbalanced);
                    }
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.pos = i;
                        return Ok(Some(i));
                    }
                }
                b' ' | b'\t' | b'\r' | b'\n' => {}
                other if self.depth == 0 => return Err(ScanError::NotAContainer(other)),
                _ => {}
            }
        }
        self.pos = i;
        Ok(None)
    }

    /// Inside a string at `i`: returns the index just past the next significant byte.
    fn skip_string(&mut self, buf: &[u8], i: usize) -> usize {
        if self.escape {
            self.escape = false;
            return i + 1;
        }
        match memchr2(b'"', b'\\', &buf[i..]) {
            None => buf.len(),
            Some(off) => {
                let j = i + off;
                if buf[j] == b'\\' {
                    self.escape = true;
                } else {
                    self.in_string = false;
                }
                j + 1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `text` in chunks of `step` bytes; returns the end found, if any.
    fn end_in_chunks(text: &[u8], step: usize) -> Option<usize> {
        let mut scanner = ReplyScanner::new();
        let mut upto = 0;
        while upto < text.len() {
            upto = (upto + step).min(text.len());
            if let Some(end) = scanner.scan(&text[..upto]).unwrap() {
                return Some(end);
            }
        }
        None
    }

    #[test]
    fn finds_the_end_whatever_the_chunking() {
        let text = br#" {"status":"success","result":{"s":"a}\"b\\","n":[1,{"x":"]"}]}}"#;
        for step in 1..=text.len() {
            assert_eq!(end_in_chunks(text, step), Some(text.len()), "step {step}");
        }
    }

    #[test]
    fn stops_at_the_first_value() {
        let text = br#"{"a":1}{"b":2}"#;
        assert_eq!(end_in_chunks(text, 3), Some(7));
    }

    #[test]
    fn waits_for_more_bytes() {
        assert_eq!(end_in_chunks(br#"{"a":"}"#, 1), None);
        assert_eq!(end_in_chunks(br#"{"a":"\"#, 1), None);
    }

    #[test]
    fn rejects_non_containers() {
        let mut scanner = ReplyScanner::new();
        assert_eq!(scanner.scan(b"  x"), Err(ScanError::NotAContainer(b'x')));
        assert_eq!(ReplyScanner::new().scan(b"}"), Err(ScanError::Unbalanced));
    }
}
