//! Reply framing of newer add-ons: a 4-byte big-endian length, then that many bytes of JSON.

use super::scan::{Checked, Expected, Fault, NotBlender, Progress, Validator};
use super::{is_whitespace, Scan};

/// Finds the end of a length-prefixed reply and validates its body as it arrives. Refuses (as
/// [`Scan::TooLarge`]) a declared length over the limit as soon as the prefix is in, without
/// waiting for the body.
#[derive(Debug, Clone)]
pub struct LengthPrefixedScanner {
    limit: usize,
    /// The body length the prefix announced (within the limit), once the prefix is in.
    announced: Option<usize>,
    /// The body's JSON, checked as it arrives (offsets relative to the body).
    validator: Validator,
    /// Body bytes after the object checked to be whitespace so far.
    trailing: usize,
    /// A final answer once given: repeated as is.
    last: Option<Scan>,
}

impl LengthPrefixedScanner {
    /// The prefix's size.
    const PREFIX: usize = 4;

    /// A scanner refusing replies longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        LengthPrefixedScanner { limit, announced: None, validator: Validator::new(), trailing: 0, last: None }
    }

    /// Offset of the reply's first byte in a buffer of `len` bytes: just past the prefix.
    pub fn body_start(&self, len: usize) -> usize {
        len.min(Self::PREFIX)
    }

    /// The buffer's length once the reply is in (prefix included), when the prefix is in.
    pub fn expected_len(&self) -> Option<usize> {
        self.announced.map(|len| Self::PREFIX + len)
    }

    /// Forgets everything: the next buffer is a new reply.
    pub fn reset(&mut self) {
        self.announced = None;
        self.validator.reset();
        self.trailing = 0;
        self.last = None;
    }

    /// Same contract as [`super::ReplyScanner::scan`]: `Complete` once the whole body is in and
    /// is one valid JSON object (whitespace around it allowed); `Invalid` at the first byte
    /// that cannot be, as soon as it arrives.
    pub fn scan(&mut self, buf: &[u8]) -> Scan {
        if let Some(last) = self.last {
            return last;
        }
        let scan = self.scan_body(buf);
        if !matches!(scan, Scan::Empty | Scan::Incomplete) {
            self.last = Some(scan);
        }
        scan
    }

    fn scan_body(&mut self, buf: &[u8]) -> Scan {
        let Some(prefix) = buf.first_chunk::<4>() else {
            return if buf.is_empty() { Scan::Empty } else { Scan::Incomplete };
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > self.limit {
            return Scan::TooLarge(len);
        }
        self.announced = Some(len);
        let whole = buf.len() - Self::PREFIX >= len;
        let body = &buf[Self::PREFIX..buf.len().min(Self::PREFIX + len)];
        let invalid = |at: usize, fault| Scan::Invalid { at: Self::PREFIX + at, fault };
        match self.validator.feed(body) {
            Progress::Bad { at, fault: Fault::NotAnObject } => Scan::NotAnObject(Self::PREFIX + at),
            Progress::Bad { at, fault } => invalid(at, fault),
            Progress::Done { end, .. } => {
                let from = end.max(self.trailing);
                if let Some(k) = body[from..].iter().position(|b| !is_whitespace(&[*b])) {
                    return invalid(from + k, Fault::Json(Expected::End));
                }
                self.trailing = body.len();
                if whole {
                    Scan::Complete { start: Self::PREFIX, end: Self::PREFIX + len }
                } else {
                    Scan::Incomplete
                }
            }
            Progress::Empty | Progress::More if whole => invalid(len, Fault::Json(Expected::More)),
            Progress::Empty | Progress::More => Scan::Incomplete,
        }
    }

    /// After `Complete`: whether the body is a Blender response, and whether it is ASCII.
    pub fn response(&self) -> Result<Checked, NotBlender> {
        self.validator.response()
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
        let mut wire = framed(br#" {"status":"success","result":"x"} "#);
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
        let mut s = LengthPrefixedScanner::new(10);
        assert_eq!(s.scan(&[0, 0, 0, 10]), Scan::Incomplete);
    }

    #[test]
    fn a_body_that_is_not_one_object_is_invalid_where_it_goes_wrong() {
        let mut s = LengthPrefixedScanner::new(100);
        assert_eq!(s.scan(&[0, 0, 0, 0]), Scan::Invalid { at: 4, fault: Fault::Json(Expected::More) });
        let mut s = LengthPrefixedScanner::new(100);
        assert_eq!(s.scan(&framed(b"{} {}")), Scan::Invalid { at: 7, fault: Fault::Json(Expected::End) });
        let mut s = LengthPrefixedScanner::new(100);
        assert_eq!(s.scan(&framed(b" [1]")), Scan::NotAnObject(5));
        let mut s = LengthPrefixedScanner::new(100);
        assert_eq!(s.scan(&framed(br#"{"a":"#)), Scan::Invalid { at: 9, fault: Fault::Json(Expected::More) });
    }
}
