//! Property tests of the reply framing: `ReplyScanner` gives the same answer however the growing
//! buffer is chunked, agrees with a naive byte-at-a-time model and with serde_json on where a
//! valid object ends, and `validate_reply` never panics and accepts what
//! `serde_json::from_slice::<Value>` + the Blender-response rule accepts (exactly, on generated
//! replies; up to the `JSON.parse`-like leniencies pinned down at the end, on arbitrary bytes).
//!
//! The fuzz target `fuzz/fuzz_targets/reply_framing.rs` checks the same chunking property on
//! coverage-guided input.

use std::iter;

use blender_mcp_pool_core::framing::{is_whitespace, validate_reply, ReplyScanner, Scan};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};

const CASES: u32 = 2000;

fn config() -> ProptestConfig {
    ProptestConfig { cases: CASES, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------------------------
// Oracles

fn scan_once(buf: &[u8]) -> Scan {
    ReplyScanner::new().scan(buf)
}

/// Feeds `buf[..cut]` for every cut (ascending, repeats allowed: a read of zero new bytes), then
/// the whole buffer, as `ReplyBuffer` does, stopping at the first final answer (after a
/// `Complete` the connection takes the buffer and resets the scanner; after `NotAnObject` it
/// drops the connection).
fn scan_in_chunks(buf: &[u8], cuts: &[usize]) -> Scan {
    let mut scanner = ReplyScanner::new();
    let mut last = Scan::Empty;
    for &cut in cuts.iter().chain(iter::once(&buf.len())) {
        last = scanner.scan(&buf[..cut]);
        if matches!(last, Scan::Complete { .. } | Scan::NotAnObject(_)) {
            return last;
        }
    }
    last
}

/// The scanner's specification, written as plainly as possible: one byte at a time, no memchr,
/// no resumption.
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

/// Where serde_json says the first JSON value of `buf` ends, if it is a valid object.
fn serde_object_end(buf: &[u8]) -> Option<usize> {
    let mut stream = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
    match stream.next() {
        Some(Ok(v)) if v.is_object() => Some(stream.byte_offset()),
        _ => None,
    }
}

/// What `validate_reply` should say, computed by parsing into a `Value`: a JSON object (with
/// optional surrounding whitespace) whose last `status` is "success" or "error" and whose
/// `message`, if any, is a string.
fn is_blender_response(bytes: &[u8]) -> bool {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(bytes) else { return false };
    let status_ok = matches!(obj.get("status"), Some(Value::String(s)) if s == "success" || s == "error");
    status_ok && obj.get("message").is_none_or(Value::is_string)
}

/// Whether `validate_reply` may accept `bytes` although `from_slice::<Value>` rejects them. It
/// skips the values it does not need without building them, which is laxer than building a
/// `Value` in exactly the ways `JSON.parse` is: numbers beyond f64 (`1e400`, Infinity in
/// JavaScript), lone UTF-16 surrogate escapes outside keys and `message`, and nesting deeper
/// than serde_json's recursion limit (128) outside `status`/`message`. See the unit tests below.
fn known_leniency(bytes: &[u8]) -> bool {
    let Err(e) = serde_json::from_slice::<Value>(bytes) else { return false };
    let e = e.to_string();
    ["number out of range", "surrogate", "hex escape", "recursion limit exceeded"].iter().any(|m| e.contains(m))
}

/// `validate_reply` accepted `bytes`: check serde_json does too, or fails only as tolerated.
fn check_accepted(bytes: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(
        is_blender_response(bytes) || known_leniency(bytes),
        "validate_reply accepted {:?}, serde_json does not",
        String::from_utf8_lossy(bytes)
    );
    Ok(())
}

/// Checks everything that must hold of one scan result for `buf`.
fn check_scan_result(buf: &[u8], got: Scan) -> Result<(), TestCaseError> {
    match got {
        Scan::Empty => prop_assert!(is_whitespace(buf)),
        Scan::NotAnObject(at) => {
            prop_assert!(at < buf.len());
            prop_assert!(is_whitespace(&buf[..at]));
            let first_is_brace = buf[at] == b'{';
            prop_assert!(!is_whitespace(&buf[at..=at]) && !first_is_brace);
        }
        Scan::Complete { start, end } => {
            prop_assert!(start < end && end <= buf.len());
            prop_assert!(is_whitespace(&buf[..start]));
            prop_assert_eq!(buf[start], b'{');
            let closes = matches!(buf[end - 1], b'}' | b']');
            prop_assert!(closes, "ends on {:?}", buf[end - 1] as char);
            // Must not panic, whatever the slice holds; and if it accepts, so does serde_json.
            if validate_reply(&buf[start..end]).is_ok() {
                check_accepted(&buf[start..end])?;
            }
        }
        Scan::Incomplete => {
            prop_assert!(!is_whitespace(buf));
            prop_assert_eq!(buf[buf.iter().position(|b| !is_whitespace(&[*b])).unwrap()], b'{');
        }
        #[allow(unreachable_patterns)]
        other => prop_assert!(false, "the JSON scanner answered {:?}", other),
    }
    // Wherever serde_json finds a complete leading object, the scanner ends it at the same byte.
    if let Some(end) = serde_object_end(buf) {
        prop_assert!(matches!(got, Scan::Complete { end: e, .. } if e == end), "serde_json ends the object at {}", end);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Pieces of JSON-ish text: structure, strings, escapes, whitespace, multi-byte UTF-8 and a few
/// invalid UTF-8 bytes, so random concatenations often open, nest and close objects.
const FRAGMENTS: &[&[u8]] = &[
    b"{", b"{", b"}", b"}", b"[", b"]", b"\"", b"\"", b"\\", b"\\\"", b"\\\\", b"\\u00",
    b" ", b"\n", b"\t", b"\r", b":", b",", b"a", b"Z", b"0", b"-1.5e3", b"null", b"true",
    b"\"status\"", b"\"success\"", b"\"error\"", b"\"message\"", b"\"k\":", b"{}", b"[]", b"\"\"",
    "é".as_bytes(), "世".as_bytes(), "🎨".as_bytes(), b"\x7f", b"\xff", b"\xc3", b"\x80", b"\x00",
];

fn fragments(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..max).prop_map(|v| v.concat())
}

fn whitespace() -> impl Strategy<Value = String> {
    "[ \t\r\n]{0,4}"
}

/// Strings with the characters the scanner cares about, control characters (serialized as
/// `\u00XX`) and multi-byte UTF-8; sometimes any Unicode at all.
fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z{}\\[\\]\"\\\\/: é世🎨\u{0}-\u{1f}\u{7f}]{0,12}",
        1 => any::<String>(),
    ]
}

/// Any JSON value, a few levels deep. Numbers stay in f64 range whatever bytes are deleted
/// (see `mutate`), so serde_json never rejects one as out of range.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_string(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((json_string(), json_value()), 0..6)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

/// An object that is a Blender response, or nearly: status "success"/"error" (rarely
/// something else), and a message that is absent, a string, or (rarely) another value.
fn blender_object() -> impl Strategy<Value = Value> {
    let status = prop_oneof![
        4 => Just(Value::from("success")),
        4 => Just(Value::from("error")),
        1 => json_value(),
    ];
    let message = prop_oneof![
        2 => Just(None),
        2 => json_string().prop_map(|s| Some(Value::String(s))),
        1 => json_value().prop_map(Some),
    ];
    (json_object(), status, message).prop_map(|(mut obj, status, message)| {
        let map = obj.as_object_mut().expect("an object");
        let _ = map.insert("status".into(), status);
        if let Some(m) = message {
            let _ = map.insert("message".into(), m);
        }
        obj
    })
}

/// Serializes `v` compactly or pretty-printed.
fn serialize(v: &Value, pretty: bool) -> Vec<u8> {
    if pretty {
        serde_json::to_vec_pretty(v).expect("serializable")
    } else {
        serde_json::to_vec(v).expect("serializable")
    }
}

/// One edit of a serialized reply: drop a byte, or insert a structural byte.
#[derive(Debug, Clone)]
enum Edit {
    Delete(Index),
    Insert(Index, u8),
    Truncate(Index),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<Index>()).prop_map(Edit::Delete),
        (any::<Index>(), prop::sample::select(&b"{}[]\":,\\ x"[..])).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<Index>()).prop_map(Edit::Truncate),
    ];
    prop_oneof![2 => Just(vec![]), 1 => prop::collection::vec(edit, 1..4)]
}

