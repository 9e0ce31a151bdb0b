//! The vector kernels of stage one: the byte classes of a 64-byte block ([`Classes`]) with
//! SSE2 or AVX2 (x86-64) or NEON (arm64). The only unsafe code of the scanner: intrinsics that
//! load bytes, and calls of an AVX2 function, each behind a safe [`Kernel`] that can only be
//! made once its CPU feature is known present. Each must agree with [`Classes::portable`], bit
//! for bit (tested below, and by the framing tests with each kernel forced).
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

use super::classes::Classes;

/// A vector kernel this CPU runs. Made only by [`Kernel::best`] and [`Kernel::named`], after the
/// feature check: holding one is the proof that its instructions may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Kernel(Which);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    #[cfg(target_arch = "x86_64")]
    Sse2,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "aarch64")]
    Neon,
}

impl Kernel {
    /// Every kernel this CPU runs, best first.
    pub(super) fn available() -> Vec<Kernel> {
        let mut all = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                all.push(Kernel(Which::Avx2));
            }
            // SSE2 is part of x86-64: every such CPU has it.
            all.push(Kernel(Which::Sse2));
        }
        // NEON is part of AArch64 (`neon` is a default feature of every aarch64 target).
        #[cfg(target_arch = "aarch64")]
        all.push(Kernel(Which::Neon));
        all
    }

    /// The fastest kernel this CPU runs, if any.
    pub(super) fn best() -> Option<Kernel> {
        Kernel::available().first().copied()
    }

    /// The kernel called `name`, if this CPU runs it.
    pub(super) fn named(name: &str) -> Option<Kernel> {
        Kernel::available().into_iter().find(|k| k.name() == name)
    }

    /// Its name.
    pub(super) fn name(self) -> &'static str {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Which::Sse2 => "sse2",
            #[cfg(target_arch = "x86_64")]
            Which::Avx2 => "avx2",
            #[cfg(target_arch = "aarch64")]
            Which::Neon => "neon",
        }
    }

    /// The classes of `block`.
    #[inline]
    pub(super) fn classes(self, block: &[u8; 64]) -> Classes {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Which::Sse2 => x86::sse2(block),
            // Safety: a `Kernel` holding `Avx2` is only made once `is_x86_feature_detected!`
            // found AVX2 on this CPU (`available`).
            #[cfg(target_arch = "x86_64")]
            Which::Avx2 => unsafe { x86::avx2(block) },
            #[cfg(target_arch = "aarch64")]
            Which::Neon => arm::neon(block),
        }
    }

    /// The classes of `block` that a string's body needs (quote, backslash, ctrl, high,
    /// simple_escape), the others left 0: less work for the blocks of a long string.
    #[inline]
    pub(super) fn string_classes(self, block: &[u8; 64]) -> Classes {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Which::Sse2 => x86::sse2_strings(block),
            // Safety: as in `classes`.
            #[cfg(target_arch = "x86_64")]
            Which::Avx2 => unsafe { x86::avx2_strings(block) },
            #[cfg(target_arch = "aarch64")]
            Which::Neon => arm::neon_strings(block),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Classes;

    /// The class masks of `block`, through compares of `$width`-byte lanes (no closures:
    /// in the AVX2 function everything must be compiled with AVX2 enabled).
    macro_rules! classes_by_lanes {
        ($block:ident, $lane:ty, $width:expr, $load:ident, $eq:ident, $or:ident, $max:ident, $sub:ident, $mask:ident, $splat:ident, $slli:ident, $mask_ty:ty, $structure:expr) => {{
            let mut c = Classes::default();
            for k in 0..64 / $width {
                // Safety: `k * $width + $width <= 64`, so the unaligned load reads bytes of
                // `block`; the other intrinsics only compute, with the instruction set the
                // caller checked for (SSE2 is part of x86-64; AVX2 detected).
                unsafe {
                    let v: $lane = $load($block.as_ptr().add(k * $width).cast());
                    macro_rules! is {
                        ($b:expr) => {
                            $eq(v, $splat($b as i8))
                        };
                    }
                    macro_rules! mask {
                        ($m:expr) => {
                            u64::from($mask($m) as $mask_ty) << (k * $width)
                        };
                    }
                    let quote = is!(b'"');
                    let backslash = is!(b'\\');
                    c.quote |= mask!(quote);
                    c.backslash |= mask!(backslash);
                    let ctrl_max = $splat(0x1f);
                    c.ctrl |= mask!($eq($max(v, ctrl_max), ctrl_max));
                    c.high |= mask!(v);
                    let slash_b_f = $or(is!(b'/'), $or(is!(b'b'), is!(b'f')));
                    let n_r_t = $or(is!(b'n'), $or(is!(b'r'), is!(b't')));
                    c.simple_escape |= mask!($or($or(quote, backslash), $or(slash_b_f, n_r_t)));
                    if $structure {
                        c.ws |= mask!($or($or(is!(b' '), is!(b'\t')), $or(is!(b'\n'), is!(b'\r'))));
                        // `{` `}` are `[` `]` with bit 5 set.
                        let lower = $or(v, $splat(0x20));
                        c.open |= mask!($eq(lower, $splat(b'{' as i8)));
                        c.close |= mask!($eq(lower, $splat(b'}' as i8)));
                        c.colon |= mask!(is!(b':'));
                        c.comma |= mask!(is!(b','));
                        // Bit 5 of each byte, moved to bit 7 (a 16-bit shift: no bit crosses
                        // into the top of the next byte).
                        c.curly |= mask!($slli::<2>(v));
                        // `b - '0' <= 9`, unsigned.
                        let nine = $splat(9);
                        c.digit |= mask!($eq($max($sub(v, $splat(b'0' as i8)), nine), nine));
                        c.zero |= mask!(is!(b'0'));
                        c.minus |= mask!(is!(b'-'));
                        c.plus |= mask!(is!(b'+'));
                        c.dot |= mask!(is!(b'.'));
                        // `E` is `e` without bit 5.
                        c.exp |= mask!($eq(lower, $splat(b'e' as i8)));
                    }
                }
            }
            c
        }};
    }

    /// SSE2's arguments of [`classes_by_lanes`]: four 16-byte lanes.
    macro_rules! sse2 {
        ($block:ident, $structure:expr) => {
            classes_by_lanes!(
                $block,
                __m128i,
                16,
                _mm_loadu_si128,
                _mm_cmpeq_epi8,
                _mm_or_si128,
                _mm_max_epu8,
                _mm_sub_epi8,
                _mm_movemask_epi8,
                _mm_set1_epi8,
                _mm_slli_epi16,
                u16,
                $structure
            )
        };
    }

    /// AVX2's arguments of [`classes_by_lanes`]: two 32-byte lanes.
    macro_rules! avx2 {
        ($block:ident, $structure:expr) => {
            classes_by_lanes!(
                $block,
                __m256i,
                32,
                _mm256_loadu_si256,
                _mm256_cmpeq_epi8,
                _mm256_or_si256,
                _mm256_max_epu8,
                _mm256_sub_epi8,
                _mm256_movemask_epi8,
                _mm256_set1_epi8,
                _mm256_slli_epi16,
                u32,
                $structure
            )
        };
    }

    /// SSE2, part of every x86-64 CPU.
    pub(super) fn sse2(block: &[u8; 64]) -> Classes {
        sse2!(block, true)
    }

    /// SSE2, the classes inside strings only.
    pub(super) fn sse2_strings(block: &[u8; 64]) -> Classes {
        sse2!(block, false)
    }

    /// AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2(block: &[u8; 64]) -> Classes {
        avx2!(block, true)
    }

    /// AVX2, the classes inside strings only.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2_strings(block: &[u8; 64]) -> Classes {
        avx2!(block, false)
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;

    use super::Classes;

    /// NEON, part of every AArch64 CPU: four 16-byte lanes, their compares gathered into one
    /// 64-bit mask per class. `structure`: every class, or those inside strings only.
    #[inline(always)]
    fn classes(block: &[u8; 64], structure: bool) -> Classes {
        // Safety: each load reads 16 bytes at `16 * k`, `k < 4`: bytes of `block`; the other
        // intrinsics only compute, with NEON, which every AArch64 CPU has (a default feature
        // of every aarch64 target).
        unsafe {
            let lanes = [0, 1, 2, 3].map(|k| vld1q_u8(block.as_ptr().add(16 * k)));
            macro_rules! is {
                ($v:expr, $b:expr) => {
                    vceqq_u8($v, vdupq_n_u8($b))
                };
            }
            macro_rules! each {
                (|$v:ident| $class:expr) => {
                    mask(lanes.map(|$v| $class))
                };
            }
            let strings = Classes {
                quote: each!(|v| is!(v, b'"')),
                backslash: each!(|v| is!(v, b'\\')),
                ctrl: each!(|v| vcleq_u8(v, vdupq_n_u8(0x1f))),
                high: each!(|v| vcgeq_u8(v, vdupq_n_u8(0x80))),
                simple_escape: each!(|v| {
                    let quote_backslash = vorrq_u8(is!(v, b'"'), is!(v, b'\\'));
                    let slash_b_f = vorrq_u8(is!(v, b'/'), vorrq_u8(is!(v, b'b'), is!(v, b'f')));
                    let n_r_t = vorrq_u8(is!(v, b'n'), vorrq_u8(is!(v, b'r'), is!(v, b't')));
                    vorrq_u8(quote_backslash, vorrq_u8(slash_b_f, n_r_t))
                }),
                ..Classes::default()
            };
            if !structure {
                return strings;
            }
            Classes {
                ws: each!(|v| vorrq_u8(vorrq_u8(is!(v, b' '), is!(v, b'\t')), vorrq_u8(is!(v, b'\n'), is!(v, b'\r')))),
                // `{` `}` are `[` `]` with bit 5 set.
                open: each!(|v| is!(vorrq_u8(v, vdupq_n_u8(0x20)), b'{')),
                close: each!(|v| is!(vorrq_u8(v, vdupq_n_u8(0x20)), b'}')),
                colon: each!(|v| is!(v, b':')),
                comma: each!(|v| is!(v, b',')),
                curly: each!(|v| vtstq_u8(v, vdupq_n_u8(0x20))),
                digit: each!(|v| vcleq_u8(vsubq_u8(v, vdupq_n_u8(b'0')), vdupq_n_u8(9))),
                zero: each!(|v| is!(v, b'0')),
                minus: each!(|v| is!(v, b'-')),
                plus: each!(|v| is!(v, b'+')),
                dot: each!(|v| is!(v, b'.')),
                // `E` is `e` without bit 5.
                exp: each!(|v| is!(vorrq_u8(v, vdupq_n_u8(0x20)), b'e')),
                ..strings
            }
        }
    }

    /// NEON: every class.
    pub(super) fn neon(block: &[u8; 64]) -> Classes {
        classes(block, true)
    }

    /// NEON: the classes inside strings only.
    pub(super) fn neon_strings(block: &[u8; 64]) -> Classes {
        classes(block, false)
    }

    /// Four lanes of 0x00/0xff bytes as 64 bits: each byte keeps its bit of a power of two, and
    /// three rounds of pairwise sums gather the bits of 8 bytes into one.
    #[inline(always)]
    fn mask(lanes: [uint8x16_t; 4]) -> u64 {
        const WEIGHTS: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
        // Safety: the load reads the 16 bytes of `WEIGHTS`; the other intrinsics only compute,
        // with NEON (see `neon`).
        unsafe {
            let weights = vld1q_u8(WEIGHTS.as_ptr());
            let [a, b, c, d] = lanes.map(|l| vandq_u8(l, weights));
            let ab = vpaddq_u8(a, b);
            let cd = vpaddq_u8(c, d);
            let abcd = vpaddq_u8(ab, cd);
            vgetq_lane_u64::<0>(vreinterpretq_u64_u8(vpaddq_u8(abcd, abcd)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_agrees_with_the_portable_one_on_every_byte_at_every_offset() {
        let kernels = Kernel::available();
        // x86-64 has SSE2 and AArch64 NEON, always: the test must not pass on no kernel.
        assert_eq!(kernels.is_empty(), !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")));
        for kernel in kernels {
            for byte in 0..=255u8 {
                for at in 0..64 {
                    let mut block = [b'a'; 64];
                    block[at] = byte;
                    block[(at + 17) % 64] = byte.wrapping_add(1);
                    assert_eq!(
                        kernel.classes(&block),
                        Classes::portable(&block),
                        "{} byte {byte:#x} at {at}",
                        kernel.name()
                    );
                    let p = Classes::portable(&block);
                    let strings = Classes {
                        quote: p.quote,
                        backslash: p.backslash,
                        ctrl: p.ctrl,
                        high: p.high,
                        simple_escape: p.simple_escape,
                        ..Classes::default()
                    };
                    assert_eq!(
                        kernel.string_classes(&block),
                        strings,
                        "{} strings, byte {byte:#x} at {at}",
                        kernel.name()
                    );
                }
            }
        }
    }
}
