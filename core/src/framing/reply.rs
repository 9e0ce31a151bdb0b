//! A reply as the reader hands it over: validated, and saying whether it is ASCII.

use std::fmt;

/// Blender's reply, validated (UTF-8 JSON, a Blender response), as the bytes that came.
///
/// It keeps what validation found, so that nobody looks at its bytes again to learn it: the
/// binding turns an ASCII reply into a JavaScript string without a copy (ASCII is Latin-1), and
/// nothing re-checks the UTF-8 the reader already checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    bytes: Vec<u8>,
    ascii: bool,
}

impl Reply {
    /// A reply the validator found valid, with whether it is ASCII.
    pub(crate) fn validated(bytes: Vec<u8>, ascii: bool) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok(), "a validated reply is UTF-8");
        debug_assert_eq!(ascii, bytes.is_ascii());
        Reply { bytes, ascii }
    }

    /// The reply's bytes (valid UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it is empty (never, for a validated reply: it holds an object).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether every byte is ASCII.
    pub fn is_ascii(&self) -> bool {
        self.ascii
    }

    /// The bytes, for whoever turns them into text itself.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The reply as a `String`. Checks the UTF-8 once more (safe code has no other way to make a
    /// `String` of bytes): for Rust callers; the binding uses the bytes.
    pub fn into_string(self) -> String {
        String::from_utf8(self.bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// Never the body (replies hold users' code and API keys): its size only.
impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply").field("len", &self.bytes.len()).field("ascii", &self.ascii).finish()
    }
}

/// Test replies, written as text.
#[cfg(test)]
impl From<&str> for Reply {
    fn from(text: &str) -> Self {
        Reply::validated(text.as_bytes().to_vec(), text.is_ascii())
    }
}