fn mutate(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        match *e {
            Edit::Delete(i) if !bytes.is_empty() => drop(bytes.remove(i.index(bytes.len()))),
            Edit::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), b),
            Edit::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
            Edit::Delete(_) => {}
        }
    }
    bytes
}

/// A valid object with whitespace around it and (sometimes) more bytes after it; returns the
/// buffer and the offsets of the object.
fn object_in_stream() -> impl Strategy<Value = (Vec<u8>, usize, usize)> {
    (whitespace(), json_object(), any::<bool>(), whitespace(), prop_oneof![Just(vec![]), fragments(10)]).prop_map(
        |(before, obj, pretty, after, tail)| {
            let mut buf = before.into_bytes();
            let start = buf.len();
            buf.extend_from_slice(&serialize(&obj, pretty));
            let end = buf.len();
            buf.extend_from_slice(after.as_bytes());
            buf.extend_from_slice(&tail);
            (buf, start, end)
        },
    )
}

/// Starts that open an object, so random fragments after them often complete it.
const HEADS: &[&[u8]] = &[b"{", b" {", b"\r\n\t {", b"{\"status\":\"success\",\"r\":"];

/// Byte strings to scan: arbitrary bytes; JSON-ish fragments, often after an opening brace so
/// that objects actually complete; and valid objects followed by anything.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..64),
        2 => fragments(48),
        3 => (prop::sample::select(HEADS), fragments(48))
            .prop_map(|(head, rest)| [head, &rest[..]].concat()),
        2 => (object_in_stream(), edits()).prop_map(|((buf, _, _), e)| mutate(buf, &e)),
    ]
}

