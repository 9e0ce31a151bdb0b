//! A reply as the reader hands it over: validated, and saying whether it is ASCII; and the one
//! spare buffer a big reply can be read into.

use std::fmt;
use std::sync::Mutex;

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
    /// `String` of bytes): for Rust callers; the binding uses the bytes. The capacity reserved
    /// for a big reply is given back.
    pub fn into_string(self) -> String {
        let mut bytes = self.bytes;
        bytes.shrink_to_fit();
        String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// Buffers worth keeping for another reply: big ones (smaller ones are cheap to allocate), but
/// not those reserved for a limit past 256 MiB (the spare's touched pages stay resident while
/// it waits: at most the biggest reply it held, under the default limit 64 MiB).
const RECYCLED: std::ops::RangeInclusive<usize> = (1 << 20)..=(256 << 20) + 1;

/// One big reply buffer whose reply nobody needs any more, its pages already touched.
static SPARE: Mutex<Option<Vec<u8>>> = Mutex::new(None);

/// Gives back the bytes of a reply nobody needs any more (the binding calls it once JavaScript
/// let go of a reply string): if big, they become the buffer the next big reply is read into.
///
/// A fresh buffer costs a page fault per 4 KiB touched (a 20 MB reply: about 5,000, ~8 ms here,
/// half the time of the whole read); a reused one none. One spare is kept, the larger.
pub fn recycle(mut bytes: Vec<u8>) {
    if !RECYCLED.contains(&bytes.capacity()) {
        return;
    }
    bytes.clear();
    let dropped = {
        let mut spare = SPARE.lock().unwrap_or_else(|p| p.into_inner());
        match &*spare {
            Some(kept) if kept.capacity() >= bytes.capacity() => Some(bytes),
            _ => spare.replace(bytes),
        }
    };
    drop(dropped); // freed outside the lock
}

/// The spare buffer, empty, if there is one with room for at least `capacity` bytes.
pub(crate) fn take_spare(capacity: usize) -> Option<Vec<u8>> {
    let mut spare = SPARE.lock().unwrap_or_else(|p| p.into_inner());
    match &*spare {
        Some(kept) if kept.capacity() >= capacity => spare.take(),
        _ => None,
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
