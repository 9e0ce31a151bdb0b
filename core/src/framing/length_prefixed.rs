//! Reply framing of newer add-ons: a 4-byte big-endian length, then that many bytes of JSON.

use super::Scan;

/// Finds the end of a length-prefixed reply. Refuses (as [`Scan::TooLarge`]) a declared length
/// over the limit as soon as the prefix is in, without waiting for the body.
#[derive(Debug, Clone)]
pub struct LengthPrefixedScanner {
    limit: usize,
}

impl LengthPrefixedScanner {
    /// A scanner refusing replies longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        LengthPrefixedScanner { limit }
    }

    /// Offset of the reply's first byte in a buffer of `len` bytes: just past the prefix.
    pub fn body_start(&self, len: usize) -> usize {
        len.min(4)
    }

    /// Nothing to forget: the state is the buffer itself.
    pub fn reset(&mut self) {}

    /// Same contract as [`super::ReplyScanner::scan`]. Constant work per call.
    pub fn scan(&mut self, buf: &[u8]) -> Scan {
        let Some(prefix) = buf.first_chunk::<4>() else {
            return if buf.is_empty() { Scan::Empty } else { Scan::Incomplete };
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > self.limit {
            return Scan::TooLarge(len);
        }
        if buf.len() - 4 >= len {
            Scan::Complete { start: 4, end: 4 + len }
        } else {
            Scan::Incomplete
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn every_split_point_gives_the_whole_buffer_answer() {
        let mut wire = framed(br#"{"status":"success","result":"x"}"#);
        wire.extend_from_slice(b"\x00\x00");
        for cut in 0..wire.len() {
            let mut s = LengthPrefixedScanner::new(1 << 20);
            let first = s.scan(&wire[..cut]);
            assert!(matches!(first, Scan::Empty | Scan::Incomplete | Scan::Complete { .. }), "{cut}: {first:?}");
            assert_eq!(s.scan(&wire), Scan::Complete { start: 4, end: wire.len() - 2 });
        }
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_from_the_prefix_alone() {
        let mut s = LengthPrefixedScanner::new(10);
        assert_eq!(s.scan(&[0, 0, 0, 11]), Scan::TooLarge(11));
        assert_eq!(s.scan(&[0, 0, 0, 10]), Scan::Incomplete);
    }

    #[test]
    fn a_zero_length_message_is_complete_and_empty() {
        let mut s = LengthPrefixedScanner::new(10);
        assert_eq!(s.scan(&[0, 0, 0, 0]), Scan::Complete { start: 4, end: 4 });
    }
}
