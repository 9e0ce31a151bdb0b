//! Stage two over masks: the grammar of a whole block checked at once, with no step per event.
//!
//! JSON's grammar inside a container is a rule on neighbours: what may come after each thing is
//! fixed by what it is (after `{` a key or `}`, after a key `:`, after a value `,` or a closing
//! bracket, ...), once three things are known that a neighbour does not say:
//! - which container a `,` is in (after it, a key in an object, a value in an array): the
//!   brackets of the block are visited in order, with the nesting, and each stretch between two
//!   of them gives its commas their container; the same visit checks that each closing bracket
//!   closes its own kind;
//! - which strings are keys: those right after `{` or an object's `,`;
//! - where the next thing is, past whitespace, a string's body or a number's digits: one
//!   addition per kind of thing ([`after`]): a carry put just after each of its bytes runs
//!   through the bytes in between and stops on the next significant byte.
//!
//! Each kind's carry out of the block is what it leaves to the next: exactly one is set, the
//! kind of the block's last significant byte, and it says what the scanner would expect there
//! ([`Pending::expect`]). The walk ([`walk`](super::walk)) uses this check on every block it
//! can, and its event-by-event loop on the others (an anomaly, a number or literal the masks do
//! not take, a bracket that leaves the walk's depth, any fault), so faults are still found and
//! reported one byte at a time.

use super::blocks::Block;
use super::classes::Classes;
use super::Expect;

/// What the block before left pending: the kind of its last significant byte, a bit each (one
/// set), whose next significant byte is still to come. The bits carry into the next block's
/// additions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pending(u16);

/// The kinds, as bits of [`Pending`].
const OPEN_OBJECT: u16 = 1 << 0;
const OPEN_ARRAY: u16 = 1 << 1;
const COLON: u16 = 1 << 2;
const COMMA_IN_OBJECT: u16 = 1 << 3;
const COMMA_IN_ARRAY: u16 = 1 << 4;
/// A closing bracket, a number or literal, or a string value: a value ended.
const VALUE_END: u16 = 1 << 5;
const KEY: u16 = 1 << 6;

impl Pending {
    /// What is pending where the scanner expects `expect`; `None` where the walk has no such
    /// state.
    pub(super) fn of(expect: Expect, object: bool) -> Option<Pending> {
        Some(Pending(match expect {
            Expect::KeyOrClose => OPEN_OBJECT,
            Expect::ValueOrClose => OPEN_ARRAY,
            Expect::Value => COLON,
            Expect::Key if object => COMMA_IN_OBJECT,
            Expect::Colon => KEY,
            Expect::CommaOrClose => VALUE_END,
            _ => return None,
        }))
    }

    /// What the scanner expects next.
    pub(super) fn expect(self) -> Expect {
        match self.0 {
            OPEN_OBJECT => Expect::KeyOrClose,
            OPEN_ARRAY => Expect::ValueOrClose,
            COLON | COMMA_IN_ARRAY => Expect::Value,
            COMMA_IN_OBJECT => Expect::Key,
            KEY => Expect::Colon,
            _ => Expect::CommaOrClose,
        }
    }
}

/// The nesting, a bit per level (1: an object), levels `0..depth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Levels {
    pub(super) depth: usize,
    pub(super) bits: u64,
}

impl Levels {
    /// Whether the innermost container is an object.
    pub(super) fn top_is_object(self) -> bool {
        self.bits >> (self.depth - 1) & 1 == 1
    }

    /// Opens a container (an object if `object`); `false`, and nothing opened, at
    /// [`MAX_DEPTH`].
    pub(super) fn push(&mut self, object: bool) -> bool {
        if self.depth == MAX_DEPTH {
            return false;
        }
        self.bits = (self.bits & !(1 << self.depth)) | (u64::from(object) << self.depth);
        self.depth += 1;
        true
    }
}

/// The deepest nesting a block may reach here (a bit per level, in one word).
pub(super) const MAX_DEPTH: usize = 63;

