//! Stage two: whole blocks ([`blocks::Block`]) of structure, and the body of a long string
//! skipped block by block.
//!
//! The walk is the byte-by-byte scanner's fast lane, never its judge: it runs where the scanner
//! would see only structure, plain strings and ASCII (inside the reply's object, two levels deep
//! or more, where the Blender checks have nothing to look at). A block goes through the mask
//! checks when they take it whole (`runs`: its numbers and literals; `grammar`: every byte's
//! neighbours, the nesting and which strings are keys), else through the event loop, which checks
//! the grammar event by event and numbers and literals where they stand with the scanner's own
//! token functions, and hands back, in the scanner's own state, at the first thing it does not
//! take whole: an anomaly, a byte the grammar does not allow there, a token the buffer cuts. The
//! walk also hands back after the last whole block. The scanner then reads on from there byte by
//! byte, so a bad byte is found at the same offset, with the same fault, as without the walk.
//!
//! The mask checks may refuse a block the event loop takes (they are never looser): a number of
//! a form the masks do not cover, a bracket that leaves the walk's depth. Between the two, the
//! state crosses block boundaries as what the last significant byte left pending
//! ([`Pending`]), which is what the scanner would expect there.

use super::blocks::{Block, Carry, Kernel};
use super::classes::Classes;
use super::grammar::{self, Levels, Pending};
use super::runs;
use super::tokens::{literal, number, stops_plain, Num, NumStep, Step};
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

/// What the walk expects next, with whether the innermost container is an object (bit 0):
/// `expect * 2 + object`, an index into [`NEXT`].
type State = u8;

/// The walk's expectations, in the order of its states.
const EXPECTS: [Expect; 6] =
    [Expect::Value, Expect::ValueOrClose, Expect::Key, Expect::KeyOrClose, Expect::Colon, Expect::CommaOrClose];

/// The event classes: what the byte at an event is.
const QUOTE: u8 = 0;
const COLON: u8 = 1;
const COMMA: u8 = 2;
const OPEN_OBJECT: u8 = 3;
const OPEN_ARRAY: u8 = 4;
const CLOSE_OBJECT: u8 = 5;
const CLOSE_ARRAY: u8 = 6;
/// The first byte of a number or literal: `-`, a digit, `t`, `f`, `n`.
const TOKEN: u8 = 7;
/// Anything else: for the scanner to judge.
const ELSE: u8 = 8;

/// The class of each byte at an event.
const CLASS: [u8; 256] = {
    let mut class = [ELSE; 256];
    class[b'"' as usize] = QUOTE;
    class[b':' as usize] = COLON;
    class[b',' as usize] = COMMA;
    class[b'{' as usize] = OPEN_OBJECT;
    class[b'[' as usize] = OPEN_ARRAY;
    class[b'}' as usize] = CLOSE_OBJECT;
    class[b']' as usize] = CLOSE_ARRAY;
    let mut b = b'0';
    while b <= b'9' {
        class[b as usize] = TOKEN;
        b += 1;
    }
    class[b'-' as usize] = TOKEN;
    class[b't' as usize] = TOKEN;
    class[b'f' as usize] = TOKEN;
    class[b'n' as usize] = TOKEN;
    class
};

/// No next state: the byte is not allowed there.
const BAD: State = 0xff;

/// The state after an event of each class, or [`BAD`]. After a closing bracket the object bit
/// is left 0: the container it returns to says (read from the nesting stack). 16 by 16, of
/// which 12 states and 9 classes are used: indexes masked with 15 need no bounds check.
const NEXT: [[State; 16]; 16] = {
    let mut next = [[BAD; 16]; 16];
    let mut state = 0;
    while state < 12 {
        let object = state as u8 & 1;
        let row = &mut next[state];
        match state / 2 {
            // Value, ValueOrClose
            e @ (0 | 1) => {
                row[QUOTE as usize] = to(5, object);
                row[TOKEN as usize] = to(5, object);
                row[OPEN_OBJECT as usize] = to(3, 1);
                row[OPEN_ARRAY as usize] = to(1, 0);
                if e == 1 && object == 0 {
                    row[CLOSE_ARRAY as usize] = to(5, 0);
                }
            }
            // Key, KeyOrClose
            e @ (2 | 3) => {
                row[QUOTE as usize] = to(4, object);
                if e == 3 && object == 1 {
                    row[CLOSE_OBJECT as usize] = to(5, 0);
                }
            }
            // Colon
            4 => row[COLON as usize] = to(0, object),
            // CommaOrClose
            _ => {
                row[COMMA as usize] = to(if object == 1 { 2 } else { 0 }, object);
                if object == 1 {
                    row[CLOSE_OBJECT as usize] = to(5, 0);
                } else {
                    row[CLOSE_ARRAY as usize] = to(5, 0);
                }
            }
        }
        state += 1;
    }
    next
};

