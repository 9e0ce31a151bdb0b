//! Stage one: 64 bytes at a time, the byte classes the walk needs as bit masks (bit `k` for the
//! block's byte `k`), with what carries from one block to the next.
//!
//! Only [`Classes`] looks at bytes: compares, vectorised where the CPU allows ([`Kernel`]; the
//! intrinsics are in `simd.rs`). Everything else is arithmetic on the masks, the same on every
//! CPU ([`Block::of`]):
//! - which bytes a backslash escapes (runs of backslashes alternate escaper and escaped);
//! - which bytes are inside strings (a prefix XOR over the unescaped quotes);
//! - the events the walk visits (structural characters, opening quotes, the first byte of a
//!   number or literal), all outside strings;
//! - the anomalies it leaves to the byte-by-byte scanner: a control character in a string, any
//!   byte of a non-ASCII character, an escape other than `\" \\ \/ \b \f \n \r \t`.

use std::cell::Cell;
use std::sync::OnceLock;

use super::classes::Classes;
use super::simd;

/// The code that classifies bytes: chosen once per process, the fastest this CPU runs, unless
/// `BLENDER_MCP_POOL_SCAN_KERNEL` names another one it runs (`portable`, `sse2`, `avx2`, `neon`:
/// for tests and measurements; a kernel the CPU lacks is never chosen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    /// Byte by byte, any CPU.
    Portable,
    /// A kernel in `simd.rs`, its CPU feature checked.
    Simd(simd::Kernel),
}

thread_local! {
    /// A kernel this thread runs instead of the process's ([`with_kernel`]).
    static FORCED: Cell<Option<Kernel>> = const { Cell::new(None) };
}

impl Kernel {
    /// The kernel of this thread: the process's, unless [`with_kernel`] forced one.
    pub(super) fn get() -> Kernel {
        FORCED.with(Cell::get).unwrap_or_else(Kernel::of_process)
    }

    /// The kernel of this process.
    fn of_process() -> Kernel {
        static KERNEL: OnceLock<Kernel> = OnceLock::new();
        *KERNEL.get_or_init(|| {
            let asked = std::env::var("BLENDER_MCP_POOL_SCAN_KERNEL").unwrap_or_default();
            if asked == "portable" {
                return Kernel::Portable;
            }
            simd::Kernel::named(&asked).or_else(simd::Kernel::best).map_or(Kernel::Portable, Kernel::Simd)
        })
    }

    /// Its name (`portable`, `sse2`, `avx2`, `neon`).
    pub(super) fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Simd(k) => k.name(),
        }
    }

    /// The classes of `block`.
    #[inline]
    pub(super) fn classes(self, block: &[u8; 64]) -> Classes {
        match self {
            Kernel::Portable => Classes::portable(block),
            Kernel::Simd(k) => k.classes(block),
        }
    }

    /// The classes of `block` a string's body needs ([`simd::Kernel::string_classes`]; the
    /// portable kernel gives them all).
    #[inline]
    pub(super) fn string_classes(self, block: &[u8; 64]) -> Classes {
        match self {
            Kernel::Portable => Classes::portable(block),
            Kernel::Simd(k) => k.string_classes(block),
        }
    }
}

/// What one block leaves to the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Carry {
    /// The next block's first byte is escaped (this block ended with an escaping backslash).
    pub(super) escaped: bool,
    /// The next block starts inside a string.
    pub(super) in_string: bool,
    /// This block's last byte belongs to a number or literal (or is junk outside strings).
    pub(super) other: bool,
}

/// One block, classified for the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Block {
    /// Structural characters, opening quotes and the first byte of every other run, outside
    /// strings: where the grammar has something to check.
    pub(super) events: u64,
    /// Inside a string: from its opening quote (included) to its closing quote (excluded).
    pub(super) in_string: u64,
    /// Bytes the walk leaves to the byte-by-byte scanner (see the module documentation).
    pub(super) anomalies: u64,
    /// Unescaped quotes.
    pub(super) quotes: u64,
    /// Escaped bytes (each after an escaping backslash).
    pub(super) escaped: u64,
    /// Bytes of numbers and literals (and junk) outside strings.
    pub(super) other: u64,
    /// Digits.
    pub(super) digit: u64,
    /// The first byte of each run of [`Block::other`] that starts in this block.
    pub(super) starts: u64,
    /// The run of [`Block::other`] that began in the block before (from bit 0), if any.
    pub(super) continued: u64,
}

/// Bits at even offsets.
const EVEN: u64 = 0x5555_5555_5555_5555;