/// Checks the block classified as `c` and `m`: no anomaly, its numbers and literals taken by
/// the caller, inside containers at `levels` (at least 2 deep), `pending` from the block before.
/// `Some` with what it leaves to the next block when every byte is allowed where it stands and
/// the nesting stays at least 2 deep; `None` when the event-by-event loop must look (the block
/// is left as it was for it).
#[inline]
pub(super) fn check(c: &Classes, m: &Block, pending: Pending, levels: Levels) -> Option<(Pending, Levels)> {
    let outside = !m.in_string;
    let open = c.open & outside;
    let close = c.close & outside;
    let comma = c.comma & outside;
    let colon = c.colon & outside;

    // The brackets in order: the nesting, and the container of each stretch's commas.
    let mut after = levels;
    let mut brackets = open | close;
    let mut commas = comma;
    let mut in_objects = 0;
    while brackets != 0 {
        let at = brackets.trailing_zeros();
        brackets &= brackets - 1;
        let before = (1u64 << at) - 1;
        let object = u64::from(after.top_is_object());
        in_objects |= commas & before & 0u64.wrapping_sub(object);
        commas &= !before;
        let curly = c.curly >> at & 1;
        if open >> at & 1 == 1 {
            if !after.push(curly == 1) {
                return None;
            }
        } else {
            if curly != object || after.depth <= 2 {
                return None;
            }
            after.depth -= 1;
        }
    }
    in_objects |= commas & 0u64.wrapping_sub(u64::from(after.top_is_object()));
    let in_arrays = comma & !in_objects;

    // The bytes between significant ones: whitespace, strings' bodies and closing quotes, the
    // bytes of numbers and literals after the first.
    let opening = m.quotes & m.in_string;
    let gaps = c.ws | (m.in_string & !opening) | (m.quotes & !m.in_string) | (m.other & !m.starts);
    let mut carries = pending.0;
    let mut next = |kind: u16, at: u64| after_each(at, gaps, kind, &mut carries);
    let open_object = open & c.curly;
    let open_array = open & !c.curly;
    let after_open_object = next(OPEN_OBJECT, open_object);
    let after_comma_in_object = next(COMMA_IN_OBJECT, in_objects);
    let keys = opening & (after_open_object | after_comma_in_object);
    let values = open | opening & !keys | m.starts;
    let ends = comma | close;
    let value_ends = close | m.starts | opening & !keys;
    let bad = after_open_object & !(keys | close & c.curly)
        | after_comma_in_object & !keys
        | next(OPEN_ARRAY, open_array) & !(values | close & !c.curly)
        | next(COLON, colon) & !values
        | next(COMMA_IN_ARRAY, in_arrays) & !values
        | next(KEY, keys) & !colon
        | next(VALUE_END, value_ends) & !ends;
    (bad == 0).then_some((Pending(carries), after))
}

/// The next significant byte after each bit of `at` (bits not in `gaps`), and after a byte of
/// the block before if `kind`'s carry is set in `carries`; `carries` then holds whether the
/// next one after the last bit is in a later block. One addition: a carry put just after each
/// bit runs through the gap bytes that follow and stops on the first byte that is not one.
#[inline]
fn after_each(at: u64, gaps: u64, kind: u16, carries: &mut u16) -> u64 {
    let carried = u64::from(*carries & kind != 0);
    let (sum, overflow) = (at << 1 | carried).overflowing_add(gaps);
    let out = u16::from(overflow) | (at >> 63) as u16;
    *carries = (*carries & !kind) | (kind * out);
    sum & !gaps
}

#[cfg(test)]
mod tests {
    use super::super::blocks::Carry;
    use super::*;

    /// Checks `text` (spaces to a block) inside `[[`, expecting a value.
    fn check_text(text: &[u8]) -> Option<(Pending, Levels)> {
        let mut block = [b' '; 64];
        block[..text.len()].copy_from_slice(text);
        let c = Classes::portable(&block);
        let m = Block::of(&c, &mut Carry::default());
        check(&c, &m, Pending(COLON), Levels { depth: 3, bits: 0b001 })
    }

    #[test]
    fn valid_structure_passes_and_leaves_its_last_kind_pending() {
        let (pending, levels) = check_text(br#"{"a": [1, "x", {}], "b": {"c": null}}, "#).expect("valid");
        assert_eq!(pending, Pending(COMMA_IN_ARRAY));
        // Bits above the depth are what deeper levels left: never read.
        assert_eq!((levels.depth, levels.bits & 0b111), (3, 0b001));
        let (pending, _) = check_text(br#"{"a" "#).expect("valid so far");
        assert_eq!(pending, Pending(KEY));
        let (pending, levels) = check_text(br#"{"a": "#).expect("valid so far");
        assert_eq!((pending, levels.depth), (Pending(COLON), 4));
    }

    #[test]
    fn what_is_pending_is_what_the_scanner_expects() {
        for (expect, object) in [
            (Expect::KeyOrClose, true),
            (Expect::ValueOrClose, false),
            (Expect::Value, true),
            (Expect::Value, false),
            (Expect::Key, true),
            (Expect::Colon, true),
            (Expect::CommaOrClose, true),
            (Expect::CommaOrClose, false),
        ] {
            let pending = Pending::of(expect, object).expect("a walk state");
            assert_eq!(pending.expect(), expect);
        }
        assert_eq!(Pending::of(Expect::Key, false), None, "keys only in objects");
        assert_eq!(Pending::of(Expect::Start, true), None);
        assert_eq!(Pending(COMMA_IN_ARRAY).expect(), Expect::Value);
    }

    #[test]
    fn every_misplaced_thing_is_caught() {
        for bad in [
            &br#"{"a" 1}"#[..],
            br#"{1: 2}"#,
            br#"{"a": 1 "b": 2}"#,
            br#"{"a": 1,}"#,
            br#"{"a"}"#,
            br#"["a": 1]"#,
            br#"[1, "a": 2]"#,
            br#"[1 2]"#,
            br#"[1,]"#,
            br#"[,1]"#,
            br#"{"a":: 1}"#,
            br#"{"a": 1]"#,
            br#"[1}"#,
            br#"{}{}"#,
            br#"{"a": "b": 1}"#,
            br#"]"#,
            br#"1 1"#,
            br#"1, 2] 3"#,
        ] {
            assert_eq!(check_text(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
