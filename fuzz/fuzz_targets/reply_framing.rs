//! Fuzzes the reply framing: the validating bare-JSON scanner, `validate_reply`/`check_reply`
//! and the length-prefixed scanner, against the reference the property tests use
//! (`core/tests/framing_reference/`, included by path: one reference for both).
//!
//! Input layout: `data[0] % 16` = how many chunk sizes follow; each of those bytes is the size
//! of one read (0 = a read that brought nothing); the rest is the byte stream. The stream is fed
//! to a `ReplyScanner` as a growing buffer, chunk by chunk and then whole, as the reader does,
//! stopping at the first final answer; and framed with a length prefix, fed the same way to a
//! `LengthPrefixedScanner`.
//!
//! Checked: no panic; the chunked answer equals one scan of the whole buffer and the
//! reference's answer (where a valid object ends, or the first byte no valid reply could have
//! and its kind, the Blender verdict and the ASCII flag); `check_reply` and the length-prefixed
//! scanner agree with the reference's whole-message answer; and serde_json agrees where it has
//! a say (what it parses is accepted, what is accepted it parses, up to the documented
//! leniencies `JSON.parse` has too).
#![no_main]

use blender_mcp_pool_core::framing::scan::{kernel_names, with_kernel};
use blender_mcp_pool_core::framing::{
    check_reply, validate_reply, Fault, LengthPrefixedScanner, NotBlender, ReplyScanner, Scan,
};
use libfuzzer_sys::fuzz_target;

#[path = "../../core/tests/framing_reference/mod.rs"]
mod framing_reference;
use framing_reference::{known_leniency, serde_blender_response, serde_object_end, Answer, Kind};

fn is_final(s: Scan) -> bool {
    matches!(s, Scan::Complete { .. } | Scan::NotAnObject(_) | Scan::Invalid { .. } | Scan::TooLarge(_))
}

fn kind(fault: Fault) -> Kind {
    match fault {
        Fault::Utf8 => Kind::Utf8,
        _ => Kind::Json,
    }
}

fn verdict(
    r: Result<blender_mcp_pool_core::framing::Checked, NotBlender>,
) -> Result<bool, framing_reference::NotBlender> {
    r.map(|c| c.ascii).map_err(|n| match n {
        NotBlender::NoStatus => framing_reference::NotBlender::NoStatus,
        NotBlender::BadStatus => framing_reference::NotBlender::BadStatus,
        NotBlender::MessageNotString => framing_reference::NotBlender::MessageNotString,
    })
}

/// The JSON scanner's last answer in the reference's terms.
fn answer(s: &ReplyScanner, scan: Scan) -> Answer {
    match scan {
        Scan::Empty => Answer::Empty,
        Scan::Incomplete => Answer::Incomplete,
        Scan::NotAnObject(at) => Answer::NotAnObject(at),
        Scan::Invalid { at, fault } => Answer::Invalid(at, kind(fault)),
        Scan::Complete { start, end } => Answer::Complete { start, end, response: verdict(s.response()) },
        Scan::TooLarge(_) => panic!("the JSON scanner answered TooLarge"),
    }
}

/// Feeds `buf` to `scan` as growing prefixes of the sizes given, then whole.
fn feed(buf: &[u8], sizes: &[u8], mut scan: impl FnMut(&[u8]) -> Scan) -> Scan {
    let mut len = 0;
    for &size in sizes {
        len = (len + usize::from(size)).min(buf.len());
        let got = scan(&buf[..len]);
        if is_final(got) {
            return got;
        }
    }
    scan(buf)
}

fuzz_target!(|data: &[u8]| {
    let Some(&first) = data.first() else { return };
    // The high half of the first byte picks the stage-one kernel (each this CPU runs).
    let kernels = kernel_names();
    let kernel = kernels[usize::from(first >> 4) % kernels.len()];
    with_kernel(kernel, || check(data)).expect("a kernel this CPU runs");
});

fn check(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = usize::from(n % 16).min(rest.len());
    let (sizes, buf) = rest.split_at(n);

    // Bare JSON: chunked, whole, reference.
    let mut scanner = ReplyScanner::new();
    let chunked = feed(buf, sizes, |b| scanner.scan(b));
    let chunked = answer(&scanner, chunked);
    let mut fresh = ReplyScanner::new();
    let whole = fresh.scan(buf);
    let whole = answer(&fresh, whole);
    assert_eq!(chunked, whole, "chunked scan differs from whole-buffer scan");
    assert_eq!(whole, framing_reference::scan(buf), "scanner differs from the reference");

    match whole {
        Answer::Complete { start, end, response } => {
            let reply = &buf[start..end];
            if let Ok(ascii) = response {
                assert!(serde_blender_response(reply) || known_leniency(reply), "accepted what serde_json rejects");
                assert_eq!(ascii, reply.is_ascii());
            }
            if serde_blender_response(reply) {
                assert!(response.is_ok(), "rejected a Blender response serde_json reads");
            }
        }
        Answer::Invalid(at, _) => assert!(at < buf.len()),
        _ => {}
    }
    // Wherever serde_json finds a complete leading object, the reply ends at the same byte.
    if let Some(end) = serde_object_end(buf) {
        assert!(matches!(whole, Answer::Complete { end: e, .. } if e == end), "serde_json ends the object elsewhere");
    }

    // The whole buffer as one message: check_reply, then the same bytes length-prefixed.
    let document = framing_reference::document(buf);
    let checked = check_reply(buf);
    match document {
        Answer::Complete { response: Ok(ascii), .. } => assert_eq!(checked.as_ref().map(|c| c.ascii).ok(), Some(ascii)),
        _ => assert!(checked.is_err(), "check_reply accepted what the reference rejects"),
    }
    if let Ok(text) = validate_reply(buf) {
        assert_eq!(text.as_bytes(), buf);
        assert!(serde_blender_response(buf) || known_leniency(buf), "validate_reply accepted what serde_json rejects");
    }
    if serde_blender_response(buf) {
        assert!(checked.is_ok(), "check_reply rejected a Blender response serde_json reads");
    }

    let mut wire = (buf.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(buf);
    let mut lp = LengthPrefixedScanner::new(1 << 20);
    let got = feed(&wire, sizes, |b| lp.scan(b));
    match (got, document) {
        (Scan::Complete { start: 4, end }, Answer::Complete { response, .. }) => {
            assert_eq!(end, wire.len());
            assert_eq!(verdict(lp.response()), response);
        }
        (Scan::NotAnObject(at), Answer::NotAnObject(want)) => assert_eq!(at - 4, want),
        (Scan::Invalid { at, fault }, Answer::Invalid(want, k)) => assert_eq!((at - 4, kind(fault)), (want, k)),
        (got, want) => panic!("length-prefixed scanner answered {got:?}, the reference {want:?}"),
    }
}