impl Block {
    /// Classifies `c`, the classes of a block, given what the block before left (`carry`,
    /// updated for the next one).
    #[inline]
    pub(super) fn of(c: &Classes, carry: &mut Carry) -> Block {
        let escaped = escaped(c.backslash, &mut carry.escaped);
        let quotes = c.quote & !escaped;
        let in_string = prefix_xor(quotes) ^ if carry.in_string { !0 } else { 0 };
        carry.in_string = in_string >> 63 == 1;
        let structural = c.open | c.close | c.colon | c.comma;
        let other = !(structural | c.ws | quotes | in_string);
        let starts = other & !(other << 1 | u64::from(carry.other));
        // The run at bit 0, if the block before ended inside it: the trailing ones of `other`.
        let continued = if carry.other { other & !other.wrapping_add(1) } else { 0 };
        carry.other = other >> 63 == 1;
        let events = (structural & !in_string) | (quotes & in_string) | starts;
        let anomalies = (c.ctrl & in_string) | c.high | (escaped & !c.simple_escape);
        Block { events, in_string, anomalies, quotes, escaped, other, digit: c.digit, starts, continued }
    }
}

/// The bytes escaped by a backslash, from the block's backslashes and whether its first byte is
/// escaped (`first`, updated for the next block).
///
/// In a run of backslashes the first escapes the second, the third the fourth, and so on: the
/// escapers are the run's bytes at the same parity as its start. Adding a run's first bit to
/// the run clears it (the carry runs off its end), so the runs that start at even offsets are
/// told from those that start at odd ones without a loop.
#[inline]
fn escaped(backslash: u64, first: &mut bool) -> u64 {
    let carried = u64::from(*first);
    // A backslash escaped by the block before is a plain character.
    let backslash = backslash & !carried;
    let starts = backslash & !(backslash << 1);
    let odd_runs = backslash.wrapping_add(starts & EVEN) & backslash;
    let even_runs = backslash & !odd_runs;
    let escapers = (even_runs & EVEN) | (odd_runs & !EVEN);
    *first = escapers >> 63 == 1;
    escapers << 1 | carried
}

/// Bit `k` of the result: the XOR of bits `0..=k` of `x` (1 between an opening quote and its
/// closing one).
#[inline]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The kernel's name, for tests and measurements.
pub(super) fn kernel_name() -> &'static str {
    Kernel::get().name()
}

/// The names of every kernel this CPU runs, the portable one last.
pub(super) fn kernel_names() -> Vec<&'static str> {
    let mut names: Vec<_> = simd::Kernel::available().into_iter().map(simd::Kernel::name).collect();
    names.push("portable");
    names
}

/// Runs `f` with the kernel called `name` on this thread; `None` if this CPU does not run it.
pub(super) fn with_kernel<R>(name: &str, f: impl FnOnce() -> R) -> Option<R> {
    let kernel = if name == "portable" { Kernel::Portable } else { Kernel::Simd(simd::Kernel::named(name)?) };
    struct Restore(Option<Kernel>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|f| f.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|f| f.replace(Some(kernel))));
    Some(f())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &[u8]) -> [u8; 64] {
        let mut b = [b' '; 64];
        b[..text.len()].copy_from_slice(text);
        b
    }

    fn bits(mask: u64) -> Vec<u32> {
        (0..64).filter(|k| mask >> k & 1 == 1).collect()
    }

    #[test]
    fn runs_of_backslashes_alternate_escaper_and_escaped() {
        let mut first = false;
        // offsets:       0123456789
        let b = block(br#"\\\n a\\"x"#);
        let c = Classes::portable(&b);
        assert_eq!(bits(escaped(c.backslash, &mut first)), vec![1, 3, 7]);
        assert!(!first);
        let mut last = [b'a'; 64];
        last[63] = b'\\';
        assert_eq!(escaped(Classes::portable(&last).backslash, &mut first), 0);
        assert!(first, "an escaping backslash at the end escapes the next block's first byte");
        let c = Classes::portable(&block(br#"\\n"#));
        assert_eq!(bits(escaped(c.backslash, &mut first)), vec![0, 2]);
    }

    #[test]
    fn events_are_structure_opening_quotes_and_token_starts_outside_strings() {
        let mut carry = Carry::default();
        // offsets:       0         1         2
        //                0123456789012345678901234
        let b = block(br#"[12, "a,\"]", true, -1e5]"#);
        let m = Block::of(&Classes::portable(&b), &mut carry);
        assert_eq!(bits(m.events), vec![0, 1, 3, 5, 12, 14, 18, 20, 24]);
        assert_eq!(m.anomalies, 0);
        assert_eq!(carry, Carry::default());
    }

    #[test]
    fn strings_carry_across_blocks() {
        let mut carry = Carry::default();
        let mut b = [b'x'; 64];
        b[0] = b'"';
        let m = Block::of(&Classes::portable(&b), &mut carry);
        assert_eq!(m.in_string, !0);
        assert!(carry.in_string && !carry.other);
        let m = Block::of(&Classes::portable(&block(br#"ab" ,"#)), &mut carry);
        assert_eq!(bits(m.events), vec![4]);
        assert_eq!(bits(m.in_string), vec![0, 1]);
    }

    #[test]
    fn anomalies_are_control_characters_in_strings_non_ascii_and_odd_escapes() {
        let mut carry = Carry::default();
        let m = Block::of(&Classes::portable(&block(b"\"a\tb\\u0041\\x\xc3\xa9\" \n")), &mut carry);
        assert_eq!(bits(m.anomalies), vec![2, 5, 11, 12, 13], "tab, \\u, \\x, the two bytes of é");
    }
}
