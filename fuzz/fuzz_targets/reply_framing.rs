//! Fuzzes the bare-JSON reply framing.
//!
//! Input layout: `data[0] % 16` = how many chunk sizes follow; each of those bytes is the size
//! of one read (0 = a read that brought nothing); the rest is the byte stream. The stream is fed
//! to a `ReplyScanner` as a growing buffer, chunk by chunk and then whole, as the connection's
//! `ReplyBuffer` does, stopping at the first final answer.
//!
//! Checked: no panic; the chunked answer equals one scan of the whole buffer with a fresh
//! scanner and a naive byte-at-a-time model of the scanner; the answer is consistent with the
//! bytes (offsets, braces, whitespace); wherever serde_json parses a leading object, the scanner
//! ends the reply at the same byte; `validate_reply` never panics (on the complete slice and on
//! the whole stream), and whatever it accepts serde_json accepts too, up to the documented
//! leniencies it shares with `JSON.parse`.
#![no_main]

use blender_mcp_pool_core::framing::{is_whitespace, validate_reply, ReplyScanner, Scan};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn is_final(s: Scan) -> bool {
    matches!(s, Scan::Complete { .. } | Scan::NotAnObject(_))
}

/// The scanner's specification, one byte at a time.
fn model_scan(buf: &[u8]) -> Scan {
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let Some(start) = buf.iter().position(|&b| !ws(b)) else { return Scan::Empty };
    if buf[start] != b'{' {
        return Scan::NotAnObject(start);
    }
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for (i, &b) in buf.iter().enumerate().skip(start) {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Scan::Complete { start, end: i + 1 };
                }
            }
            b'"' => in_str = true,
            _ => {}
        }
    }
    Scan::Incomplete
}

/// Whether serde_json (building a `Value`) accepts `bytes` as a Blender response.
fn is_blender_response(bytes: &[u8]) -> bool {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(bytes) else { return false };
    let status_ok = matches!(obj.get("status"), Some(Value::String(s)) if s == "success" || s == "error");
    status_ok && obj.get("message").is_none_or(Value::is_string)
}

/// Where `validate_reply` may be laxer than a `Value` parse, as `JSON.parse` is (see
/// core/tests/framing_properties.rs).
fn known_leniency(bytes: &[u8]) -> bool {
    let Err(e) = serde_json::from_slice::<Value>(bytes) else { return false };
    let e = e.to_string();
    ["number out of range", "surrogate", "hex escape", "recursion limit exceeded"].iter().any(|m| e.contains(m))
}

fn check_validate(bytes: &[u8]) {
    if let Ok(text) = validate_reply(bytes) {
        assert_eq!(text.as_bytes(), bytes);
        assert!(is_blender_response(bytes) || known_leniency(bytes), "validate_reply accepted what serde_json rejects");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = usize::from(n % 16).min(rest.len());
    let (sizes, buf) = rest.split_at(n);

    // Chunk by chunk, the buffer only growing, then whole.
    let mut scanner = ReplyScanner::new();
    let mut len = 0;
    let mut chunked = Scan::Empty;
    for &size in sizes.iter() {
        len = (len + usize::from(size)).min(buf.len());
        chunked = scanner.scan(&buf[..len]);
        if is_final(chunked) {
            break;
        }
    }
    if !is_final(chunked) {
        chunked = scanner.scan(buf);
    }

    let whole = ReplyScanner::new().scan(buf);
    assert_eq!(chunked, whole, "chunked scan differs from whole-buffer scan");
    assert_eq!(whole, model_scan(buf), "scanner differs from the byte-at-a-time model");

    match whole {
        Scan::Empty => assert!(is_whitespace(buf)),
        Scan::NotAnObject(at) => {
            assert!(is_whitespace(&buf[..at]));
            assert!(buf[at] != b'{' && !is_whitespace(&buf[at..=at]));
        }
        Scan::Complete { start, end } => {
            assert!(start < end && end <= buf.len());
            assert!(is_whitespace(&buf[..start]));
            assert_eq!(buf[start], b'{');
            assert!(matches!(buf[end - 1], b'}' | b']'));
            check_validate(&buf[start..end]);
        }
        Scan::Incomplete => assert!(!is_whitespace(buf)),
        #[allow(unreachable_patterns)]
        other => panic!("the JSON scanner answered {other:?}"),
    }

    // Wherever serde_json finds a complete leading object, the reply ends at the same byte.
    let mut stream = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
    if let Some(Ok(v)) = stream.next() {
        if v.is_object() {
            assert!(
                matches!(whole, Scan::Complete { end, .. } if end == stream.byte_offset()),
                "serde_json ends the object elsewhere"
            );
        }
    }

    check_validate(buf);
});
