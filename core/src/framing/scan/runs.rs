//! The numbers and literals of a block, checked all at once over its masks, so that the walk's
//! event loop has nothing to branch on for them (a scene dump has a number or literal in one
//! event of five).
//!
//! A run is a maximal stretch of [`Block::other`]: bytes outside strings that are neither
//! structure, whitespace nor quotes. A run the block holds whole is taken when it is `true`,
//! `false`, `null` (compared where it stands) or a number, which is checked over masks: each
//! rule of `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` is one or two mask operations, the
//! order of the fraction and exponent an addition along the run. The run that reaches the block's
//! last byte may go on in the next block: it is left to the walk, which checks it with the
//! scanner's own token functions across the boundary (so the run that continues into a block
//! is already checked when that block is).
//!
//! The rules may only be stricter than `JSON.parse`, never looser: a run they refuse is handed
//! back to the byte-by-byte scanner, which judges it and reports the fault where it is.

use super::blocks::Block;
use super::classes::Classes;

/// What the walk must know of a block's runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Runs {
    /// The start of the first run not taken (at most one bit): the walk stops before it.
    pub(super) refused: u64,
    /// The start of the run that reaches the block's end, if it starts in this block (at most
    /// one bit): the walk checks it byte by byte.
    pub(super) open: u64,
}

/// Checks the runs of `block`, classified as `c` and `m`.
#[inline]
pub(super) fn check(block: &[u8; 64], c: &Classes, m: &Block) -> Runs {
    let other = m.other;
    let top = other.leading_ones();
    let tail = if top == 0 { 0 } else { !0u64 << (64 - top) };
    let open = m.starts & tail;
    // Runs that start and end in this block.
    let whole = other & !tail & !m.continued;
    let starts = m.starts & whole;

    let mut flags = 0;
    let mut literals = 0;
    let mut words = starts & !(c.digit | c.minus);
    while words != 0 {
        let e = words.trailing_zeros() as usize & 63;
        words &= words - 1;
        // A whole run ends before the block's last byte: `e + len < 64`.
        let len = (!(other >> e)).trailing_zeros() as usize;
        // The word's last four letters, read as one number (`len` of 4 or 5 ends them within
        // the run, before the block's end).
        let (word_len, ending) = match block[e] {
            b't' => (4, *b"true"),
            b'f' => (5, *b"alse"),
            b'n' => (4, *b"null"),
            _ => (0, [0; 4]),
        };
        let last4 = |at: usize| block.get(at..at + 4).map(|b| [b[0], b[1], b[2], b[3]]);
        if len == word_len && last4(e + len - 4) == Some(ending) {
            literals |= ((1u64 << len) - 1) << e;
        } else {
            flags |= 1 << e;
        }
    }

    let n = whole & !literals;
    let digit = c.digit & n;
    let minus = c.minus & n;
    let plus = c.plus & n;
    let dot = c.dot & n;
    let exp = c.exp & n;
    let first = starts & n;
    // Not a number's character.
    flags |= n & !(digit | minus | plus | dot | exp);
    // A number starts with a digit or `-`; `-` stands first or right after the exponent's `e`,
    // `+` only there.
    flags |= first & !(digit | minus);
    flags |= minus & !(first | exp << 1);
    flags |= plus & !(exp << 1);
    // A digit follows a sign or a dot, a digit or sign the `e`; a digit comes before a dot or
    // an `e`. (A run ends before bit 63, so `>> 1` sees its next byte.)
    flags |= (minus | plus | dot) & !(digit >> 1);
    flags |= exp & !((digit | minus | plus) >> 1);
    flags |= (dot | exp) & !(digit << 1);
    // One dot, one `e`, the dot first: no dot after another dot or an `e` in its run, no `e`
    // after another.
    flags |= dot & second_in_runs(dot | exp, n);
    flags |= second_in_runs(exp, n);
    // The integer part's leading zero stands alone.
    let int_start = (first & digit) | (first & minus) << 1;
    flags |= int_start & c.zero & (digit >> 1);

    let refused = if flags == 0 {
        0
    } else {
        // The start of the run holding the first flag (`flags` is within `starts`' runs).
        let at = flags.trailing_zeros();
        let before = starts & (u64::MAX >> (63 - at));
        1 << (63 - before.leading_zeros())
    };
    Runs { refused, open }
}

/// The bits of `marks` (within `runs`) that have another bit of `marks` before them in the same
/// run: one addition. A carry put just after each mark runs through the run's bytes that are
/// not marks and stops on the next byte that is not one: a mark of the same run, or the byte
/// after the run.
#[inline]
fn second_in_runs(marks: u64, runs: u64) -> u64 {
    let between = runs & !marks;
    ((marks << 1).wrapping_add(between)) & marks
}

#[cfg(test)]
mod tests {
    use super::super::blocks::Carry;
    use super::*;

    /// The runs of `text` (padded with spaces to a block), outside any string.
    fn runs_of(text: &[u8]) -> Runs {
        let mut block = [b' '; 64];
        block[..text.len()].copy_from_slice(text);
        let c = Classes::portable(&block);
        let m = Block::of(&c, &mut Carry::default());
        check(&block, &c, &m)
    }

    #[test]
    fn the_usual_numbers_and_literals_are_taken() {
        for text in [
            "0",
            "-0",
            "7",
            "-12",
            "0.5",
            "-0.25",
            "10.0",
            "1e5",
            "1E+5",
            "2.5e-07",
            "0e0",
            "-0.0E-0",
            "true",
            "false",
            "null",
            "123456789012345678901234567890.123456789e+123",
        ] {
            let text = format!("[{text}, 1]");
            assert_eq!(runs_of(text.as_bytes()), Runs { refused: 0, open: 0 }, "{text}");
        }
    }

    #[test]
    fn anything_json_parse_refuses_is_refused_at_its_start() {
        for bad in [
            "01", "-01", "00", "-", "+1", ".5", "1.", "1.e5", "1e", "1e+", "1e5.2", "1.2.3", "1e2e3", "1-2", "1+2",
            "--1", "-e5", "1ee5", "1e-+5", "0x10", "tru", "truex", "True", "nul", "f", "1true", "Infinity", "NaN", "x",
            "1e5e", "1.5E",
        ] {
            let text = format!("[1, {bad}]");
            assert_eq!(runs_of(text.as_bytes()).refused, 1 << 4, "{bad}");
        }
    }

    #[test]
    fn a_run_at_the_blocks_end_is_left_open() {
        let mut text = vec![b' '; 61];
        text.extend_from_slice(b"1.5");
        let runs = runs_of(&text);
        assert_eq!(runs, Runs { refused: 0, open: 1 << 61 });
    }

    #[test]
    fn a_second_mark_counts_only_in_its_own_run() {
        // Runs at bits 0-3 and 5-9; marks at 1, 3 (same run), 5 and 9 (same run), 4 is a gap.
        let runs = 0b11_1110_1111;
        let marks = 0b10_0010_1010;
        assert_eq!(second_in_runs(marks, runs), 0b10_0000_1000);
        // Adjacent marks, and one mark per run.
        assert_eq!(second_in_runs(0b0110, 0b0111), 0b0100);
        assert_eq!(second_in_runs(0b1000_0001, 0b1100_0011), 0);
    }
}
