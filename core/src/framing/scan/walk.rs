//! Stage two: the grammar checked over the events of whole blocks ([`blocks::Block`]), and the
//! body of a long string skipped block by block.
//!
//! The walk is the byte-by-byte scanner's fast lane, never its judge: it runs where the scanner
//! would see only structure, plain strings and ASCII (inside the reply's object, two levels deep
//! or more, where the Blender checks have nothing to look at), checks numbers and literals where
//! they stand with the scanner's own token functions, and hands back, in the scanner's own state,
//! at the first thing it does not take whole: an anomaly, a byte the grammar does not allow
//! there, a token the buffer cuts, or the last whole block. The scanner then reads on from there
//! byte by byte, so a bad byte is found at the same offset, with the same fault, as without the
//! walk.

use super::blocks::{Block, Carry, Kernel};
use super::tokens::{literal, number, Num, NumStep, Step};
use super::{Expect, Validator};

/// Where the walk left the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handback {
    /// At this byte, outside any token, `expect` saved.
    At(usize),
    /// Inside a plain string at this byte (never just after an escaping backslash); `expect` saved
    /// as it was before the string's opening quote.
    InString(usize),
}

impl Validator {
    /// Walks whole blocks from `i` (outside any token, two levels deep or more, `self.expect`
    /// current). The scanner takes back over where it says, and does not call it again before
    /// `self.walk_from` (past the byte it stopped at).
    pub(super) fn walk(&mut self, buf: &[u8], i: usize) -> Handback {
        let kernel = Kernel::get();
        let n = buf.len();
        let blocks_end = i + (n - i) / 64 * 64;
        let mut expect = self.expect;
        let mut carry = Carry::default();
        // The string open at a block's end: its opening quote and what was expected before it.
        let mut string = (i, expect);
        let mut blk = i;
        // Saves the state at a byte the scanner reads next.
        macro_rules! hand_back {
            ($at:expr, $expect:expr, $how:expr) => {{
                self.expect = $expect;
                self.walk_from = $at + 1;
                return $how;
            }};
        }
        while blk < blocks_end {
            let block: &[u8; 64] = buf[blk..blk + 64].try_into().expect("a whole block");
            let m = Block::of(&kernel.classes(block), &mut carry);
            let stop = m.anomalies.trailing_zeros();
            let mut events = if stop == 64 { m.events } else { m.events & ((1 << stop) - 1) };
            while events != 0 {
                let p = blk + events.trailing_zeros() as usize;
                events &= events - 1;
                let b = buf[p];
                expect = match (b, expect) {
                    (b'"', Expect::Value | Expect::ValueOrClose) => {
                        string = (p, expect);
                        Expect::CommaOrClose
                    }
                    (b'"', Expect::Key | Expect::KeyOrClose) => {
                        string = (p, expect);
                        Expect::Colon
                    }
                    (b':', Expect::Colon) => Expect::Value,
                    (b',', Expect::CommaOrClose) if self.nesting.top_is_object() => Expect::Key,
                    (b',', Expect::CommaOrClose) => Expect::Value,
                    (b'{', Expect::Value | Expect::ValueOrClose) => {
                        self.nesting.push(true);
                        Expect::KeyOrClose
                    }
                    (b'[', Expect::Value | Expect::ValueOrClose) => {
                        self.nesting.push(false);
                        Expect::ValueOrClose
                    }
                    (b'}', Expect::CommaOrClose | Expect::KeyOrClose)
                    | (b']', Expect::CommaOrClose | Expect::ValueOrClose)
                        if (b == b'}') == self.nesting.top_is_object() =>
                    {
                        self.nesting.pop();
                        if self.nesting.depth < 2 {
                            // Back in the reply's own object: the scanner's checks again.
                            hand_back!(p, Expect::CommaOrClose, Handback::At(p + 1));
                        }
                        Expect::CommaOrClose
                    }
                    (b'-' | b'0'..=b'9' | b't' | b'f' | b'n', Expect::Value | Expect::ValueOrClose)
                        if plain_token(buf, p, p - blk, &m) =>
                    {
                        Expect::CommaOrClose
                    }
                    (b'-' | b'0'..=b'9' | b't' | b'f' | b'n', Expect::Value | Expect::ValueOrClose) => {
                        let end = match b {
                            b'-' => number(buf, p + 1, Num::Minus),
                            b'0' => number(buf, p + 1, Num::Zero),
                            b'1'..=b'9' => number(buf, p + 1, Num::Int),
                            b't' => literal_step(literal(buf, p, b"true")),
                            b'f' => literal_step(literal(buf, p, b"false")),
                            _ => literal_step(literal(buf, p, b"null")),
                        };
                        match end {
                            // It must end where its run of bytes does, within the walked blocks.
                            NumStep::Next(j) if j < blocks_end && ends_token(buf[j]) => Expect::CommaOrClose,
                            _ => hand_back!(p, expect, Handback::At(p)),
                        }
                    }
                    // Anything else is for the scanner to judge.
                    _ => hand_back!(p, expect, Handback::At(p)),
                };
            }
            if stop < 64 {
                let a = blk + stop as usize;
                if m.in_string >> stop & 1 == 1 {
                    // Read the string again from its opening quote, byte by byte.
                    hand_back!(a, string.1, Handback::At(string.0));
                }
                hand_back!(a, expect, Handback::At(a));
            }
            blk += 64;
        }
        if carry.in_string {
            // Never resume between an escaping backslash and the byte it escapes.
            let at = blk - usize::from(carry.escaped);
            hand_back!(at, string.1, Handback::InString(at));
        }
        hand_back!(blk, expect, Handback::At(blk))
    }
}

