//! The byte classes of a 64-byte block, a bit per byte: what every kernel of stage one computes
//! (`simd.rs` vectorised, [`Classes::portable`] one byte at a time) and what `blocks.rs` works on.

/// The byte classes of one block, a bit per byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Classes {
    /// `"`.
    pub(super) quote: u64,
    /// `\`.
    pub(super) backslash: u64,
    /// Space, tab, LF, CR.
    pub(super) ws: u64,
    /// Below 0x20.
    pub(super) ctrl: u64,
    /// 0x80 and above: a byte of a non-ASCII character.
    pub(super) high: u64,
    /// The characters that may follow a backslash and stand alone: `" \ / b f n r t`.
    pub(super) simple_escape: u64,
    /// `0` to `9`.
    pub(super) digit: u64,
    /// `0`: a leading zero of a number's integer part must stand alone.
    pub(super) zero: u64,
    /// `-`.
    pub(super) minus: u64,
    /// `+`.
    pub(super) plus: u64,
    /// `.`.
    pub(super) dot: u64,
    /// `e` or `E`.
    pub(super) exp: u64,
    /// `{` or `[`.
    pub(super) open: u64,
    /// `}` or `]`.
    pub(super) close: u64,
    /// `:`.
    pub(super) colon: u64,
    /// `,`.
    pub(super) comma: u64,
    /// Bit 5 of the byte set: `{` `}` among the brackets (`[` `]` have it clear).
    pub(super) curly: u64,
}

impl Classes {
    /// The classes of `block`, one byte at a time: the portable kernel, and the tests' oracle.
    pub(super) fn portable(block: &[u8; 64]) -> Self {
        let mut c = Classes::default();
        for (k, &b) in block.iter().enumerate() {
            let bit = 1u64 << k;
            let set = |mask: &mut u64, yes: bool| *mask |= if yes { bit } else { 0 };
            set(&mut c.quote, b == b'"');
            set(&mut c.backslash, b == b'\\');
            set(&mut c.ws, matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
            set(&mut c.ctrl, b < 0x20);
            set(&mut c.high, b >= 0x80);
            set(&mut c.simple_escape, matches!(b, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't'));
            set(&mut c.digit, b.is_ascii_digit());
            set(&mut c.zero, b == b'0');
            set(&mut c.minus, b == b'-');
            set(&mut c.plus, b == b'+');
            set(&mut c.dot, b == b'.');
            set(&mut c.exp, b == b'e' || b == b'E');
            set(&mut c.open, b == b'{' || b == b'[');
            set(&mut c.close, b == b'}' || b == b']');
            set(&mut c.colon, b == b':');
            set(&mut c.comma, b == b',');
            set(&mut c.curly, b & 0x20 != 0);
        }
        c
    }
}