/// The state expecting `EXPECTS[e]`, the innermost container an object if `object` is 1.
const fn to(e: usize, object: u8) -> State {
    (e * 2) as State | object
}

/// The walk's state for the scanner's `expect`, inside a container that is an object or not;
/// `None` where the walk has no such state.
fn state_of(expect: Expect, object: bool) -> Option<State> {
    let e = EXPECTS.iter().position(|&x| x == expect)?;
    Some((e * 2) as State | State::from(object))
}

impl Validator {
    /// Walks whole blocks from `i` (outside any token, two levels deep or more, `self.expect`
    /// current). The scanner takes back over where it says, and does not call it again before
    /// `self.walk_from` (past the byte it stopped at).
    ///
    /// Each block goes through the mask checks (`runs`, `grammar`) when it can, with no step per
    /// event; any block they do not take whole goes through the event loop (`Lane::events`), which
    /// hands back at the first thing it does not take.
    pub(super) fn walk(&mut self, buf: &[u8], i: usize) -> Handback {
        let kernel = Kernel::get();
        let n = buf.len();
        let blocks_end = i + (n - i) / 64 * 64;
        let levels = Levels { depth: self.nesting.depth, bits: self.nesting.low };
        let pending = (levels.depth <= grammar::MAX_DEPTH).then(|| Pending::of(self.expect, levels.top_is_object()));
        let Some(pending) = pending.flatten() else {
            self.walk_from = i + 1;
            return Handback::At(i);
        };
        let mut lane = Lane { pending, levels, string: (i, Expect::Value), carry: Carry::default() };
        let mut blk = i;
        let handback = loop {
            if blk == blocks_end {
                break lane.end(blk);
            }
            let block: &[u8; 64] = buf[blk..blk + 64].try_into().expect("a whole block");
            let c = kernel.classes(block);
            let m = Block::of(&c, &mut lane.carry);
            if let Err(handback) = lane.block(buf, block, blk, blocks_end, &c, &m) {
                break handback;
            }
            blk += 64;
        };
        let (at, expect, how) = handback;
        self.expect = expect;
        self.nesting.depth = lane.levels.depth;
        self.nesting.low = lane.levels.bits;
        self.walk_from = at + 1;
        how
    }
}

/// Where the walk stands between blocks.
struct Lane {
    /// What the last significant byte left pending (what the scanner would expect next).
    pending: Pending,
    levels: Levels,
    /// The string open at a block's end: its opening quote, and what was expected before it.
    string: (usize, Expect),
    carry: Carry,
}

/// Where the walk hands back: the byte the scanner is not called before the next walk (plus 1),
/// what it expects there, and where it resumes.
type Stop = (usize, Expect, Handback);

impl Lane {
    /// Takes the block at `blk` (classified as `c` and `m`), or says where the scanner goes on.
    #[inline]
    fn block(
        &mut self,
        buf: &[u8],
        block: &[u8; 64],
        blk: usize,
        blocks_end: usize,
        c: &Classes,
        m: &Block,
    ) -> Result<(), Stop> {
        if m.anomalies == 0 {
            let runs = runs::check(block, c, m);
            let open_run_ok = runs.open == 0 || token_ends(buf, blk + runs.open.trailing_zeros() as usize, blocks_end);
            if runs.refused == 0 && open_run_ok {
                if let Some((pending, levels)) = grammar::check(c, m, self.pending, self.levels) {
                    self.pending = pending;
                    self.levels = levels;
                    let opening = m.quotes & m.in_string;
                    if self.carry.in_string && opening != 0 {
                        // The string still open began here: at the block's last opening quote,
                        // a key's or a value's.
                        let before = if pending.expect() == Expect::Colon { Expect::Key } else { Expect::Value };
                        self.string = (blk + 63 - opening.leading_zeros() as usize, before);
                    }
                    return Ok(());
                }
            }
        }
        self.events(buf, block, blk, blocks_end, m)
    }