/// Whether the number or literal starting at `buf[p]`, offset `e` of the block `m`, is one of the
/// usual forms, found valid from the masks: `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, `true`, `false`,
/// `null`, ending within the block. `false` says nothing: [`number`] and [`literal`] then judge.
#[inline]
fn plain_token(buf: &[u8], p: usize, e: usize, m: &Block) -> bool {
    let len = (!(m.other >> e)).trailing_zeros() as usize;
    if e + len >= 64 {
        return false; // it may go on in the next block
    }
    let run = (1u64 << len) - 1;
    let digits = m.digit >> e & run;
    let first = buf[p];
    if digits == run {
        // An unsigned integer: a leading 0 only alone.
        return first != b'0' || len == 1;
    }
    let signed = usize::from(first == b'-');
    // The bytes that are neither digits nor the sign: one dot, or none.
    let others = run & !digits & !(signed as u64);
    let dot = others.trailing_zeros() as usize;
    if others == 1 << dot && digits & 1 << signed != 0 {
        // A dot with digits on both sides; a leading 0 only right before it.
        return buf[p + dot] == b'.' && dot + 1 < len && (buf[p + signed] != b'0' || dot == signed + 1);
    }
    if others == 0 && signed == 1 && len > 1 {
        return buf[p + 1] != b'0' || len == 2;
    }
    match first {
        b't' => len == 4 && buf[p..p + 4] == *b"true",
        b'f' => len == 5 && buf[p..p + 5] == *b"false",
        b'n' => len == 4 && buf[p..p + 4] == *b"null",
        _ => false,
    }
}

/// A literal's step as a number's, for one match.
fn literal_step(step: Step) -> NumStep {
    match step {
        Step::Next(j) => NumStep::Next(j),
        Step::More(j) => NumStep::More(j, Num::Minus),
        Step::Bad(j, _) => NumStep::Bad(j),
    }
}

/// Whether `b`, right after a number or literal, ends it as its run of bytes ends (whitespace,
/// structure or a quote): otherwise the scanner must see what follows.
#[inline]
fn ends_token(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',' | b':' | b'[' | b']' | b'{' | b'}' | b'"')
}

/// The first offset from `i`, inside a string's body and not just after an escaping backslash,
/// whose byte the byte-by-byte string scan must see: the closing quote, an anomaly (a control
/// character, a byte of a non-ASCII character, the backslash of an escape other than the simple
/// ones), or the start of the bytes short of a whole block. Every byte before it is a plain
/// character or part of a simple escape.
pub(super) fn skip_string(buf: &[u8], i: usize) -> usize {
    let kernel = Kernel::get();
    let n = buf.len();
    let mut carry = Carry { in_string: true, ..Carry::default() };
    let mut blk = i;
    while blk + 64 <= n {
        let block: &[u8; 64] = buf[blk..blk + 64].try_into().expect("a whole block");
        let m = Block::of(&kernel.classes(block), &mut carry);
        let stop = m.quotes | m.anomalies;
        if stop != 0 {
            let k = stop.trailing_zeros();
            // An escape's anomaly is at the escaped byte: go back to its backslash.
            return blk + k as usize - (m.escaped >> k & 1) as usize;
        }
        blk += 64;
    }
    blk - usize::from(carry.escaped)
}
