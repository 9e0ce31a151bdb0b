//! The tokens the validator checks where they stand: numbers, literals, escapes, UTF-8
//! sequences, and the short plain strings it takes in one go. Each reads the buffer from a given
//! offset and says where the token ended, that the buffer ended inside it, or which byte is wrong.

use super::{Expected, Fault};

/// Where a number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Num {
    /// After `-`: a digit must follow.
    Minus,
    /// A leading `0`.
    Zero,
    /// Integer digits.
    Int,
    /// After `.`: a digit must follow.
    Dot,
    /// Fraction digits.
    Frac,
    /// After `e`: a sign or digit must follow.
    E,
    /// After the exponent's sign: a digit must follow.
    ESign,
    /// Exponent digits.
    Exp,
}

/// Scans a number from `i` (its characters before `i` having brought it to `num`) to the first
/// byte after it.
pub(super) fn number(buf: &[u8], mut i: usize, mut num: Num) -> NumStep {
    let n = buf.len();
    loop {
        // Runs of digits, the bulk of a long number.
        if matches!(num, Num::Int | Num::Frac | Num::Exp) {
            while i < n && buf[i].is_ascii_digit() {
                i += 1;
            }
        }
        let Some(&b) = buf.get(i) else { return NumStep::More(i, num) };
        num = match (num, b) {
            (Num::Minus, b'0') => Num::Zero,
            (Num::Minus, b'1'..=b'9') => Num::Int,
            (Num::Zero | Num::Int, b'.') => Num::Dot,
            (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Num::E,
            (Num::Dot | Num::Frac, b'0'..=b'9') => Num::Frac,
            (Num::E, b'+' | b'-') => Num::ESign,
            (Num::E | Num::ESign | Num::Exp, b'0'..=b'9') => Num::Exp,
            (Num::Zero | Num::Int | Num::Frac | Num::Exp, _) => return NumStep::Next(i),
            _ => return NumStep::Bad(i),
        };
        i += 1;
    }
}

/// How a number went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumStep {
    /// It ended before this byte.
    Next(usize),
    /// The buffer ended inside it, in this state.
    More(usize, Num),
    /// The byte here cannot continue it (a digit was needed).
    Bad(usize),
}

/// How a construct starting at some byte went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// It ended; continue at this byte.
    Next(usize),
    /// Valid as far as the buffer goes: resume at this byte with more.
    More(usize),
    /// The byte at this offset cannot continue it.
    Bad(usize, Fault),
}

pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The offset past the closing quote of a string whose body starts at `i`, if it is short (32
/// bytes at most), in the buffer, and has nothing to check but its bytes; `None` otherwise
/// (the general scan then takes it from its start).
#[inline(always)]
pub(super) fn short_string(buf: &[u8], i: usize) -> Option<usize> {
    let end = (i + 32).min(buf.len());
    let mut j = i;
    while j < end {
        let b = buf[j];
        if stops_plain(b) {
            return (b == b'"').then_some(j + 1);
        }
        j += 1;
    }
    None
}

/// Whether `b` ends a run of plain string bytes: a quote, a backslash, a control character or
/// a byte of a non-ASCII character (`b as i8` is negative from 0x80 up).
#[inline(always)]
pub(super) fn stops_plain(b: u8) -> bool {
    ((b as i8) < 0x20) | (b == b'"') | (b == b'\\')
}

/// Checks the escape at `buf[i] == b'\\'`.
pub(super) fn escape(buf: &[u8], i: usize) -> Step {
    let Some(&c) = buf.get(i + 1) else { return Step::More(i) };
    match c {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Step::Next(i + 2),
        b'u' => {
            for k in i + 2..i + 6 {
                match buf.get(k) {
                    None => return Step::More(i),
                    Some(h) if h.is_ascii_hexdigit() => {}
                    Some(_) => return Step::Bad(k, Fault::Json(Expected::Hex)),
                }
            }
            Step::Next(i + 6)
        }
        _ => Step::Bad(i + 1, Fault::Json(Expected::Escape)),
    }
}

/// The byte a complete, valid escape at `buf[i]` stands for, if it is ASCII.
pub(super) fn unescaped(buf: &[u8], i: usize) -> Option<u8> {
    Some(match buf[i + 1] {
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => {
            let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0);
            let unit = buf[i + 2..i + 6].iter().fold(0, |v, &h| v << 4 | hex(h));
            return u8::try_from(unit).ok().filter(u8::is_ascii);
        }
        c => c,
    })
}

/// Checks the UTF-8 sequence whose lead byte (0x80 or above) is at `i` (Unicode's table 3-7:
/// no overlong forms, no surrogates, nothing past U+10FFFF).
pub(super) fn utf8_char(buf: &[u8], i: usize) -> Step {
    let (more, lo, hi) = match buf[i] {
        0xc2..=0xdf => (1, 0x80, 0xbf),
        0xe0 => (2, 0xa0, 0xbf),
        0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
        0xed => (2, 0x80, 0x9f),
        0xf0 => (3, 0x90, 0xbf),
        0xf1..=0xf3 => (3, 0x80, 0xbf),
        0xf4 => (3, 0x80, 0x8f),
        _ => return Step::Bad(i, Fault::Utf8),
    };
    for k in 1..=more {
        let Some(&c) = buf.get(i + k) else { return Step::More(i) };
        let (lo, hi) = if k == 1 { (lo, hi) } else { (0x80, 0xbf) };
        if !(lo..=hi).contains(&c) {
            return Step::Bad(i + k, Fault::Utf8);
        }
    }
    Step::Next(i + 1 + more)
}

/// Checks the literal `word` starting at `i`.
pub(super) fn literal(buf: &[u8], i: usize, word: &[u8]) -> Step {
    for (k, &w) in word.iter().enumerate() {
        match buf.get(i + k) {
            None => return Step::More(i),
            Some(&b) if b == w => {}
            Some(_) => return Step::Bad(i + k, Fault::Json(Expected::Literal)),
        }
    }
    Step::Next(i + word.len())
}