/// Split points for `len` bytes: ascending, possibly repeated, possibly 0 or `len`.
fn cuts_for(len: usize, picks: &[Index]) -> Vec<usize> {
    let mut cuts: Vec<usize> = picks.iter().map(|i| i.index(len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

fn picks() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..12)
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config())]

    /// Chunked feeding gives the whole-buffer answer, and that answer is the model's.
    #[test]
    fn chunked_scan_matches_whole_buffer_scan(buf in stream(), picks in picks()) {
        let whole = scan_once(&buf);
        let cuts = cuts_for(buf.len(), &picks);
        prop_assert_eq!(scan_in_chunks(&buf, &cuts), whole, "cuts {:?}", cuts);
        prop_assert_eq!(whole, model_scan(&buf));
        check_scan_result(&buf, whole)?;
    }

    /// Byte by byte — the worst chunking — also agrees, and the answer only becomes final on
    /// the byte that decides it.
    #[test]
    fn byte_by_byte_scan_matches_whole_buffer_scan(buf in stream()) {
        let whole = scan_once(&buf);
        let mut scanner = ReplyScanner::new();
        let mut got = Scan::Empty;
        for n in 0..=buf.len() {
            got = scanner.scan(&buf[..n]);
            match got {
                Scan::Complete { end, .. } => { prop_assert_eq!(end, n); break; }
                Scan::NotAnObject(at) => { prop_assert_eq!(at + 1, n); break; }
                _ => prop_assert_eq!(got, model_scan(&buf[..n])),
            }
        }
        prop_assert_eq!(got, whole);
    }

    /// `NotAnObject` is sticky: scanning more of the same buffer reports the same offset.
    #[test]
    fn not_an_object_is_reported_again_as_the_buffer_grows(
        lead in whitespace(), first in any::<u8>(), rest in prop::collection::vec(any::<u8>(), 0..16), picks in picks(),
    ) {
        prop_assume!(!matches!(first, b'{' | b' ' | b'\t' | b'\n' | b'\r'));
        let buf = [lead.as_bytes(), &[first], &rest].concat();
        let at = lead.len();
        let mut scanner = ReplyScanner::new();
        for cut in cuts_for(buf.len(), &picks).into_iter().chain(iter::once(buf.len())) {
            let got = scanner.scan(&buf[..cut]);
            if cut <= at {
                prop_assert_eq!(got, Scan::Empty);
            } else {
                prop_assert_eq!(got, Scan::NotAnObject(at));
            }
        }
    }

    /// A reset scanner handles the next reply as a fresh one would, whatever the last one was.
    #[test]
    fn reset_scanner_behaves_like_a_new_one(first in stream(), second in stream(), picks in picks()) {
        let mut scanner = ReplyScanner::new();
        let cut = picks.first().map_or(first.len(), |i| i.index(first.len() + 1));
        let _ = scanner.scan(&first[..cut]);
        let _ = scanner.scan(&first);
        scanner.reset();
        prop_assert_eq!(scanner.scan(&second), scan_once(&second));
    }

    /// A valid object, with whitespace around it and anything after it, is complete exactly at
    /// its closing brace however it is chunked.
    #[test]
    fn valid_objects_complete_at_their_closing_brace((buf, start, end) in object_in_stream(), picks in picks()) {
        let want = Scan::Complete { start, end };
        prop_assert_eq!(scan_once(&buf), want);
        prop_assert_eq!(scan_in_chunks(&buf, &cuts_for(buf.len(), &picks)), want);
        // And nothing before its last byte completes it.
        prop_assert_eq!(scan_once(&buf[..end - 1]), Scan::Incomplete);
    }

    /// `validate_reply` never panics, and accepts only what serde_json parses as a Blender
    /// response.
    #[test]
    fn validate_reply_never_panics(buf in stream()) {
        if validate_reply(&buf).is_ok() {
            check_accepted(&buf)?;
        }
    }

    /// On (possibly damaged) objects with a status, `validate_reply` agrees exactly with
    /// `serde_json::from_slice::<Value>` plus the status/message rule, and returns the text.
    #[test]
    fn validate_reply_agrees_with_serde_json(
        obj in blender_object(), pretty in any::<bool>(), before in whitespace(), after in whitespace(), edits in edits(),
    ) {
        let bytes = [before.as_bytes(), &serialize(&obj, pretty), after.as_bytes()].concat();
        let bytes = mutate(bytes, &edits);
        let expected = is_blender_response(&bytes);
        match validate_reply(&bytes) {
            Ok(text) => {
                // The generated numbers, depths and strings cannot hit a leniency, but an edit
                // could in principle (a `\\` inserted before "ud800" in a string).
                prop_assert!(expected || known_leniency(&bytes), "accepted {:?}", text);
                prop_assert_eq!(text.as_bytes(), &bytes[..]);
            }
            Err(e) => {
                prop_assert!(!expected, "rejected {:?}: {}", String::from_utf8_lossy(&bytes), e);
                prop_assert_eq!(e.code(), "ERR_INVALID_RESPONSE");
            }
        }
        if edits.is_empty() {
            let status_ok = matches!(obj.get("status"), Some(Value::String(s)) if s == "success" || s == "error");
            prop_assert_eq!(expected, status_ok && obj.get("message").is_none_or(Value::is_string));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Where `validate_reply` is laxer than a `Value` parse (as `JSON.parse` is), pinned down so the
// tolerance in `known_leniency` stays exactly this.

#[test]
fn validate_reply_tolerates_what_json_parse_tolerates_in_skipped_values() {
    let deep = format!(r#"{{"status":"success","x":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    for lax in [
        r#"{"status":"success","x":1e400}"#,
        r#"{"status":"success","x":-1e400}"#,
        r#"{"status":"success","x":"\ud800"}"#,
        r#"{"status":"success","x":"\udc00"}"#,
        r#"{"status":"success","x":"\ud800\u0041"}"#,
        // Lone surrogates in a key or in `message`: Python's json.dumps writes them for a file
        // name that is not UTF-8, and JSON.parse takes them.
        r#"{"status":"error","message":"caf\udce9.blend"}"#,
        r#"{"\ud800":1,"status":"success"}"#,
        &deep,
    ] {
        assert!(validate_reply(lax.as_bytes()).is_ok(), "{lax:.60}");
        assert!(serde_json::from_str::<Value>(lax).is_err(), "{lax:.60}");
        assert!(known_leniency(lax.as_bytes()), "{lax:.60}");
    }
}

#[test]
fn validate_reply_still_requires_a_status_it_can_read_and_a_string_message() {
    let deep_status = format!(r#"{{"status":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    for strict in [
        r#"{"status":"success","message":1e400}"#,
        r#"{"status":"\ud800"}"#,
        r#"{"status":"success\ud800"}"#,
        r#"{"status":1e400}"#,
        &deep_status,
    ] {
        assert!(validate_reply(strict.as_bytes()).is_err(), "{strict:.60}");
    }
}

#[test]
fn validate_reply_skips_deep_nesting_without_recursing() {
    // serde_json skips ignored values with a heap stack, so depth is bounded by the reply size
    // (maxResponseBytes), not by the thread's stack.
    let d = 1_000_000;
    let deep = format!(r#"{{"status":"success","x":{}1{}}}"#, r#"[{"a":"#.repeat(d), "}]".repeat(d));
    assert!(validate_reply(deep.as_bytes()).is_ok());
    assert_eq!(ReplyScanner::new().scan(deep.as_bytes()), Scan::Complete { start: 0, end: deep.len() });
}