    /// The event loop over one block: the grammar event by event, numbers and literals where
    /// they stand.
    fn events(&mut self, buf: &[u8], block: &[u8; 64], blk: usize, blocks_end: usize, m: &Block) -> Result<(), Stop> {
        let object = self.levels.top_is_object();
        let mut state = state_of(self.pending.expect(), object).expect("every pending kind is a walk state");
        let levels = &mut self.levels;
        let stop = m.anomalies.trailing_zeros();
        let mut events = if stop == 64 { m.events } else { m.events & ((1 << stop) - 1) };
        let mut string = self.string;
        while events != 0 {
            let e = events.trailing_zeros() as usize & 63;
            events &= events - 1;
            let p = blk + e;
            let class = CLASS[usize::from(block[e])];
            let next = NEXT[usize::from(state & 15)][usize::from(class & 15)];
            if next == BAD {
                return Err((p, EXPECTS[usize::from(state / 2)], Handback::At(p)));
            }
            match class {
                QUOTE => string = (p, EXPECTS[usize::from(state / 2)]),
                TOKEN if plain_token(block, e, m) => {}
                TOKEN if !token_ends(buf, p, blocks_end) => {
                    return Err((p, EXPECTS[usize::from(state / 2)], Handback::At(p)));
                }
                TOKEN => {}
                OPEN_OBJECT | OPEN_ARRAY if !levels.push(class == OPEN_OBJECT) => {
                    return Err((p, EXPECTS[usize::from(state / 2)], Handback::At(p)));
                }
                OPEN_OBJECT | OPEN_ARRAY => {}
                CLOSE_OBJECT | CLOSE_ARRAY => {
                    levels.depth -= 1;
                    if levels.depth < 2 {
                        // Back in the reply's own object: the scanner's checks again.
                        return Err((p, EXPECTS[usize::from(next / 2)], Handback::At(p + 1)));
                    }
                    state = next | State::from(levels.top_is_object());
                    continue;
                }
                _ => {}
            }
            state = next;
        }
        self.string = string;
        if stop < 64 {
            let a = blk + stop as usize;
            if m.in_string >> stop & 1 == 1 {
                // Read the string again from its opening quote, byte by byte.
                return Err((a, string.1, Handback::At(string.0)));
            }
            return Err((a, EXPECTS[usize::from(state / 2)], Handback::At(a)));
        }
        let expect = EXPECTS[usize::from(state / 2)];
        self.pending = Pending::of(expect, state & 1 == 1).expect("every walk state is a pending kind");
        Ok(())
    }

    /// Where the scanner goes on after the last whole block, at `blk`.
    fn end(&self, blk: usize) -> Stop {
        if self.carry.in_string {
            // Never resume between an escaping backslash and the byte it escapes.
            let at = blk - usize::from(self.carry.escaped);
            return (at, self.string.1, Handback::InString(at));
        }
        (blk, self.pending.expect(), Handback::At(blk))
    }
}

/// Whether the number or literal starting at `p` is valid and ends where its run of bytes does,
/// before `blocks_end` (checked with the scanner's own token functions).
fn token_ends(buf: &[u8], p: usize, blocks_end: usize) -> bool {
    let end = match buf[p] {
        b'-' => number(buf, p + 1, Num::Minus),
        b'0' => number(buf, p + 1, Num::Zero),
        b'1'..=b'9' => number(buf, p + 1, Num::Int),
        b't' => literal_step(literal(buf, p, b"true")),
        b'f' => literal_step(literal(buf, p, b"false")),
        b'n' => literal_step(literal(buf, p, b"null")),
        _ => return false,
    };
    matches!(end, NumStep::Next(j) if j < blocks_end && ends_token(buf[j]))
}

/// Whether the number or literal starting at offset `e` of `block` (classified as `m`) is one of the
/// usual forms, found valid from the masks: `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, `true`, `false`,
/// `null`, ending within the block. `false` says nothing: [`number`] and [`literal`] then judge.
#[inline]
fn plain_token(block: &[u8; 64], e: usize, m: &Block) -> bool {
    let len = (!(m.other >> e)).trailing_zeros() as usize;
    if e + len >= 64 {
        return false; // it may go on in the next block
    }
    let run = (1u64 << len) - 1;
    let digits = m.digit >> e & run;
    let first = block[e];
    if digits == run {
        // An unsigned integer: a leading 0 only alone.
        return first != b'0' || len == 1;
    }
    let signed = usize::from(first == b'-');
    // The bytes that are neither digits nor the sign: one dot, or none.
    let others = run & !digits & !(signed as u64);
    let dot = others.trailing_zeros() as usize;
    if others == 1 << dot && digits >> signed & 1 == 1 {
        // A dot with digits on both sides; a leading 0 only right before it.
        return block[(e + dot) & 63] == b'.'
            && dot + 1 < len
            && (block[(e + signed) & 63] != b'0' || dot == signed + 1);
    }
    if others == 0 && signed == 1 {
        // A negative integer (`-` alone has no digit: not here).
        return len > 1 && (block[(e + 1) & 63] != b'0' || len == 2);
    }
    match (first, len) {
        (b't', 4) => block[e..e + 4] == *b"true",
        (b'f', 5) => block[e..e + 5] == *b"false",
        (b'n', 4) => block[e..e + 4] == *b"null",
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
        // Plain text (a screenshot, captured output) needs no classes: one test of the 64 bytes,
        // which the compiler turns into a few vector compares.
        if !carry.escaped && block.iter().fold(0u8, |hit, &b| hit | u8::from(stops_plain(b))) == 0 {
            blk += 64;
            continue;
        }
        let m = Block::of(&kernel.string_classes(block), &mut carry);
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
